"""Result-size limits: cut what is too big, and say so (``truncated`` and the original size)."""

from __future__ import annotations

import json
from typing import Any

TRUNCATION_NOTE = "\n[... output truncated: {kept} of {total} bytes shown ...]\n"


def cap_text(text: str, max_bytes: int) -> tuple[str, bool, int]:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes on a character boundary.

    Returns the kept text, whether it was cut, and the original size in bytes.
    """
    encoded = text.encode("utf-8", errors="surrogatepass")
    if len(encoded) <= max_bytes:
        return text, False, len(encoded)
    kept = encoded[:max_bytes].decode("utf-8", errors="ignore")
    return kept, True, len(encoded)


def json_size(value: Any) -> int:
    return len(json.dumps(value, default=str, ensure_ascii=False).encode("utf-8", errors="surrogatepass"))


def cap_rows(rows: list[Any], max_rows: int) -> tuple[list[Any], bool, int]:
    if len(rows) <= max_rows:
        return rows, False, len(rows)
    return rows[:max_rows], True, len(rows)


def cap_data_bytes(data: Any, max_bytes: int) -> tuple[Any, bool, int]:
    """Shrink the longest lists inside ``data`` until its JSON fits in ``max_bytes``.

    Rows are dropped from the end of lists (never cut mid-value); a single string larger than the
    limit is cut like text. Returns the data, whether anything was dropped, and the original size.
    """
    original = json_size(data)
    if original <= max_bytes:
        return data, False, original
    box = {"root": _copy(data)}
    for _ in range(64):
        if json_size(box["root"]) <= max_bytes:
            break
        target = _largest_container(box)
        if target is None:
            break
        container, key = target
        value = container[key]
        if isinstance(value, list):
            container[key] = value[: len(value) // 2]
        else:
            container[key], _, _ = cap_text(value, max(0, len(value.encode("utf-8", "ignore")) // 2))
    return box["root"], True, original


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _largest_container(data: Any) -> tuple[Any, Any] | None:
    """The (container, key) holding the largest list or string in ``data``."""
    best: tuple[int, Any, Any] | None = None
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(value, list | str) and len(value) > 1:
                size = json_size(value)
                if best is None or size > best[0]:
                    best = (size, node, key)
            if isinstance(value, dict | list):
                stack.append(value)
    return None if best is None else (best[1], best[2])
