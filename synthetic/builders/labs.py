"""Lab orders: ServiceRequest -> Specimen -> result Observations -> DiagnosticReport.

>>> import random
>>> from synthetic.catalog import Dist, LabPanelDef, LabTestDef
>>> from synthetic.context import RecordContext
>>> t = LabTestDef("4548-4", {"text": "A1c"}, "%", False, {"any": Dist(5.4, 0.3, 3, 20, 1)},
...                {"any": []}, {"any": 4.0}, {"any": 5.6})
>>> panel = LabPanelDef("a1c", {"text": "A1c"}, "A1c", {"text": "Blood"}, "lavender", "venipuncture", 1, None, (t,))
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when, ctx.day = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00", 739253
>>> lab_order(ctx, panel, [7.1], requester="Practitioner/d", collector="Practitioner/m", offset="-05:00")
>>> [r["resourceType"] for r in ctx.out]
['ServiceRequest', 'Specimen', 'Observation', 'DiagnosticReport']
>>> ctx.out[2]["interpretation"][0]["coding"][0]["code"]
'H'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders.common import INTERP, LAB_REPORT, LABORATORY, qty, shared_ref
from synthetic.catalog import LabPanelDef, LabTestDef
from synthetic.context import RecordContext
from synthetic.dates import instant
from synthetic.frozen import FrozenDict, FrozenList
from synthetic.labels import meta


def _value(test: LabTestDef, value: Any, sex: str) -> tuple[str, Any, list[Any] | None, list[Any]]:
    if test.coded:
        return "valueCodeableConcept", value, None, []
    key = sex if sex in test.low else "any"
    lo, hi = test.low.get(key), test.high.get(key)
    interp = None
    if hi is not None and value > hi:
        interp = INTERP["H"]
    elif lo is not None and value < lo:
        interp = INTERP["L"]
    elif lo is not None or hi is not None:
        interp = INTERP["N"]
    return "valueQuantity", qty(value, test.unit), interp, test.ref_range.get(key, [])


def lab_order(
    ctx: RecordContext,
    panel: LabPanelDef,
    values: list[Any],
    *,
    requester: str,
    collector: str,
    offset: str,
    sex: str = "any",
    security: tuple[dict[str, str], ...] | None = None,
    last_day: int | None = None,
    received: str | None = None,
) -> None:
    """Append the order, specimen, one result per test (``values`` in test order) and the report.

    Results are issued ``turnaround_days`` after collection (at 14:00 practice time), but never
    after ``last_day`` (the reference date, or the patient's death).

    >>> import random
    >>> from synthetic.catalog import LabPanelDef
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when, c.day = {"reference": "Encounter/e"}, "t", 739000
    >>> lab_order(c, LabPanelDef("x", {}, "X", {}, "tube", "venipuncture", 0, None, ()), [],
    ...           requester="Practitioner/d", collector="Practitioner/m", offset="-05:00")
    >>> c.out[-1]["result"]
    []
    """
    sr_id = ctx.new_id("sr")
    sp_id = ctx.new_id("spec")
    # shared by the order's resources: frozen (see synthetic.frozen)
    sp_ref = FrozenDict(reference=f"Specimen/{sp_id}")
    sr_ref = FrozenList((FrozenDict(reference=f"ServiceRequest/{sr_id}"),))
    issue_day = ctx.day + panel.turnaround_days
    if last_day is not None and issue_day > last_day:
        issue_day = max(ctx.day, last_day)
    received = received or ctx.when  # the lab receives the specimen after its collection
    issued = instant(issue_day, 14 * 60, offset) if issue_day > ctx.day else received
    ctx.out.append(
        {
            "resourceType": "ServiceRequest",
            "id": sr_id,
            "meta": meta("ServiceRequest", security),
            "status": "completed",
            "intent": "order",
            "category": LABORATORY,
            "code": panel.code,
            "subject": ctx.subject,
            "encounter": ctx.encounter,
            "authoredOn": ctx.when,
            "requester": shared_ref(requester),
        }
    )
    ctx.out.append(
        {
            "resourceType": "Specimen",
            "id": sp_id,
            "meta": meta("Specimen", security),
            "status": "available",
            "type": panel.specimen_type,
            "subject": ctx.subject,
            "receivedTime": received,
            "request": sr_ref,
            "collection": {
                "collector": shared_ref(collector),
                "collectedDateTime": ctx.when,
            },
            "note": [{"text": f"{panel.collection}, {panel.specimen_note}"}],
        }
    )
    results = []
    lab_meta = meta("lab", security)
    counters = ctx.counters
    n = counters.get("obs", 0)
    prefix = f"{ctx.base}-obs-"
    for test, value in zip(panel.tests, values, strict=True):
        oid = prefix + str(n)  # same ids as ctx.new_id("obs"), without a call per result
        n += 1
        vkey, v, interp, rr = _value(test, value, sex)
        o: dict[str, Any] = {
            "resourceType": "Observation",
            "id": oid,
            "meta": lab_meta,
            "basedOn": sr_ref,
            "status": "final",
            "category": LABORATORY,
            "code": test.code,
            "subject": ctx.subject,
            "encounter": ctx.encounter,
            "effectiveDateTime": ctx.when,
            "issued": issued,
            vkey: v,
        }
        if interp is not None:
            o["interpretation"] = interp
        o["specimen"] = sp_ref
        if rr:
            o["referenceRange"] = rr
        ctx.out.append(o)
        results.append({"reference": f"Observation/{oid}"})
    counters["obs"] = n
    ctx.out.append(
        {
            "resourceType": "DiagnosticReport",
            "id": ctx.new_id("dr"),
            "meta": meta("report-lab", security),
            "basedOn": sr_ref,
            "status": "final",
            "category": LAB_REPORT,
            "code": panel.code,
            "subject": ctx.subject,
            "encounter": ctx.encounter,
            "effectiveDateTime": ctx.when,
            "issued": issued,
            "performer": [shared_ref(requester)],
            "specimen": [sp_ref],
            "result": results,
        }
    )
