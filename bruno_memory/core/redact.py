"""Redaction: personal data in text replaced by a label (pure).

One redactor serves the anonymized export (``managers.archive.Anonymizer``) and the
redact-on-write policy (a YAML ``redact:`` section, ``stack.redaction``). Any callable
``str -> str`` is a ``Redactor``; ``RegexRedactor`` is the default: e-mail addresses,
URLs, card numbers (only digit runs passing the Luhn check, so order numbers stay), IPv4
and IPv6 addresses, phone numbers, and the names it is given (whole words, any case).
Names and addresses in free text beyond a list need a smarter redactor (an NER model).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from bruno_memory.core.errors import BrunoMemoryConfigError


class Redactor(Protocol):
    """Turns a text into the same text without personal data."""

    def __call__(self, text: str) -> str: ...


CARD = r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"
"""13 to 19 digits, optionally grouped by spaces or dashes."""

PATTERNS: dict[str, Sequence[str]] = {
    "email": (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",),
    "url": (r"\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)]",),
    "card": (CARD,),
    "ip": (
        r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
        r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b",
        r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?(?![\w:])",
    ),
    "phone": (r"(?<![\w+])\+?\d[\d\s().-]{6,}\d(?!\w)",),
}
"""Per kind, its patterns, applied in this order (a card before the phone pattern would
take its digits; an e-mail before the URL inside it)."""

KINDS: tuple[str, ...] = ("email", "url", "card", "ip", "phone", "name")


def luhn(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum of card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if luhn(digits) else match.group()


def _step(pattern: re.Pattern[str], kind: str) -> Callable[[str], str]:
    """Text -> text with each match of ``pattern`` replaced by ``[kind]`` (a card number
    only when it passes the Luhn check)."""
    if kind == "card":
        return functools.partial(pattern.sub, _card)
    return functools.partial(pattern.sub, f"[{kind}]")


class RegexRedactor:
    """Replaces every match of each kind by its label (``[email]``, ``[url]``, ``[card]``,
    ``[ip]``, ``[phone]``, ``[name]``).

    Args:
        kinds: which kinds to redact (default: all of ``KINDS``).
        names: names to redact as whole words, case-insensitively (``[name]``).
    """

    def __init__(self, kinds: Iterable[str] = KINDS, names: Iterable[str] = ()) -> None:
        chosen = set(kinds)
        unknown = chosen - set(KINDS)
        if unknown:
            raise BrunoMemoryConfigError(
                f"unknown redaction kind {sorted(unknown)[0]!r}: expected some of "
                f"{', '.join(KINDS)}", path="redact.kinds")
        self._steps: list[Callable[[str], str]] = [
            _step(re.compile(p), kind)
            for kind, patterns in PATTERNS.items() if kind in chosen for p in patterns
        ]
        listed = sorted({n.strip() for n in names if n.strip()}, key=len, reverse=True)
        if listed and "name" in chosen:
            words = "|".join(re.escape(n) for n in listed)
            listed_names = re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)
            self._steps.append(functools.partial(listed_names.sub, "[name]"))

    def __call__(self, text: str) -> str:
        for step in self._steps:
            text = step(text)
        return text
