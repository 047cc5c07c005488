"""bashlex's parse tables, kept between processes (``executors/_policy/shell/_grammar.py``): the
tables read from the cache are the tables bashlex builds, a damaged cache is rebuilt, and the
shell policy parses the same with either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

#: Prints whether the tables came from the cache, the parser's tables, and the policy's verdicts.
PROBE = """
import json, sys
from executors._policy.shell._grammar import bashlex
import bashlex.yacc
from executors._policy.shell import analyze_shell
commands = ["echo hi | wc -c", "cat /etc/shadow", "ls $(echo /tmp) > /tmp/out", "for i in 1 2; do echo $i; done"]
parser = bashlex.parser.yaccparser
print(json.dumps({
    "action": {str(k): v for k, v in parser.action.items()},
    "goto": {str(k): v for k, v in parser.goto.items()},
    "verdicts": [[analyze_shell(c).risk.value, [d.rule for d in analyze_shell(c).denials]] for c in commands],
    "trees": [bashlex.parse(c)[0].dump() for c in commands],
}))
"""


def _probe(cache: Path, variable: str = "CLOUD_AGENT_CACHE_DIR") -> dict[str, object]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLOUD_AGENT_")}
    env.update({variable: str(cache), "PYTHONPATH": str(ROOT)})
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_cached_tables_are_the_built_ones(tmp_path: Path) -> None:
    built = _probe(tmp_path)  # no cache yet: built, then written
    (table,) = tmp_path.glob("bashlex-lalr-*.json")
    written = table.stat().st_mtime_ns
    cached = _probe(tmp_path)
    assert table.stat().st_mtime_ns == written, "the second process rebuilt instead of reading"
    assert cached == built
    # ... and the policy sees through them: a pipeline reads, the shadow file is a credential.
    assert built["verdicts"][0] == ["read", []], built["verdicts"]
    assert built["verdicts"][1][1], built["verdicts"]


def test_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    built = _probe(tmp_path)
    (table,) = tmp_path.glob("bashlex-lalr-*.json")
    table.write_text('{"action": {"0": ')  # a write cut short
    assert _probe(tmp_path) == built
    assert json.loads(table.read_text())["action"], "the damaged file was not replaced"


def test_an_unwritable_cache_folder_only_costs_time(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    assert _probe(blocked / "cache")["verdicts"]


def test_by_default_the_tables_live_in_the_state_folder(tmp_path: Path) -> None:
    # The folder a task's invocation already writes (its audit log): nothing lands in the home
    # folder, which the red team watches as a task's.
    _probe(tmp_path / "state", variable="CLOUD_AGENT_STATE_DIR")
    assert [path.parent.name for path in (tmp_path / "state").rglob("bashlex-lalr-*.json")] == ["cache"]
