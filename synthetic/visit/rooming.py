"""Visit step: the exam room the patient is roomed in, as the Encounter's room location.

The Encounter keeps the practice as its first location and gains the exam room (a Location of
physical type ``ro`` from :class:`synthetic.clinic_logs.ClinicLogs`) for the visit's period.
A video visit has no room.

>>> Rooming.name
'rooming'
"""

from __future__ import annotations

from typing import Any

from synthetic.context import RecordContext
from synthetic.visit.state import PatientState, VisitState


def current_encounter(ctx: RecordContext) -> dict[str, Any] | None:
    """The Encounter resource of the visit being documented (searched from the end).

    >>> import random
    >>> c = RecordContext("p", random.Random(0)); c.encounter = {"reference": "Encounter/e"}
    >>> c.out = [{"resourceType": "Encounter", "id": "e"}, {"resourceType": "Condition", "id": "x"}]
    >>> current_encounter(c)["id"]
    'e'
    """
    if ctx.encounter is None:
        return None
    want = ctx.encounter["reference"].removeprefix("Encounter/")
    for r in reversed(ctx.out):
        if r["resourceType"] == "Encounter" and r["id"] == want:
            return r
    return None


class Rooming:
    """Adds the exam room to the visit's Encounter.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> rooms = {l["location"]["reference"] for x in of("Encounter") for l in x["location"][1:]}
    >>> sorted(rooms)[0].startswith("Location/loc-exam-")
    True
    """

    name = "rooming"

    def __init__(self, eng: Any) -> None:
        self.eng = eng

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Room the patient (not for a video visit).

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> video = [x for x in of("Encounter") if x["class"]["code"] == "VR"]
        >>> [len(x["location"]) for x in video], all(len(x["location"]) == 2 for x in of("Encounter") if x["class"]["code"] == "AMB")
        ([1], True)
        """
        if vs.virtual:
            return
        enc = current_encounter(ctx)
        if enc is None:
            return
        room = self.eng.clinic.room_for(
            vs.physician or vs.phys_ref.removeprefix("Practitioner/"), vs.minute
        )
        enc["location"] = [
            *enc.get("location", []),
            {
                "location": {"reference": room},
                "status": "completed",
                "period": {"start": vs.start_s, "end": vs.end_s},
            },
        ]
