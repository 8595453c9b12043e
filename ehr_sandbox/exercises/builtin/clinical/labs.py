"""Clinical exercises: a blood draw in the right order sent with a requisition; a POC glucose
on a day the QC failed; a positive rapid strep on the provider's order."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from ehr_sandbox.clock import instant
from ehr_sandbox.exercises.builtin.clinical.common import (
    ANOTHER_PROVIDER,
    MA,
    add_patient,
    code_of,
    identified_first,
    identify_patient,
    order_lab,
    routed_saying,
    skipped_identification,
    standing,
    tamper,
    the_patients_provider,
    withdraw_messages,
    written,
)
from ehr_sandbox.exercises.builtin.common import still_standing, then_withdrawn
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import poc_testing, specimens
from ehr_sandbox.workflows.base import RuleRefused, write
from ehr_sandbox.workflows.care import SANDBOX_OBS, loinc_concept, routed_task
from synthetic.systems import OBSERVATION_CATEGORY, SNOMED, UCUM, V2_0916

__all__ = ["BLOOD_DRAW", "POC_GLUCOSE_QC", "RAPID_STREP"]

GLUCOSE_RANGES = {k: list(v) for k, v in poc_testing.controls("glucose").items()}
"""The glucose control ranges of the content (shown to the student as on the insert)."""


def _patient_facts(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "patient_ref": p["ref"],
        "patient_id": p["id"],
        "name": p["name"],
        "dob": p["dob"],
        "mrn": p["mrn"],
    }


def _old_result(
    sandbox: Any, patient: str, loinc: str, value: float, unit: str, days: int
) -> dict[str, Any]:
    return sandbox.system_session().create(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": OBSERVATION_CATEGORY,
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": loinc_concept(loinc),
            "subject": {"reference": patient},
            "effectiveDateTime": instant(sandbox.clock.peek() - timedelta(days=days)),
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": UCUM,
                "code": unit,
            },
        }
    )


# ============================================================================ blood draw
PANELS = [("57698-3", "lipid panel"), ("24323-8", "comprehensive metabolic panel")]
OTHER = [("58410-2", "CBC"), ("4548-4", "hemoglobin A1c")]
MEALS = [
    ("F", "has had nothing but water since 9 pm"),
    ("NF", "had coffee with milk and toast at 7 am"),
]


def _setup_draw(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox, rng, age_days=rng.randint(40, 75) * 365, gender=rng.choice(["female", "male"])
    )
    chem = rng.choice(PANELS)
    other = rng.choice(OTHER)
    orders = [
        order_lab(sandbox, p["ref"], "6301-6"),
        order_lab(sandbox, p["ref"], chem[0]),
        order_lab(sandbox, p["ref"], other[0]),
    ]
    rng.shuffle(orders)
    fasting, meal = rng.choice(MEALS)
    old = _old_result(
        sandbox, p["ref"], "2093-3", rng.randint(160, 240), "mg/dL", rng.randint(200, 400)
    )
    facts = {
        **_patient_facts(p),
        "orders": [f"ServiceRequest/{o['id']}" for o in orders],
        "tests": ", ".join(sorted(["PT/INR", chem[1], other[1]])),
        "meal": meal,
        "lab": rng.choice(
            ["Regional Reference Laboratory", "Valley Clinical Lab", "County Hospital Lab"]
        ),
        "courier": rng.choice(["J. Ortiz", "M. Baker", "S. Lin", "K. Adeyemi"]),
        "old_ref": f"Observation/{old['id']}",
    }
    return Scenario(facts, answer={"fasting": fasting}, protect=(facts["old_ref"],))


def _draw_tubes(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "one specimen per tube, drawn in the CLSI order of draw, each linked to its orders and labelled with two identifiers"
    drawn = written(ctx, "Specimen", f["patient_id"])
    sps = still_standing(ctx, drawn)  # as written, of the specimens still standing
    mine = [s for s in sps if s.get("request")]
    # linked as the specimens are now: a link removed afterwards links nothing
    now = [s for s in still_standing(ctx, drawn, current=True) if s.get("request")]
    linked = {r["reference"] for s in now for r in s.get("request", [])}
    if not now or linked != set(f["orders"]):
        return Check(
            False,
            f"{len(now)} specimen(s) linked to {len(linked)} of the orders",
            expected,
            "every specimen belongs to an order",
        )
    if any(s.get("meta", {}).get("versionId") == "1" and not _by_collect(ctx, s) for s in mine):
        return Check(
            False,
            "specimens charted by hand, not through the collection workflow (order of draw unchecked)",
            expected,
            "light blue (citrate) before serum tubes, EDTA after",
        )
    unlabelled = [s for s in mine if not _labelled(s, f["name"], f["dob"])]
    if unlabelled:
        return Check(
            False,
            f"{len(unlabelled)} tube(s) without a label naming the patient and date of birth",
            expected,
            "label every tube at the bedside with two identifiers that match the chart: an "
            "unlabelled or mislabelled tube is rejected by the lab",
        )
    return Check(True, "tubes drawn and linked", expected)


def _labelled(specimen: dict[str, Any], name: str, dob: str) -> bool:
    """True when the specimen's label (its notes) carries the patient's name and date of birth.

    >>> _labelled({"note": [{"text": "Label: Ava Chen; DOB 1970-01-02"}]}, "Ava Chen", "1970-01-02")
    True
    >>> _labelled({"note": [{"text": "Label: see requisition"}]}, "Ava Chen", "1970-01-02")
    False
    """
    from ehr_sandbox.exercises import rubric

    text = " ".join(str(n.get("text", "")) for n in specimen.get("note", []))
    return rubric.mentions(text, name) and rubric.mentions(text, dob)


def _by_collect(ctx: GradingContext, specimen: dict[str, Any]) -> bool:
    from ehr_sandbox.exercises.evidence import done_by

    return done_by(ctx, specimen) == "specimens.collect"


def _draw_fasting(ctx: GradingContext) -> Check:
    expected = "the patient's fasting status recorded on the specimens"
    drawn = still_standing(ctx, written(ctx, "Specimen", ctx.facts["patient_id"]))
    sps = [s for s in drawn if s.get("request")]
    vals = {
        ((s.get("collection") or {}).get("fastingStatusCodeableConcept") or {})
        .get("coding", [{}])[0]
        .get("code")
        for s in sps
    }
    if vals == {ctx.answer["fasting"]}:
        return Check(True, "fasting status recorded", expected)
    return Check(
        False,
        f"fasting status {sorted(v or 'missing' for v in vals)}",
        expected,
        "ask when the patient last ate and record it",
    )


def _draw_sent(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "a requisition to the outside lab listing the specimens, and the hand-off to the named courier on each specimen"
    drawn = still_standing(ctx, written(ctx, "Specimen", f["patient_id"]))
    sps = {f"Specimen/{s['id']}" for s in drawn if s.get("request")}
    for t in standing(ctx, written(ctx, "Task", f["patient_id"]), f["patient_id"]):
        inputs = {(i.get("valueReference") or {}).get("reference") for i in t.get("input", [])}
        owner = t.get("owner") or {}
        to_lab = f["lab"] in (owner.get("display"), owner.get("reference"))
        if not to_lab and sps and sps <= inputs:
            return Check(
                False,
                "the requisition is addressed to another laboratory",
                expected,
                "send the specimens to the laboratory you were told to use: another lab has no "
                "order for them, and the results never reach the chart",
            )
        if sps and sps <= inputs and f["courier"] in str(t.get("description")):
            current = [ctx.read(s) or {} for s in sps]
            if all(
                any(
                    "custody" in str(p.get("description"))
                    and f["courier"] in str(p.get("description"))
                    for p in c.get("processing", [])
                )
                for c in current
            ):
                return Check(True, "sent with requisition and custody", expected)
    return Check(
        False,
        "no requisition with every specimen and the courier hand-off",
        expected,
        "the chain of custody starts when the specimen leaves your hands",
    )


def _draw_reference(
    att: Any,
    fasting: str | None = None,
    lab: str | None = None,
    withdraw: str | None = None,
    *,
    unlink: bool = False,
) -> list[str]:
    """The reference; ``fasting``, ``lab``: another answer or laboratory; ``withdraw``: the
    requisition then set to that status (cancelled, entered in error); ``unlink``: every
    specimen drawn then unlinked from its orders."""
    f = att.facts
    ref = identify_patient(att)
    s = att.session
    if fasting is None:
        fasting = "F" if "nothing but water" in f["meal"] else "NF"
    tubes = sorted(
        {specimens.tube_for(s.read(o)["code"]["coding"][0]["code"])["tube"] for o in f["orders"]},
        key=lambda t: specimens.tube(t)["order"],
    )
    out = specimens.collect_blood(
        s,
        ref,
        f["orders"],
        tubes=tubes,
        fasting=fasting,
        label_name=f["name"],
        label_birth_date=f["dob"],
    )
    refs = [f"Specimen/{sp['id']}" for sp in out]
    specimens.send_to_lab(s, refs, lab=lab or f["lab"], courier=f["courier"])
    if withdraw:
        withdraw_messages(att, "Task", withdraw, ref)
    for r in refs if unlink else []:
        s.update({k: v for k, v in s.read(r).items() if k != "request"}, reason="unlinked")
    return refs


def _draw_custody_elsewhere(att: Any) -> None:
    """Tubes drawn through the workflow; the requisition typed in by hand with the courier's
    name, each specimen's custody entry saying it went to the front desk instead."""
    f = att.facts
    s = att.session
    ref = identify_patient(att)
    tubes = sorted(
        {specimens.tube_for(s.read(o)["code"]["coding"][0]["code"])["tube"] for o in f["orders"]},
        key=lambda t: specimens.tube(t)["order"],
    )
    fasting = "F" if "nothing but water" in f["meal"] else "NF"
    made = specimens.collect_blood(s, ref, f["orders"], tubes=tubes, fasting=fasting, label_name=f["name"], label_birth_date=f["dob"])  # fmt: skip
    refs = [f"Specimen/{sp['id']}" for sp in made]
    s.create({"resourceType": "Task", "status": "in-progress", "intent": "order", "for": {"reference": ref}, "owner": {"display": f["lab"]},
              "description": f"Requisition: {len(refs)} specimen(s) to {f['lab']} via courier {f['courier']}",
              "input": [{"type": {"text": "specimen"}, "valueReference": {"reference": r}} for r in refs]})  # fmt: skip
    for r in refs:
        sp = s.read(r)
        sp.setdefault("processing", []).append(
            {"description": "custody: left at the front desk for pickup"}
        )
        s.update(sp)


def _draw_other_lab(att: Any) -> None:
    """Everything right, but the requisition addressed to a laboratory the orders do not name."""
    labs = ["Regional Reference Laboratory", "Valley Clinical Lab", "County Hospital Lab"]
    _draw_reference(att, lab=next(x for x in labs if x != att.facts["lab"]))


def _draw_assumed_fasting(att: Any) -> None:
    """Typical mistake: fasting status not asked (recorded as 'not given')."""
    _draw_reference(att, fasting="NG")


FASTING_SYSTEM = V2_0916


def _draw_tag_by_hand(att: Any, *, reverse: bool = True, label: str | None = None) -> None:
    """The tubes charted by hand in reverse order of draw (citrate last; ``reverse=False``: in
    the right order), each linked to its orders and labelled (``label``: with that text instead
    of the patient's name and DOB), with the specimens.collect tag typed in."""
    f = att.facts
    ref = identify_patient(att)
    s = att.session
    need: dict[str, list[str]] = {}
    for o in f["orders"]:
        need.setdefault(
            specimens.tube_for(s.read(o)["code"]["coding"][0]["code"])["tube"], []
        ).append(o)
    tubes = sorted(need, key=lambda t: specimens.tube(t)["order"], reverse=reverse)
    when = instant(att.sandbox.clock.peek())
    fasting = "F" if "nothing but water" in f["meal"] else "NF"
    made = []
    for i, t in enumerate(tubes):
        d = specimens.tube(t)
        made.append(
            write(
                s,
                {
                    "resourceType": "Specimen",
                    "status": "available",
                    "type": {"text": d["specimen_type"]},
                    "subject": {"reference": ref},
                    "request": [{"reference": r} for r in need[t]],
                    "receivedTime": when,
                    "collection": {
                        "collectedDateTime": when,
                        "fastingStatusCodeableConcept": {
                            "coding": [{"system": FASTING_SYSTEM, "code": fasting}]
                        },
                    },
                    "container": [
                        {
                            "description": f"{d['cap']} top tube, drawn {i + 1} of {len(tubes)}",
                            "type": {"text": f"{d['cap']} evacuated tube"},
                        }
                    ],
                    "note": [{"text": label or f"Label: {f['name']}; DOB {f['dob']}"}],
                },
                operation="specimens.collect",
            )
        )
    specimens.send_to_lab(
        s, [f"Specimen/{m['id']}" for m in made], lab=f["lab"], courier=f["courier"]
    )


def _draw_unlinked(att: Any, *, identified: bool = True) -> None:
    """Harmful: tubes drawn and sent with no order behind them (raw specimens);
    ``identified=False``: nobody identified either."""
    f = att.facts
    if identified:
        identify_patient(att)
    s = att.session
    made = [
        s.create(
            {
                "resourceType": "Specimen",
                "status": "available",
                "subject": {"reference": f["patient_ref"]},
                "type": {"text": "blood"},
            }
        )
        for _ in range(3)
    ]
    specimens.send_to_lab(
        s, [f"Specimen/{m['id']}" for m in made], lab=f["lab"], courier=f["courier"]
    )


def _draw_unidentified(att: Any) -> None:
    _draw_unlinked(att, identified=False)


def _draw_edit_old(att: Any) -> None:
    _draw_reference(att)
    tamper(att, att.facts["old_ref"])


BLOOD_DRAW = Exercise(
    id="clinical/blood-draw",
    title="Drawing blood in the right order and sending it with a requisition",
    topic="clinical",
    topics=("specimen-collection",),
    competencies=("I.P.2", "I.P.11", "X.P.3"),
    minutes=20,
    role=MA,
    summary="Venipuncture for three orders: order of draw, labels, fasting status, requisition and custody.",
    setup=_setup_draw,
    instructions=(
        "**{name}** (DOB {dob}, MRN {mrn}) has orders for: {tests} (`{orders}`). The patient {meal}.\n\n"
        "Draw the blood (`workflows.specimens.collect_blood`: tubes in the order you draw them, labels, "
        "fasting status) and send it to **{lab}** with courier **{courier}** (`send_to_lab`)."
    ),
    criteria=(
        Criterion(
            "tubes drawn and linked",
            3,
            _draw_tubes,
            "Order of draw prevents additive carry-over (CLSI GP41); every specimen belongs to an order and a correctly labelled patient (NPSG.01.01.01).",
        ),
        Criterion(
            "fasting status",
            1,
            _draw_fasting,
            "Glucose and lipids are read against fasting values; the lab must know (reference-lab requirements).",
        ),
        Criterion(
            "sent with requisition and custody",
            2,
            _draw_sent,
            "A referred specimen travels with a requisition and a recorded chain of custody (CLIA 42 CFR 493.1241-1242).",
        ),
        identified_first(),
    ),
    hints=(Hint("`specimens.tube_for(loinc)` tells the tube; `tubes_in_order` sorts them."),),
    solution=Solution(_draw_reference),
    wrong_solutions={
        "specimens-then-unlinked": Solution(
            lambda att: _draw_reference(att, unlink=True),
            fails="tubes drawn and linked",
            message="every specimen belongs to an order",
            description="the tubes drawn, labelled and handed off, then every specimen's link "
            "to its orders removed (full marks before: the link was read from any version)",
        ),
        "specimens-then-entered-in-error": Solution(
            then_withdrawn(_draw_reference, "Specimen"),
            fails="tubes drawn and linked",
            message="every specimen belongs to an order",
            description="the tubes drawn, labelled and handed to the courier, then every specimen "
            "marked entered in error (full marks before: the criteria read every version "
            "written)",
        ),
        "requisition-then-cancelled": Solution(
            lambda att: _draw_reference(att, withdraw="cancelled"),
            fails="sent with requisition and custody",
            message="no requisition with every specimen",
            description="the requisition to the outside lab sent, then cancelled (a routing undone at hand-in)",
        ),
        "sent-to-another-lab": Solution(
            _draw_other_lab,
            fails="sent with requisition and custody",
            message="send the specimens to the laboratory you were told to use",
            description="the requisition addressed to another outside laboratory",
        ),
        "fasting-not-asked": Solution(
            _draw_assumed_fasting, fails="fasting status", message="ask when the patient last ate"
        ),
        "collect-tag-by-hand": Solution(
            _draw_tag_by_hand,
            fails="tubes drawn and linked",
            message="light blue (citrate) before serum tubes",
            description="charted the tubes by hand in reverse order of draw, specimens.collect tag typed in",
        ),
        "custody-not-to-the-courier": Solution(
            _draw_custody_elsewhere,
            fails="sent with requisition and custody",
            message="the chain of custody starts when the specimen leaves your hands",
            description="the requisition names the courier, but each specimen's custody entry "
            "says it was left at the front desk",
        ),
        "tubes-not-labelled": Solution(
            lambda att: _draw_tag_by_hand(att, reverse=False, label="Label: see requisition"),
            fails="tubes drawn and linked",
            message="label every tube at the bedside with two identifiers",
            description="the tubes charted by hand in the right order, labelled 'see requisition'",
        ),
        "no-orders": Solution(
            _draw_unlinked,
            fails="tubes drawn and linked",
            message="every specimen belongs to an order",
        ),
        "edit-old-result": Solution(
            _draw_edit_old,
            fails="no collateral damage",
            message="answer key depends on",
        ),
        "skipped-identification": skipped_identification(_draw_unidentified),
    },
    expects=(
        Expect("Specimen", patients=("patient_id",)),
        Expect("Task", ops=("create",), patients=("patient_id",)),
    ),
)


# ============================================================================ POC glucose, failed QC
def _setup_glucose(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox, rng, age_days=rng.randint(45, 80) * 365, gender=rng.choice(["female", "male"])
    )
    sys = sandbox.system_session()
    kit = poc_testing.register_kit(
        sys,
        "glucose",
        lot=f"GL{rng.randint(1000, 9999)}",
        expiry="2027-03-31",
        name="glucose meter strips",
    )
    kref = f"Device/{kit['id']}"
    bad = poc_testing.run_qc(
        sys,
        kref,
        {"level 1": rng.randint(40, 60), "level 2": rng.randint(360, 420)},
    )
    sandbox.clock.advance(minutes=10)
    facts = {
        **_patient_facts(p),
        "kit_ref": kref,
        "qc_ref": f"Task/{bad['id']}",
        "new_l1": rng.randint(42, 58),
        "new_l2": rng.randint(270, 340),
        "ranges": GLUCOSE_RANGES,
        "glucose": rng.randint(405, 520),
    }
    return Scenario(facts, answer={}, protect=(facts["qc_ref"], kref))


def _glucose_results(ctx: GradingContext) -> list[dict[str, Any]]:
    return [
        o for o in written(ctx, "Observation", ctx.facts["patient_id"]) if code_of(o) == "41653-7"
    ]


def _qc_passes(ctx: GradingContext, *, as_run: bool = True) -> list[dict[str, Any]]:
    """Passing QC entries for the kit; ``as_run``: only those that record today's control
    results as the run gave them (level 1 ``new_l1``, level 2 ``new_l2``), not made-up
    in-range values."""
    return [
        t
        for t in still_standing(ctx, written(ctx, "Task", None, "poc.qc"))
        if (t.get("focus") or {}).get("reference") == ctx.facts["kit_ref"]
        and (t.get("businessStatus") or {}).get("text") == "pass"
        and (not as_run or _controls_run(ctx.facts) in (None, _controls_recorded(t)))
    ]


def _controls_run(facts: Any) -> dict[str, Any] | None:
    """Today's control results, as the instructions give them (None where the instructions
    give none: the strep kit's controls are read off the kit, positive and negative).

    >>> _controls_run({"new_l1": 50, "new_l2": 300})
    {'level 1': 50, 'level 2': 300}
    >>> _controls_run({}) is None
    True
    """
    if "new_l1" not in facts:
        return None
    return {"level 1": facts["new_l1"], "level 2": facts["new_l2"]}


def _controls_recorded(task: dict[str, Any]) -> dict[str, Any]:
    """The control results a QC entry records, by level.

    >>> _controls_recorded({"output": [{"type": {"text": "control level 1 (expected 38-62): in range"},
    ...     "valueQuantity": {"value": 50}}, {"type": {"text": "QC passed"}, "valueBoolean": True}]})
    {'level 1': 50}
    """
    out = {}
    for o in task.get("output") or []:
        m = re.match(r"control (.+?) \(expected ", str((o.get("type") or {}).get("text", "")))
        if m:
            out[m.group(1)] = (o.get("valueQuantity") or {}).get("value")
    return out


def _after_qc(ctx: GradingContext, results: list[dict[str, Any]]) -> bool:
    """Every result was written by the EHR after a passing QC entry for the kit (both timed
    by the EHR's write clock, never by ``authoredOn`` or ``effectiveDateTime``, which are typed)."""
    passes = [w for w in (ctx.written_at(t) for t in _qc_passes(ctx)) if w is not None]
    written_at = [ctx.written_at(r) for r in results]
    return bool(passes) and all(w is not None and w > min(passes) for w in written_at)


def _gl_qc_first(ctx: GradingContext) -> Check:
    expected = "no patient result before a passing QC today: every result logged after a passing control run"
    results = _glucose_results(ctx)
    if not results:
        return Check(False, "no glucose result recorded", expected, "rerun the controls, then test")
    if not _after_qc(ctx, results):
        if _qc_passes(ctx, as_run=False) and not _qc_passes(ctx):
            return Check(
                False,
                "the control run logged as a pass records control values other than today's run",
                expected,
                "log the control results exactly as the run gave them; a QC log with other "
                "values is not a QC",
            )
        return Check(
            False,
            "a result was recorded while today's QC had failed",
            expected,
            "never report a patient result when QC failed",
        )
    return Check(True, "QC passed before testing", expected)


def _gl_on_kit(ctx: GradingContext) -> Check:
    expected = (
        "the result recorded with the kit (device) and its value, as measured, flagged critical"
    )
    for o in still_standing(ctx, _glucose_results(ctx), current=True):
        if (o.get("device") or {}).get("reference") == ctx.facts["kit_ref"] and (
            o.get("valueQuantity") or {}
        ).get("value") == ctx.facts["glucose"]:
            if "HH" in codes(o.get("interpretation")):
                return Check(True, "result recorded with the kit", expected)
            return Check(
                False,
                "the result is recorded without its critical flag",
                expected,
                "a value above the critical limit is flagged critical (HH) on the chart, so "
                "everyone who reads it sees it",
            )
    return Check(
        False,
        "no result with the kit and the measured value",
        expected,
        "record the device and lot used",
    )


def _gl_escalated(ctx: GradingContext) -> Check:
    from ehr_sandbox.exercises import rubric

    expected = (
        "the critical value sent to the provider at once (stat message linked to the result, "
        "saying the value and that it is critical)"
    )
    pid = ctx.facts["patient_id"]
    ids = {f"Observation/{o['id']}" for o in _glucose_results(ctx)}
    elsewhere = vague = False
    for c in standing(ctx, written(ctx, "Communication", pid), pid):
        if c.get("priority") == "stat" and {a.get("reference") for a in c.get("about", [])} & ids:
            said = rubric.check_text(
                " ".join(str(p.get("contentString", "")) for p in c.get("payload", [])),
                {
                    "the value": [str(ctx.facts["glucose"])],
                    "that it is critical": ["critical", "critically", "panic", "HH"],
                },
                forbidden={"that it is normal": ["normal", "within range", "no action"]},
                what="the message",
            )
            if not said.passed:
                vague = True
                continue
            if any(
                the_patients_provider(ctx, pid, r.get("reference")) for r in c.get("recipient", [])
            ):
                return Check(True, "critical value escalated", expected)
            elsewhere = True
    if elsewhere:
        return Check(
            False,
            "the critical value went to someone other than the patient's provider",
            expected,
            "a critical value goes to the provider who sees this patient (the chart's primary "
            "care provider), not to another practitioner",
        )
    if vague:
        return Check(
            False,
            "a stat message on the result that does not say the value and that it is critical",
            expected,
            "say the critical value itself: 'see chart' or a reassurance asks for nothing",
        )
    return Check(
        False,
        "the critical value was not escalated",
        expected,
        "a critical value goes to the provider immediately",
    )


def _qc_log(task: dict[str, Any]) -> bool:
    """True for a QC log entry (a Task about the kit, a Device), not a routing about a patient."""
    return str((task.get("focus") or {}).get("reference", "")).startswith("Device/")


def _gl_reference(
    att: Any, provider: str | None = None, withdraw: str | None = None, qc_off: int = 0
) -> None:
    """The reference; ``provider``: the critical value routed to that practitioner instead;
    ``withdraw``: the stat message then set to that status (stopped, entered in error);
    ``qc_off``: the rerun controls logged with level 1 that far from today's result (still in
    range: made-up values)."""
    f = att.facts
    ref = identify_patient(att)
    s = att.session
    try:
        poc_testing.run_test(s, ref, f["kit_ref"], f["glucose"], provider=provider)
    except RuleRefused:
        poc_testing.run_qc(
            s,
            f["kit_ref"],
            {"level 1": f["new_l1"] + qc_off, "level 2": f["new_l2"]},
        )
        poc_testing.run_test(s, ref, f["kit_ref"], f["glucose"], provider=provider)
    if withdraw:
        withdraw_messages(att, "Communication", withdraw, ref)


def _raw_glucose(att: Any, *, minutes_later: int = 0) -> dict[str, Any]:
    """The glucose result typed into the chart; ``minutes_later``: its time typed ahead."""
    f = att.facts
    return att.session.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": OBSERVATION_CATEGORY,
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": loinc_concept("41653-7"),
            "subject": {"reference": f["patient_ref"]},
            "effectiveDateTime": instant(
                att.sandbox.clock.peek() + timedelta(minutes=minutes_later)
            ),
            "device": {"reference": f["kit_ref"]},
            "valueQuantity": {
                "value": f["glucose"],
                "unit": "mg/dL",
                "system": UCUM,
                "code": "mg/dL",
            },
        }
    )


def _gl_ignore_qc(att: Any) -> None:
    """Typical mistake: QC failed this morning but the patient is waiting: result typed in."""
    identify_patient(att)
    _raw_glucose(att)


def _typed_qc(att: Any, outputs: list[dict[str, Any]]) -> None:
    """A passing QC log entry typed by hand with the poc.qc tag (whatever the controls gave)."""
    write(
        att.session,
        {
            "resourceType": "Task",
            "status": "completed",
            "intent": "order",
            "businessStatus": {"text": "pass"},
            "code": {"coding": [{"system": SANDBOX_OBS, "code": "poc-qc"}]},
            "focus": {"reference": att.facts["kit_ref"]},
            "authoredOn": instant(att.sandbox.clock.peek()),
            "output": [*outputs, {"type": {"text": "QC passed"}, "valueBoolean": True}],
        },
        operation="poc.qc",
    )


def _gl_qc_tag_by_hand(att: Any) -> None:
    """The controls still out of range, logged by hand as a pass with the poc.qc tag typed in,
    then the patient tested."""
    f = att.facts
    ref = identify_patient(att)
    _typed_qc(
        att,
        [
            {
                "type": {"text": f"control {level} (expected {lo}-{hi}): in range"},
                "valueQuantity": {"value": hi + 40},
            }
            for level, (lo, hi) in sorted(f["ranges"].items())
        ],
    )
    try:
        poc_testing.run_test(att.session, ref, f["kit_ref"], f["glucose"])
    except RuleRefused:
        _raw_glucose(att)


def _gl_result_then_qc(att: Any) -> None:
    """The result charted first with a time typed after the QC, then the controls rerun."""
    f = att.facts
    identify_patient(att)
    _raw_glucose(att, minutes_later=30)
    poc_testing.run_qc(att.session, f["kit_ref"], {"level 1": f["new_l1"], "level 2": f["new_l2"]})


def _gl_no_escalation(att: Any, *, message: str | None = None) -> None:
    """Harmful: controls rerun, but the critical result is charted by hand (no critical flag)
    and nobody told; ``message``: a stat message with that text, linked to the result, sent to
    the patient's provider ('{value}' in it becomes the glucose)."""
    f = att.facts
    identify_patient(att)
    poc_testing.run_qc(
        att.session,
        f["kit_ref"],
        {"level 1": f["new_l1"], "level 2": f["new_l2"]},
    )
    result = _raw_glucose(att)
    if message is not None:
        att.session.create({"resourceType": "Communication", "status": "completed", "priority": "stat", "subject": {"reference": f["patient_ref"]},
                            "recipient": [{"reference": "Practitioner/prac-dr.patel"}], "about": [{"reference": f"Observation/{result['id']}"}],
                            "payload": [{"contentString": message.replace("{value}", str(f["glucose"]))}]})  # fmt: skip


def _gl_edit_qc(att: Any) -> None:
    """Answer-key change: the failed QC entry is edited."""
    _gl_reference(att)
    tamper(att, att.facts["qc_ref"])


POC_GLUCOSE_QC = Exercise(
    id="clinical/poc-glucose-failed-qc",
    title="A point-of-care glucose on a day the QC failed",
    topic="clinical",
    topics=("clia-waived-testing",),
    competencies=("I.P.10", "I.P.11", "II.P.2"),
    minutes=15,
    role=MA,
    summary="Today's glucose QC failed: rerun the controls before testing; a critical result goes to the provider.",
    setup=_setup_glucose,
    instructions=(
        "The provider wants a fingerstick glucose on **{name}** (DOB {dob}, MRN {mrn}) with the meter strips "
        "`{kit_ref}`. This morning's QC log for these strips is `{qc_ref}`.\n\n"
        "If you need to rerun the controls, today's control results are level 1 **{new_l1}** and level 2 "
        "**{new_l2}** mg/dL (acceptable ranges on the insert: {ranges}). The patient's result is **{glucose} mg/dL**.\n\n"
        "Use `workflows.poc_testing` (`run_qc`, `run_test`)."
    ),
    criteria=(
        Criterion(
            "QC passed before testing",
            2,
            _gl_qc_first,
            "A waived test is reported only when that day's quality control passed (CLIA 42 CFR 493.15; manufacturer's instructions).",
        ),
        Criterion(
            "result recorded with the kit",
            1,
            _gl_on_kit,
            "The device and lot of every result are traceable (CLIA; MAERB I.P.11).",
        ),
        Criterion(
            "critical value escalated",
            2,
            _gl_escalated,
            "A critical value is a patient-safety emergency: the provider is told at once (The Joint Commission NPSG.02.03.01).",
        ),
        identified_first(),
    ),
    hints=(Hint("`qc_status(session, kit)` says whether today's QC passed."),),
    solution=Solution(_gl_reference),
    wrong_solutions={
        "qc-then-entered-in-error": Solution(
            then_withdrawn(_gl_reference, "Task", patient=None, only=_qc_log),
            fails="QC passed before testing",
            message="never report a patient result when QC failed",
            description="the controls rerun and logged as passing, the patient tested, then the "
            "QC log entry marked entered in error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "result-then-entered-in-error": Solution(
            then_withdrawn(_gl_reference, "Observation", only=lambda o: code_of(o) == "41653-7"),
            fails="result recorded with the kit",
            message="record the device and lot used",
            description="the glucose result recorded after a passing QC, then marked entered in "
            "error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "critical-value-then-entered-in-error": Solution(
            lambda att: _gl_reference(att, withdraw="entered-in-error"),
            fails="critical value escalated",
            message="the critical value was not escalated",
            description="the stat message about the critical value sent, then marked entered-in-error (a routing undone at hand-in)",
        ),
        "critical-value-to-another-provider": Solution(
            lambda att: _gl_reference(att, provider=ANOTHER_PROVIDER),
            fails="critical value escalated",
            message="not to another practitioner",
            description="the critical value sent stat to a practitioner who is not the patient's provider",
        ),
        "qc-values-made-up": Solution(
            lambda att: _gl_reference(att, qc_off=-3),
            fails="QC passed before testing",
            message="control values other than today's run",
            description="the controls logged with an in-range level 1 other than today's run "
            "gave (another student's control values): scored full marks before",
        ),
        "test-despite-failed-qc": Solution(
            _gl_ignore_qc,
            fails="QC passed before testing",
            message="never report a patient result when QC failed",
        ),
        "qc-tag-by-hand": Solution(
            _gl_qc_tag_by_hand,
            fails="QC passed before testing",
            message="never report a patient result when QC failed",
            description="logged out-of-range controls as a pass by hand, the poc.qc tag typed in",
        ),
        "result-before-qc-time-typed-later": Solution(
            _gl_result_then_qc,
            fails="QC passed before testing",
            message="never report a patient result when QC failed",
            description="charted the result before rerunning QC, its time typed after the QC",
        ),
        "critical-not-told": Solution(
            _gl_no_escalation,
            fails="critical value escalated",
            message="goes to the provider immediately",
        ),
        "critical-see-chart": Solution(
            lambda att: _gl_no_escalation(att, message="FYI glucose done, see chart"),
            fails="critical value escalated",
            message="say the critical value itself",
            description="a stat message on the result to the provider that says 'see chart'",
        ),
        "critical-result-unflagged": Solution(
            lambda att: _gl_no_escalation(att, message="CRITICAL glucose {value} mg/dL"),
            fails="result recorded with the kit",
            message="flagged critical (HH)",
            description="the critical result typed in without its critical flag (the provider "
            "told)",
        ),
        "edit-qc-log": Solution(
            _gl_edit_qc,
            fails="no collateral damage",
            message="answer key depends on",
        ),
        "skipped-identification": skipped_identification(_raw_glucose),
    },
    expects=(
        Expect("Task", ops=("create",)),
        Expect("Observation", ops=("create",), patients=("patient_id",)),
        Expect("Communication", ops=("create",), patients=("patient_id",)),
    ),
)


# ============================================================================ rapid strep
def _setup_strep(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox, rng, age_days=rng.randint(4, 15) * 365, gender=rng.choice(["female", "male"])
    )
    sys = sandbox.system_session()
    kit = poc_testing.register_kit(
        sys,
        "rapid-strep",
        lot=f"RS{rng.randint(1000, 9999)}",
        expiry="2027-01-31",
        name="rapid strep A test kit",
    )
    order = order_lab(sandbox, p["ref"], "78012-2")
    facts = {
        **_patient_facts(p),
        "kit_ref": f"Device/{kit['id']}",
        "order_ref": f"ServiceRequest/{order['id']}",
    }
    return Scenario(facts, answer={}, protect=(facts["kit_ref"],))


def _strep_results(ctx: GradingContext) -> list[dict[str, Any]]:
    return [
        o for o in written(ctx, "Observation", ctx.facts["patient_id"]) if code_of(o) == "78012-2"
    ]


def _st_qc(ctx: GradingContext) -> Check:
    expected = "today's positive and negative controls run and passing before the patient's test"
    res = _strep_results(ctx)
    if not res or not _after_qc(ctx, res):
        return Check(
            False, "no passing QC before the patient's test", expected, "run the kit controls first"
        )
    return Check(True, "QC before the test", expected)


def _st_order(ctx: GradingContext) -> Check:
    expected = "a positive result recorded on the provider's order"
    for o in still_standing(ctx, _strep_results(ctx), current=True):
        if {b.get("reference") for b in o.get("basedOn", [])} == {
            ctx.facts["order_ref"]
        } and code_of(o, "valueCodeableConcept") == "10828004":
            return Check(True, "result on the order", expected)
    return Check(
        False,
        "no positive result linked to the order",
        expected,
        "results answer an order: link it",
    )


def _st_routed(ctx: GradingContext) -> Check:
    expected = "the positive result sent to the provider for the treatment order"
    pid = ctx.facts["patient_id"]
    ids = {f"Observation/{o['id']}" for o in _strep_results(ctx)}
    found = routed_saying(
        ctx,
        pid,
        [
            t
            for t in standing(ctx, written(ctx, "Task", pid), pid)
            if (t.get("focus") or {}).get("reference") in ids
        ],
        {"that the result is positive": ["positive"]},
        {"that it is negative": STREP_NEGATIVE},
        "the task on the result",
        advice="the task says the result is positive: one that says 'see chart', or negative, "
        "asks the provider for nothing",
    )
    if found is not None and found.passed:
        return Check(True, "provider asked to act on the result", expected)
    if found is not None:
        return Check(False, found.found, expected, found.advice)
    return Check(
        False,
        "the provider was not asked to act on the positive result",
        expected,
        "a positive result goes to the provider; the MA does not treat",
    )


STREP_NEGATIVE = ["negative result", "is negative", "strep negative", "tested negative",
                  "no action", "normal"]  # fmt: skip
"""What a task on a positive strep result must not say (the result is not negative)."""


STREP_CONTROLS = {"positive": "positive", "negative": "negative"}


def _st_reference(att: Any, provider: str | None = None, withdraw: str | None = None) -> None:
    """The reference; ``provider``: the positive result routed to that practitioner instead;
    ``withdraw``: the task then set to that status (cancelled, entered in error)."""
    f = att.facts
    ref = identify_patient(att)
    poc_testing.run_qc(att.session, f["kit_ref"], STREP_CONTROLS)
    poc_testing.run_test(
        att.session, ref, f["kit_ref"], "positive", order=f["order_ref"], provider=provider
    )
    if withdraw:
        withdraw_messages(att, "Task", withdraw, ref)


def _st_no_order(att: Any) -> None:
    """Typical mistake: the result is recorded but not against the order."""
    f = att.facts
    ref = identify_patient(att)
    poc_testing.run_qc(att.session, f["kit_ref"], STREP_CONTROLS)
    poc_testing.run_test(att.session, ref, f["kit_ref"], "positive")


def _st_skip_qc(att: Any, *, identified: bool = True) -> None:
    """Harmful: no controls run; result charted by hand (``identified=False``: nobody
    identified either)."""
    f = att.facts
    if identified:
        identify_patient(att)
    att.session.create({"resourceType": "Observation", "status": "final", "code": loinc_concept("78012-2"), "subject": {"reference": f["patient_ref"]},
                        "effectiveDateTime": instant(att.sandbox.clock.peek()), "basedOn": [{"reference": f["order_ref"]}],
                        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "10828004"}]}})  # fmt: skip


def _st_task_says(att: Any, text: str) -> None:
    """Controls run through the workflow; the positive result typed in on the order, and a task
    on it to the patient's provider that says ``text``."""
    f = att.facts
    s = att.session
    ref = identify_patient(att)
    poc_testing.run_qc(s, f["kit_ref"], STREP_CONTROLS)
    o = s.create({"resourceType": "Observation", "status": "final", "code": loinc_concept("78012-2"), "subject": {"reference": ref},
                  "effectiveDateTime": instant(att.sandbox.clock.peek()), "basedOn": [{"reference": f["order_ref"]}], "device": {"reference": f["kit_ref"]},
                  "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "10828004"}]}})  # fmt: skip
    s.create(
        routed_task(s, ref, "Practitioner/prac-dr.patel", text, focus=f"Observation/{o['id']}")
    )


def _st_qc_tag_by_hand(att: Any) -> None:
    """No controls run: a passing QC entry typed by hand with the poc.qc tag, then the test."""
    f = att.facts
    ref = identify_patient(att)
    _typed_qc(att, [])
    try:
        poc_testing.run_test(att.session, ref, f["kit_ref"], "positive", order=f["order_ref"])
    except RuleRefused:
        _st_skip_qc(att)


def _st_unidentified(att: Any) -> None:
    _st_skip_qc(att, identified=False)


def _st_edit_kit(att: Any) -> None:
    _st_reference(att)
    tamper(att, att.facts["kit_ref"])


RAPID_STREP = Exercise(
    id="clinical/rapid-strep-positive",
    title="A rapid strep test with a positive result",
    topic="clinical",
    topics=("clia-waived-testing", "diagnostic-tests"),
    competencies=("I.P.10", "I.P.11", "II.P.2"),
    minutes=15,
    role=MA,
    summary="Run the kit controls, test on the provider's order, and route the positive result.",
    setup=_setup_strep,
    instructions=(
        "The provider ordered a rapid strep test (`{order_ref}`) for **{name}** (DOB {dob}, MRN {mrn}). "
        "The kit is `{kit_ref}`; no QC has been run on it today. The external positive control reads "
        "positive and the negative control negative. The patient's test is **positive**.\n\n"
        "Use `workflows.poc_testing`."
    ),
    criteria=(
        Criterion(
            "QC before the test",
            2,
            _st_qc,
            "Waived tests follow the manufacturer's QC before patient testing (CLIA 42 CFR 493.15).",
        ),
        Criterion(
            "result on the order",
            2,
            _st_order,
            "A result answers the provider's order and is filed against it (MAERB II.P.3).",
        ),
        Criterion(
            "positive result routed",
            2,
            _st_routed,
            "Treatment is the provider's decision; the MA reports the positive result (scope of practice).",
        ),
        identified_first(),
    ),
    hints=(Hint("`run_test(..., order=...)` links the result to the order."),),
    solution=Solution(_st_reference),
    wrong_solutions={
        "qc-then-entered-in-error": Solution(
            then_withdrawn(_st_reference, "Task", patient=None, only=_qc_log),
            fails="QC before the test",
            message="run the kit controls first",
            description="the kit controls logged as passing, the patient tested, then the QC log "
            "entry marked entered in error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "result-then-entered-in-error": Solution(
            then_withdrawn(_st_reference, "Observation", only=lambda o: code_of(o) == "78012-2"),
            fails="result on the order",
            message="results answer an order",
            description="the positive result recorded on the order, then marked entered in "
            "error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "result-task-then-cancelled": Solution(
            lambda att: _st_reference(att, withdraw="cancelled"),
            fails="positive result routed",
            message="not asked to act on the positive result",
            description="the positive result routed to the provider, then the task cancelled (a routing undone at hand-in)",
        ),
        "result-to-another-provider": Solution(
            lambda att: _st_reference(att, provider=ANOTHER_PROVIDER),
            fails="positive result routed",
            message="not to another practitioner",
            description="the positive result routed to a practitioner who is not the patient's provider",
        ),
        "task-says-negative": Solution(
            lambda att: _st_task_says(att, "Rapid strep negative, no action needed"),
            fails="positive result routed",
            message="one that says 'see chart', or negative",
            description="a task on the positive result to the provider that says it is negative",
        ),
        "task-says-see-chart": Solution(
            lambda att: _st_task_says(att, "FYI please see the chart today"),
            fails="positive result routed",
            message="one that says 'see chart', or negative",
            description="a task on the positive result to the provider that says only 'see chart'",
        ),
        "result-without-order": Solution(
            _st_no_order, fails="result on the order", message="results answer an order"
        ),
        "qc-tag-by-hand": Solution(
            _st_qc_tag_by_hand,
            fails="QC before the test",
            message="run the kit controls first",
            description="typed a passing QC entry with the poc.qc tag, no controls run",
        ),
        "no-controls": Solution(
            _st_skip_qc, fails="QC before the test", message="run the kit controls first"
        ),
        "edit-kit": Solution(
            _st_edit_kit,
            fails="no collateral damage",
            message="answer key depends on",
        ),
        "skipped-identification": skipped_identification(_st_unidentified),
    },
    expects=(
        Expect("Task", ops=("create",)),
        Expect("Observation", ops=("create",), patients=("patient_id",)),
    ),
)
