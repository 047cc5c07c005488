"""Keeping secrets out of results, logs and audit records.

Two nets: values under secret-looking keys (``password``, ``token``, ``Authorization``...) are
replaced wherever a mapping is shown, and every secret value the process has resolved (connection
passwords, tokens from the environment) is masked wherever it appears in free text — so a task
that prints its environment or echoes a header does not leak it either.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|authori[sz]ation|credential|private[_-]?key|cookie|"
    r"session[_-]?id|^auth$|^dsn$|^url_with_credentials$)",
    re.IGNORECASE,
)
# Secrets written inline in commands: --password=x, -pSECRET (mysql), PGPASSWORD=x, Bearer x,
# user:pass@host in URLs, redis-cli -a x.
_INLINE_SECRETS = (
    (re.compile(r"(?i)(--?(?:password|passwd|pass|token|api-key|secret)[= ])(\S+)"), r"\1" + MASK),
    (re.compile(r"(?i)\b([A-Z_]*(?:PASSWORD|PASSWD|TOKEN|SECRET|API_KEY)[A-Z_]*=)(\S+)"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{6,})"), r"\1 " + MASK),
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)"), r"\1" + MASK + r"\3"),
    (re.compile(r"(\bmysql\b[^|;&]*?\s-p)(\S+)"), r"\1" + MASK),
    (re.compile(r"(\bredis-cli\b[^|;&]*?\s-a\s+)(\S+)"), r"\1" + MASK),
)
# Shorter values would mask ordinary words and digits all over the output.
_MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def is_secret_key(key: str) -> bool:
    return bool(key) and bool(_SECRET_KEY.search(key))


def register_secret(value: str) -> None:
    """Remember ``value`` as a secret so that ``redact_text`` masks it from now on."""
    global _pattern
    if not isinstance(value, str) or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(secret) for secret in ordered))


def holds_secret(text: str) -> bool:
    """Whether ``text`` contains a registered secret."""
    pattern = _pattern
    return bool(text) and pattern is not None and pattern.search(text) is not None


def redact_text(text: str) -> str:
    """``text`` with every registered secret and inline credential masked."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for inline, replacement in _INLINE_SECRETS:
        text = inline.sub(replacement, text)
    return text


def redact_value(value: Any, key: str = "") -> Any:
    """A copy of JSON-like ``value`` with secret keys masked and secrets in strings masked."""
    if is_secret_key(key) and value not in (None, "", [], {}):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return redact_output(value)
    return value


def redact_output(text: str) -> str:
    """Mask registered secrets only: output is data, inline-credential patterns would mangle it."""
    pattern = _pattern
    if not text or pattern is None:
        return text
    return pattern.sub(MASK, text)


def redact_output_value(value: Any) -> Any:
    """``redact_output`` over a JSON-like structure (result data)."""
    if _pattern is None:
        return value
    if isinstance(value, str):
        return redact_output(value)
    if isinstance(value, Mapping):
        return {k: redact_output_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_output_value(v) for v in value]
    return value


def task_secrets(command: str, params: Any) -> frozenset[str]:
    """Secrets a task carries itself, to mask in its own output (``PGPASSWORD=x ... env`` prints x).

    They are the credentials written inline in its command and in its params' strings (group 2 of
    each inline pattern), and the values under secret keys (an ``Authorization`` header). They are
    kept per task, not registered process-wide: a task's password is not every other task's word.
    """
    found: set[str] = set()

    def collect(value: Any, key: str = "") -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                collect(v, str(k))
        elif isinstance(value, list | tuple):
            for v in value:
                collect(v, key)
        elif isinstance(value, str):
            if is_secret_key(key):
                found.add(value)
            for inline, _ in _INLINE_SECRETS:
                for match in inline.finditer(value):
                    found.update({match.group(2), match.group(2).strip("'\"")})

    collect(command)
    collect(params)
    return frozenset(secret for secret in found if len(secret) >= _MIN_SECRET_LENGTH)


def mask_secrets(value: Any, secrets: frozenset[str]) -> Any:
    """``value`` (text or JSON-like data) with each of ``secrets`` masked."""
    if not secrets:
        return value
    pattern = re.compile("|".join(re.escape(secret) for secret in sorted(secrets, key=len, reverse=True)))

    def mask(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub(MASK, item)
        if isinstance(item, Mapping):
            return {k: mask(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [mask(v) for v in item]
        return item

    return mask(value)
