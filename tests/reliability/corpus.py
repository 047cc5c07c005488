"""What the reliability suite throws at the system: hostile requests, hostile output, and command
lines that try to get around the policy. Data only; ``scenarios.py`` sends it.

A hostile request names what must come back: an HTTP status and error code for what the API
refuses, or the task status and error code for what it accepts and the engine refuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.spec_data import ALERTMANAGER_SAMPLE

SAMPLE_ALERT = ALERTMANAGER_SAMPLE


@dataclass(frozen=True)
class Hostile:
    """One request: ``body`` (bytes as sent) to ``path``; what it must get back."""

    name: str
    body: bytes
    status: int
    #: The error code of a refused request, or of the task's result when ``status`` is 200.
    code: str | None = None
    #: For an accepted task: the status its result must have.
    task_status: str | None = None
    path: str = "/api/v1/tasks"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def _task(**fields: Any) -> bytes:
    return _json({"type": "shell", "command": "echo ok", **fields})


HOSTILE_TASKS: list[Hostile] = [
    # -- wrong types ------------------------------------------------------------------------------
    Hostile("type is a number", _json({"type": 123, "command": "id"}), 422, "invalid_task"),
    Hostile("command is a list", _json({"type": "shell", "command": ["rm", "-rf", "/"]}), 422, "invalid_task"),
    Hostile("command is an object", _json({"type": "shell", "command": {"$ne": ""}}), 422, "invalid_task"),
    Hostile("params is a string", _task(params="connection=default"), 422, "invalid_task"),
    Hostile("params is a list", _task(params=[1, 2]), 422, "invalid_task"),
    Hostile("sync is a list", _task(sync=[True]), 422, "invalid_task"),
    Hostile("timeout is a word", _task(timeout="soon"), 422, "invalid_task"),
    Hostile("timeout is negative", _task(timeout=-1), 422, "invalid_task"),
    Hostile("timeout is NaN", b'{"type": "shell", "command": "id", "timeout": NaN}', 422, "invalid_task"),
    Hostile("timeout is Infinity", b'{"type": "shell", "command": "id", "timeout": Infinity}', 422, "invalid_task"),
    Hostile("timeout has 5000 digits", b'{"type": "shell", "timeout": ' + b"9" * 5000 + b"}", 400, "bad_request"),
    Hostile("agent_id is a number", _task(agent_id=7), 422, "invalid_task"),
    Hostile("agent_id is empty", _task(agent_id=""), 422, "invalid_task"),
    Hostile("approval is a string", _task(approval="yes"), 422, "invalid_task"),
    Hostile("body is a list", b"[1, 2]", 422, "invalid_task"),
    Hostile("body is a string", b'"rm -rf /"', 422, "invalid_task"),
    Hostile("body is null", b"null", 422, "invalid_task"),
    Hostile("body is empty", b"", 422, "invalid_task"),
    Hostile("body is cut short", b'{"type": "shell", "comm', 422, "invalid_task"),
    Hostile("unknown task type", _json({"type": "telnet", "command": "x"}), 422, "invalid_task"),
    Hostile("unknown agent", _task(agent_id="agent-nowhere"), 404, "unknown_agent"),
    Hostile("no type", _json({"command": "id"}), 422, "invalid_task"),
    Hostile("text/plain body", _task(), 422, "invalid_task", content_type="text/plain"),
    Hostile(
        "form body", b"type=shell&command=id", 422, "invalid_task", content_type="application/x-www-form-urlencoded"
    ),
    # -- unknown fields ---------------------------------------------------------------------------
    Hostile("unknown top-level field", _task(colour="red"), 422, "invalid_task"),
    Hostile(
        "unknown approval field",
        _task(approval={"reason": "x", "approved_by": "root", "level": 9}),
        422,
        "invalid_task",
    ),
    Hostile(
        "unknown api param",
        _json({"type": "api", "params": {"url": "http://127.0.0.1:9/", "proxy": "x"}}),
        200,
        "invalid_task",
        "failed",
    ),
    # -- huge bodies ------------------------------------------------------------------------------
    Hostile("2 MB command", _task(command="x" * 2_000_000), 413, "payload_too_large"),
    Hostile("200 kB command", _task(command="echo " + "x" * 200_000), 422, "invalid_task"),
    Hostile("100k params keys", _task(params={f"k{n}": n for n in range(60_000)}), 200, None, "succeeded"),
    # -- deep nesting -----------------------------------------------------------------------------
    Hostile(
        "params nested 40 deep",
        f'{{"type": "shell", "command": "id", "params": {_nested(40)}}}'.encode(),
        422,
        "invalid_task",
    ),
    Hostile(
        "params nested 900 deep",
        f'{{"type": "shell", "command": "id", "params": {_nested(900)}}}'.encode(),
        422,
        "invalid_task",
    ),
    Hostile(
        "lists nested 900 deep",
        b'{"type": "shell", "command": "id", "params": {"a": ' + b"[" * 900 + b"]" * 900 + b"}}",
        422,
        "invalid_task",
    ),
    Hostile(
        "params nested 100000 deep", f'{{"type": "shell", "params": {_nested(100_000)}}}'.encode(), 400, "bad_request"
    ),
    # -- encodings --------------------------------------------------------------------------------
    Hostile("latin-1 body", '{"type": "shell", "command": "echo café"}'.encode("latin-1"), 400, "bad_request"),
    Hostile("binary body", b"\xff\xfe\x00\x01garbage", 400, "bad_request"),
    Hostile("lone surrogate in command", b'{"type": "shell", "command": "echo \\ud800"}', 422, "invalid_task"),
    Hostile(
        "lone surrogate in a param",
        b'{"type": "shell", "command": "id", "params": {"x": "\\udfff"}}',
        422,
        "invalid_task",
    ),
    Hostile(
        "lone surrogate in a param name",
        b'{"type": "shell", "command": "id", "params": {"\\ud800": 1}}',
        422,
        "invalid_task",
    ),
    # -- numbers JSON has not: Python's json reads them, nothing downstream could carry them ------
    Hostile("NaN in a param", b'{"type": "shell", "command": "id", "params": {"x": NaN}}', 422, "invalid_task"),
    Hostile(
        "Infinity in a param", b'{"type": "shell", "command": "id", "params": {"x": [-Infinity]}}', 422, "invalid_task"
    ),
    Hostile("Infinity as the timeout", b'{"type": "shell", "command": "id", "timeout": Infinity}', 422, "invalid_task"),
    # -- NUL bytes --------------------------------------------------------------------------------
    Hostile("NUL in command", _task(command="echo a\x00b"), 422, "invalid_task"),
    Hostile("NUL in SQL", _json({"type": "postgres", "command": "SELECT 1\x00; DROP TABLE t"}), 422, "invalid_task"),
    Hostile("NUL in agent_id", _task(agent_id="agent-local-001\x00"), 404, "unknown_agent"),
    Hostile(
        "NUL in connection name",
        _json({"type": "postgres", "command": "SELECT 1", "params": {"connection": "a\x00"}}),
        200,
        "unknown_connection",
        "failed",
    ),
    Hostile(
        "CRLF in an HTTP header",
        _json({"type": "api", "params": {"url": "http://127.0.0.1:9/", "headers": {"x": "a\r\nHost: evil"}}}),
        200,
        "invalid_task",
        "failed",
    ),
    Hostile(
        "NUL in an HTTP header",
        _json({"type": "api", "params": {"url": "http://127.0.0.1:9/", "headers": {"x": "a\x00"}}}),
        200,
        "invalid_task",
        "failed",
    ),
    Hostile(
        "NUL in a URL",
        _json({"type": "api", "params": {"url": "http://127.0.0.1:9/\x00"}}),
        200,
        "invalid_task",
        "failed",
    ),
    Hostile("unbalanced Redis quote", _json({"type": "redis", "command": 'GET "a'}), 200, "invalid_task", "failed"),
    # -- paths and queries ------------------------------------------------------------------------
    Hostile("task id with a NUL", b"", 422, "invalid_request", path="/api/v1/tasks/task-%00"),
    Hostile("task id of 500 characters", b"", 422, "invalid_request", path="/api/v1/tasks/" + "a" * 500),
    Hostile("task id climbing out", b"", 404, None, path="/api/v1/tasks/..%2f..%2fetc%2fpasswd"),
    Hostile("history since garbage", b"", 422, "invalid_request", path="/api/v1/tasks?since=yesterday"),
    Hostile("history limit huge", b"", 422, "invalid_request", path="/api/v1/tasks?limit=" + "9" * 30),
    Hostile("history status unknown", b"", 422, "invalid_request", path="/api/v1/tasks?status=great"),
    Hostile(
        "history injection", b"", 200, None, path="/api/v1/tasks?agent_id=%27%20OR%201%3D1%3B%20DROP%20TABLE%20tasks"
    ),
]


def _alert(**fields: Any) -> dict[str, Any]:
    payload = json.loads(SAMPLE_ALERT.read_text())
    payload.update(fields)
    return payload


def _alert_with(**alert_fields: Any) -> bytes:
    payload = _alert()
    payload["alerts"][0].update(alert_fields)
    return _json(payload)


def hostile_alerts() -> list[Hostile]:
    """Alert payloads (read at call time: the sample lives in the shared spec folder)."""
    resolved = _alert(status="resolved")
    for alert in resolved["alerts"]:
        alert["status"] = "resolved"
    cases = [
        ("version is a number", _json(_alert(version=4)), 422),
        ("alerts is a string", _json(_alert(alerts="x")), 422),
        ("no alerts", _json(_alert(alerts=[])), 422),
        ("labels is a list", _json(_alert(commonLabels=["a"])), 422),
        ("a label is a number", _json(_alert(commonLabels={"a": 1})), 422),
        ("labels nested", _json(_alert(commonLabels=json.loads(_nested(50)))), 422),
        ("startsAt is a word", _alert_with(startsAt="yesterday"), 422),
        ("startsAt in year 0", _alert_with(startsAt="0000-01-01T00:00:00Z"), 422),
        ("status unknown", _json(_alert(status="burning")), 422),
        ("groupKey of 20 kB", _json(_alert(groupKey="x" * 20_000)), 422),
        ("a lone surrogate in a label", _json(_alert()).replace(b'"alertname": "', b'"alertname": "\\udc00'), 422),
        ("a NUL in a label", _json(_alert()).replace(b'"alertname": "', b'"alertname": "\\u0000'), 422),
        ("truncatedAlerts is NaN", _json(_alert()).replace(b'"truncatedAlerts": 0', b'"truncatedAlerts": NaN'), 422),
        ("body is null", b"null", 422),
        ("body is a list", b"[]", 422),
        ("body is empty", b"", 422),
        ("body is cut short", b'{"version": "4", ', 422),
        ("binary body", b"\xff\xfe garbage", 422),
        ("latin-1 body", '{"version": "4", "receiver": "café"}'.encode("latin-1"), 400),
        ("nested 100000 deep", b'{"version": "4", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
        ("2 MB body", _json(_alert(receiver="x" * 2_000_000)), 413),
    ]
    hostile = [Hostile(name, body, status, None, path="/api/v1/alerts") for name, body, status in cases]
    # Unknown fields are ignored on purpose (Alertmanager adds fields between versions); a resolved
    # group starts nothing, so this one is answered without starting a cycle.
    unknown = _json({**resolved, "newField": {"deep": json.loads(_nested(30))}, "x-vendor": [1, 2]})
    hostile.append(Hostile("unknown fields (ignored)", unknown, 202, None, path="/api/v1/alerts"))
    return hostile


#: WebSocket messages: each must be answered (an ``error`` or ``pong``), never drop the connection.
HOSTILE_WS_MESSAGES: list[tuple[str, bytes | str]] = [
    ("binary frame", b"\x00\xff\xfe"),
    ("not JSON", "hello"),
    ("JSON nested 100000 deep", "[" * 100_000 + "]" * 100_000),
    ("a number with 5000 digits", '{"type": ' + "9" * 5000 + "}"),
    ("NaN type", '{"type": NaN}'),
    ("data is a list", '{"type": "task.subscribe_logs", "data": []}'),
    ("task id is a list", '{"type": "task.subscribe_logs", "data": {"task_id": ["x"]}}'),
    ("task id with a lone surrogate", '{"type": "task.subscribe_logs", "data": {"task_id": "\\ud800"}}'),
    ("task id of 100 kB", '{"type": "task.subscribe_logs", "data": {"task_id": "' + "x" * 100_000 + '"}}'),
    ("unknown type", '{"type": "task.delete", "data": {"task_id": "x"}}'),
    ("a 1 MB message", '{"type": "ping", "pad": "' + "x" * 1_000_000 + '"}'),
]

#: Shell tasks with hostile output: each must succeed, come back as valid JSON, and say what it did.
HOSTILE_OUTPUT: list[tuple[str, str, str | None]] = [
    # (name, command, a note the result must carry)
    ("not UTF-8", r"printf 'caf\351 \377\376'", "not valid UTF-8"),
    ("NUL bytes", r"printf 'a\000b\000c'", None),
    ("binary", "head -c 65536 /dev/urandom", "not valid UTF-8"),
    ("a lone surrogate's UTF-8-ish bytes", r"printf '\355\240\200'", "not valid UTF-8"),
    ("escape sequences", r"printf '\033[2J\033]0;title\007\r\b'", None),
    ("a multi-byte character cut by the limit", "yes 'é' | head -c 3000000", None),
]


# -- command-policy bypass attempts --------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """A task that tries to get around the policy. ``{m}`` in it is a file it would create if it ran.

    ``denied``: refused whatever the approval (a default rule); otherwise it is held for an approval
    (an operator cannot run it, an approver could, seeing what it is).
    """

    category: str
    type: str
    body: str | dict[str, Any]
    denied: bool


D, A = True, False  # denied whatever the approval / held for an approval

_NEW_ATTEMPTS: list[tuple[str, str, str | dict[str, Any], bool]] = [
    # -- quoting and escapes --------------------------------------------------------------------
    ("quoting", "shell", "'r'\"m\" -rf /", D),
    ("quoting", "shell", "\\r\\m -rf /", D),
    ("quoting", "shell", 'rm -rf "/"', D),
    ("quoting", "shell", "rm -rf '/'", D),
    ("quoting", "shell", "rm -r -f /", D),
    ("quoting", "shell", "rm --recursive --force /", D),
    ("quoting", "shell", "rm -rf /../", D),
    ("quoting", "shell", "/usr/bin/../bin/rm -rf /", D),
    ("quoting", "shell", "cat /etc/sh''adow", D),
    ("quoting", "shell", "cat /etc/shado?", D),
    # -- encodings ------------------------------------------------------------------------------
    ("encoding", "shell", "echo cm0gLXJmIC8K | base64 -d | sh", D),
    ("encoding", "shell", "echo 746f756368 | xxd -r -p | bash", D),
    ("encoding", "shell", "printf '\\x74\\x6f\\x75\\x63\\x68 {m}' | sh", D),
    ("encoding", "shell", "$'\\164\\157\\165\\143\\150' {m}", D),
    ("encoding", "shell", "sh <(echo touch {m})", A),
    ("encoding", "shell", "bash < <(echo touch {m})", D),
    ("encoding", "shell", ". <(echo touch {m})", A),
    ("encoding", "shell", "source /dev/stdin <<< 'touch {m}'", A),
    ("encoding", "shell", "curl http://①⑥⑨.②⑤④.①⑥⑨.②⑤④/", D),
    ("encoding", "shell", "curl http://１６９.２５４.１６９.２５４/", D),
    ("encoding", "shell", "curl http://0x0a9.0xfe.0xa9.0xfe/", D),
    ("encoding", "shell", "curl http://[0:0:0:0:0:ffff:a9fe:a9fe]/", D),
    # -- $IFS and run-time names ------------------------------------------------------------------
    ("$IFS", "shell", "rm${IFS%?}-rf${IFS%?}/", D),
    ("$IFS", "shell", "r${x}m -rf /", D),
    ("$IFS", "shell", "r$@m -rf /", D),
    ("$IFS", "shell", "${PATH:0:1}bin/rm -rf /", D),
    ("$IFS", "shell", "touch${IFS}{m}", D),
    ("$IFS", "shell", "$0 -c 'touch {m}'", D),
    ("$IFS", "shell", "${SHELL} -c 'touch {m}'", D),
    ("$IFS", "shell", 'set -- touch {m}; "$@"', D),
    # -- $(...) and backticks -------------------------------------------------------------------
    ("$(…)", "shell", "$(echo touch) {m}", D),
    ("$(…)", "shell", '"$(echo rm)" -rf /', D),
    ("$(…)", "shell", "echo $(( $(touch {m}) ))", D),
    ("$(…)", "shell", "[[ -n $(rm -rf /) ]]", D),
    ("$(…)", "shell", "x=$(touch {m})", A),
    ("backticks", "shell", "`echo touch` {m}", D),
    ("backticks", "shell", "echo `touch {m}`", A),
    ("backticks", "shell", "ls `rm -rf /`", D),
    # -- chaining -------------------------------------------------------------------------------
    ("chaining", "shell", "ls; touch {m}", A),
    ("chaining", "shell", "ls && rm -rf /", D),
    ("chaining", "shell", "false || touch {m}", A),
    ("chaining", "shell", "ls\ntouch {m}", A),
    ("chaining", "shell", "ls |& rm -rf /", D),
    ("chaining", "shell", "rm -rf / &", D),
    ("chaining", "shell", "{ rm -rf /; }", D),
    ("chaining", "shell", "case x in x) rm -rf /;; esac", D),
    ("chaining", "shell", "for i in 1; do touch {m}; done", A),
    ("chaining", "shell", "while false; do :; done; touch {m}", A),
    ("chaining", "shell", "coproc touch {m}", D),
    ("chaining", "shell", "! touch {m}", A),
    # -- env tricks -----------------------------------------------------------------------------
    ("env", "shell", "env 'BASH_FUNC_ls%%=() { touch {m}; }' bash -c ls", D),
    ("env", "shell", "export 'BASH_FUNC_ls%%=() { touch {m}; }'; bash -c ls", D),
    ("env", "shell", "GIT_EXTERNAL_DIFF='touch {m}' git diff", D),
    ("env", "shell", "GIT_DIR=/tmp/evil/.git git status", D),
    ("env", "shell", "HOME=/tmp/evil git status", D),
    ("env", "shell", "XDG_CONFIG_HOME=/tmp/evil git log", D),
    ("env", "shell", "CURL_HOME=/tmp/evil curl http://127.0.0.1:9/", D),
    ("env", "shell", "LD_AUDIT=/tmp/evil.so ls", D),
    ("env", "shell", "LD_DEBUG=all LD_DEBUG_OUTPUT={m} ls", D),
    ("env", "shell", "BASH_ENV=/tmp/evil bash -c true", D),
    ("env", "shell", "PS4='$(touch {m})' bash -xc true", D),
    ("env", "shell", "SHELLOPTS=xtrace PS4='$(touch {m})' bash -c true", D),
    ("env", "shell", "PROMPT_COMMAND='touch {m}' bash -i", D),
    ("env", "shell", "env PATH=/tmp ls", D),
    ("env", "shell", "declare -x BASH_ENV=/tmp/evil", D),
    ("env", "shell", "typeset -x LD_PRELOAD=/tmp/evil.so", D),
    ("env", "shell", "PYTHONWARNINGS=ignore::evil.X python3 -m json.tool /dev/null", D),
    ("env", "shell", "alias ls='touch {m}'; ls", D),
    ("env", "shell", "hash -p /usr/bin/touch ls; ls {m}", A),
    ("env", "shell", "enable -f /tmp/evil.so evil", A),
    ("env", "shell", "trap 'touch {m}' DEBUG; ls", A),
    # -- secrets on the host ---------------------------------------------------------------------
    ("credentials", "shell", "f=/etc/shadow; cat $f", D),
    ("credentials", "shell", "dd if=/etc/shadow", D),
    ("credentials", "shell", "sed -n p /etc/shadow", D),
    ("credentials", "shell", "awk 1 /etc/shadow", D),
    ("credentials", "shell", "gzip -dc /etc/shadow", D),
    ("credentials", "shell", "find /etc -name shadow -exec cat {} \\;", D),
    ("credentials", "shell", "find /etc -name shadow | xargs cat", D),
    ("credentials", "shell", "grep -r root /etc", D),
    ("credentials", "shell", "ps auxe", D),
    ("credentials", "shell", "ps eww -p 1", D),
    ("credentials", "shell", "cat /proc/1/mem", D),
    ("credentials", "shell", "strings /proc/$PPID/environ", D),
    ("credentials", "shell", "cat /run/secrets/db_password", D),
    ("credentials", "shell", "cat /var/run/secrets/kubernetes.io/serviceaccount/token", D),
    ("credentials", "shell", "cat /etc/mysql/debian.cnf", D),
    ("credentials", "shell", "cat /etc/shadow-", D),
    ("credentials", "shell", "cat ~/.psql_history", D),
    # -- SQL: stacked statements, comments, transactions -------------------------------------------
    ("sql stacked", "postgres", "SELECT 1; SET TRANSACTION READ WRITE; DELETE FROM ca_never", A),
    ("sql stacked", "postgres", "COMMIT; DROP TABLE ca_never", A),
    ("sql stacked", "postgres", "SELECT 1; DROP DATABASE test", D),
    ("sql stacked", "postgres", "TABLE pg_class; TRUNCATE ca_never", A),
    ("sql stacked", "mysql", "SELECT 1; DROP TABLE ca_never", A),
    ("sql stacked", "mysql", "SHOW PROCESSLIST; KILL QUERY 5", A),
    ("sql stacked", "mysql", "ANALYZE SELECT 1; DROP TABLE ca_never", A),
    ("sql comments", "postgres", "SELECT 1/**/;/**/DROP/**/DATABASE/**/test", D),
    ("sql comments", "postgres", "SELECT 1 -- \n; DROP DATABASE test", D),
    ("sql comments", "postgres", "/* /* */ SELECT 1; DROP TABLE ca_never; /* */ */", A),
    ("sql comments", "mysql", "SELECT 1 /*!40000 ; DROP TABLE ca_never */", D),
    ("sql comments", "mysql", "SELECT 1 /*M!100000 ; DROP TABLE ca_never */", D),
    ("sql comments", "mysql", "SELECT 1 #\n; DROP TABLE ca_never", D),
    ("sql read write", "postgres", "SET TRANSACTION READ WRITE", A),
    ("sql read write", "postgres", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", A),
    ("sql read write", "postgres", "START TRANSACTION READ WRITE", A),
    ("sql read write", "postgres", "BEGIN READ WRITE", A),
    ("sql read write", "postgres", "SELECT set_config('transaction_read_only', 'off', true)", A),
    ("sql read write", "postgres", "SELECT pg_catalog.set_config('default_transaction_read_only', 'off', false)", A),
    ("sql read write", "mysql", "SET SESSION TRANSACTION READ WRITE", A),
    ("sql read write", "mysql", "SET GLOBAL read_only = 0", A),
    ("sql", "postgres", "DO $$ BEGIN EXECUTE 'DROP TABLE ca_never'; END $$", A),
    ("sql", "postgres", "EXPLAIN ANALYZE DELETE FROM ca_never", A),
    ("sql", "postgres", "WITH d AS (DELETE FROM ca_never RETURNING *) SELECT * FROM d", A),
    ("sql", "postgres", "COPY ca_never FROM PROGRAM 'touch {m}'", D),
    ("sql", "postgres", "SELECT lo_import('/etc/passwd')", D),
    ("sql", "postgres", "SELECT pg_ls_dir('.')", D),
    ("sql", "mysql", "ANALYZE TABLE ca_never", A),
    ("sql", "mysql", "SELECT * FROM ca_never INTO DUMPFILE '{m}'", D),
    ("sql", "mysql", "INSTALL PLUGIN evil SONAME 'evil.so'", D),
    ("sql", "shell", "psql -c '\\! touch {m}'", A),
    ("sql", "shell", "psql -c '\\! rm -rf /'", D),
    ("sql", "shell", "mysql -e 'system rm -rf /'", D),
    # -- Redis ----------------------------------------------------------------------------------
    ("redis", "redis", "eval 'return 1' 0", D),
    ("redis", "redis", "EvAl \"redis.call('flushall')\" 0", D),
    ("redis", "redis", "EVALSHA 0123456789abcdef 0", D),
    ("redis", "redis", "EVAL_RO 'return 1' 0", D),
    ("redis", "redis", "FCALL evil 0", D),
    ("redis", "redis", "SCRIPT LOAD 'return 1'", D),
    ("redis", "redis", "FUNCTION LOAD 'evil'", D),
    ("redis", "redis", "CONFIG SET DIR /etc", D),
    ("redis", "redis", "config set dbfilename authorized_keys", D),
    ("redis", "redis", 'CONFIG SET "dir" /tmp', D),
    ("redis", "redis", "CONFIG SET maxmemory 1 dir /tmp", D),
    ("redis", "redis", "CONFIG SET logfile {m}", D),
    ("redis", "redis", "CONFIG SET requirepass owned", A),
    ("redis", "redis", "CONFIG REWRITE", A),
    ("redis", "redis", "module load /tmp/evil.so", D),
    ("redis", "redis", "MODULE LOADEX /tmp/evil.so", D),
    ("redis", "redis", "FLUSHALL ASYNC", D),
    ("redis", "redis", '"FLUSH""ALL"', D),
    ("redis", "redis", "DEBUG SLEEP 10", D),
    ("redis", "redis", "SLAVEOF 10.0.0.1 6379", D),
    ("redis", "redis", "MIGRATE 10.0.0.1 6379 k 0 1000", D),
    ("redis", "redis", "SHUTDOWN NOSAVE", D),
    ("redis", "redis", "CLIENT KILL TYPE normal", A),
    ("redis", "redis", "SWAPDB 0 1", A),
    ("redis", "shell", "redis-cli EVAL 'return 1' 0", D),
    ("redis", "shell", "redis-cli --eval /tmp/evil.lua", D),
    ("redis", "shell", "redis-cli -h 127.0.0.1 config set dir /tmp", D),
    # -- metadata endpoints -----------------------------------------------------------------------
    ("metadata", "shell", "cat < /dev/tcp/169.254.169.254/80", D),
    ("metadata", "shell", "exec 3<>/dev/tcp/169.254.169.254/80", D),
    ("metadata", "shell", "echo > /dev/udp/169.254.169.254/53", D),
    ("metadata", "shell", "curl -L http://127.0.0.1:9/redirect-to-metadata", A),
    ("metadata", "shell", "wget -qO- http://127.0.0.1:9/redirect-to-metadata", A),
    ("metadata", "shell", "curl http://METADATA.GOOGLE.INTERNAL/computeMetadata/v1/", D),
    ("metadata", "shell", "curl http://169.254.170.2/v2/credentials", D),
    ("metadata", "shell", "curl http://100.100.100.200/latest/meta-data/", D),
    ("metadata", "api", {"url": "http://[::ffff:a9fe:a9fe]/latest/meta-data/"}, D),
    ("metadata", "api", {"url": "http://0xa9.0xfe.0xa9.0xfe/"}, D),
    ("metadata", "api", {"url": "HTTP://169.254.169.254/"}, D),
    ("metadata", "api", {"url": "http://169.254.169.254./"}, D),
    ("metadata", "api", {"url": "http://foo@169.254.169.254/"}, D),
    ("metadata", "api", {"url": "http://169.254.169.254:80/", "follow_redirects": True}, D),
    ("metadata", "api", {"url": "http://instance-data/latest/"}, D),
    ("metadata", "api", {"url": "http://100.100.100.200/latest/meta-data/"}, D),
    ("metadata", "api", {"url": "gopher://127.0.0.1:6379/_FLUSHALL"}, D),
    ("metadata", "api", {"url": "dict://127.0.0.1:6379/"}, D),
    ("metadata", "api", {"url": "http://127.0.0.1:9/", "method": "PUT"}, A),
]


def bypass_attempts() -> list[Attempt]:
    """The policy tests' table (every one of its attempts, through the API this time) and this suite's."""
    from executors import TaskStatus
    from tests.policy_attempts import ATTEMPTS

    table = [Attempt("policy table", kind, body, status is TaskStatus.DENIED) for kind, body, status, _ in ATTEMPTS]
    return table + [Attempt(*attempt) for attempt in _NEW_ATTEMPTS]
