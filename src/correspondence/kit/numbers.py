"""Integers typed by people and programs: ASCII digits only, bounded in length and range.

Python's own parsing is too generous for request input: `str.isdigit()` accepts '²' (which `int()`
then refuses: a 500), `int()` accepts other scripts' digits, underscores, signs and surrounding
whitespace, and refuses strings of more than 4,300 digits with a ValueError. Every place that reads
an integer from a header, a query string, a path, a form name or a JSON string goes through here.
"""

from __future__ import annotations

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_DIGITS = frozenset("0123456789")
MAX_DIGITS = 20  # enough for any int64; longer input is refused before int() sees it


def is_ascii_digits(text: str, max_len: int = MAX_DIGITS) -> bool:
    """One to `max_len` characters, each 0-9."""
    return 0 < len(text) <= max_len and _DIGITS.issuperset(text)


def parse_int(text: str, lo: int = INT64[0], hi: int = INT64[1], *, signed: bool = True) -> int | None:
    """`text` as an integer in [lo, hi], or None: an optional '-' (when `signed`) then ASCII digits,
    nothing else (no '+', spaces, underscores or other scripts' digits)."""
    digits = text[1:] if signed and text.startswith("-") else text
    if not is_ascii_digits(digits):
        return None
    value = int(text)
    return value if lo <= value <= hi else None
