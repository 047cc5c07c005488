"""Runs the attempts of one mode against their canaries and says, per attempt, what it achieved.

Attempts run in lanes that cannot confuse each other's effects:

- ``host``: shell attempts whose canaries are their own (a folder, a process, a socket pair, a git
  repository, a loop device), several at once; their canaries are checked at the end, each effect
  belonging to the attempt whose canary it is.
- ``machine``: attempts on machine-wide settings (sysctls, host name, addresses, routes), one at a
  time, compared and put back right after each.
- ``postgres``, ``mysql``, ``redis``: everything that reaches one server (its tasks, and shell
  attempts through its socket), one at a time per server, the server's state compared (and put
  back) after each; the three lanes run side by side.
- ``persistence``: all at once with short timeouts, then a sweep for what outlived its task.

Secrets are looked for in every result, in what the exfiltration sink received and in files written
to the temporary folders; leftovers, files owned by the sandbox user and machine settings are swept
at the end. An effect that cannot be tied to an attempt still counts (as "unattributed").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from executors import AuditQuery, CloudAgent
from tests.reliability.redteam.attempts import Attempt, AttemptClass
from tests.reliability.redteam.databases import (
    REDIS_KEYS,
    GuardedMariaDB,
    GuardedPostgres,
    GuardedRedis,
    MySqlCanaries,
    PgCanaries,
    RedisCanaries,
    SocketRedis,
)
from tests.reliability.redteam.host import (
    FileCanaries,
    GitRepos,
    Leftovers,
    LoopDevices,
    MachineSettings,
    ProcessCanaries,
    TcpPairs,
    files_owned_by,
    new_files,
    sandbox_uid,
)
from tests.reliability.redteam.leaks import ExfilSink, SecretWatch, leaks_by_attempt

REFUSED = frozenset({"denied", "approval_required"})
_FOLDERS = ("ETC", "ROOT", "OPT", "VARTMP", "STATE")
_PG = {"PG_PORT", "PG_SOCKDIR", "PG_DATADIR", "PG_MARKER_FILE", "PG_CANARY_PID", "PG_WRITABLE_DIR"}
_MY = {"MY_PORT", "MY_SOCK", "MY_DATADIR", "MY_MARKER_FILE", "MY_CANARY_ID", "MY_WRITABLE_DIR"}
_REDIS = {"REDIS_PORT", "REDIS_SOCK", "REDIS_CANARY_ID", "REDIS_CANARY_ADDR", "REDIS_SOCK_CANARY_ID", *REDIS_KEYS}
_HOST = {
    "ID", "RUN", "DIR", "FILE", *_FOLDERS, "SECRET_FILE", "SECRET_ETC", "CWD", "HOME", "LOOP", "GIT", "PID",
    "PROC_PREFIX", "MARKER", "TCP_PORT", "TCP_CPORT", "IP", "IP6", "ROUTE", "LINK", "RULE_PREF", "AGENT_PID",
    "TWIN_PID", "SINK", "SINK_PORT", "HEALTH", "LOGFILE", "HOSTNAME",
}  # fmt: skip
#: Every ``@@NAME@@`` an attempt may use.
PLACEHOLDERS = frozenset(_HOST | _PG | _MY | _REDIS)
#: A harmless task per server lane, to let the agent's pool notice connections a restore ended.
_PROBES = {"postgres": "SELECT 1", "mysql": "SELECT 1", "redis": "PING"}
#: How long an attempt's own database canary (a busy backend, connection or client) that looks
#: untouched is given before it is checked again: a KILL or a terminate takes effect asynchronously.
OWN_CANARY_GRACE = 0.15


class ServerCanaries(Protocol):
    """What a serial lane needs of its canaries."""

    def check(self, attempt_id: str) -> list[str]: ...

    def check_own(self, attempt_id: str) -> list[str]: ...

    def has_own(self, attempt_id: str) -> bool: ...

    def restore(self, effects: list[str]) -> None: ...


#: ``cloud-agent task run`` imports the whole project (about 7 s of CPU each): on a busy machine,
#: three at once have taken more than 90 s.
CLI_TIMEOUT = 300
#: Seconds between a persistence attempt's end and the sweep for what outlived it.
PERSISTENCE_GRACE = 1.0


@dataclass
class Servers:
    postgres: GuardedPostgres
    mariadb: GuardedMariaDB
    redis: GuardedRedis
    redis_socket: SocketRedis

    def sessions(self) -> set[int]:
        """The session ids of the servers' processes (they are not a task's leftovers)."""
        return {
            server.process.pid
            for server in (self.postgres, self.mariadb, self.redis, self.redis_socket)
            if server.process is not None
        }


@dataclass
class Outcome:
    """What one attempt did in one mode."""

    attempt: Attempt
    statuses: list[str] = field(default_factory=list)
    effects: list[str] = field(default_factory=list)
    #: Short excerpts of what came back, for the report.
    excerpts: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0

    @property
    def refused(self) -> bool:
        return bool(self.statuses) and all(status in REFUSED for status in self.statuses)


@dataclass
class Report:
    mode: str
    outcomes: list[Outcome]
    #: Effects no attempt could be tied to (they count too).
    unattributed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Wall time of each phase (set-up, each lane, persistence, the final sweep).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def attacks(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.attempt.cls is not AttemptClass.POSITIVE]

    @property
    def effective(self) -> list[Outcome]:
        return [o for o in self.attacks if o.effects]

    @property
    def effect_count(self) -> int:
        return len(self.effective) + (1 if self.unattributed else 0)

    def to_json(self) -> str:
        return json.dumps(
            {
                "mode": self.mode,
                "seconds": self.seconds,
                "timings": self.timings,
                "unattributed": self.unattributed,
                "outcomes": [
                    {"id": o.attempt.id, "class": o.attempt.cls.value, "statuses": o.statuses, "effects": o.effects,
                     "excerpts": o.excerpts, "seconds": round(o.seconds, 3)}
                    for o in self.outcomes
                ],
            },
            indent=1,
        )  # fmt: skip

    def table(self) -> str:
        header = f"{'class':<12} {'attempts':>8} {'refused':>8} {'ran':>5} {'effects':>8}"
        phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.timings.items())
        lines = [f"red team, mode {self.mode} ({self.seconds:.1f} s: {phases})", header, "-" * len(header)]
        for cls in AttemptClass:
            if cls is AttemptClass.POSITIVE:
                continue
            chosen = [o for o in self.attacks if o.attempt.cls is cls]
            if not chosen:
                continue
            refused = sum(o.refused for o in chosen)
            effects = sum(bool(o.effects) for o in chosen)
            lines.append(f"{cls.value:<12} {len(chosen):>8} {refused:>8} {len(chosen) - refused:>5} {effects:>8}")
        attacks = self.attacks
        refused = sum(o.refused for o in attacks)
        lines.append("-" * len(header))
        total = f"{'total':<12} {len(attacks):>8} {refused:>8} {len(attacks) - refused:>5} {len(self.effective):>8}"
        lines.append(total)
        if self.unattributed:
            lines.append(f"unattributed effects: {len(self.unattributed)}")
        if self.effective or self.unattributed:
            lines.append("")
            lines.append("effects:")
            for outcome in self.effective:
                status = ",".join(outcome.statuses)
                lines.append(f"  {outcome.attempt.id} [{outcome.attempt.cls.value}; {status}]: "
                             + "; ".join(outcome.effects)[:300])  # fmt: skip
            lines += [f"  (unattributed): {effect}"[:300] for effect in self.unattributed]
        return "\n".join(lines)


def lane_of(attempt: Attempt) -> str:
    if attempt.cls is AttemptClass.PERSISTENCE:
        return "persistence"
    names = attempt.placeholders()
    types = {task.type for task in attempt.tasks}
    if names & _PG or "postgres" in types:
        return "postgres"
    if names & _MY or "mysql" in types:
        return "mysql"
    if names & {"REDIS_SOCK", "REDIS_SOCK_CANARY_ID"}:
        return "redis-socket"
    if names & _REDIS or "redis" in types:
        return "redis"
    if attempt.serial:
        return "machine"
    return "host"


@dataclass
class Shared:
    """What both modes share: the secret watch, the sink, the twin agent, and where things are."""

    watch: SecretWatch
    sink: ExfilSink
    twin_pid: int
    health_url: str
    log_file: str
    cli: Path
    secrets: Mapping[str, str]


class Range:
    """One mode's run: canaries set up for every attempt, the attempts run in lanes, every check."""

    def __init__(
        self, mode: str, agent: CloudAgent, shared: Shared, servers: Servers, state_dir: Path, *, use_cli: bool
    ):
        self.mode = mode
        self.agent = agent
        self.shared = shared
        self.servers = servers
        #: The environment ``cloud-agent task run`` gets (set by the caller: the agent's, secrets included).
        self.cli_env: dict[str, str] = {}
        self.state_dir = state_dir
        self.use_cli = use_cli
        self.run_id = os.urandom(3).hex()
        self.files = FileCanaries(self.run_id, state_dir)
        self.loops = LoopDevices()
        self.repos = GitRepos()
        self.processes = ProcessCanaries(self.run_id)
        self.tcp = TcpPairs()
        self.machine = MachineSettings()
        #: The machine as it was before this run: what ``close`` puts back, whatever happened.
        self.pristine = MachineSettings()
        self.pristine.snapshot()
        self.leftovers = Leftovers(self.run_id)
        self.pg = PgCanaries(servers.postgres, shared.secrets["pg_read"])
        self.my = MySqlCanaries(servers.mariadb, shared.secrets["mysql_read"])
        self.redis = RedisCanaries("redis", servers.redis)
        self.redis_socket = RedisCanaries("socket redis", servers.redis_socket)
        self.values: dict[str, dict[str, str]] = {}
        #: The harness's own working space (templates), not watched.
        self.scratch = Path(tempfile.mkdtemp(prefix=f"redteam-{self.run_id}-"))
        self._secret_files = {
            "SECRET_FILE": str(self.files.secret_file("ROOT", shared.secrets["root_file"])),
            "SECRET_ETC": str(self.files.secret_file("ETC", shared.secrets["etc_file"])),
        }
        self._pg_marker = str(self.pg.marker_file(shared.secrets["pg_marker"]))
        self._my_marker = str(self.my.marker_file(shared.secrets["mysql_marker"]))
        self._lock = threading.Lock()
        self.unattributed: list[str] = []
        self.timings: dict[str, float] = {}

    @property
    def cwd(self) -> Path:
        return self.files.cwd

    @property
    def home(self) -> Path:
        return self.files.home

    # -- set-up ---------------------------------------------------------------------------------------

    def prepare(self, attempts: Sequence[Attempt]) -> None:
        """Every canary every attempt names, then the baselines."""
        for index, attempt in enumerate(attempts):
            self.values[attempt.id] = self._prepare_one(index, attempt)
        self.redis.prime()
        self.redis_socket.prime()
        self.files.snapshot()
        self.machine.snapshot()
        self.pg.snapshot()
        self.my.snapshot()
        self.redis.snapshot()
        self.redis_socket.snapshot()
        self.shared.sink.clear()

    def _prepare_one(self, index: int, attempt: Attempt) -> dict[str, str]:
        names = attempt.placeholders()
        unknown = names - PLACEHOLDERS
        if unknown:
            raise ValueError(f"attempt {attempt.id}: unknown placeholders {sorted(unknown)}")
        servers = self.servers
        aid = attempt.id
        values = {
            "ID": aid, "RUN": self.run_id, "CWD": str(self.cwd), "HOME": str(self.home),
            "AGENT_PID": str(os.getpid()), "TWIN_PID": str(self.shared.twin_pid),
            "SINK": f"http://127.0.0.1:{self.shared.sink.port}/{aid}", "SINK_PORT": str(self.shared.sink.port),
            "HEALTH": self.shared.health_url, "LOGFILE": self.shared.log_file, "HOSTNAME": f"rt-{self.run_id}",
            "MARKER": self.leftovers.marker(aid),
            "IP": f"127.77.{index // 250}.{index % 250 + 1}", "IP6": f"2001:db8:77::{index + 1:x}",
            "ROUTE": f"198.51.100.{index % 250 + 1}", "LINK": f"rtx{index}", "RULE_PREF": str(7700 + index),
            "PG_PORT": str(servers.postgres.port), "PG_SOCKDIR": str(servers.postgres.folder),
            "PG_DATADIR": str(servers.postgres.data_dir), "PG_MARKER_FILE": self._pg_marker,
            "MY_PORT": str(servers.mariadb.port), "MY_SOCK": str(servers.mariadb.socket_path),
            "MY_DATADIR": str(servers.mariadb.data_dir), "MY_MARKER_FILE": self._my_marker,
            "REDIS_PORT": str(servers.redis.port), "REDIS_SOCK": str(servers.redis_socket.socket_path),
            **self._secret_files,
        }  # fmt: skip
        values.update({name: f"rt:{aid}{suffix}" for name, (suffix, _) in REDIS_KEYS.items()})
        spread = self.files.spread_root(aid)
        if names & {"DIR", "FILE"}:
            values["DIR"] = str(self.files.folder(spread, aid))
            values["FILE"] = f"{values['DIR']}/canary.txt"
        for where in _FOLDERS:
            if where in names:
                values[where] = str(self.files.folder(where, aid))
        if "LOOP" in names:
            values["LOOP"] = self.loops.attach(aid, self.files.folder("VARTMP", aid))
        if "GIT" in names:
            values["GIT"] = str(self.repos.create(aid, self.files.folder("OPT", aid), self.scratch))
        if names & {"PID", "PROC_PREFIX"}:
            # PROC_PREFIX: the canary's name is PROC_PREFIX-<attempt id>, for attempts that find it by
            # name without naming it whole (their own command line would match too).
            values["PID"] = str(self.processes.start(aid))
            values["PROC_PREFIX"] = f"rtc-{self.run_id}"
        if names & {"TCP_PORT", "TCP_CPORT"}:
            port, client_port = self.tcp.open(aid)
            values["TCP_PORT"], values["TCP_CPORT"] = str(port), str(client_port)
        if "PG_WRITABLE_DIR" in names:
            values["PG_WRITABLE_DIR"] = str(self.files.folder("VARTMP", aid, owner="postgres"))
        if "MY_WRITABLE_DIR" in names:
            values["MY_WRITABLE_DIR"] = str(self.files.folder("VARTMP", aid, owner="mysql"))
        if "PG_CANARY_PID" in names:
            values["PG_CANARY_PID"] = str(self.pg.backend(aid))
        if "MY_CANARY_ID" in names:
            values["MY_CANARY_ID"] = str(self.my.session(aid))
        redis_lane = {"redis": self.redis, "redis-socket": self.redis_socket}.get(lane_of(attempt))
        if redis_lane is not None:
            redis_lane.keys(aid, names & set(REDIS_KEYS))
        if names & {"REDIS_CANARY_ID", "REDIS_CANARY_ADDR"}:
            client_id, address = self.redis.client(aid)
            values["REDIS_CANARY_ID"], values["REDIS_CANARY_ADDR"] = str(client_id), address
        if "REDIS_SOCK_CANARY_ID" in names:
            values["REDIS_SOCK_CANARY_ID"] = str(self.redis_socket.client(aid)[0])
        if "CHANNEL" in names:
            self.redis.subscriber(aid)
        return values

    # -- running --------------------------------------------------------------------------------------

    def _run_task(self, attempt: Attempt, index: int, task: dict[str, Any]) -> dict[str, Any]:
        task_id = f"rt-{self.run_id}-{attempt.id}-{index}"
        if attempt.via == "cli" and self.use_cli:
            return self._run_cli(attempt, task)
        result = self.agent.run(task, actor="redteam", task_id=task_id)
        return result.model_dump(mode="json")

    def _run_cli(self, attempt: Attempt, task: dict[str, Any]) -> dict[str, Any]:
        task_file = self.files.roots["VARTMP"].parent / f"cloud-agent-redteam-{self.run_id}-{attempt.id}.json"
        task_file.write_text(json.dumps(task))
        try:
            done = subprocess.run(
                [str(self.shared.cli), "task", "run", "--file", str(task_file), "--json"],
                env=self.cli_env, cwd=self.cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"status": "cli_timed_out", "error": {"message": f"no answer in {CLI_TIMEOUT} s"}, "id": None}
        finally:
            task_file.unlink(missing_ok=True)
        try:
            return dict(json.loads(done.stdout))
        except json.JSONDecodeError:
            return {"status": "cli_error", "output": done.stdout, "stderr": done.stderr, "id": None}

    def run_attempt(self, attempt: Attempt) -> Outcome:
        outcome = Outcome(attempt)
        begun = time.monotonic()
        for index, task in enumerate(attempt.bound_tasks(self.values[attempt.id])):
            result = self._run_task(attempt, index, task)
            outcome.statuses.append(str(result.get("status")))
            if result.get("id"):
                outcome.task_ids.append(str(result["id"]))
            pieces = [result.get("output"), result.get("stderr"), json.dumps(result.get("error")),
                      json.dumps(result.get("data"), default=str), json.dumps(result.get("notes"))]  # fmt: skip
            text = "\n".join(str(piece) for piece in pieces if piece)
            outcome.output += str(result.get("output") or "")
            leaked = self.shared.watch.exposed(text)
            if leaked:
                outcome.effects.append(f"secret in its result: {', '.join(sorted(set(leaked)))}")
            error = result.get("error") or {}
            if leaked:  # excerpts go to reports and logs: never with a secret in them
                outcome.excerpts.append(f"{result.get('status')}: (output withheld: it holds a secret)")
                continue
            outcome.excerpts.append(
                f"{result.get('status')}: {(error.get('message') or result.get('output') or '')[:160]}"
            )
        if attempt.cls is AttemptClass.APPROVAL:
            outcome.effects += self._forged_approvals(attempt, outcome.task_ids)
        outcome.seconds = time.monotonic() - begun
        return outcome

    def _forged_approvals(self, attempt: Attempt, task_ids: Iterable[str]) -> list[str]:
        forged = {task.approval["approved_by"] for task in attempt.tasks if task.approval}
        found = []
        for task_id in task_ids:
            for record in self.agent.audit.query(AuditQuery(task_id=task_id, limit=50)):
                if record.approved_by in forged:
                    found.append(f"audit record {record.event.value} names the forged approver {record.approved_by!r}")
        return sorted(set(found))

    def _serial(self, attempts: Sequence[Attempt], canaries: ServerCanaries, outcomes: dict[str, Outcome]) -> None:
        """One attempt at a time; the server's state compared after each (and put back when changed),
        then the attempt's own canaries (a moment later if they look untouched: a KILL takes effect
        asynchronously)."""
        if not attempts:
            return
        started = time.monotonic()
        lane = lane_of(attempts[0])
        checking = restoring = 0.0
        for attempt in attempts:
            outcome = self.run_attempt(attempt)
            begun = time.monotonic()
            effects = canaries.check(attempt.id)
            own = canaries.check_own(attempt.id)
            if not own and canaries.has_own(attempt.id):
                time.sleep(OWN_CANARY_GRACE)
                own = canaries.check_own(attempt.id)
            checking += time.monotonic() - begun
            outcome.effects += effects + own
            if effects:
                begun = time.monotonic()
                canaries.restore(effects)
                if any(word in " ".join(effects) for word in ("lock", "stopped", "cut")):
                    self._warm(attempt)
                restoring += time.monotonic() - begun
            outcomes[attempt.id] = outcome
        self.timings[lane] = time.monotonic() - started
        self.timings[f"{lane} checks"] = checking
        self.timings[f"{lane} restores"] = restoring

    def _warm(self, attempt: Attempt) -> None:
        """After a restore that may have ended the agent's pooled connections (locks held in them,
        a restarted server), let the pool find out on tasks of ours, not on the next attempt."""
        lane = lane_of(attempt)
        if lane in _PROBES:
            for _ in range(3):
                self.agent.run({"type": lane, "command": _PROBES[lane], "timeout": 5}, actor="redteam-probe")

    def _machine_restore(self, _: list[str] | None = None) -> None:
        left = self.machine.restore()
        if left:
            self.unattributed += [f"machine setting not restored: {item}" for item in left]
        self.machine.snapshot()

    def run(self, attempts: Sequence[Attempt], *, workers: int = 6) -> Report:
        started = time.monotonic()
        since = time.time()
        self.prepare(attempts)
        self.timings["set-up"] = time.monotonic() - started
        lanes: dict[str, list[Attempt]] = {}
        for attempt in attempts:
            lanes.setdefault(lane_of(attempt), []).append(attempt)
        outcomes: dict[str, Outcome] = {}

        def host_lane() -> None:
            begun = time.monotonic()
            with ThreadPoolExecutor(workers, thread_name_prefix="rt-host") as pool:
                # CLI attempts first: each takes seconds to start, the rest of the lane runs meanwhile.
                ordered = sorted(lanes.get("host", []), key=lambda attempt: attempt.via != "cli")
                for outcome in pool.map(self.run_attempt, ordered):
                    outcomes[outcome.attempt.id] = outcome
            self.timings["host"] = time.monotonic() - begun

        def server_lanes() -> None:
            _together(
                lambda: self._serial(lanes.get("postgres", []), self.pg, outcomes),
                lambda: self._serial(lanes.get("mysql", []), self.my, outcomes),
                lambda: self._serial(lanes.get("redis", []), self.redis, outcomes),
                lambda: self._serial(lanes.get("redis-socket", []), self.redis_socket, outcomes),
            )

        _together(
            host_lane,
            lambda: self._serial(lanes.get("machine", []), _MachineLane(self), outcomes),
            server_lanes,
        )
        ids = [attempt.id for attempt in attempts]
        self._sweep(ids, outcomes, "outlived its task")
        # The scan for files of the sandbox user walks the whole disk (seconds): it runs while the
        # persistence attempts wait out their timeouts (they only start processes).
        uid = sandbox_uid()
        scanner = ThreadPoolExecutor(1, thread_name_prefix="rt-uid-scan")
        owned = scanner.submit(files_owned_by, uid) if uid is not None else None

        persistent = lanes.get("persistence", [])
        begun = time.monotonic()
        if persistent:
            with ThreadPoolExecutor(len(persistent), thread_name_prefix="rt-persist") as pool:
                for outcome in pool.map(self.run_attempt, persistent):
                    outcomes[outcome.attempt.id] = outcome
            time.sleep(PERSISTENCE_GRACE)
            self._sweep(ids, outcomes, "outlived its task")
            self.timings["persistence"] = time.monotonic() - begun
        self._final_checks(attempts, outcomes, since, owned)
        scanner.shutdown()
        ordered = [outcomes[attempt.id] for attempt in attempts]
        return Report(self.mode, ordered, self.unattributed, time.monotonic() - started, dict(self.timings))

    def _sweep(self, ids: list[str], outcomes: dict[str, Outcome], what: str) -> None:
        exclude = self.servers.sessions() | {self.shared.twin_pid}
        for owner, found in self.leftovers.sweep(ids, exclude_sessions=exclude).items():
            self._assign(outcomes, owner, [f"{item} ({what})" for item in found])

    def _assign(self, outcomes: dict[str, Outcome], owner: str | None, effects: list[str]) -> None:
        with self._lock:
            if owner is not None and owner in outcomes:
                outcomes[owner].effects += effects
            else:
                self.unattributed += effects

    def _timed(self, name: str, step: Callable[[], Any]) -> Any:
        begun = time.monotonic()
        try:
            return step()
        finally:
            self.timings[name] = time.monotonic() - begun

    def _final_checks(
        self, attempts: Sequence[Attempt], outcomes: dict[str, Outcome], since: float, owned: Future[list[str]] | None
    ) -> None:
        def canaries() -> None:
            for attempt in attempts:
                for check in (self.processes.check, self.tcp.check, self.repos.check, self.loops.check):
                    outcomes[attempt.id].effects += check(attempt.id)
            for owner, changes in self.files.changes().items():
                self._assign(outcomes, owner, changes)

        ids = [attempt.id for attempt in attempts]

        def sink() -> None:
            for owner, names in leaks_by_attempt(self.shared.watch, self.shared.sink.received(), ids).items():
                self._assign(outcomes, owner, [f"secret sent to the sink: {', '.join(sorted(set(names)))}"])

        def machine() -> None:
            changed = self.machine.changes()
            if changed:
                self.unattributed += [f"machine setting changed: {item}" for item in changed]
                self._machine_restore()

        self._timed("canary checks", canaries)
        self._timed("sink", sink)
        self._timed("written files", lambda: self._written_leaks(outcomes, since, ids))
        self._timed("machine", machine)
        if owned is not None:
            self.unattributed += [
                f"owned by the sandbox user: {path}" for path in self._timed("uid scan", owned.result)
            ]

    def _written_leaks(self, outcomes: dict[str, Outcome], since: float, ids: list[str]) -> None:
        """Secrets in files attempts wrote to the temporary folders (attempts name what they write
        there after themselves; other people's files in /tmp are not read) and to the canaries."""
        folders = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]
        named = [path for path in new_files(folders, since, []) if self.run_id in str(path)
                 or any(attempt_id in str(path) for attempt_id in ids)]  # fmt: skip
        for path in [*named, *new_files(self.files.roots.values(), since, [])]:
            try:
                content = path.read_bytes()
            except OSError:
                continue
            names = self.shared.watch.exposed(content)
            if names:
                owners = [attempt_id for attempt_id in ids if attempt_id in str(path)]
                owner = max(owners, key=len) if owners else None
                self._assign(outcomes, owner, [f"secret written to {path}: {', '.join(sorted(set(names)))}"])

    # -- tear-down ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Undo everything, each step whatever the others did; raise at the end if a step failed."""
        exclude = self.servers.sessions() | {self.shared.twin_pid}
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("leftovers", lambda: self.leftovers.sweep([], exclude_sessions=exclude)),
            ("processes", self.processes.close),
            ("sockets", self.tcp.close),
            ("loop devices", self.loops.close),
            ("postgres", self.pg.close),
            ("mariadb", self.my.close),
            ("redis", self.redis.close),
            ("socket redis", self.redis_socket.close),
            ("machine", self._restore_pristine),
            ("files", self.files.close),
            ("strays", lambda: remove_strays(self.values, self.leftovers.marker_prefix, self.run_id)),
            ("scratch", lambda: shutil.rmtree(self.scratch)),
        ]
        failed = []
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # keep undoing the rest
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        if failed:
            raise RuntimeError("red team clean-up incomplete: " + "; ".join(failed))

    def _restore_pristine(self) -> None:
        left = self.pristine.restore()
        if left:
            raise RuntimeError(f"machine settings left changed: {left}")


class _MachineLane:
    """The machine's settings as a serial lane's canaries: compared after each attempt, put back."""

    def __init__(self, arena: Range):
        self.arena = arena

    def check(self, attempt_id: str) -> list[str]:
        return self.arena.machine.changes()

    def check_own(self, attempt_id: str) -> list[str]:
        return []

    def has_own(self, attempt_id: str) -> bool:
        return False

    def restore(self, effects: list[str]) -> None:
        self.arena._machine_restore(effects)


def _together(*jobs: Callable[[], None]) -> None:
    """Run ``jobs`` side by side; the first error is raised once all have ended."""
    with ThreadPoolExecutor(len(jobs), thread_name_prefix="rt-lane") as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def remove_strays(ids: Iterable[str], marker_prefix: str, run_id: str) -> None:
    """What attempts left in the temporary folders (``/tmp/rt-<what>-<attempt id>``, tmux sockets,
    the CLI's task files)."""
    ids = list(ids)
    candidates = [*Path("/tmp").glob("rt-*"), *Path("/var/tmp").glob("rt-*"), *Path("/tmp").glob("tmux-*/rtp-*"),
                  *Path("/var/tmp").glob(f"cloud-agent-redteam-{run_id}-*.json")]  # fmt: skip
    for path in candidates:
        if (
            any(attempt_id in path.name for attempt_id in ids)
            or path.name.startswith(marker_prefix)
            or run_id in path.name
        ):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
