"""Masking what must not leave the process before anything is sent to a language model: secrets
irreversibly, an environment's sensitive names reversibly (placeholders mapped back only here)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from models.domain._errors import ModelsError


class InvalidRedaction(ModelsError):
    """A ``re:`` entry of an environment's ``redact`` list does not compile."""


#: Placeholders this module issues: ``<HOST_1>``, ``<IP_2>``...
PLACEHOLDER = re.compile(r"<(?:IP|HOST|EMAIL|USER|ID)_\d+>")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?$")
_IPV6 = re.compile(r"^[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}$", re.IGNORECASE)
_USER = re.compile(r"^(?:\d+|(?:u|uid|user|usr)[-_:.]?\w+)$", re.IGNORECASE)


def _kind_of(value: str) -> str:
    """The placeholder kind of a masked value, from its shape (tells the model what it was)."""
    if _IPV4.match(value) or _IPV6.match(value):
        return "IP"
    if "@" in value:
        return "EMAIL"
    if _USER.match(value):
        return "USER"
    if re.search(r"[A-Za-z]", value) and re.search(r"[.-]", value) and " " not in value:
        return "HOST"
    return "ID"


class Masker:
    """Masks what must not leave the process before anything is sent to a language model.

    Two kinds of values are masked, in this order:

    * secrets, irreversibly: ``scrub`` (the executors' ``redact_text``: every registered secret
      and inline credentials such as ``Authorization: Bearer …``) turns them into ``***``; a
      secret is never needed back, so not even the local map holds it;
    * the environment's sensitive names (its ``redact`` list: literal strings, or regular
      expressions written ``re:…``), reversibly: each distinct value becomes a placeholder such as
      ``<HOST_1>`` or ``<IP_2>``, the same one everywhere, so the model can reason about "the
      host" and name it in its reply; ``unmask`` maps the reply back. The map lives in this object
      only and is never serialised.

    Matching ignores case (a host name in upper case is the same host); over-masking is the
    safe side. Text that already looks like one of our placeholders (a hostile log line) is
    defused (``‹HOST_1›``) so that unmasking cannot be steered to a real value.

    Raises:
        InvalidRedaction: when a ``re:`` entry does not compile.
    """

    def __init__(self, redact: Sequence[str] = (), *, scrub: Callable[[str], str] | None = None):
        literals = sorted({entry for entry in redact if entry and not entry.startswith("re:")}, key=len, reverse=True)
        alternatives = [re.escape(literal) for literal in literals]
        for entry in redact:
            if not entry.startswith("re:"):
                continue
            try:
                re.compile(entry[3:])
            except re.error as exc:
                raise InvalidRedaction(f"redact entry {entry!r} is not a regular expression: {exc}") from exc
            alternatives.append(f"(?:{entry[3:]})")
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None
        self._scrub = scrub
        self._forward: dict[str, str] = {}
        self._reverse: dict[str, str] = {}
        self._issued: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"Masker({len(self._reverse)} placeholders)"  # never the values

    @property
    def placeholders(self) -> dict[str, str]:
        """``{placeholder: original}`` issued so far (a copy; local use only)."""
        return dict(self._reverse)

    def mask(self, text: str) -> str:
        """``text`` with secrets scrubbed and sensitive names replaced by placeholders (idempotent)."""
        if not text:
            return text
        text = PLACEHOLDER.sub(lambda m: m.group(0) if m.group(0) in self._reverse else f"‹{m.group(0)[1:-1]}›", text)
        if self._scrub is not None:
            text = self._scrub(text)
        if self._pattern is None:
            return text
        return self._pattern.sub(self._placeholder, text)

    def _placeholder(self, match: re.Match[str]) -> str:
        value = match.group(0)
        if not value:
            return value  # a pattern that matches the empty string must not mask between letters
        key = value.casefold()
        found = self._forward.get(key)
        if found is None:
            kind = _kind_of(value)
            self._issued[kind] += 1
            found = f"<{kind}_{self._issued[kind]}>"
            self._forward[key] = found
            self._reverse[found] = value
        return found

    def unmask(self, text: str) -> str:
        """``text`` with our placeholders replaced by the values they stand for."""
        if not text or not self._reverse:
            return text
        return PLACEHOLDER.sub(lambda m: self._reverse.get(m.group(0), m.group(0)), text)

    def mask_value(self, value: Any) -> Any:
        """``mask`` over every string (keys included) of JSON-like ``value``."""
        return _map_strings(value, self.mask)

    def unmask_value(self, value: Any) -> Any:
        """``unmask`` over every string (keys included) of JSON-like ``value``."""
        return _map_strings(value, self.unmask)


def _map_strings(value: Any, function: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return function(value)
    if isinstance(value, Mapping):
        return {function(str(k)): _map_strings(v, function) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(v, function) for v in value]
    return value
