"""Risk of a Redis command line (``INFO stats``, ``GET key``, ``CONFIG GET maxmemory``).

The line is split the way redis-cli splits it (quotes, escapes) and classified from allow-lists:
a command is ``read`` only if it is a read command (or a read subcommand of a container command
such as ``CLIENT LIST``) *and* its arguments keep it one — ``ACL LOG RESET`` clears the log,
``GEORADIUS_RO ... STORE`` would write, ``CONFIG GET *`` returns the server's passwords. Anything
else, a command name outside ASCII included (Python and Redis fold case differently), is ``write``.
Scripting (EVAL, FCALL), module loading, replication changes and the CONFIG SET of persistence
paths are denied by default: they can run arbitrary code or write arbitrary files on the server.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence

from contract import RiskClass
from executors._errors import InvalidTask
from executors._policy._assessment import Assessment

READ_COMMANDS = frozenset(
    """
    PING ECHO INFO DBSIZE TIME LASTSAVE ROLE TYPE TTL PTTL EXPIRETIME PEXPIRETIME EXISTS STRLEN
    GET MGET GETRANGE SUBSTR HGET HMGET HGETALL HKEYS HVALS HLEN HEXISTS HSTRLEN HSCAN HRANDFIELD
    LRANGE LLEN LINDEX LPOS SMEMBERS SISMEMBER SMISMEMBER SCARD SRANDMEMBER SSCAN SINTER SUNION SDIFF
    SINTERCARD ZRANGE ZRANGEBYSCORE ZREVRANGE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZCARD
    ZSCORE ZMSCORE ZRANK ZREVRANK ZCOUNT ZLEXCOUNT ZSCAN ZRANDMEMBER ZINTER ZUNION ZDIFF ZINTERCARD
    XRANGE XREVRANGE XLEN XREAD XPENDING SCAN KEYS RANDOMKEY GETBIT BITCOUNT BITPOS GEOPOS GEODIST
    GEOHASH GEOSEARCH GEORADIUS_RO GEORADIUSBYMEMBER_RO PFCOUNT DUMP TOUCH LCS SORT_RO
    """.split()
)
# Commands whose first argument is a subcommand; the pair decides the risk.
READ_SUBCOMMANDS = {
    "CONFIG": {"GET"},
    "CLIENT": {"LIST", "INFO", "GETNAME", "ID", "TRACKINGINFO", "GETREDIR"},
    "SLOWLOG": {"GET", "LEN", "HELP"},
    "MEMORY": {"STATS", "USAGE", "DOCTOR", "MALLOC-STATS", "HELP"},
    "LATENCY": {"LATEST", "HISTORY", "DOCTOR", "GRAPH", "HISTOGRAM", "HELP"},
    "OBJECT": {"ENCODING", "FREQ", "IDLETIME", "REFCOUNT", "HELP"},
    "XINFO": {"STREAM", "GROUPS", "CONSUMERS", "HELP"},
    "CLUSTER": {"INFO", "NODES", "SLOTS", "SHARDS", "MYID", "KEYSLOT", "COUNTKEYSINSLOT", "GETKEYSINSLOT", "LINKS"},
    "COMMAND": {"COUNT", "INFO", "DOCS", "LIST", "GETKEYS", "HELP"},
    "ACL": {"WHOAMI", "CAT", "LIST", "USERS", "GETUSER", "LOG", "HELP"},
    "MODULE": {"LIST", "HELP"},
    "FUNCTION": {"LIST", "STATS", "DUMP", "HELP"},
    "SCRIPT": {"EXISTS", "HELP"},
    "PUBSUB": {"CHANNELS", "NUMSUB", "NUMPAT", "SHARDCHANNELS", "SHARDNUMSUB", "HELP"},
}
DESTRUCTIVE_COMMANDS = frozenset({"FLUSHDB", "DEL", "UNLINK", "GETDEL"})

# (command, subcommand or None) -> (rule, reason). Denied whatever the approval.
DEFAULT_DENIED: dict[tuple[str, str | None], tuple[str, str]] = {
    ("FLUSHALL", None): ("redis.flushall", "FLUSHALL deletes every key of every database"),
    ("SHUTDOWN", None): ("redis.shutdown", "SHUTDOWN stops the Redis server"),
    ("DEBUG", None): ("redis.debug", "DEBUG can crash or stall the server"),
    ("MODULE", "LOAD"): ("redis.module", "MODULE LOAD runs native code in the server"),
    ("MODULE", "LOADEX"): ("redis.module", "MODULE LOADEX runs native code in the server"),
    ("MODULE", "UNLOAD"): ("redis.module", "MODULE UNLOAD changes the server's code"),
    ("EVAL", None): ("redis.scripting", "EVAL runs a Lua script the policy cannot check"),
    ("EVALSHA", None): ("redis.scripting", "EVALSHA runs a Lua script the policy cannot check"),
    ("EVAL_RO", None): ("redis.scripting", "EVAL_RO runs a Lua script the policy cannot check"),
    ("EVALSHA_RO", None): ("redis.scripting", "EVALSHA_RO runs a Lua script the policy cannot check"),
    ("FCALL", None): ("redis.scripting", "FCALL runs a server-side function the policy cannot check"),
    ("FCALL_RO", None): ("redis.scripting", "FCALL_RO runs a server-side function the policy cannot check"),
    ("SCRIPT", "LOAD"): ("redis.scripting", "SCRIPT LOAD installs a Lua script"),
    ("FUNCTION", "LOAD"): ("redis.scripting", "FUNCTION LOAD installs server-side code"),
    ("FUNCTION", "RESTORE"): ("redis.scripting", "FUNCTION RESTORE installs server-side code"),
    ("SLAVEOF", None): ("redis.replication", "SLAVEOF changes replication and can wipe the dataset"),
    ("REPLICAOF", None): ("redis.replication", "REPLICAOF changes replication and can wipe the dataset"),
    ("MIGRATE", None): ("redis.replication", "MIGRATE moves keys to another server"),
    ("ACL", "SETUSER"): ("redis.acl", "ACL SETUSER changes who may do what"),
    ("ACL", "DELUSER"): ("redis.acl", "ACL DELUSER changes who may do what"),
    ("ACL", "LOAD"): ("redis.acl", "ACL LOAD replaces the access rules"),
    ("CLUSTER", "RESET"): ("redis.cluster", "CLUSTER RESET removes the node from its cluster"),
    ("CLUSTER", "FAILOVER"): ("redis.cluster", "CLUSTER FAILOVER changes the cluster's primaries"),
}
# CONFIG SET of these parameters is how Redis is turned into a file-writing primitive.
PERSISTENCE_PARAMETERS = frozenset({"dir", "dbfilename", "logfile", "appendfilename", "appenddirname"})
# CONFIG GET of these returns credentials.
SECRET_PARAMETERS = frozenset(
    {"requirepass", "masterauth", "masteruser", "tls-key-file-pass", "tls-client-key-file-pass"}
)
_GLOB = re.compile(r"[*?\[\]\\]")


def _count_only(args: Sequence[str]) -> str | None:
    if len(args) > 1 or (args and not args[0].lstrip("-").isdigit()):
        return f"takes only a count here, not {' '.join(args)!r} (ACL LOG RESET clears the log)"
    return None


def _no_store(args: Sequence[str]) -> str | None:
    stores = {word.upper() for word in args} & {"STORE", "STOREDIST"}
    return f"{'/'.join(sorted(stores))} writes the result to a key" if stores else None


def _no_secret_parameter(args: Sequence[str]) -> str | None:
    for name in args:
        if _GLOB.search(name) or name.lower() in SECRET_PARAMETERS:
            return f"CONFIG GET {name} can return the server's passwords; name the parameters you need"
    return None


# Arguments that turn a read command into something else; each returns why, or None.
ARGUMENT_RULES: dict[tuple[str, str | None], Callable[[Sequence[str]], str | None]] = {
    ("ACL", "LOG"): _count_only,
    ("SLOWLOG", "GET"): _count_only,
    ("CONFIG", "GET"): _no_secret_parameter,
    ("GEORADIUS_RO", None): _no_store,
    ("GEORADIUSBYMEMBER_RO", None): _no_store,
    ("GEOSEARCH", None): _no_store,
}


def parse_redis_command(line: str) -> list[str]:
    """Split a redis-cli style command line into words; one command per task."""
    if "\n" in line.strip() or "\r" in line:
        raise InvalidTask("a redis task runs one command; send several commands as several tasks")
    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        raise InvalidTask(f"cannot parse the Redis command line: {exc}") from exc
    if not words:
        raise InvalidTask("the Redis command is empty")
    return words


def analyze_redis(line: str, *, extra_denied: frozenset[str] = frozenset()) -> Assessment:
    assessment = Assessment()
    words = parse_redis_command(line)
    command = words[0].upper()
    sub = words[1].upper() if len(words) > 1 else None
    assessment.subjects.append(" ".join([command, *words[1:]]))

    for key in ((command, sub), (command, None)):
        if key in DEFAULT_DENIED:
            rule, reason = DEFAULT_DENIED[key]
            assessment.deny(rule, reason)
            return assessment
    if command in extra_denied or f"{command} {sub}" in extra_denied:
        assessment.deny("redis.environment-denied", f"{command} is denied in this environment")
        return assessment
    if command == "CONFIG" and sub == "SET":
        parameters = {word.lower() for word in words[2::2]}
        if parameters & PERSISTENCE_PARAMETERS:
            assessment.deny(
                "redis.config-persistence",
                "CONFIG SET of dir/dbfilename/logfile lets Redis write arbitrary files",
            )
            return assessment
    is_container = command in READ_SUBCOMMANDS
    # "ınfo".upper() == "INFO" in Python; Redis folds ASCII only, so the two would disagree.
    for name in words[: 2 if is_container else 1]:
        if not name.isascii():
            assessment.escalate(RiskClass.WRITE, f"{name!r} is not a Redis command name the policy can read")
            return assessment
    if command in READ_COMMANDS or (is_container and sub in READ_SUBCOMMANDS[command]):
        key = (command, sub if is_container else None)
        check = ARGUMENT_RULES.get(key)
        confusion = check(words[2:] if is_container else words[1:]) if check else None
        if confusion:
            assessment.escalate(RiskClass.WRITE, f"{' '.join(w for w in key if w)}: {confusion}")
        return assessment
    if command in DESTRUCTIVE_COMMANDS:
        assessment.escalate(RiskClass.DESTRUCTIVE, f"{command} deletes data")
        return assessment
    label = f"{command} {sub}" if is_container and sub else command
    assessment.escalate(RiskClass.WRITE, f"{label} is not a read-only command")
    return assessment
