"""Social history as Observations (never Conditions): smoking status, AUDIT-C alcohol score.

>>> import random
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
>>> o = smoking_status(ctx, code={"text": "Tobacco smoking status"}, answer={"text": "Never"})
>>> o["category"][0]["coding"][0]["code"], o["valueCodeableConcept"]["text"]
('social-history', 'Never')
"""

from __future__ import annotations

from typing import Any

from synthetic.builders.common import SOCIAL_HISTORY, SURVEY
from synthetic.context import RecordContext
from synthetic.labels import meta


def smoking_status(
    ctx: RecordContext, *, code: dict[str, Any], answer: dict[str, Any]
) -> dict[str, Any]:
    """Tobacco smoking status (72166-2) with a SNOMED answer.

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> smoking_status(c, code={}, answer={"text": "Ex-smoker"})["status"]
    'final'
    """
    return {
        "resourceType": "Observation",
        "id": ctx.new_id("obs"),
        "meta": meta("smoking"),
        "status": "final",
        "category": SOCIAL_HISTORY,
        "code": code,
        "subject": ctx.subject,
        "encounter": ctx.encounter,
        "effectiveDateTime": ctx.when,
        "performer": ctx.performer,
        "valueCodeableConcept": answer,
    }


def score(
    ctx: RecordContext, *, code: dict[str, Any], value: int, survey: bool = True
) -> dict[str, Any]:
    """A scored questionnaire result (AUDIT-C, PHQ-9...) as an integer Observation.

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> score(c, code={"text": "AUDIT-C"}, value=3)["valueInteger"]
    3
    """
    return {
        "resourceType": "Observation",
        "id": ctx.new_id("obs"),
        "meta": meta("social"),
        "status": "final",
        "category": SURVEY if survey else SOCIAL_HISTORY,
        "code": code,
        "subject": ctx.subject,
        "encounter": ctx.encounter,
        "effectiveDateTime": ctx.when,
        "performer": ctx.performer,
        "valueInteger": value,
    }
