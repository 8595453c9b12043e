"""Procedures done at a visit (sandbox procedure codes or HCPCS Level II; never CPT).

>>> import random
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
>>> procedure(ctx, code={"text": "ECG"}, performer="Practitioner/d", reason=None)["status"]
'completed'
"""

from __future__ import annotations

from typing import Any

from synthetic.context import RecordContext
from synthetic.labels import meta


def procedure(
    ctx: RecordContext,
    *,
    code: dict[str, Any],
    performer: str,
    reason: str | None,
    security: tuple[dict[str, str], ...] | None = None,
) -> dict[str, Any]:
    """A completed Procedure at the current encounter (``reason``: a Condition reference).

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> procedure(c, code={"text": "ECG"}, performer="Practitioner/d", reason="Condition/c")["reasonReference"]
    [{'reference': 'Condition/c'}]
    """
    p: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": ctx.new_id("proc"),
        "meta": meta("Procedure", security),
        "status": "completed",
        "code": code,
        "subject": ctx.subject,
        "encounter": ctx.encounter,
        "performedDateTime": ctx.when,
        "performer": [{"actor": {"reference": performer}}],
    }
    if reason:
        p["reasonReference"] = [{"reference": reason}]
    return p
