"""What the SQL executors share: result sets as data, and turning driver values into JSON."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import ipaddress
import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from contract import ResultSet, SqlData
from executors._policy.sql import split_statements

__all__ = ["ResultSet", "jsonable", "result_sets_data", "split_statements"]


def result_sets_data(result_sets: Iterable[ResultSet]) -> dict[str, Any]:
    """A SQL task's ``data``: ``contract.SqlData`` as JSON."""
    return SqlData(result_sets=list(result_sets)).model_dump()


def jsonable(value: Any) -> Any:
    """A JSON-friendly form of a database value (timestamps as ISO text, decimals as numbers...)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        as_float = float(value)
        return as_float if math.isfinite(as_float) and decimal.Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode()
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(
        value, ipaddress.IPv4Network | ipaddress.IPv6Network | ipaddress.IPv4Interface | ipaddress.IPv6Interface
    ):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)
