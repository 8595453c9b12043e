"""ZIP code generalisation under HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(B).

The first three digits of a ZIP code may stay only if all ZIP codes sharing them cover more
than 20,000 people (per current Census data); otherwise they become ``000``. The restricted
list is the one HHS guidance gives from the 2000 Census, as docs/privacy.md fixes it.

>>> generalize_zip("43215-1234"), generalize_zip("03601"), generalize_zip("K1A 0B1")
('432', '000', None)
"""

from __future__ import annotations

import re

__all__ = ["RESTRICTED_ZIP3", "generalize_zip"]

RESTRICTED_ZIP3: frozenset[str] = frozenset(
    {
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    }
)
"""ZIP3 areas with 20,000 people or fewer: reported as ``000``."""

_US_ZIP = re.compile(r"^\s*(\d{3})\d{2}(?:-?\d{4})?\s*$")


def generalize_zip(postal_code: str) -> str | None:
    """The Safe Harbor form of a US ZIP code: its ZIP3, ``"000"`` for a restricted area, or
    None when the value is not a US ZIP (it cannot be generalised, so it must go).

    >>> generalize_zip("20301"), generalize_zip("12345")
    ('000', '123')
    """
    match = _US_ZIP.match(postal_code) if isinstance(postal_code, str) else None
    if match is None:
        return None
    zip3 = match.group(1)
    return "000" if zip3 in RESTRICTED_ZIP3 else zip3
