"""Risk of SQL text for PostgreSQL, MySQL/MariaDB and ClickHouse.

The text is split into statements (quotes, comments and dollar quotes respected, by sqlparse) and
each statement is classified from its leading keywords and the functions it calls. Anything not
known to be read-only is at least ``write``: an unknown statement needs an approval, it is never
assumed harmless. In particular:

- a read statement may call only the functions of ``sql_functions`` (an allow-list), unqualified
  or, on PostgreSQL, qualified with ``pg_catalog``; any other call, and any call through a quoted
  name (``"pg_terminate_backend"(...)``), makes it ``write``;
- text the lexer may read differently from the server is ``write`` (or refused where the
  difference can hide a call): nested comments (PostgreSQL nests ``/* /* */ */``, sqlparse does
  not), Unicode-escaped names and strings (``U&"..."``), dollar-quoted bodies, characters the
  lexer could not place; MySQL executable comments (``/*! */``, ``/*M! */``) are refused.

Read tasks also run inside read-only transactions (``readonly=1`` on ClickHouse) and, where the
connection has one, with a read-only account, so the server enforces what this analysis concludes
and catches what it cannot see (a view or an operator that calls a writing function).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from contract import RiskClass
from executors._policy._assessment import Assessment
from executors._policy.sql_functions import POSTGRES_CATALOG_SCHEMA, SYNTAX_BEFORE_PARENTHESIS, is_read_function

Dialect = Literal["postgres", "mysql", "clickhouse"]

READ_STATEMENTS = frozenset({"SELECT", "SHOW", "DESCRIBE", "DESC", "VALUES", "TABLE", "HELP", "USE", "EXISTS"})
TRANSACTION_CONTROL = frozenset({"BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END", "ABORT", "XA"})
DESTRUCTIVE_STATEMENTS = frozenset({"DROP", "TRUNCATE", "PURGE"})
DATA_MODIFYING_KEYWORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT"})

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
# ClickHouse table functions that read the server's files.
CLICKHOUSE_FILE_FUNCTIONS = frozenset({"sqlite", "filecluster"})
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
    # sqlparse loads in the first SQL check, not with the policy: a shell task needs it
    # rarely and every CLI start would pay for it.
    from sqlparse import tokens as T
    from sqlparse.engine import FilterStack

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
    for doubt in _lexing_doubts(sql, dialect):
        assessment.escalate(RiskClass.WRITE, doubt)
    statements = _parse(sql)
    if not statements:
        assessment.deny(RULE_EMPTY, "no SQL statement to run")
        return assessment
    for _, tokens in statements:
        _classify(tokens, dialect, assessment)
    return assessment


@lru_cache(maxsize=1024)
def _lexing_doubts(sql: str, dialect: Dialect) -> tuple[str, ...]:
    """Constructs the server may read differently from sqlparse, each making the text ``write``.

    None of them is needed to read diagnostics, and each has a reading under which the text holds
    a call the analysis did not see: PostgreSQL (and ClickHouse) nest ``/* */`` comments, so text
    after the first ``*/`` may still be comment to the server and code to us, or the reverse;
    ``U&"\\0070g_..."`` spells any name in escapes; a dollar-quoted body is a string to the
    analyser and the source of a function or a DO block to the server.
    """
    from sqlparse import lexer
    from sqlparse import tokens as T

    doubts: list[str] = []
    tokens = [(ttype, value) for ttype, value in lexer.tokenize(sql)]
    for index, (ttype, value) in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else (None, "")
        if ttype in T.Comment.Multiline and "/*" in value[2:]:
            doubts.append("a comment inside a comment: PostgreSQL nests them, the analyser does not")
        elif ttype is T.Error and not (dialect == "clickhouse" and value in ("{", "}")):
            # (ClickHouse's ``{name:Type}`` is a query parameter, bound as a value.)
            doubts.append(f"the analyser cannot read {value!r} here")
        elif ttype is T.Literal and value.startswith("$"):
            doubts.append("a dollar-quoted body: its text is code to some statements and the analyser cannot tell")
        elif (
            ttype in T.Name
            and value.upper() == "U"
            and following[1] == "&"
            and index + 2 < len(tokens)
            and tokens[index + 2][1][:1] in ("'", '"')
        ):
            doubts.append('a Unicode-escaped name or string (U&"..."): escapes can spell any name')
    return tuple(dict.fromkeys(doubts))


@lru_cache(maxsize=1024)
def _ambiguity(sql: str, dialect: Dialect) -> str | None:
    """Why the server may split ``sql`` into strings and comments differently from the analyser.

    sqlparse reads a backslash before a quote as an escape and only ``# ``/``--`` as comments; a
    PostgreSQL standard string ends at the first lone quote, and MySQL starts a comment at any
    ``#`` but not at ``--`` glued to the next character. Text the two read differently could hide
    a call (``'\\' , pg_read_file(...) --'``) from the analysis, so it is refused.
    """
    from sqlparse import lexer
    from sqlparse import tokens as T

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

    statement = Assessment()
    unknown_calls = _check_functions(tokens, statement, dialect)

    if head == "EXPLAIN":
        # EXPLAIN runs the statement only with ANALYZE, wherever it sits among the options
        # (``EXPLAIN (FORMAT JSON, ANALYZE) DELETE ...``); a plan alone is read, but planning may
        # still fold calls to functions, so those are checked all the same.
        options, inner = _explain_parts(words)
        if "ANALYZE" in options or "ANALYSE" in options:
            _classify_words(inner or ["EXPLAIN"], label, dialect, statement, normalized)
    elif head == "ANALYZE" and dialect == "mysql" and len(words) > 1 and words[1] in READ_STATEMENTS - {"TABLE"}:
        # MariaDB's ANALYZE <select> runs the query and reports statistics; ANALYZE TABLE rewrites
        # the table's key statistics (TABLE reads only as PostgreSQL's ``TABLE t``).
        _classify_words(words[1:], label, dialect, statement, normalized)
    else:
        _classify_words(words, label, dialect, statement, normalized)
    # Only a statement that otherwise reads is made ``write`` by its calls: an UPDATE's reasons
    # should say it is an UPDATE, not list the table names the lexer saw before a parenthesis.
    if statement.risk is RiskClass.READ:
        for call in unknown_calls:
            statement.escalate(RiskClass.WRITE, f"{label}: {call}")
    assessment.absorb(statement)


_EXPLAINABLE = DATA_MODIFYING_KEYWORDS | {"SELECT", "WITH", "VALUES", "TABLE", "EXECUTE", "CREATE", "DECLARE"}


def _explain_parts(words: Sequence[str]) -> tuple[list[str], list[str]]:
    """``EXPLAIN <options> <statement>`` as (options, statement); the statement may be empty."""
    for index, word in enumerate(words[1:], start=1):
        if word in _EXPLAINABLE:
            return list(words[1:index]), list(words[index:])
    return list(words[1:]), []


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


def _check_functions(tokens: Sequence[Token], assessment: Assessment, dialect: Dialect) -> list[str]:
    """Deny calls to file and program functions; return why each other call is not a known read."""
    from sqlparse import tokens as T

    clickhouse = dialect == "clickhouse"
    unknown: list[str] = []
    column_lists = _cte_column_lists(tokens)
    for index, (ttype, value) in enumerate(tokens):
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if following != "(" or ttype in T.Punctuation or ttype in T.Operator or ttype in T.Wildcard:
            continue
        if index in column_lists or (index > 0 and tokens[index - 1][1].upper() == "AS" and ttype in T.Name):
            continue  # ``WITH r(n) AS (...)``, ``... AS g(n)``: names with their column lists, not calls
        if ttype in T.Literal and ttype not in T.Literal.String.Symbol:
            continue  # a constant before a parenthesis is not a call (and not valid SQL either)
        quoted = value[:1] in ('"', "`")
        # A quoted identifier ("pg_read_file", `load_file`) names a function as well as a bare one.
        name = value[1:-1].replace(value[0] * 2, value[0]) if quoted else value
        lowered = name.lower()
        if lowered in FILE_FUNCTIONS or (clickhouse and lowered in CLICKHOUSE_FILE_FUNCTIONS):
            assessment.deny(RULE_FILE_ACCESS, f"{name}(): reads or writes server files or runs programs")
            continue
        if quoted:
            unknown.append(f"{value}(): a function called through a quoted name")
            continue
        qualifier = tokens[index - 2][1] if index >= 2 and tokens[index - 1][1] == "." else None
        if qualifier is not None and not (
            dialect == "postgres" and qualifier.lower() == POSTGRES_CATALOG_SCHEMA and _unqualified(tokens, index - 2)
        ):
            unknown.append(f"{qualifier}.{name}(): a function of a schema the analyser cannot see into")
            continue
        word = value.split()[-1].lower()
        # FILTER and OVER are syntax only after a call's ")": elsewhere they can name a function.
        after_call = index > 0 and tokens[index - 1][1] == ")"
        if qualifier is None and word in SYNTAX_BEFORE_PARENTHESIS and (word not in ("filter", "over") or after_call):
            continue
        if not is_read_function(name, dialect):
            unknown.append(f"{name}() is not on the list of read-only functions")
    return unknown


def _cte_column_lists(tokens: Sequence[Token]) -> set[int]:
    """Positions of CTE names followed by a column list: ``WITH [RECURSIVE] r(n) AS [NOT MATERIALIZED] (``.

    Only where a WITH clause puts them: ``FROM f() AS (a int)`` is a call, with a column list too.
    """
    found: set[int] = set()
    words = [value.upper() for _, value in tokens]
    for start, word in enumerate(words):
        if word != "WITH":
            continue
        index = start + 1 + (start + 1 < len(words) and words[start + 1] == "RECURSIVE")
        while index < len(words):
            name = index
            if index + 1 < len(words) and words[index + 1] == "(":
                index = _after_parenthesis(words, index + 1)
            else:
                index += 1
            if index >= len(words) or words[index] != "AS":
                break
            index += 1
            while index < len(words) and words[index] in ("NOT", "MATERIALIZED"):
                index += 1
            if index >= len(words) or words[index] != "(":
                break
            if words[name + 1] == "(":
                found.add(name)
            index = _after_parenthesis(words, index)
            if index >= len(words) or words[index] != ",":
                break
            index += 1
    return found


def _after_parenthesis(words: Sequence[str], opening: int) -> int:
    """The position after the ``)`` that closes the ``(`` at ``opening``."""
    depth = 0
    for index in range(opening, len(words)):
        depth += {"(": 1, ")": -1}.get(words[index], 0)
        if depth == 0:
            return index + 1
    return len(words)


def _unqualified(tokens: Sequence[Token], index: int) -> bool:
    """Whether the name at ``index`` stands alone (no ``db.`` or ``"x".`` before it)."""
    return index == 0 or tokens[index - 1][1] != "."
