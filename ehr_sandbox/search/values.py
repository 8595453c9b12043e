"""Value forms shared by indexing and querying: normalized strings, date and number ranges
(references are parsed by :mod:`ehr_sandbox.references`).

Dates become half-open ranges of UTC epoch seconds at their precision (``2020`` is the whole
year); a date without a time zone is read as UTC (the sandbox keeps every instant with an
offset, and bare dates have no zone to honour).

>>> normalize_string("  José  ÁLVAREZ ")
'jose alvarez'
>>> lo, hi = date_range("2020")
>>> (hi - lo) / 86400
366.0
"""

from __future__ import annotations

import calendar
import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@lru_cache(maxsize=1 << 16)
def normalize_string(value: str) -> str:
    """Case- and accent-insensitive form used by string search (whitespace collapsed).

    >>> normalize_string("Ñandú")
    'nandu'
    """
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


@lru_cache(maxsize=1 << 16)
def date_range(text: str) -> tuple[float, float] | None:
    """``[lo, hi)`` in epoch seconds for a FHIR date/dateTime/instant, or None if malformed.

    >>> date_range("2021-02-03T04:05:06+01:00")
    (1612321506.0, 1612321507.0)
    >>> date_range("2021-02-30") is None
    True
    """
    m = _DATE_RE.match(text)
    if not m:
        return None
    y = int(m["y"])
    mo = int(m["m"] or 1)
    d = int(m["d"] or 1)
    if not 1 <= mo <= 12 or not 1 <= d <= calendar.monthrange(y, mo)[1]:
        return None
    if m["H"] is not None:
        hh, mm, ss = int(m["H"]), int(m["M"]), int(m["S"] or 0)
        if hh > 23 or mm > 59 or ss > 60:
            return None
        lo = float(calendar.timegm((y, mo, d, hh, mm, min(ss, 59), 0, 0, 0)))
        tz = m["tz"]
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            lo -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
        if m["f"]:
            lo += float(m["f"])
            width = 10.0 ** -(len(m["f"]) - 1)
        elif m["S"] is not None:
            width = 1.0
        else:
            width = 60.0
        return lo, lo + width
    if m["d"] is not None:
        lo = float(calendar.timegm((y, mo, d, 0, 0, 0, 0, 0, 0)))
        return lo, lo + 86400.0
    if m["m"] is not None:
        lo = float(calendar.timegm((y, mo, 1, 0, 0, 0, 0, 0, 0)))
        ny, nm = (y + 1, 1) if mo == 12 else (y, mo + 1)
        return lo, float(calendar.timegm((ny, nm, 1, 0, 0, 0, 0, 0, 0)))
    lo = float(calendar.timegm((y, 1, 1, 0, 0, 0, 0, 0, 0)))
    return lo, float(calendar.timegm((y + 1, 1, 1, 0, 0, 0, 0, 0, 0)))


def number_range(text: str) -> tuple[float, float, float] | None:
    """``(value, lo, hi)`` of a decimal at its stated precision (``5.4`` is ``[5.35, 5.45)``).

    >>> number_range("5.4")
    (5.4, 5.3500000000000005, 5.45)
    >>> number_range("abc") is None
    True
    """
    try:
        dec = Decimal(text)
    except InvalidOperation:
        return None
    if not dec.is_finite():
        return None
    exp = dec.as_tuple().exponent
    half = 0.5 * 10.0 ** int(exp) if isinstance(exp, int) else 0.0
    value = float(dec)
    return value, value - half, value + half


def is_finite(x: float) -> bool:
    """True unless ``x`` is an infinity or NaN (open-ended periods use infinities).

    >>> is_finite(math.inf)
    False
    """
    return math.isfinite(x)
