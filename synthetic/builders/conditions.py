"""Conditions (problem list and encounter diagnoses) and AllergyIntolerance.

>>> import random
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
>>> c = condition(ctx, code={"text": "HTN"}, category=[], onset="2025-01-02", recorder="Practitioner/d",
...               security=None)
>>> c["clinicalStatus"]["coding"][0]["code"], c["verificationStatus"]["coding"][0]["code"]
('active', 'confirmed')
"""

from __future__ import annotations

from typing import Any

from synthetic.builders.common import ACTIVE, CONFIRMED, RESOLVED, cc
from synthetic.context import RecordContext
from synthetic.frozen import freeze
from synthetic.labels import meta
from synthetic.systems import ALLERGY_CLINICAL, ALLERGY_VERIFICATION

ALLERGY_VER = ALLERGY_VERIFICATION
_ALLERGY_ACTIVE = freeze(cc(ALLERGY_CLINICAL, "active", "Active"))
_ALLERGY_CONFIRMED = freeze(cc(ALLERGY_VER, "confirmed", "Confirmed"))


def condition(
    ctx: RecordContext,
    *,
    code: dict[str, Any],
    category: list[dict[str, Any]],
    onset: str,
    recorder: str,
    security: tuple[dict[str, str], ...] | None,
    abatement: str | None = None,
    recorded: str | None = None,
) -> dict[str, Any]:
    """A confirmed Condition recorded at the current encounter; resolved when ``abatement`` is set.

    ``recorded`` (default: the onset) is when it entered the chart; a condition that began
    before the practice's records started has an earlier onset than its recorded date.

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter = {"reference": "Encounter/e"}
    >>> r = condition(c, code={"text": "UTI"}, category=[], onset="2025-01-02", recorder="Practitioner/d",
    ...               security=None, abatement="2025-01-09")
    >>> r["clinicalStatus"]["coding"][0]["code"], r["abatementDateTime"]
    ('resolved', '2025-01-09')
    """
    kind = (
        "encounter-diagnosis"
        if category and category[0]["coding"][0]["code"] == "encounter-diagnosis"
        else "problem"
    )
    c: dict[str, Any] = {
        "resourceType": "Condition",
        "id": ctx.new_id("cond"),
        "meta": meta(kind, security),
        "clinicalStatus": RESOLVED if abatement else ACTIVE,
        "verificationStatus": CONFIRMED,
        "category": category,
        "code": code,
        "subject": ctx.subject,
        "encounter": ctx.encounter,
        "onsetDateTime": onset,
    }
    if abatement:
        c["abatementDateTime"] = abatement
    c["recordedDate"] = recorded or onset
    c["recorder"] = {"reference": recorder}
    return c


def allergy(
    ctx: RecordContext,
    *,
    code: dict[str, Any],
    category: str,
    type_: str,
    criticality: str,
    onset: str,
    recorded: str,
    recorder: str,
    reaction: tuple[dict[str, Any], str] | None,
) -> dict[str, Any]:
    """An active, confirmed AllergyIntolerance with at most one reaction.

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> a = allergy(RecordContext("p", random.Random(0)), code={"text": "Latex"}, category="environment",
    ...     type_="allergy", criticality="low", onset="2001", recorded="2020-01-01", recorder="Practitioner/d",
    ...     reaction=None)
    >>> a["patient"]["reference"], a["category"]
    ('Patient/p', ['environment'])
    """
    a: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": ctx.new_id("alg"),
        "meta": meta("AllergyIntolerance"),
        "clinicalStatus": _ALLERGY_ACTIVE,
        "verificationStatus": _ALLERGY_CONFIRMED,
        "type": type_,
        "category": [category],
        "criticality": criticality,
        "code": code,
        "patient": ctx.subject,
        "onsetDateTime": onset,
        "recordedDate": recorded,
        "recorder": {"reference": recorder},
    }
    if reaction is not None:
        manifestation, severity = reaction
        a["reaction"] = [{"manifestation": [manifestation], "severity": severity}]
    return a
