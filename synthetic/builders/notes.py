"""Visit notes: DocumentReference with readable text as a base64 attachment (LOINC type).

>>> import base64, random
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
>>> d = note(ctx, text="Seen today.", title="Progress note", author="Practitioner/d",
...          custodian="Organization/o", period_end="2025-01-02T09:20:00-05:00")
>>> base64.b64decode(d["content"][0]["attachment"]["data"]).decode()
'Seen today.'
"""

from __future__ import annotations

import binascii
from typing import Any

from synthetic.builders.common import coding, shared_ref
from synthetic.context import RecordContext
from synthetic.frozen import freeze
from synthetic.labels import meta
from synthetic.systems import LOINC, US_CORE_DOCUMENT_CATEGORY

PROGRESS_NOTE = freeze(
    {"coding": [coding(LOINC, "11506-3", "Progress note")], "text": "Progress note"}
)
CLINICAL_NOTE = freeze(
    [
        {
            "coding": [
                coding(
                    US_CORE_DOCUMENT_CATEGORY,
                    "clinical-note",
                    "Clinical Note",
                )
            ]
        }
    ]
)


def note(
    ctx: RecordContext,
    *,
    text: str,
    title: str,
    author: str,
    custodian: str,
    period_end: str,
    security: tuple[dict[str, str], ...] | None = None,
) -> dict[str, Any]:
    """A final, current visit note for the current encounter.

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> note(c, text="x", title="t", author="Practitioner/d", custodian="Organization/o", period_end="t")["type"]["coding"][0]["code"]
    '11506-3'
    """
    data = binascii.b2a_base64(text.encode("utf-8"), newline=False).decode("ascii")
    return {
        "resourceType": "DocumentReference",
        "id": ctx.new_id("doc"),
        "meta": meta("DocumentReference", security),
        "status": "current",
        "docStatus": "final",
        "type": PROGRESS_NOTE,
        "category": CLINICAL_NOTE,
        "subject": ctx.subject,
        "date": period_end,
        "author": [shared_ref(author)],
        "custodian": shared_ref(custodian),
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": data,
                    "title": title,
                    "creation": period_end,
                }
            }
        ],
        "context": {
            "encounter": [ctx.encounter],
            "period": {"start": ctx.when, "end": period_end},
        },
    }
