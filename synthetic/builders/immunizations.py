"""Immunization records (CVX, lot, expiry, site, route, performer).

>>> import random
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when, ctx.day = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00", 739253
>>> i = immunization(ctx, code={"text": "Influenza"}, route={"text": "IM"}, site={"text": "LD"},
...                  performer="Practitioner/n", dose_number=1)
>>> i["status"], i["patient"]["reference"], i["expirationDate"] > "2025-01-02"
('completed', 'Patient/p', True)
"""

from __future__ import annotations

from typing import Any

from synthetic.builders.common import coding
from synthetic.context import RecordContext
from synthetic.dates import iso_date
from synthetic.frozen import freeze
from synthetic.labels import meta
from synthetic.systems import V2_0443

_ADMIN = freeze([{"coding": [coding(V2_0443, "AP", "Administering Provider")]}])
_LOT_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def immunization(
    ctx: RecordContext,
    *,
    code: dict[str, Any],
    route: dict[str, Any],
    site: dict[str, Any],
    performer: str,
    dose_number: int,
    manufacturer: dict[str, Any] | None = None,
    series: str | None = None,
) -> dict[str, Any]:
    """A completed Immunization given at the current encounter.

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when, c.day = {"reference": "Encounter/e"}, "t", 739000
    >>> immunization(c, code={}, route={}, site={}, performer="Practitioner/n", dose_number=2)["protocolApplied"]
    [{'doseNumberPositiveInt': 2}]
    """
    rng = ctx.rng
    lot = f"{rng.choice(_LOT_LETTERS)}{rng.choice(_LOT_LETTERS)}{rng.randrange(1000, 10000)}"
    imm: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": ctx.new_id("imm"),
        "meta": meta("Immunization"),
        "status": "completed",
        "vaccineCode": code,
        "patient": ctx.subject,
        "encounter": ctx.encounter,
        "occurrenceDateTime": ctx.when,
        "primarySource": True,
    }
    if manufacturer is not None:
        imm["manufacturer"] = manufacturer
    imm |= {
        "lotNumber": lot,
        "expirationDate": iso_date(ctx.day + 120 + rng.randrange(400)),
        "site": site,
        "route": route,
        "performer": [{"function": _ADMIN[0], "actor": {"reference": performer}}],
        "protocolApplied": [
            {"series": series, "doseNumberPositiveInt": dose_number}
            if series
            else {"doseNumberPositiveInt": dose_number}
        ],
    }
    return imm
