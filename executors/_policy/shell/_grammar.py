"""bashlex, imported with its parse tables built once per machine instead of once per process.

bashlex carries its own copy of PLY's ``yacc``, which rebuilds the LALR tables of the bash grammar
each time ``bashlex.parser`` is imported: ~0.15 s, a third of ``cloud-agent task run``'s start. PLY
itself stopped writing table files in 2020 and suggests keeping the built tables yourself for a
grammar that size (its CHANGES, 01/26/20). This module does that: it loads ``bashlex.yacc`` before
bashlex's package runs (which imports the parser and builds), gives it a table class that reads
the action and goto tables from a cache file, and lets the package import as usual.

The cache is plain JSON in the agent's state folder, keyed by the bytes of bashlex's grammar and
parser generator and by the Python version; a missing, stale or unreadable file means the tables
are built as before (and written for the next process). The tables steer the shell policy's parse,
so the file is trusted as Python trusts its own ``__pycache__``: only the agent's user writes its
state folder, and a read task's sandbox sees it read-only. The project imports ``bashlex`` from here.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from executors._settings import DEFAULT_STATE_DIR


def cache_dir() -> Path:
    """Where the tables are kept: ``<state_dir>/cache`` (the folder the agent already writes its
    audit log to: a read task's invocation writes nowhere else), or ``CLOUD_AGENT_CACHE_DIR``."""
    explicit = os.environ.get("CLOUD_AGENT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("CLOUD_AGENT_STATE_DIR") or DEFAULT_STATE_DIR) / "cache"


def _cache_file(package_dir: Path) -> Path:
    digest = hashlib.sha256(sys.version.encode())
    for name in ("parser.py", "yacc.py"):
        digest.update((package_dir / name).read_bytes())
    return cache_dir() / f"bashlex-lalr-{digest.hexdigest()[:20]}.json"


def _read(path: Path) -> tuple[dict[int, dict[str, int]], dict[int, dict[str, int]]] | None:
    try:
        stored = json.loads(path.read_text())
        action = {int(state): dict(row) for state, row in stored["action"].items()}
        goto = {int(state): dict(row) for state, row in stored["goto"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return action, goto


def _write(path: Path, action: dict[int, dict[str, int]], goto: dict[int, dict[str, int]]) -> None:
    # Written whole under a temporary name, then renamed: a process reading meanwhile sees the
    # old file or the new one, never half of one. A cache that cannot be written is no error.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump({"action": action, "goto": goto}, out)
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


def _table_class(yacc: ModuleType, path: Path) -> type:
    built_table = yacc.LRTable

    class CachedTable(built_table):  # type: ignore[misc, valid-type]
        def __init__(self, grammar: Any, log: Any = None) -> None:
            cached = _read(path)
            if cached is None:
                super().__init__(grammar, log)
                _write(path, self.lr_action, self.lr_goto)
                return
            # What LRTable.__init__ leaves behind, its two tables read instead of computed.
            self.grammar = grammar
            self.log = log or yacc.NullLogger()
            self.lr_action, self.lr_goto = cached
            self.lr_productions = grammar.Productions
            self.lr_goto_cache, self.lr0_cidhash = {}, {}
            self._add_count = 0
            self.sr_conflict = self.rr_conflict = 0
            self.conflicts, self.sr_conflicts, self.rr_conflicts = [], [], []

    return CachedTable


def load() -> ModuleType:
    """``bashlex``, imported (once) with the cached tables; as is when something imported it first."""
    if "bashlex" in sys.modules:
        return sys.modules["bashlex"]
    spec = importlib.util.find_spec("bashlex")
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        raise ImportError("bashlex is not installed")
    package = importlib.util.module_from_spec(spec)
    sys.modules["bashlex"] = package
    try:
        yacc = importlib.import_module("bashlex.yacc")  # needs only bashlex.utils, not the package body
        yacc.LRTable = _table_class(yacc, _cache_file(Path(next(iter(spec.submodule_search_locations)))))
        spec.loader.exec_module(package)  # bashlex/__init__: imports the parser, which builds with it
    except BaseException:
        for name in [name for name in sys.modules if name == "bashlex" or name.startswith("bashlex.")]:
            del sys.modules[name]
        raise
    return package


bashlex = load()
