"""Database clients: psql, mysql/mariadb, clickhouse-client, redis-cli.

The SQL given to ``-c``/``-e``/``-q`` goes through ``executors._policy.sql`` and Redis commands
through ``executors._policy.redis``. The clients' own commands are not SQL: psql's
``\\!`` and mysql's ``system`` run a shell command (judged like any other, and ``write``), and their
other meta-commands (``\\o`` writes a file, ``\\i`` runs one, backticks run commands...) make
the task ``write`` unless they only describe (``\\dt``, ``\\l``...). SQL or commands fed on standard
input cannot be read: denied as code piped into an interpreter.
"""

from __future__ import annotations

import re
import shlex
from typing import ClassVar

from executors._policy.redis import analyze_redis
from executors._policy.shell._allowlists import RUNS_PROGRAM, WRITES_FILE
from executors._policy.shell._family import Command, Family, Judge, check_options, find_verb
from executors._policy.shell._options import table
from executors._policy.shell._tables import RULE_DYNAMIC, RULE_PIPE_TO_INTERPRETER, RULE_REDIS_SCRIPTING
from executors._policy.sql import analyze_sql

_RUNS_FILE = "runs an SQL file the policy cannot read"
_CONFIG = "reads a client configuration the policy cannot read"
PSQL = table(
    "-c= --command= -d= --dbname= -l --list -V --version -X --no-psqlrc -1 --single-transaction -? --help? -a "
    "--echo-all -b --echo-errors -e --echo-queries -E --echo-hidden -n --no-readline -q --quiet -A --no-align --csv "
    "-F= --field-separator= -H --html -R= --record-separator= -t --tuples-only -T= --table-attr= -x --expanded -z "
    "--field-separator-zero -0 --record-separator-zero -h= --host= -p= --port= -U= --username= -w --no-password -W "
    "--password -P= --pset= -S --single-line",
    refused={"-f": _RUNS_FILE, "--file": _RUNS_FILE, "-o": "writes its output to a file or a pipe",
             "--output": "writes its output to a file or a pipe", "-L": WRITES_FILE, "--log-file": WRITES_FILE,
             "-v": "sets psql variables (prompts, ...)", "--set": "sets psql variables (prompts, ...)",
             "--variable": "sets psql variables (prompts, ...)"},
)  # fmt: skip
#: psql meta-commands that only describe (``\\d`` and friends, ``\\l``, ``\\conninfo``...).
PSQL_DESCRIBE = re.compile(r"\\(d[A-Za-z]*\+?|l\+?|z|conninfo|x|timing|\?|h|help|sf\+?|sv\+?|encoding|copyright)\b")
MYSQL = table(
    "-e= --execute= -h= --host= -P= --port= -u= --user= -p? --password? -D= --database= -N --skip-column-names -B "
    "--batch -s --silent -t --table -r --raw -v --verbose -E --vertical -H --html -X --xml --connect-timeout= "
    "--protocol= -S= --socket= --ssl --ssl-mode= --ssl-ca= --ssl-cert= --ssl-key= --ssl-verify-server-cert "
    "--skip-ssl --default-character-set= --column-names -A --no-auto-rehash --compress -n --unbuffered -f --force "
    "--show-warnings --binary-as-hex --skip-pager --no-defaults -V --version -? --help",
    refused={"--init-command": "runs SQL at connection", "--pager": RUNS_PROGRAM, "--tee": WRITES_FILE,
             "--defaults-file": _CONFIG, "--defaults-extra-file": _CONFIG, "--defaults-group-suffix": _CONFIG,
             "--plugin-dir": "loads plugins", "--default-auth": "loads plugins",
             "--local-infile": "lets the server read local files",
             "--load-data-local-dir": "lets the server read local files", "--histfile": WRITES_FILE},
)  # fmt: skip
#: mysql client commands that run a program, a file, write a file or start an editor.
MYSQL_CLIENT_COMMANDS = re.compile(r"(?im)(?:^|;)\s*(system|source|tee|pager|edit|charset|connect)\b|\\[!.TPeCr]")
CLICKHOUSE = table(
    "-q= --query= -h= --host= --port= -u= --user= --password= -d= --database= -f= --format= -t --time --progress? -m "
    "--multiline -n --multiquery --secure -s --silent -V --version --help",
    refused={"--queries-file": _RUNS_FILE, "-C": _CONFIG, "--config-file": _CONFIG, "--history_file": WRITES_FILE},
)  # fmt: skip
_CLICKHOUSE_PARAMETER = re.compile(r"--param_\w+=.*")
_CLIENT_FILES = re.compile(r"(?i)\bINTO\s+OUTFILE\b|\bFROM\s+INFILE\b")
REDIS_CLI = table(
    "-h= -p= -s= -a= --user= --pass= --askpass -u= -r= -i= -n= -2 -3 -x -X= -d= -D= -c -e --tls --sni= --cacert= "
    "--cacertdir= --insecure --cert= --key= --tls-ciphers= --tls-ciphersuites= --raw --no-raw --quoted-input --csv "
    "--json --quoted-json --show-pushes= --stat --latency --latency-history --latency-dist --replica --bigkeys "
    "--memkeys --memkeys-samples= --hotkeys --scan --pattern= --quoted-pattern= --count= --intrinsic-latency= "
    "--no-auth-warning --verbose --help --version -v",
    permute=False,
    refused={"--lru-test": "writes keys", "--cluster": "manages a cluster", "--pipe-timeout": "writes in bulk"},
)  # fmt: skip
#: redis-cli modes that run scripts or write in bulk, or write the server's data to a local file.
REDIS_DENIED_MODES = frozenset({"--eval", "--ldb", "--ldb-sync-mode", "--functions-rdb", "--rdb", "--pipe"})


class DatabaseClients(Family):
    """The validator of psql, mysql, clickhouse-client and redis-cli."""

    names: ClassVar[frozenset[str]] = frozenset({"psql", "mysql", "mariadb", "clickhouse-client", "redis-cli"})

    def validate(self, command: Command, judge: Judge) -> None:
        if command.name == "psql":
            self._psql(command, judge)
        elif command.name in ("mysql", "mariadb"):
            self._sql_client(command, judge, MYSQL, ("-e", "--execute"), "mysql")
        elif command.name == "clickhouse-client":
            args = [w for w in command.args if not _CLICKHOUSE_PARAMETER.fullmatch(w.text)]
            self._sql_client(Command(command.name, args, command.depth, command.reads_stdin), judge, CLICKHOUSE,
                             ("-q", "--query"), "clickhouse")  # fmt: skip
        else:
            self._redis_cli(command, judge)

    def _psql(self, command: Command, judge: Judge) -> None:
        parsed = check_options(command, judge, PSQL)
        if parsed is None:
            return
        texts = parsed.values("-c", "--command")
        if not texts:
            if not parsed.has("-l", "--list", "-V", "--version", "-?", "--help"):
                _no_command(command, judge, "-c")
            return
        for text in texts:
            if text.value is None:
                judge.deny(RULE_DYNAMIC, "psql runs SQL built at run time")
            elif text.value.lstrip().startswith("\\"):
                _psql_meta(text.value, command, judge)
            else:
                # psql reads meta-commands only at the start of a -c text; the rest goes to the server.
                # A "\!" later is still judged, should a psql version read it.
                for escape in re.finditer(r"\\!(?P<command>[^\n]*)", text.value):
                    judge.nested(escape["command"], command.depth)
                judge.assessment.absorb(analyze_sql(text.value, "postgres"))

    def _sql_client(self, command: Command, judge: Judge, options, flags: tuple[str, str], dialect) -> None:
        parsed = check_options(command, judge, options)
        if parsed is None:
            return
        texts = parsed.values(*flags)
        if not texts:
            if not parsed.has("-V", "--version", "--help", "-?"):
                _no_command(command, judge, flags[0])
            return
        for text in texts:
            sql = text.value
            if sql is None:
                judge.deny(RULE_DYNAMIC, f"{command.name} runs SQL built at run time")
                continue
            if dialect == "mysql":
                # mysql runs "\!" anywhere outside quotes, and "system" at the start of a line.
                for match in re.finditer(r"(?im)\\!(?P<command>[^\n]*)|(?:^|;)\s*system\s(?P<system>[^\n]*)", sql):
                    judge.nested(match["command"] or match["system"] or "", command.depth)
                if MYSQL_CLIENT_COMMANDS.search(sql):
                    judge.write(f"{command.name} client commands (system, source, tee, pager, \\!...) in the SQL")
            elif _CLIENT_FILES.search(sql):
                judge.write("clickhouse-client writes or reads a local file (INTO OUTFILE, FROM INFILE)")
            judge.assessment.absorb(analyze_sql(sql, dialect))

    def _redis_cli(self, command: Command, judge: Judge) -> None:
        for word in command.args:
            if not word.text.startswith("-"):
                break
            if word.text in REDIS_DENIED_MODES:
                judge.deny(RULE_REDIS_SCRIPTING, f"redis-cli {word.text} runs scripts or bulk writes")
                return
        position, _ = find_verb(command.args, REDIS_CLI.valued)
        if any(w.value is None for w in command.args[position:]):
            judge.deny(RULE_DYNAMIC, "redis-cli command built at run time")
            return
        parsed = check_options(command, judge, REDIS_CLI)
        if parsed is None:
            return
        words = parsed.operands
        modes = ("--stat", "--latency", "--latency-history", "--latency-dist", "--bigkeys", "--memkeys",
                 "--hotkeys", "--scan", "--intrinsic-latency", "--replica", "--help", "--version", "-v")  # fmt: skip
        if not words:
            if not parsed.has(*modes):
                _no_command(command, judge, "a command")
            return
        if any(w.value is None for w in words):
            judge.deny(RULE_DYNAMIC, "redis-cli command built at run time")
            return
        judge.assessment.absorb(
            analyze_redis(shlex.join(str(w.value) for w in words), extra_denied=judge.rules.redis_denied)
        )


def _no_command(command: Command, judge: Judge, flag: str) -> None:
    if command.reads_stdin:
        judge.deny(RULE_PIPE_TO_INTERPRETER, f"{command.name} would run what its input holds; use {flag}")
    else:
        judge.write(f"an interactive {command.name} session")


def _psql_meta(text: str, command: Command, judge: Judge) -> None:
    """A -c that is psql meta-commands (``\\dt``, ``\\x \\l``): only describing ones are ``read``."""
    for escape in re.finditer(r"\\!(?P<command>[^\n]*)", text):
        judge.nested(escape["command"], command.depth)
    for quoted in re.finditer(r"`([^`]*)`", text):
        judge.nested(quoted.group(1), command.depth)  # psql runs backquoted text in a shell
    for meta in re.split(r"(?=\\)", text.strip()):
        meta = meta.strip()
        if meta and not (PSQL_DESCRIBE.match(meta) and "`" not in meta):
            judge.write(f"psql meta-command {meta.split()[0]} is not one that only describes")
