"""Vital-sign Observations (US Core vital-signs profiles, UCUM units).

>>> import random
>>> from synthetic.builders.common import qty
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
>>> obs = VisitVitals()
>>> obs.begin(ctx)
>>> obs.add(vital_meta("8867-4"), {"text": "Heart rate"}, qty(72, "/min"))
>>> parts = [{"code": {"text": "Sys"}, "valueQuantity": qty(120, "mm[Hg]")},
...          {"code": {"text": "Dia"}, "valueQuantity": qty(80, "mm[Hg]")}]
>>> obs.add_panel(vital_meta("85354-9"), {"text": "BP"}, parts)
>>> obs.end(ctx)
>>> hr, bp = ctx.out
>>> hr["id"], hr["valueQuantity"]["value"], hr["category"][0]["coding"][0]["code"]
('p-obs-0', 72, 'vital-signs')
>>> bp["id"], [c["valueQuantity"]["value"] for c in bp["component"]], ctx.new_id("obs")
('p-obs-1', [120, 80], 'p-obs-2')
"""

from __future__ import annotations

from typing import Any

from synthetic.builders.common import EXAM, VITAL_SIGNS
from synthetic.context import RecordContext
from synthetic.ids import numbered
from synthetic.labels import meta

_META: dict[str, dict[str, Any]] = {}


def vital_meta(loinc: str) -> dict[str, Any]:
    """The ``meta`` of a vital sign Observation with code ``loinc`` (shared, see
    :func:`synthetic.labels.meta`; one cached lookup).

    >>> vital_meta("8867-4")["profile"]
    ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-heart-rate']
    """
    m = _META.get(loinc)
    if m is None:
        m = meta(loinc)
        if len(_META) < 1024:
            _META[loinc] = m
    return m


class VisitVitals:
    """The vital-sign Observations of one visit, appended to the record in order.

    Between :meth:`begin` and :meth:`end` each Observation is a copy of a template holding
    the visit's fields (subject, encounter, time, performer), with its own id, ``meta``,
    code and value: a dict copy is much cheaper than building the dict key by key. Ids are
    numbered like ``ctx.new_id("obs")``. One object serves every visit of a run.

    >>> import random
    >>> ctx = RecordContext("p", random.Random(0)); ctx.when = "2025-01-02"
    >>> v = VisitVitals(); v.begin(ctx); v.add({}, {"text": "Temp"}, {"value": 37}); v.end(ctx)
    >>> ctx.out[0]["id"], ctx.out[0]["effectiveDateTime"], ctx.counters["obs"]
    ('p-obs-0', '2025-01-02', 1)
    """

    __slots__ = ("_template", "_out", "_prefix", "n")

    def __init__(self) -> None:
        self._template: dict[str, Any] = {
            "resourceType": "Observation",
            "id": "",
            "meta": None,
            "status": "final",
            "category": VITAL_SIGNS,
            "code": None,
            "subject": None,
            "encounter": None,
            "effectiveDateTime": None,
            "performer": None,
            "valueQuantity": None,
        }
        self._out: list[dict[str, Any]] = []
        self._prefix = ""
        self.n = 0

    def begin(self, ctx: RecordContext) -> None:
        """Start the vitals of the visit ``ctx`` is at (its encounter, time and performer).

        Examples
        --------
        >>> import random
        >>> from synthetic.builders.common import qty
        >>> ctx = RecordContext("p", random.Random(0))
        >>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
        >>> v = VisitVitals(); v.begin(ctx)
        >>> v.add({}, {"text": "Heart rate"}, qty(72, "/min"))
        >>> ctx.out[0]["encounter"], ctx.out[0]["effectiveDateTime"]
        ({'reference': 'Encounter/e'}, '2025-01-02T09:00:00-05:00')
        """
        t = self._template
        t["subject"], t["encounter"] = ctx.subject, ctx.encounter
        t["effectiveDateTime"], t["performer"] = ctx.when, ctx.performer
        self._out = ctx.out
        self._prefix = f"{ctx.base}-obs-"
        self.n = ctx.counters.get("obs", 0)

    def add(self, loinc_meta: dict[str, Any], code: dict[str, Any], quantity: Any) -> None:
        """Append one measured vital sign (``quantity``: a UCUM Quantity, see :func:`qty`).

        Examples
        --------
        >>> import random
        >>> from synthetic.builders.common import qty
        >>> ctx = RecordContext("p", random.Random(0))
        >>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
        >>> v = VisitVitals(); v.begin(ctx)
        >>> v.add(vital_meta("8867-4"), {"text": "Heart rate"}, qty(72, "/min"))
        >>> v.add(vital_meta("8310-5"), {"text": "Body temperature"}, qty(37.1, "Cel"))
        >>> [(o["id"], o["valueQuantity"]["value"]) for o in ctx.out]
        [('p-obs-0', 72), ('p-obs-1', 37.1)]
        """
        o = self._template.copy()
        o["id"], o["meta"], o["code"] = numbered(self._prefix, self.n), loinc_meta, code
        o["valueQuantity"] = quantity
        self._out.append(o)
        self.n += 1

    def add_panel(
        self, loinc_meta: dict[str, Any], code: dict[str, Any], components: list[Any]
    ) -> None:
        """Append a panel of components (the blood pressure: systolic and diastolic in mm[Hg]).

        Examples
        --------
        >>> import random
        >>> from synthetic.builders.common import qty
        >>> ctx = RecordContext("p", random.Random(0))
        >>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
        >>> v = VisitVitals(); v.begin(ctx)
        >>> parts = [{"code": {"text": "Sys"}, "valueQuantity": qty(120, "mm[Hg]")},
        ...          {"code": {"text": "Dia"}, "valueQuantity": qty(80, "mm[Hg]")}]
        >>> v.add_panel(vital_meta("85354-9"), {"text": "BP"}, parts)
        >>> bp = ctx.out[0]
        >>> "valueQuantity" in bp, [c["valueQuantity"]["value"] for c in bp["component"]]
        (False, [120, 80])
        """
        o = self._template.copy()
        del o["valueQuantity"]  # a panel's value is its components, in the same place
        o["id"], o["meta"], o["code"] = numbered(self._prefix, self.n), loinc_meta, code
        o["component"] = components
        self._out.append(o)
        self.n += 1

    def end(self, ctx: RecordContext) -> None:
        """Finish the visit's vitals (the record's next Observation id follows them).

        Examples
        --------
        >>> import random
        >>> from synthetic.builders.common import qty
        >>> ctx = RecordContext("p", random.Random(0))
        >>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
        >>> v = VisitVitals(); v.begin(ctx)
        >>> v.add({}, {"text": "Heart rate"}, qty(72, "/min")); v.end(ctx)
        >>> ctx.counters["obs"], ctx.new_id("obs")
        (1, 'p-obs-1')
        """
        ctx.counters["obs"] = self.n


def exam_observation(ctx: RecordContext, code: dict[str, Any], value: Any) -> dict[str, Any]:
    """An exam finding (specialty assessment) as a quantity, string or coded value.

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> exam_observation(c, {"text": "Visual acuity"}, "20/20")["valueString"]
    '20/20'
    """
    o: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ctx.new_id("obs"),
        "meta": meta("exam"),
        "status": "final",
        "category": EXAM,
        "code": code,
        "subject": ctx.subject,
        "encounter": ctx.encounter,
        "effectiveDateTime": ctx.when,
        "performer": ctx.performer,
    }
    if isinstance(value, str):
        o["valueString"] = value
    elif isinstance(value, dict) and "coding" in value:
        o["valueCodeableConcept"] = value
    elif isinstance(value, dict):
        o["valueQuantity"] = value
    else:
        o["valueInteger"] = value
    return o
