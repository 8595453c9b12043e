"""Secondary insurance: a second Coverage (``order`` 2) beside some primary plans, as the
registration workflow records the order of benefits. Which primary plans have one, and which
payer, is content (``secondary.toml``: Medicare patients who also have Medicaid). The choice is
a hash of the patient and the plan, so the patient's random stream is untouched.

>>> from synthetic.engine import engine_for
>>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
>>> covs = [c for i in range(200) for c in e.patient(i).by_type("Coverage")]
>>> sorted({c.get("order", 0) for c in covs})
[0, 1, 2]
"""

from __future__ import annotations

import tomllib
import zlib
from functools import cache
from importlib import resources
from typing import Any

from synthetic.builders import billing
from synthetic.context import RecordContext
from synthetic.visit.state import PatientState


@cache
def table() -> dict[str, Any]:
    """The secondary-insurance pairs (``synthetic/content/data/secondary.toml``).

    >>> table()["pair"][0]["secondary"]
    'medicaid'
    """
    text = (resources.files("synthetic.content") / "data" / "secondary.toml").read_text("utf-8")
    return tomllib.loads(text)


def add(eng: Any, ctx: RecordContext, st: PatientState) -> None:
    """Add the secondary Coverages of the patient's primary plans (see the module text).

    The secondary plan covers the primary's period; visits are billed to the primary, and what
    the primary leaves to the patient is billed to the secondary (a crossover claim, see
    :meth:`synthetic.visit.remittance.Remittance.crossover`).

    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    >>> r = next(e.patient(i) for i in range(200) if any(c.get("order") == 2 for c in e.patient(i).by_type("Coverage")))
    >>> [c["payor"][0]["display"] for c in sorted(r.by_type("Coverage"), key=lambda c: c.get("order", 0)) if "order" in c]
    ['Medicare Part B', 'State Medicaid']
    """
    pairs = {p["primary"]: p for p in table()["pair"]}
    payers = {p.key: p for p in eng.cat.payers}
    for _, _, cid, payer in st.coverages:
        pair = pairs.get(payer.key)
        if pair is None or pair["secondary"] not in payers:
            continue
        h = zlib.crc32(f"{ctx.base}:{cid}".encode())
        if h / 4294967296.0 >= pair["share"]:
            continue
        primary = next(r for r in ctx.out if r["resourceType"] == "Coverage" and r["id"] == cid)
        second = payers[pair["secondary"]]
        cov = billing.coverage(
            ctx,
            type_cc=second.type_code,
            payor=f"Organization/{eng.practice.payer_org[second.key]}",
            subscriber_id=f"{second.prefix}{10**8 + h % (9 * 10**8)}",
            start=primary["period"]["start"],
            payer_name=second.name,
        )
        cov["status"] = primary["status"]
        cov["period"] = dict(primary["period"])
        primary["order"] = 1
        cov["order"] = 2
        ctx.add(cov)
        st.secondary[cid] = (cov["id"], second)
