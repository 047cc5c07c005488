"""How task results and audit records look in a terminal."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from contract import TaskResult, TaskStatus

if TYPE_CHECKING:
    from executors import AuditRecord

_STATUS_STYLE = {
    TaskStatus.SUCCEEDED: "green",
    TaskStatus.FAILED: "red",
    TaskStatus.TIMED_OUT: "yellow",
    TaskStatus.DENIED: "bold red",
    TaskStatus.APPROVAL_REQUIRED: "bold yellow",
    TaskStatus.CRASHED: "bold red",
}
MAX_TABLE_ROWS = 200


def print_result(console: Console, result: TaskResult) -> None:
    style = _STATUS_STYLE.get(result.status, "white")
    header = Text.assemble(
        (result.status.value, style),
        f"  {result.invocation}",
        f"  risk={result.risk.value if result.risk else '-'}",
        f"  {result.duration_ms:.0f} ms" if result.duration_ms is not None else "",
        f"  exit={result.exit_code}" if result.exit_code is not None else "",
    )
    console.print(header, highlight=False)
    if result.output:
        console.print(result.output.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    if result.data is not None and not result.output:
        _print_data(console, result.data)
    if result.stderr and result.stderr.strip():
        console.print(Text(result.stderr.rstrip("\n"), style="dim"), soft_wrap=True)
    if result.truncated:
        sizes = []
        if result.original_bytes:
            sizes.append(f"{result.original_bytes} bytes")
        if result.original_rows:
            sizes.append(f"{result.original_rows} rows")
        console.print(Text(f"[truncated: the full result had {' / '.join(sizes) or 'more'}]", style="yellow"))
    for note in result.notes:
        console.print(Text(f"note: {note}", style="cyan"))
    if result.error:
        console.print(Text(f"{result.error.code}: {result.error.message}", style=style))


def _print_data(console: Console, data: Any) -> None:
    if isinstance(data, dict) and isinstance(data.get("result_sets"), list):
        for result_set in data["result_sets"]:
            _print_result_set(console, result_set)
        return
    console.print_json(json.dumps(data, default=str, ensure_ascii=False))


def _print_result_set(console: Console, result_set: dict[str, Any]) -> None:
    columns = result_set.get("columns") or []
    statement = result_set.get("statement", "")
    if not columns:
        console.print(Text(f"{statement}: {result_set.get('row_count', 0)} rows affected", style="dim"))
        return
    table = Table(title=statement, title_justify="left", title_style="dim", show_lines=False)
    for column in columns:
        table.add_column(str(column), overflow="fold")
    rows = result_set.get("rows") or []
    for row in rows[:MAX_TABLE_ROWS]:
        table.add_row(*("NULL" if value is None else str(value) for value in row))
    console.print(table)
    shown = min(len(rows), MAX_TABLE_ROWS)
    total = result_set.get("row_count", len(rows))
    if shown < total:
        console.print(Text(f"({shown} of {total} rows shown; use --json for all returned rows)", style="dim"))


def print_audit(console: Console, records: list[AuditRecord]) -> None:
    """One line per record (two when it has a reason), newest first: readable at any width."""
    for record in records:
        what = record.command or json.dumps(record.params, ensure_ascii=False)
        line = Text.assemble(
            (f"{record.seq:>6} ", "dim"),
            f"{record.recorded_at:%Y-%m-%d %H:%M:%S}  ",
            (f"{record.event:<17}", _EVENT_STYLE.get(record.event, "")),
            f" {record.task_id}  {record.actor}  {record.agent_id or '-'}@{record.environment or '-'}  ",
            f"{record.task_type or '-'}/{record.risk or '-'}",
            f"  {record.status}" if record.status else "",
            f"  {record.duration_ms:.0f} ms" if record.duration_ms is not None else "",
            "  ",
            (what, "bold"),
        )
        console.print(line, highlight=False, soft_wrap=True)
        if record.message:
            console.print(Text(f"{'':>7}→ {record.message}", style="dim"), soft_wrap=True)


_EVENT_STYLE = {
    "finished": "green",
    "denied": "bold red",
    "approval_required": "yellow",
    "rejected": "red",
    "started": "",
}
