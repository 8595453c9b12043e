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

from synthetic.builders.common import INTERP, LAB_REPORT, LABORATORY, qty, qty_tables, shared_ref
from synthetic.catalog import LabPanelDef, LabTestDef
from synthetic.context import RecordContext
from synthetic.dates import instant
from synthetic.errors import ArgumentError
from synthetic.frozen import FrozenDict, FrozenList, freeze
from synthetic.ids import numbered
from synthetic.labels import meta

HIGH, LOW, NORMAL = INTERP["H"], INTERP["L"], INTERP["N"]


ResultSpec = tuple[Any, bool, "str | None", Any, Any, "list[Any] | None", Any]
_SPECS: dict[tuple[int, str], tuple[LabPanelDef, tuple[ResultSpec, ...], list[Any]]] = {}


def result_spec(test: LabTestDef, sex: str) -> ResultSpec:
    """(code, coded?, unit, low, high, reference ranges or None, quantity tables) of ``test``'s
    result for ``sex`` (the ``any`` limits when the test has none for that sex; the unit's
    :func:`~synthetic.builders.common.qty_tables`, None for a coded test).

    >>> from synthetic.catalog import Dist
    >>> t = LabTestDef("4548-4", {"text": "A1c"}, "%", False, {"any": Dist(5.4, 0.3, 3, 20, 1)},
    ...                {"any": []}, {"any": 4.0}, {"any": 5.6})
    >>> result_spec(t, "female")[:6]
    ({'text': 'A1c'}, False, '%', 4.0, 5.6, None)
    """
    if test.coded:
        return test.code, True, None, None, None, None, None
    key = sex if sex in test.low else "any"
    rr = test.ref_range.get(key)
    lo, hi = test.low.get(key), test.high.get(key)
    return test.code, False, test.unit, lo, hi, rr or None, qty_tables(test.unit)  # type: ignore[arg-type]


def panel_specs(panel: LabPanelDef, sex: str) -> tuple[tuple[ResultSpec, ...], list[Any]]:
    """:func:`result_spec` of each test of ``panel``, and the specimen's note (shared, frozen);
    cached per panel and sex (bounded).

    >>> p = LabPanelDef("x", {}, "X", {}, "tube", "venipuncture", 0, None, ())
    >>> panel_specs(p, "male")
    ((), [{'text': 'venipuncture, tube'}])
    """
    key = (id(panel), sex)
    hit = _SPECS.get(key)
    if hit is not None and hit[0] is panel:  # the entry keeps its panel alive: ids stay unique
        return hit[1], hit[2]
    specs = tuple(result_spec(t, sex) for t in panel.tests)
    note = freeze([{"text": f"{panel.collection}, {panel.specimen_note}"}])
    if len(_SPECS) < 1024:
        _SPECS[key] = (panel, specs, note)
    return specs, note


_METAS: dict[int, tuple[Any, tuple[dict[str, Any], ...]]] = {}


def order_metas(security: tuple[dict[str, str], ...] | None) -> tuple[dict[str, Any], ...]:
    """The ``meta`` of an order's ServiceRequest, Specimen, results and report with these
    security labels (see :func:`synthetic.labels.meta`; cached per labels tuple, bounded).

    >>> [m["profile"][0].rsplit("/", 1)[1] for m in order_metas(None)]
    ['us-core-servicerequest', 'us-core-specimen', 'us-core-observation-lab', 'us-core-diagnosticreport-lab']
    """
    hit = _METAS.get(id(security))
    if hit is not None and hit[0] is security:  # the entry keeps its tuple alive
        return hit[1]
    metas = tuple(meta(k, security) for k in ("ServiceRequest", "Specimen", "lab", "report-lab"))
    if len(_METAS) < 1024:
        _METAS[id(security)] = (security, metas)
    return metas


OrderParts = tuple[tuple[ResultSpec, ...], list[Any], tuple[dict[str, Any], ...]]
_PARTS: dict[tuple[int, str, int], tuple[LabPanelDef, Any, OrderParts]] = {}


def order_parts(
    panel: LabPanelDef, sex: str, security: tuple[dict[str, str], ...] | None
) -> OrderParts:
    """:func:`panel_specs` of ``panel`` for ``sex`` (the result specs and the specimen's note)
    and :func:`order_metas` of ``security``, in one cached lookup per order (bounded).

    >>> p = LabPanelDef("x", {}, "X", {}, "tube", "venipuncture", 0, None, ())
    >>> specs, note, metas = order_parts(p, "male", None)
    >>> (specs, note) == panel_specs(p, "male"), metas is order_metas(None)
    (True, True)
    """
    key = (id(panel), sex, id(security))
    hit = _PARTS.get(key)
    # the entry keeps its panel and labels alive: their ids stay unique
    if hit is not None and hit[0] is panel and hit[1] is security:
        return hit[2]
    parts = (*panel_specs(panel, sex), order_metas(security))
    if len(_PARTS) < 4096:
        _PARTS[key] = (panel, security, parts)
    return parts


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
    specs, note, (sr_meta, sp_meta, lab_meta, dr_meta) = order_parts(panel, sex, security)
    if len(values) != len(specs):  # checked before anything is written
        raise ArgumentError(
            f"values: expected one per test of panel {panel.key!r} ({len(specs)}), "
            f"got {len(values)}"
        )
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
            "meta": sr_meta,
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
            "meta": sp_meta,
            "status": "available",
            "type": panel.specimen_type,
            "subject": ctx.subject,
            "receivedTime": received,
            "request": sr_ref,
            "collection": {
                "collector": shared_ref(collector),
                "collectedDateTime": ctx.when,
            },
            "note": note,
        }
    )
    results = []
    counters = ctx.counters
    n = counters.get("obs", 0)
    prefix = f"{ctx.base}-obs-"
    # results of one shape (value type, interpretation, ranges) have the same keys in the same
    # order: the next one is a copy of the last (much cheaper than a new dict, key by key)
    last: dict[tuple[bool, bool, bool], dict[str, Any]] = {}
    for (code, coded, unit, lo, hi, rr, tables), value in zip(specs, values):  # noqa: B905 (lengths checked above)
        # same ids as ctx.new_id("obs")
        oid = numbered(prefix, n)
        n += 1
        interp = None
        if not coded:
            if hi is not None and value > hi:
                interp = HIGH
            elif lo is not None and value < lo:
                interp = LOW
            elif lo is not None or hi is not None:
                interp = NORMAL
            t = type(value)  # 72 and 72.0 are equal keys: a quantity table per type
            table = tables[1] if t is float else tables[0] if t is int else None
            value = (table is not None and table.get(value)) or qty(value, unit)
        shape = (coded, interp is not None, rr is not None)
        prev = last.get(shape)
        if prev is not None:
            o = prev.copy()
            o["id"] = oid
            o["code"] = code
            o["valueCodeableConcept" if coded else "valueQuantity"] = value
            if interp is not None:
                o["interpretation"] = interp
            if rr is not None:
                o["referenceRange"] = rr
        else:
            o = {  # type: ignore[no-redef]
                "resourceType": "Observation",
                "id": oid,
                "meta": lab_meta,
                "basedOn": sr_ref,
                "status": "final",
                "category": LABORATORY,
                "code": code,
                "subject": ctx.subject,
                "encounter": ctx.encounter,
                "effectiveDateTime": ctx.when,
                "issued": issued,
                "valueCodeableConcept" if coded else "valueQuantity": value,
            }
            if interp is not None:
                o["interpretation"] = interp
            o["specimen"] = sp_ref
            if rr is not None:
                o["referenceRange"] = rr
        last[shape] = o
        ctx.out.append(o)
        results.append({"reference": f"Observation/{oid}"})
    counters["obs"] = n
    ctx.out.append(
        {
            "resourceType": "DiagnosticReport",
            "id": ctx.new_id("dr"),
            "meta": dr_meta,
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
