#!/usr/bin/env bash
# Start the local servers the demo and the tests use, if they are not running (PostgreSQL 5432,
# MariaDB 3306, Redis 6379 on 127.0.0.1; see README), and the read-only accounts on them.
# Idempotent; quiet when all is up.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  echo "services: $2 did not come up on port $1" >&2
  return 1
}

if ! port_open 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  wait_port 5432 PostgreSQL
fi
if ! port_open 3306; then
  echo "services: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_port 3306 MariaDB
fi
if ! port_open 6379; then
  echo "services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
  wait_port 6379 Redis
fi

# An OpenSearch-compatible server for deployments/local (osmem-server, installed with the project's
# test tools in .venv), with sample logs and spans dated relative to now: refreshed on every run.
VENV="${VENV:-$(dirname "$0")/../.venv}"
OSMEM="$(ls "$VENV"/lib/python3*/site-packages/osmem_server/bin/osmem-server 2>/dev/null | head -1 || true)"
if [ -n "$OSMEM" ]; then
  if ! port_open 9200; then
    echo "services: starting osmem-server (OpenSearch API) on 9200"
    setsid "$OSMEM" -addr 127.0.0.1:9200 -no-stdin-watch -no-ja >"${TMPDIR:-/tmp}/cloud-agent-osmem.log" 2>&1 < /dev/null &
    wait_port 9200 osmem-server
  fi
  "$VENV/bin/python" -m gateway.demo.samples http://127.0.0.1:9200 \
    || echo "services: the sample logs were not written to 127.0.0.1:9200" >&2
else
  echo "services: osmem-server is not installed yet (make setup); no OpenSearch API on 9200" >&2
fi

# Shell read tasks run sandboxed as an unprivileged user (bubblewrap).
"$(dirname "$0")/prepare-sandbox.sh"

# The read-only accounts read tasks connect with (deployments/local/connections.yaml read_*).
"$(dirname "$0")/create-read-accounts.sh"
