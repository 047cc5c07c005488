"""Risk of SQL text for PostgreSQL, MySQL/MariaDB and ClickHouse.

The text is split into statements (quotes, comments and dollar quotes respected, by sqlparse) and
each statement is classified from its leading keywords and the functions it calls. Anything not
known to be read-only is at least ``write``: an unknown statement needs an approval, it is never
assumed harmless. Read tasks also run inside read-only transactions (``readonly=1`` on
ClickHouse), so the server enforces what this analysis concludes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from sqlparse import lexer
from sqlparse import tokens as T
from sqlparse.engine import FilterStack

from executors._policy._assessment import Assessment
from executors._spec import RiskClass

Dialect = Literal["postgres", "mysql", "clickhouse"]

READ_STATEMENTS = frozenset({"SELECT", "SHOW", "DESCRIBE", "DESC", "VALUES", "TABLE", "HELP", "USE", "EXISTS"})
TRANSACTION_CONTROL = frozenset({"BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END", "ABORT", "XA"})
DESTRUCTIVE_STATEMENTS = frozenset({"DROP", "TRUNCATE", "PURGE"})
DATA_MODIFYING_KEYWORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT"})

# Functions that change server state although they can be called from a SELECT.
WRITE_FUNCTIONS = frozenset(
    {
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "set_config",
        "pg_switch_wal",
        "pg_promote",
        "pg_create_restore_point",
        "pg_advisory_lock",
        "pg_advisory_xact_lock",
        "nextval",
        "setval",
        "pg_drop_replication_slot",
        "pg_create_physical_replication_slot",
        "pg_create_logical_replication_slot",
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "get_lock",
        "release_lock",
        "release_all_locks",
        "url",
        "remote",
        "remoteSecure",
        "s3",
        "hdfs",
        "mysql",
        "postgresql",
        "jdbc",
        "odbc",
    }
)
# Functions that read or write the server's files or run programs: denied by default.
FILE_FUNCTIONS = frozenset(
    {
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "pg_file_write",
        "lo_import",
        "lo_export",
        "lo_from_bytea",
        "lo_put",
        "load_file",
        "sys_exec",
        "sys_eval",
        "file",
        "executable",
    }
)
# ClickHouse table functions that read the server's files, or reach other hosts and services.
CLICKHOUSE_FILE_FUNCTIONS = frozenset({"sqlite", "filecluster"})
CLICKHOUSE_REMOTE_FUNCTIONS = frozenset(
    {
        "s3cluster",
        "urlcluster",
        "hdfscluster",
        "azureblobstorage",
        "azureblobstoragecluster",
        "gcs",
        "cosn",
        "oss",
        "mongodb",
        "redis",
        "iceberg",
        "icebergs3",
        "icebergazure",
        "icebergcluster",
        "deltalake",
        "deltalakecluster",
        "hudi",
        "hudicluster",
        "hive",
        "arrowflight",
        "ytsaurus",
        "mysqlcluster",
    }
)
# ClickHouse statements beyond the common ones: (leading words) -> (risk, reason).
CLICKHOUSE_READ_STATEMENTS = frozenset({"CHECK", "WATCH"})
CLICKHOUSE_STATEMENTS: tuple[tuple[tuple[str, ...], RiskClass, str], ...] = (
    (("SYSTEM", "DROP", "REPLICA"), RiskClass.DESTRUCTIVE, "removes a replica's metadata from the cluster"),
    (("SYSTEM", "DROP", "DATABASE", "REPLICA"), RiskClass.DESTRUCTIVE, "removes a replica's metadata from the cluster"),
    (("SYSTEM",), RiskClass.WRITE, "changes server state (caches, merges, replication, logs)"),
    (("KILL",), RiskClass.WRITE, "cancels running queries or mutations"),
    (("OPTIMIZE",), RiskClass.WRITE, "rewrites table parts (forces merges)"),
    (("DETACH",), RiskClass.WRITE, "takes a table or partition offline"),
    (("ATTACH",), RiskClass.WRITE, "brings a table or partition online"),
)
UNTRUSTED_LANGUAGES = re.compile(r"\bLANGUAGE\s+'?(plpython\w*u|plperlu|pltclu|c|internal)\b", re.I)

RULE_DROP_DATABASE = "sql.drop-database"
RULE_EXECUTABLE_COMMENT = "sql.executable-comment"
RULE_FILE_ACCESS = "sql.file-access"
RULE_PROGRAM = "sql.program-exec"
RULE_SHUTDOWN = "sql.shutdown"
RULE_CODE_LOAD = "sql.code-load"
RULE_EMPTY = "sql.empty"
RULE_AMBIGUOUS = "sql.ambiguous-lexing"


Token = tuple[object, str]


@lru_cache(maxsize=1024)
def _parse(sql: str) -> tuple[tuple[str, tuple[Token, ...]], ...]:
    """``(text, meaningful tokens)`` per statement; lexing only, sqlparse's grouping is not needed."""
    statements = []
    for statement in FilterStack().run(sql):
        tokens = tuple(
            (token.ttype, token.value)
            for token in statement.flatten()
            if not token.is_whitespace and token.ttype not in T.Comment and token.value != ";"
        )
        if tokens:
            statements.append((str(statement).strip().rstrip(";").strip(), tokens))
    return tuple(statements)


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql`` without trailing ``;``, empty ones dropped."""
    return [text for text, _ in _parse(sql)]


def analyze_sql(sql: str, dialect: Dialect) -> Assessment:
    """Classify every statement of ``sql``; the task's risk is the riskiest statement's."""
    assessment = Assessment()
    ambiguity = _ambiguity(sql, dialect)
    if ambiguity:
        assessment.deny(RULE_AMBIGUOUS, ambiguity)
    if dialect == "mysql" and re.search(r"/\*[M]?!", sql):
        assessment.deny(
            RULE_EXECUTABLE_COMMENT,
            "MySQL executable comments (/*! ... */) run their contents; write the statement plainly",
        )
    statements = _parse(sql)
    if not statements:
        assessment.deny(RULE_EMPTY, "no SQL statement to run")
        return assessment
    for _, tokens in statements:
        _classify(tokens, dialect, assessment)
    return assessment


@lru_cache(maxsize=1024)
def _ambiguity(sql: str, dialect: Dialect) -> str | None:
    """Why the server may split ``sql`` into strings and comments differently from the analyser.

    sqlparse reads a backslash before a quote as an escape and only ``# ``/``--`` as comments; a
    PostgreSQL standard string ends at the first lone quote, and MySQL starts a comment at any
    ``#`` but not at ``--`` glued to the next character. Text the two read differently could hide
    a call (``'\\' , pg_read_file(...) --'``) from the analysis, so it is refused.
    """
    previous = ""
    for ttype, value in lexer.tokenize(sql):
        if dialect == "postgres":
            standard = ttype in T.Literal.String.Single and previous.upper() != "E"
            if standard and not re.fullmatch(r"'(?:''|[^'])*'", value):
                return "a backslash before a quote in a standard string: PostgreSQL ends the string there; use E'...'"
            if ttype in T.Literal.String.Symbol and not re.fullmatch(r'"(?:""|[^"])*"', value):
                return "a backslash before a double quote in an identifier: PostgreSQL ends the identifier there"
        if dialect == "mysql":
            if ttype is T.Operator and value == "#":
                return "'#' starts a comment in MySQL; put a space after it or remove it"
            if ttype in T.Comment.Single and value.startswith("--") and len(value) > 2 and not value[2].isspace():
                return "'--' without a space after it is not a comment in MySQL; write '-- ' or remove it"
        previous = value if ttype not in T.Whitespace else ""
    return None


def _classify(tokens: Sequence[Token], dialect: Dialect, assessment: Assessment) -> None:
    words = [value.upper() for _, value in tokens]
    normalized = " ".join(value for _, value in tokens)
    assessment.subjects.append(normalized)
    while words and words[0] == "(":
        words = words[1:]
    if not words:
        return
    head = words[0]
    label = " ".join(value for _, value in tokens[:3])

    _check_functions(tokens, assessment, dialect)

    if head == "EXPLAIN":
        if "ANALYZE" in words[1:3] or "ANALYSE" in words[1:3]:
            inner = [w for w in words[1:] if w not in ("ANALYZE", "ANALYSE", "VERBOSE")]
            _classify_words(inner, label, dialect, assessment, normalized)
        return
    if head == "ANALYZE" and dialect == "mysql" and len(words) > 1 and words[1] in READ_STATEMENTS - {"TABLE"}:
        # MariaDB's ANALYZE <select> runs the query and reports statistics; ANALYZE TABLE rewrites
        # the table's key statistics (TABLE reads only as PostgreSQL's ``TABLE t``).
        _classify_words(words[1:], label, dialect, assessment, normalized)
        return
    _classify_words(words, label, dialect, assessment, normalized)


def _classify_words(words: Sequence[str], label: str, dialect: Dialect, assessment: Assessment, text: str) -> None:
    if not words:
        return
    head = words[0]
    upper_text = text.upper()
    if head == "WITH":
        modifying = DATA_MODIFYING_KEYWORDS.intersection(words)
        if modifying:
            assessment.escalate(RiskClass.WRITE, f"{label}: data-modifying CTE ({', '.join(sorted(modifying))})")
        _check_select(words, label, assessment)
        return
    if head in READ_STATEMENTS:
        if head in ("SELECT", "TABLE", "VALUES"):
            _check_select(words, label, assessment)
        return
    if head == "COPY":
        _check_copy(words, label, assessment)
        return
    if head in TRANSACTION_CONTROL or head == "SET":
        assessment.escalate(
            RiskClass.WRITE,
            f"{label}: session and transaction control is managed by the executor",
        )
        return
    if head == "SHUTDOWN" or (head == "SYSTEM" and len(words) > 1 and words[1] in ("SHUTDOWN", "KILL")):
        assessment.deny(RULE_SHUTDOWN, f"{label}: shuts the database server down")
        return
    if dialect == "clickhouse":
        if head in CLICKHOUSE_READ_STATEMENTS:
            return
        for prefix, risk, reason in CLICKHOUSE_STATEMENTS:
            if tuple(words[: len(prefix)]) == prefix:
                assessment.escalate(risk, f"{label}: {reason}")
                return
    if head in ("LOAD",) and "DATA" in words[:3]:
        assessment.deny(RULE_FILE_ACCESS, f"{label}: reads files into the database")
        return
    if head in ("INSTALL",) or (head == "CREATE" and ("SONAME" in words or UNTRUSTED_LANGUAGES.search(text))):
        assessment.deny(RULE_CODE_LOAD, f"{label}: loads native or untrusted code into the server")
        return
    if head in DESTRUCTIVE_STATEMENTS:
        if len(words) > 1 and words[1] in ("DATABASE", "SCHEMA"):
            assessment.deny(RULE_DROP_DATABASE, f"{label}: drops a whole database")
            return
        assessment.escalate(RiskClass.DESTRUCTIVE, f"{label}: removes data or objects")
        return
    if head in ("DELETE", "UPDATE") and "WHERE" not in words:
        assessment.escalate(RiskClass.DESTRUCTIVE, f"{label}: {head} without WHERE touches every row")
        return
    if head == "ALTER" and "DROP" in words:
        assessment.escalate(RiskClass.DESTRUCTIVE, f"{label}: drops part of a table")
        return
    if head == "RESET" and "MASTER" in upper_text:
        assessment.escalate(RiskClass.DESTRUCTIVE, f"{label}: deletes binary logs")
        return
    assessment.escalate(RiskClass.WRITE, f"{label}: not a read-only statement")


def _check_select(words: Sequence[str], label: str, assessment: Assessment) -> None:
    for index, word in enumerate(words):
        if word == "INTO":
            following = words[index + 1] if index + 1 < len(words) else ""
            if following in ("OUTFILE", "DUMPFILE"):
                assessment.deny(RULE_FILE_ACCESS, f"{label}: SELECT ... INTO {following} writes a server file")
                return
            if not following.startswith("@"):
                assessment.escalate(RiskClass.WRITE, f"{label}: SELECT ... INTO creates a table")
        if word == "FOR" and index + 1 < len(words) and words[index + 1] in ("UPDATE", "SHARE", "NO", "KEY"):
            assessment.escalate(RiskClass.WRITE, f"{label}: takes row locks")


def _check_copy(words: Sequence[str], label: str, assessment: Assessment) -> None:
    if "PROGRAM" in words:
        assessment.deny(RULE_PROGRAM, f"{label}: COPY ... PROGRAM runs a shell command on the server")
    elif "FROM" in words and "STDIN" not in words:
        assessment.deny(RULE_FILE_ACCESS, f"{label}: COPY FROM a server file")
    elif "FROM" in words:
        assessment.escalate(RiskClass.WRITE, f"{label}: COPY FROM loads rows")
    elif "TO" in words and "STDOUT" not in words:
        assessment.deny(RULE_FILE_ACCESS, f"{label}: COPY TO a server file")


def _check_functions(tokens: Sequence[Token], assessment: Assessment, dialect: Dialect) -> None:
    clickhouse = dialect == "clickhouse"
    for (ttype, value), (_, following) in zip(tokens, [*tokens[1:], (None, "")], strict=True):
        # A quoted identifier ("pg_read_file", `load_file`) names a function as well as a bare one.
        if following != "(" or (ttype in T.Literal.String and ttype not in T.Literal.String.Symbol):
            continue
        name = value.strip('"`').split(".")[-1]
        lowered = name.lower()
        if lowered in FILE_FUNCTIONS or (clickhouse and lowered in CLICKHOUSE_FILE_FUNCTIONS):
            assessment.deny(RULE_FILE_ACCESS, f"{name}(): reads or writes server files or runs programs")
        elif (
            lowered in WRITE_FUNCTIONS
            or name in WRITE_FUNCTIONS
            or (clickhouse and lowered in CLICKHOUSE_REMOTE_FUNCTIONS)
        ):
            assessment.escalate(RiskClass.WRITE, f"{name}(): changes server state or reaches other hosts")
