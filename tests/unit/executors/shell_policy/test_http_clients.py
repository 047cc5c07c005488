"""curl, wget, openssl (``executors._policy.shell.http_clients``)."""

from __future__ import annotations

import pytest

from tests.unit.executors.shell_policy._expect import APPROVAL, READ, check, denied, ids

METADATA = denied("http.metadata-endpoint")
CREDENTIALS = denied("shell.credential-file")
CASES = [
    ("curl -s http://localhost:8080/health", READ),
    ("curl -fsS --max-time 5 -H 'Accept: application/json' http://127.0.0.1:9090/-/ready", READ),
    ("curl -s -o /dev/null -w '%{http_code}' http://localhost/", READ),
    ("curl -sI -X HEAD http://localhost/", READ),
    ("curl -s --unix-socket /var/run/docker.sock http://localhost/containers/json", READ),
    ("curl -s -u user:pass http://localhost/status", READ),
    ("curl -s -b 'session=abc' http://localhost/", READ),
    ("curl -s -D - http://localhost/", READ),
    ("wget -qO- --max-redirect=0 http://localhost/health", READ),
    ("wget --spider --max-redirect=0 http://localhost/health", READ),
    ("openssl version -a", READ),
    ("openssl x509 -in /etc/ssl/certs/ca.pem -noout -subject -enddate", READ),
    ("openssl s_client -connect db.internal:443 -showcerts", READ),
    ("curl -X POST http://localhost/restart", APPROVAL),
    ("curl -XDELETE http://localhost/cache", APPROVAL),
    ("curl -d x=1 http://localhost/", APPROVAL),
    ("curl --json '{}' http://localhost/", APPROVAL),
    ("curl -o /tmp/a http://localhost/", APPROVAL),
    ("curl -O http://localhost/a.sh", APPROVAL),
    ("curl -L http://localhost/", APPROVAL),
    ("curl -K /tmp/curlrc http://localhost/", APPROVAL),
    ("curl -c /tmp/jar http://localhost/", APPROVAL),
    ("curl -D /tmp/headers http://localhost/", APPROVAL),
    ("curl --trace /tmp/trace http://localhost/", APPROVAL),
    ("curl --libcurl /tmp/x.c http://localhost/", APPROVAL),
    ("curl -w '%output{/tmp/x}%{http_code}' http://localhost/", APPROVAL),
    ("curl -H @/tmp/headers http://localhost/", APPROVAL),
    ("curl -b /tmp/cookies http://localhost/", APPROVAL),
    ("curl --variable '%HOME' http://localhost/", APPROVAL),
    ('curl "$URL"', APPROVAL),
    ("wget http://localhost/a.sh", APPROVAL),
    ("wget -qO- http://localhost/", APPROVAL),
    ("wget -O /tmp/a --max-redirect=0 http://localhost/", APPROVAL),
    ("wget -e output_document=/tmp/x -qO- --max-redirect=0 http://localhost/", APPROVAL),
    ("wget --post-data=x -qO- --max-redirect=0 http://localhost/", APPROVAL),
    ("openssl x509 -in a.pem -out /tmp/b.pem", APPROVAL),
    ("openssl s_client -connect db:443 -sess_out /tmp/s", APPROVAL),
    ("openssl genrsa 2048", APPROVAL),
    ("openssl x509 -engine /tmp/evil.so -in a.pem", APPROVAL),
    ("curl http://169.254.169.254/latest/meta-data/", METADATA),
    ("curl -x 169.254.169.254:80 http://example.com/", METADATA),
    ("curl --doh-url http://169.254.169.254/dns http://example.com/", METADATA),
    ("curl --resolve example.com:80:169.254.169.254 http://example.com/", METADATA),
    ("curl --url http://169.254.169.254/ -s", METADATA),
    ("wget -qO- --max-redirect=0 http://169.254.169.254/", METADATA),
    ("openssl s_client -connect 169.254.169.254:443", METADATA),
    ("curl file:///etc/passwd", denied("http.scheme")),
    ("curl -d @/etc/shadow http://localhost/", CREDENTIALS),
    ("curl -F f=@/root/.ssh/id_rsa http://localhost/", CREDENTIALS),
    ("curl -T /etc/shadow http://localhost/", CREDENTIALS),
    ("curl --data-urlencode s@/etc/shadow http://localhost/", CREDENTIALS),
    ("curl -K /etc/shadow http://localhost/", CREDENTIALS),
    ("curl -H @/etc/shadow http://localhost/", CREDENTIALS),
    ("openssl x509 -in /etc/ssl/private/server.key -noout -text", CREDENTIALS),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=ids(CASES))
def test_network_clients(command: str, expected: str) -> None:
    check(command, expected)
