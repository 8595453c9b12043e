"""Clinical exercises: a 12-lead ECG and spirometry; a refill request queue; a direct admission."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

from ehr_sandbox.clock import instant
from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.clinical.common import (
    ANOTHER_PROVIDER,
    DOCTOR_REF,
    MA,
    TASK_OPEN,
    add_patient,
    code_of,
    identified_first,
    identify_patient,
    order_lab,
    patient_facts,
    skipped_identification,
    standing,
    tamper,
    withdraw_messages,
    written,
)
from ehr_sandbox.exercises.builtin.common import document_text, still_standing, then_withdrawn
from ehr_sandbox.exercises.grading import GradingContext, codes, interpretation_in, text_of
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import admission, diagnostics, refills
from ehr_sandbox.workflows.care import age_years, loinc_concept, routed_task
from synthetic.systems import (
    ALLERGY_CLINICAL,
    OBSERVATION_CATEGORY,
    SANDBOX_PROCEDURE,
    UCUM,
    V3_ACT_CODE,
    V3_OBSERVATION_INTERPRETATION,
)

__all__ = ["DIRECT_ADMISSION", "ECG_SPIROMETRY", "REFILL_QUEUE"]


def _lab(
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


# ============================================================================ ECG and spirometry
def _setup_ecg(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox,
        rng,
        age_days=rng.randint(45, 75) * 365 + rng.randint(0, 300),
        gender=rng.choice(["female", "male"]),
    )
    ecg = order_lab(sandbox, p["ref"], "11524-6")
    old = _lab(sandbox, p["ref"], "2093-3", rng.randint(150, 230), "mg/dL", rng.randint(100, 300))
    fvc = round(rng.uniform(2.8, 4.6), 2)
    fev1 = round(fvc * rng.uniform(0.55, 0.82), 2)
    facts = {
        **patient_facts(p),
        "order_ref": f"ServiceRequest/{ecg['id']}",
        "hr": rng.randint(56, 96),
        "pr": rng.randint(130, 200),
        "qrs": rng.randint(78, 110),
        "qt": rng.randint(340, 420),
        "fev1": fev1,
        "fvc": fvc,
        "height": rng.randint(152, 188),
        "old_ref": f"Observation/{old['id']}",
    }
    chart = sandbox.system_session().read(p["ref"])
    pred = diagnostics.predicted_fev1(
        chart["gender"], age_years(chart, sandbox.clock.peek().date()), facts["height"]
    )
    return Scenario(
        facts,
        answer={"fev1_pct_predicted": round(100 * fev1 / pred) if pred else None},
        protect=(facts["old_ref"],),
    )


def _reports(ctx: GradingContext) -> list[dict[str, Any]]:
    return still_standing(ctx, written(ctx, "DiagnosticReport", ctx.facts["patient_id"]))


def _result(ctx: GradingContext, ref: str) -> dict[str, Any]:
    """A report's result as it stands (empty when it was entered in error or cancelled)."""
    found = ctx.read(ref) or {}
    return found if still_standing(ctx, [found] if found else []) else {}


def _ecg_recorded(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "the ECG's measurements as an Observation in a preliminary report on the order, for the provider"
    for dr in _reports(ctx):
        if code_of(dr) == "11524-6" and {b.get("reference") for b in dr.get("basedOn", [])} == {
            f["order_ref"]
        }:
            obs = _result(ctx, dr["result"][0]["reference"])
            if not obs:
                return Check(
                    False,
                    "the ECG report's measurements were entered in error or are missing",
                    expected,
                    "record the ECG against its order",
                )
            vals = {code_of(c): c["valueQuantity"]["value"] for c in obs.get("component", [])}
            if (
                vals.get("8867-4") == f["hr"]
                and vals.get("8625-6") == f["pr"]
                and vals.get("8633-0") == f["qrs"]
                and vals.get("8634-8") == f["qt"]
            ):
                return Check(True, "ECG recorded", expected)
            return Check(
                False,
                "ECG rate or intervals differ from the tracing",
                expected,
                "copy the machine's rate and intervals exactly",
            )
    return Check(False, "no ECG report on the order", expected, "record the ECG against its order")


def _ecg_not_interpreted(ctx: GradingContext) -> Check:
    expected = "no interpretation or final status written by the MA"
    # every version of every ECG record the MA wrote: a reading hidden in another field
    # (an interpretation code, a note, a conclusion code) is still a reading
    for v in written(ctx, "DiagnosticReport", ctx.facts["patient_id"]) + written(
        ctx, "Observation", ctx.facts["patient_id"]
    ):
        if code_of(v) != "11524-6":
            continue
        said = interpretation_in(v)
        if said or (v["resourceType"] == "DiagnosticReport" and v.get("status") == "final"):
            return Check(
                False,
                f"the MA wrote an interpretation of the ECG ({', '.join(said) or 'final report'})",
                expected,
                "the provider reads the ECG",
            )
    if not _reports(ctx):
        return Check(False, "no ECG report", expected, "the provider reads the ECG")
    return Check(True, "left for the provider", expected)


def _spiro(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        "FEV1, FVC, the FEV1/FVC ratio and FEV1 % predicted, from three acceptable manoeuvres"
    )
    for dr in _reports(ctx):
        if code_of(dr) != "SPIRO":
            continue
        results = [_result(ctx, r["reference"]) for r in dr.get("result", [])]
        vals = {code_of(o): (o.get("valueQuantity") or {}).get("value") for o in results}
        ratio = round(100 * f["fev1"] / f["fvc"])
        if (
            vals.get("20150-9") == f["fev1"]
            and vals.get("19868-9") == f["fvc"]
            and vals.get("19926-5") == ratio
            and "20152-5" in vals
        ):
            if _manoeuvres(str(dr.get("conclusion", ""))) < 3:
                return Check(
                    False,
                    "the report does not state three acceptable manoeuvres",
                    expected,
                    "spirometry is reported from at least three acceptable manoeuvres; the "
                    "report says how many",
                )
            low = [o for o in results if code_of(o) == "19926-5" and "L" in codes(o.get("interpretation"))]  # fmt: skip
            if (ratio < 70) != bool(low):
                return Check(
                    False,
                    "the FEV1/FVC ratio's low flag does not follow from the ratio",
                    expected,
                    "a ratio below 0.70 is flagged low so the provider sees the obstruction, and "
                    "only such a ratio (flagging is not interpreting)",
                )
            if vals["20152-5"] != ctx.answer["fev1_pct_predicted"]:
                return Check(
                    False,
                    "FEV1 % predicted does not follow from this patient's sex, age and height",
                    expected,
                    "% predicted compares FEV1 with the reference for the height you measured",
                )
            return Check(True, "spirometry recorded", expected)
        return Check(
            False,
            "spirometry values do not match the manoeuvres",
            expected,
            "FEV1 is the smaller volume; the ratio is FEV1/FVC",
        )
    return Check(False, "no spirometry report", expected, "record spirometry through the workflow")


def _manoeuvres(conclusion: str) -> int:
    """How many acceptable manoeuvres a spirometry report states (0 when it does not say).

    >>> _manoeuvres("3 acceptable manoeuvres; for the provider's interpretation")
    3
    >>> _manoeuvres("for the provider's interpretation")
    0
    """
    import re

    m = re.search(r"(\d+)\s+acceptable\s+man", conclusion, re.IGNORECASE)
    return int(m.group(1)) if m else 0


def _ecg_reference(att: Any, *, void_ecg: bool = False) -> None:
    """The reference; ``void_ecg``: the ECG's measurements then marked entered in error."""
    f = att.facts
    ref = identify_patient(att)
    ecg = diagnostics.record_ecg(
        att.session,
        ref,
        heart_rate=f["hr"],
        pr_ms=f["pr"],
        qrs_ms=f["qrs"],
        qt_ms=f["qt"],
        order=f["order_ref"],
    )
    diagnostics.record_spirometry(
        att.session, ref, fev1_l=f["fev1"], fvc_l=f["fvc"], height_cm=f["height"], maneuvers=3
    )
    if void_ecg:
        att.session.mark_entered_in_error(ecg["result"][0]["reference"], "charted in error")


def _ecg_interpreted(att: Any) -> None:
    """Typical mistake: the MA 'reads' the ECG (final report with a conclusion)."""
    _ecg_reference(att)
    f = att.facts
    att.session.create({"resourceType": "DiagnosticReport", "status": "final", "code": loinc_concept("11524-6"), "subject": {"reference": f["patient_ref"]},
                        "basedOn": [{"reference": f["order_ref"]}], "conclusion": "normal sinus rhythm, normal ECG"})  # fmt: skip


def _ecg_read_elsewhere(att: Any) -> None:
    """The MA 'reads' the ECG in other fields: an interpretation code and a note on the
    tracing's Observation, a conclusion code on the report (no conclusion, not final)."""
    s = att.session
    create = s.create
    normal = {"system": V3_OBSERVATION_INTERPRETATION, "code": "N", "display": "Normal"}  # fmt: skip

    def reading(res: dict[str, Any], *a: Any, **k: Any) -> dict[str, Any]:
        if "11524-6" in str(res.get("code")) and res.get("resourceType") == "Observation":
            res = {**res, "interpretation": [{"coding": [normal]}], "note": [{"text": "Normal sinus rhythm"}]}  # fmt: skip
        elif "11524-6" in str(res.get("code")):
            res = {**res, "conclusionCode": [{"text": "Normal ECG"}]}
        return create(res, *a, **k)

    s.create = reading
    try:
        _ecg_reference(att)
    finally:
        s.create = create


def _ecg_swapped(att: Any) -> None:
    """Harmful: FEV1 and FVC swapped (a normal ratio out of an obstructed patient)."""
    f = att.facts
    ref = identify_patient(att)
    diagnostics.record_ecg(
        att.session,
        ref,
        heart_rate=f["hr"],
        pr_ms=f["pr"],
        qrs_ms=f["qrs"],
        qt_ms=f["qt"],
        order=f["order_ref"],
    )
    s = att.session
    for code, v in (("20150-9", f["fvc"]), ("19868-9", f["fev1"])):
        s.create({"resourceType": "Observation", "status": "final", "code": loinc_concept(code), "subject": {"reference": ref},
                  "valueQuantity": {"value": v, "unit": "L", "system": UCUM, "code": "L"}})  # fmt: skip


def _ecg_off_values(att: Any, *, hr: int = 0, height: int = 0) -> None:
    """Both recorded through the workflows, the ECG with a rate ``hr`` off the tracing's, the
    spirometry with a height ``height`` cm off the one measured (so % predicted is wrong)."""
    f = att.facts
    ref = identify_patient(att)
    diagnostics.record_ecg(
        att.session,
        ref,
        heart_rate=f["hr"] + hr,
        pr_ms=f["pr"],
        qrs_ms=f["qrs"],
        qt_ms=f["qt"],
        order=f["order_ref"],
    )
    diagnostics.record_spirometry(
        att.session,
        ref,
        fev1_l=f["fev1"],
        fvc_l=f["fvc"],
        height_cm=f["height"] + height,
        maneuvers=3,
    )


def _spiro_by_hand(att: Any, *, manoeuvres: int = 3, flag_inverted: bool = False) -> None:
    """The ECG through the workflow; the spirometry report and its values typed in by hand,
    right unless it states ``manoeuvres`` acceptable manoeuvres, or (``flag_inverted``) flags
    the ratio low exactly when it is not below 0.70."""
    f = att.facts
    s = att.session
    ref = identify_patient(att)
    diagnostics.record_ecg(s, ref, heart_rate=f["hr"], pr_ms=f["pr"], qrs_ms=f["qrs"], qt_ms=f["qt"], order=f["order_ref"])  # fmt: skip
    chart = s.read(ref)
    pred = diagnostics.predicted_fev1(chart["gender"], age_years(chart, att.sandbox.clock.peek().date()), f["height"])  # fmt: skip
    ratio = round(100 * f["fev1"] / f["fvc"])
    made = []
    for code, v, unit in (("20150-9", f["fev1"], "L"), ("19868-9", f["fvc"], "L"), ("19926-5", ratio, "%"),
                          ("20152-5", round(100 * f["fev1"] / pred), "%")):  # fmt: skip
        o = {"resourceType": "Observation", "status": "final", "code": loinc_concept(code), "subject": {"reference": ref},
             "valueQuantity": {"value": v, "unit": unit, "system": UCUM, "code": unit}}  # fmt: skip
        if code == "19926-5" and (ratio < 70) != flag_inverted:
            o["interpretation"] = [{"coding": [{"system": V3_OBSERVATION_INTERPRETATION, "code": "L"}]}]  # fmt: skip
        made.append(s.create(o))
    s.create({"resourceType": "DiagnosticReport", "status": "preliminary", "code": {"coding": [{"system": SANDBOX_PROCEDURE, "code": "SPIRO"}]},
              "subject": {"reference": ref}, "result": [{"reference": f"Observation/{o['id']}"} for o in made],
              "conclusion": f"{manoeuvres} acceptable manoeuvres; for the provider's interpretation"})  # fmt: skip


def _ecg_unidentified(att: Any) -> None:
    """Skipped identification: the ECG report and its tracing typed in by hand."""
    f = att.facts
    s = att.session
    obs = s.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": loinc_concept("11524-6"),
            "subject": {"reference": f["patient_ref"]},
            "component": [
                {
                    "code": loinc_concept(code),
                    "valueQuantity": {
                        "value": v,
                        "unit": u,
                        "system": UCUM,
                        "code": u,
                    },
                }
                for code, v, u in (
                    ("8867-4", f["hr"], "/min"),
                    ("8625-6", f["pr"], "ms"),
                    ("8633-0", f["qrs"], "ms"),
                    ("8634-8", f["qt"], "ms"),
                )
            ],
        }
    )
    s.create(
        {
            "resourceType": "DiagnosticReport",
            "status": "preliminary",
            "code": loinc_concept("11524-6"),
            "subject": {"reference": f["patient_ref"]},
            "basedOn": [{"reference": f["order_ref"]}],
            "result": [{"reference": f"Observation/{obs['id']}"}],
        }
    )


def _ecg_edit(att: Any) -> None:
    _ecg_reference(att)
    tamper(att, att.facts["old_ref"])


ECG_SPIROMETRY = Exercise(
    id="clinical/ecg-and-spirometry",
    title="Recording a 12-lead ECG and spirometry",
    topic="clinical",
    topics=("diagnostic-tests",),
    competencies=("I.P.2", "II.P.3", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Record the ECG for the provider to read, and spirometry with its ratio and % predicted.",
    setup=_setup_ecg,
    instructions=(
        "For **{name}** (DOB {dob}, MRN {mrn}) the provider ordered an ECG (`{order_ref}`) and spirometry.\n\n"
        "The ECG machine reports rate **{hr}/min**, PR **{pr} ms**, QRS **{qrs} ms**, QT **{qt} ms**. "
        "Spirometry (three acceptable manoeuvres, height {height} cm): best FEV1 **{fev1} L**, best FVC **{fvc} L**.\n\n"
        "Use `workflows.diagnostics` (`record_ecg`, `record_spirometry`)."
    ),
    criteria=(
        Criterion(
            "ECG recorded",
            2,
            _ecg_recorded,
            "ECG measurements are recorded exactly, on the order, for the provider (MAERB I.P.2).",
        ),
        Criterion(
            "ECG left for the provider to read",
            2,
            _ecg_not_interpreted,
            "Interpreting an ECG is outside the MA's scope of practice.",
        ),
        Criterion(
            "spirometry recorded",
            2,
            _spiro,
            "FEV1/FVC below 0.70 defines obstruction (GOLD); swapped volumes hide it (ATS/ERS 2019).",
        ),
        identified_first(),
    ),
    hints=(Hint("The workflow computes QTc, the ratio and % predicted for you."),),
    solution=Solution(_ecg_reference),
    wrong_solutions={
        "ecg-then-entered-in-error": Solution(
            lambda att: _ecg_reference(att, void_ecg=True),
            fails="ECG recorded",
            message="record the ECG against its order",
            description="the ECG's measurements recorded, then marked entered in error (it "
            "passed the ECG criterion before; only collateral damage caught it)",
        ),
        "ma-reads-the-ecg-elsewhere": Solution(
            _ecg_read_elsewhere,
            fails="ECG left for the provider to read",
            message="the provider reads the ECG",
            description="an interpretation code and note on the tracing, a conclusion code on the report",
        ),
        "ma-reads-the-ecg": Solution(
            _ecg_interpreted,
            fails="ECG left for the provider to read",
            message="the provider reads the ECG",
        ),
        "volumes-swapped": Solution(
            _ecg_swapped,
            fails="spirometry recorded",
            message="record spirometry through the workflow",
        ),
        "ecg-rate-off": Solution(
            lambda att: _ecg_off_values(att, hr=30),
            fails="ECG recorded",
            message="copy the machine's rate and intervals exactly",
            description="the intervals right, the ECG's heart rate not the tracing's",
        ),
        "spirometry-height-off": Solution(
            lambda att: _ecg_off_values(att, height=-25),
            fails="spirometry recorded",
            message="the reference for the height you measured",
            description="spirometry recorded with another height, so FEV1 % predicted is wrong",
        ),
        "spirometry-one-manoeuvre": Solution(
            lambda att: _spiro_by_hand(att, manoeuvres=1),
            fails="spirometry recorded",
            message="at least three acceptable manoeuvres",
            description="spirometry typed in by hand from one acceptable manoeuvre",
        ),
        "ratio-flag-inverted": Solution(
            lambda att: _spiro_by_hand(att, flag_inverted=True),
            fails="spirometry recorded",
            message="flagged low so the provider sees the obstruction",
            description="spirometry typed in by hand, the ratio flagged low when it is normal "
            "and not when it is below 0.70",
        ),
        "skipped-identification": skipped_identification(_ecg_unidentified),
        "edit-old-result": Solution(
            _ecg_edit,
            fails="no collateral damage",
            message="answer key depends on",
        ),
    },
    expects=(
        Expect("Observation", ops=("create",), patients=("patient_id",)),
        Expect("DiagnosticReport", ops=("create",), patients=("patient_id",)),
    ),
)


# ============================================================================ refill queue
def _rx(sandbox: Any, patient: str, code: str, display: str, days: int) -> dict[str, Any]:
    return sandbox.system_session().create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": refills.RXNORM, "code": code, "display": display}],
                "text": display,
            },
            "subject": {"reference": patient},
            "requester": {"reference": DOCTOR_REF},
            "authoredOn": instant(sandbox.clock.peek() - timedelta(days=days)),
            "dispenseRequest": {"numberOfRepeatsAllowed": 0},
        }
    )


STATINS = [
    ("312961", "simvastatin 20 MG Oral Tablet"),
    ("259255", "atorvastatin 80 MG Oral Tablet"),
    ("314231", "simvastatin 10 MG Oral Tablet"),
]
SCHED_II = [
    ("1049683", "oxycodone hydrochloride 10 MG Oral Tablet"),
    ("1091392", "methylphenidate hydrochloride 20 MG Oral Tablet"),
    ("856987", "acetaminophen 300 MG / hydrocodone bitartrate 5 MG Oral Tablet"),
]


def _setup_refills(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox, rng, age_days=rng.randint(50, 78) * 365, gender=rng.choice(["female", "male"])
    )
    sys = sandbox.system_session()
    when = sandbox.clock.peek() - timedelta(days=rng.randint(60, 200))
    sys.create({"resourceType": "Encounter", "status": "finished", "class": {"system": V3_ACT_CODE, "code": "AMB"},
                "subject": {"reference": p["ref"]}, "period": {"start": instant(when), "end": instant(when + timedelta(minutes=20))}})  # fmt: skip
    statin = rng.choice(STATINS)
    ii = rng.choice(SCHED_II)
    s_rx = _rx(sandbox, p["ref"], *statin, rng.randint(80, 100))
    m_rx = _rx(
        sandbox,
        p["ref"],
        "860975",
        "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
        rng.randint(80, 100),
    )
    c_rx = _rx(sandbox, p["ref"], *ii, rng.randint(20, 30))
    lipid = _lab(sandbox, p["ref"], "2093-3", rng.randint(150, 210), "mg/dL", rng.randint(60, 300))
    a1c = _lab(
        sandbox, p["ref"], "4548-4", round(rng.uniform(6.6, 8.4), 1), "%", rng.randint(220, 330)
    )
    egfr = _lab(
        sandbox, p["ref"], "98979-8", rng.randint(62, 95), "mL/min/{1.73_m2}", rng.randint(30, 200)
    )
    facts = {
        **patient_facts(p),
        "statin_ref": f"MedicationRequest/{s_rx['id']}",
        "statin": statin[1],
        "metformin_ref": f"MedicationRequest/{m_rx['id']}",
        "ii_ref": f"MedicationRequest/{c_rx['id']}",
        "ii": ii[1],
        "pharmacy": rng.choice(
            ["Main Street Pharmacy", "Riverside Drug", "CareMart Pharmacy #214"]
        ),
        "lab_refs": [f"Observation/{o['id']}" for o in (lipid, a1c, egfr)],
    }
    return Scenario(facts, answer={}, protect=tuple(facts["lab_refs"]))


def _task_for(ctx: GradingContext, rx: str) -> dict[str, Any] | None:
    tasks = [
        t
        for t in written(ctx, "Task", ctx.facts["patient_id"])
        if (t.get("focus") or {}).get("reference") == rx
    ]
    return tasks[-1] if tasks else None


def _rf_routed(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        "each of the three requests recorded and routed to the provider with the protocol outcome"
    )
    missing = [k for k in ("statin_ref", "metformin_ref", "ii_ref") if _task_for(ctx, f[k]) is None]
    if missing:
        return Check(
            False,
            f"{len(missing)} request(s) not routed",
            expected,
            "every refill request reaches the provider",
        )
    closed = [
        k
        for k in ("statin_ref", "metformin_ref", "ii_ref")
        if (_task_for(ctx, f[k]) or {}).get("status") not in TASK_OPEN
    ]
    if closed:
        return Check(
            False,
            f"{len(closed)} request(s) closed by the MA instead of left for the provider",
            expected,
            "a refill is the prescriber's decision: the request stays open for them; closing "
            "it yourself authorizes or drops it",
        )
    for key in ("statin_ref", "metformin_ref", "ii_ref"):
        owner = ((_task_for(ctx, f[key]) or {}).get("owner") or {}).get("reference")
        prescriber = ((ctx.read(f[key]) or {}).get("requester") or {}).get("reference")
        if owner != prescriber:
            return Check(
                False,
                "a request was routed to someone other than its prescriber",
                expected,
                "a refill is the prescriber's decision: route each request to the provider who "
                "wrote the prescription",
            )
    reqs = [
        c
        for c in still_standing(ctx, written(ctx, "Communication", f["patient_id"]), current=True)
        if f["pharmacy"] in str(c.get("sender"))
    ]
    if len(reqs) < 3:
        return Check(False, "pharmacy requests not recorded", expected, "record who asked")
    return Check(True, "all routed", expected)


def _rf_schedule_ii(ctx: GradingContext) -> Check:
    expected = "the Schedule II request routed as needing a new prescription from the prescriber (no refill)"
    t = _task_for(ctx, ctx.facts["ii_ref"])
    if t is None or (t.get("businessStatus") or {}).get("text") != refills.CONTROLLED:
        return Check(
            False,
            "the Schedule II request was treated as a refill",
            expected,
            "Schedule II is never refilled",
        )
    return Check(True, "Schedule II handled", expected)


A1C_NAMES = ["A1c", "HbA1c", "hemoglobin A1c", "glycated hemoglobin", "4548-4"]
OVERDUE = ["overdue", "past due", "out of date", "not done within", "expired"]
UP_TO_DATE = ["up to date", "up-to-date", "not overdue", "is current", "a1c current", "labs ok",
              "labs current", "protocol met", "no labs due", "not due"]  # fmt: skip


def _clauses(text: str) -> list[str]:
    return [c for c in re.split(r"[;\n]|\.\s", text) if c.strip()]


def _rf_metformin_note(ctx: GradingContext, task: dict[str, Any]) -> Check:
    """The metformin request's note against this patient's record: it names the A1c and says
    it is overdue (or gives the date of the last A1c, which is), states no A1c value other
    than the patient's last, calls nothing up to date, and does not call the eGFR (drawn
    within its interval) overdue."""
    f = ctx.facts
    expected = "the overdue monitoring lab named on the metformin request"
    a1c = ctx.read(f["lab_refs"][1]) or {}
    value = (a1c.get("valueQuantity") or {}).get("value")
    day = str(a1c.get("effectiveDateTime", ""))[:10]
    us = f"{day[5:7]}/{day[8:10]}/{day[:4]}" if len(day) == 10 else ""
    text = " ".join(str(n.get("text", "")) for n in task.get("note", []))
    said = rubric.check_text(
        text,
        {"the A1c": A1C_NAMES, "that it is overdue": [*OVERDUE, day, us]},
        forbidden={"that the labs are up to date": UP_TO_DATE},
        what="the metformin request's note",
        min_words=2,
    )
    if not said.passed:
        return Check(False, said.found, expected, "check the monitoring labs of the protocol")
    stated = {float(v) for v in re.findall(r"(\d+(?:\.\d+)?)\s*%", text)}
    if value is not None and stated - {float(value)}:
        return Check(
            False,
            "the metformin request's note gives an A1c value that is not the patient's last",
            expected,
            "copy the value and date of the last A1c from the chart, or say that it is overdue",
        )
    if any(
        rubric.mentions(c, "eGFR") and any(rubric.mentions(c, w) for w in OVERDUE)
        for c in _clauses(text)
    ):
        return Check(
            False,
            "the metformin request's note calls the eGFR overdue",
            expected,
            "name only the lab that is overdue: check each lab's date against its interval",
        )
    return Check(True, "the overdue A1c named", expected)


def _rf_labs(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "the overdue monitoring lab named on the metformin request; the statin approvable by protocol"
    m = _task_for(ctx, f["metformin_ref"])
    s = _task_for(ctx, f["statin_ref"])
    if m is None or (m.get("businessStatus") or {}).get("text") != refills.NOT_MET:
        return Check(
            False,
            "the metformin request does not name the overdue lab",
            expected,
            "check the monitoring labs of the protocol",
        )
    note = _rf_metformin_note(ctx, m)
    if not note.passed:
        return Check(False, note.found, expected, note.advice)
    if s is None or (s.get("businessStatus") or {}).get("text") != refills.MET:
        return Check(
            False,
            "the statin request was not found approvable by protocol",
            expected,
            "check the monitoring labs of the protocol",
        )
    return Check(True, "protocol applied", expected)


def _rf_reference(att: Any) -> None:
    f = att.facts
    ref = identify_patient(att)
    for key in ("statin_ref", "metformin_ref", "ii_ref"):
        refills.review_request(att.session, ref, f[key], pharmacy=f["pharmacy"])


def _raw_task(att: Any, rx: str, status: str) -> None:
    f = att.facts
    att.session.create({"resourceType": "Task", "status": "requested", "intent": "order", "for": {"reference": f["patient_ref"]}, "focus": {"reference": rx},
                        "owner": {"reference": DOCTOR_REF}, "businessStatus": {"text": status}, "description": "refill request"})  # fmt: skip
    att.session.create(
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": {"reference": f["patient_ref"]},
            "sender": {"display": f["pharmacy"]},
        }
    )


def _rf_all_approved(att: Any) -> None:
    """Typical mistake: everything marked approvable without checking the protocol."""
    identify_patient(att)
    f = att.facts
    for key in ("statin_ref", "metformin_ref"):
        _raw_task(att, f[key], refills.MET)
    refills.review_request(att.session, f["patient_ref"], f["ii_ref"], pharmacy=f["pharmacy"])


def _rf_ii_refilled(att: Any) -> None:
    """Harmful: the Schedule II drug queued as a protocol refill."""
    identify_patient(att)
    f = att.facts
    for key in ("statin_ref", "metformin_ref"):
        refills.review_request(att.session, f["patient_ref"], f[key], pharmacy=f["pharmacy"])
    _raw_task(att, f["ii_ref"], refills.MET)


def _rf_unidentified(
    att: Any,
    *,
    identified: bool = False,
    status: str = "requested",
    metformin_note: str = "A1c overdue",
) -> None:
    """Skipped identification: the three outcomes typed in as tasks to the prescriber and the
    pharmacy's requests as messages, nobody identified and no protocol run (``identified``:
    after identifying the patient; ``status``: the tasks' status, e.g. closed by the MA;
    ``metformin_note``: what the metformin request's note says)."""
    f = att.facts
    s = att.session
    if identified:
        identify_patient(att)
    outcomes = (
        ("statin_ref", refills.MET),
        ("metformin_ref", refills.NOT_MET),
        ("ii_ref", refills.CONTROLLED),
    )
    for key, outcome in outcomes:
        task = routed_task(s, f["patient_ref"], DOCTOR_REF, "refill request", focus=f[key])
        task["businessStatus"] = {"text": outcome}
        task["status"] = status
        if key == "metformin_ref":
            task["note"] = [{"text": metformin_note}]
        s.create(task)
        s.create({"resourceType": "Communication", "status": "completed", "subject": {"reference": f["patient_ref"]},
                  "sender": {"display": f["pharmacy"]}, "payload": [{"contentString": f"refill request for {f[key]}"}]})  # fmt: skip


def _rf_other_provider(att: Any) -> None:
    """The protocol run on every request, each outcome routed to a practitioner who did not
    write the prescription."""
    f = att.facts
    ref = identify_patient(att)
    for key in ("statin_ref", "metformin_ref", "ii_ref"):
        refills.review_request(
            att.session, ref, f[key], pharmacy=f["pharmacy"], provider=ANOTHER_PROVIDER
        )


def _rf_edit_lab(att: Any) -> None:
    _rf_reference(att)
    tamper(att, att.facts["lab_refs"][1])


REFILL_QUEUE = Exercise(
    id="clinical/refill-queue",
    title="A refill request queue",
    topic="clinical",
    topics=("refills",),
    competencies=("I.P.4", "V.P.7", "X.P.3"),
    minutes=20,
    role=MA,
    summary="Three pharmacy requests: one approvable by protocol, one with an overdue lab, one Schedule II.",
    setup=_setup_refills,
    instructions=(
        "**{pharmacy}** faxed three refill requests for **{name}** (DOB {dob}, MRN {mrn}), each with no "
        "refills left: {statin} (`{statin_ref}`), metformin ER 500 mg (`{metformin_ref}`) and {ii} (`{ii_ref}`).\n\n"
        "Work the queue with `workflows.refills.review_request`. You do not authorize refills: each "
        "request goes to its prescriber with the protocol's outcome, and one that fails the protocol "
        "says why in its note (which monitoring lab is overdue, or its last value and date)."
    ),
    criteria=(
        Criterion(
            "every request routed",
            2,
            _rf_routed,
            "Refill requests are documented and decided by the provider (MAERB V.P.7; scope of practice).",
        ),
        Criterion(
            "Schedule II not refilled",
            2,
            _rf_schedule_ii,
            "Schedule II prescriptions may not be refilled (21 CFR 1306.12).",
        ),
        Criterion(
            "protocol applied",
            2,
            _rf_labs,
            "Monitoring labs protect the patient: metformin needs A1c and eGFR, a statin lipids (ADA 2025; ACC/AHA 2018).",
        ),
        identified_first(),
    ),
    hints=(Hint("`review_request` checks the protocol; read `RefillReview.reasons`."),),
    solution=Solution(_rf_reference),
    wrong_solutions={
        "requests-then-entered-in-error": Solution(
            then_withdrawn(_rf_reference, "Communication"),
            fails="every request routed",
            message="record who asked",
            description="the three requests recorded and routed, then the pharmacy's requests "
            "marked entered in error (the task's own criteria passed before; only collateral "
            "damage caught it)",
        ),
        "approve-all": Solution(
            _rf_all_approved, fails="protocol applied", message="check the monitoring labs"
        ),
        "refill-schedule-ii": Solution(
            _rf_ii_refilled,
            fails="Schedule II not refilled",
            message="Schedule II is never refilled",
        ),
        "skipped-identification": skipped_identification(_rf_unidentified),
        "requests-closed-by-the-ma": Solution(
            lambda att: _rf_unidentified(att, identified=True, status="completed"),
            fails="every request routed",
            message="the request stays open for them",
            description="the three outcomes right, each request task closed (completed) by the MA",
        ),
        "routed-to-another-provider": Solution(
            _rf_other_provider,
            fails="every request routed",
            message="route each request to the provider who wrote the prescription",
            description="every request routed to a practitioner who did not write the prescription",
        ),
        "metformin-note-a1c-up-to-date": Solution(
            lambda att: _rf_unidentified(
                att, identified=True, metformin_note="A1c up to date; eGFR overdue, please order"
            ),
            fails="protocol applied",
            message="check the monitoring labs of the protocol",
            description="the three outcomes right, the metformin request's note naming the A1c "
            "but calling it up to date and the eGFR (drawn in time) overdue",
        ),
        "metformin-note-another-a1c": Solution(
            lambda att: _rf_unidentified(
                att, identified=True, metformin_note="last A1c 9.9% on file, overdue for recheck"
            ),
            fails="protocol applied",
            message="copy the value and date of the last A1c",
            description="the metformin request's note giving an A1c value that is not the "
            "patient's (seeded values stay between 6.6 and 8.4)",
        ),
        "edit-a1c": Solution(
            _rf_edit_lab,
            fails="no collateral damage",
            message="answer key depends on",
        ),
    },
    expects=(
        Expect("Task", ops=("create",), patients=("patient_id",)),
        Expect("Communication", ops=("create",), patients=("patient_id",)),
    ),
)


# ============================================================================ direct admission
REASONS = [
    "community-acquired pneumonia with oxygen saturation of 88 percent",
    "cellulitis of the leg failing oral antibiotics",
    "new atrial fibrillation with rapid ventricular rate",
    "dehydration with acute kidney injury",
]
HOME_MEDS = [
    "lisinopril 10 mg tablet, 1 daily",
    "metformin 500 mg tablet, twice daily",
    "atorvastatin 40 mg tablet, at bedtime",
    "amlodipine 5 mg tablet, 1 daily",
    "levothyroxine 75 mcg tablet, 1 daily",
    "sertraline 50 mg tablet, 1 daily",
    "furosemide 20 mg tablet, 1 daily",
]
"""Home medications a direct-admission patient takes (each variant draws its own); the first
word names the drug."""
ALLERGENS = ["penicillin", "sulfamethoxazole", "codeine", "latex", "iodinated contrast"]


def _drug(text: str) -> str:
    """The drug a medication line names (its first word).

    >>> _drug("lisinopril 10 mg tablet, 1 daily")
    'lisinopril'
    """
    return text.split()[0]


def _seed_chart(sandbox: Any, rng: Any, patient: str) -> dict[str, Any]:
    """The patient's current medications and allergies (plus one medication stopped last
    month, which is no longer current): a transfer summary must carry the current ones."""
    sys = sandbox.system_session()
    meds = rng.sample(HOME_MEDS, 3)
    current, stopped = sorted(meds[:2]), meds[2]
    for text, status in [(m, "active") for m in current] + [(stopped, "stopped")]:
        sys.create({"resourceType": "MedicationRequest", "status": status, "intent": "order", "medicationCodeableConcept": {"text": text},
                    "subject": {"reference": patient}, "requester": {"reference": DOCTOR_REF},
                    "authoredOn": instant(sandbox.clock.peek() - timedelta(days=rng.randint(40, 300)))})  # fmt: skip
    allergies = sorted(rng.sample(ALLERGENS, rng.randint(1, 2)))
    for a in allergies:
        sys.create({"resourceType": "AllergyIntolerance", "patient": {"reference": patient}, "code": {"text": a},
                    "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]}})  # fmt: skip
    return {"medications": current, "stopped_medication": stopped, "allergies": allergies}


def _setup_admit(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox, rng, age_days=rng.randint(55, 88) * 365, gender=rng.choice(["female", "male"])
    )
    reason = rng.choice(REASONS)
    order = sandbox.system_session().create({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "code": {"text": "direct admission to inpatient"},
                                             "subject": {"reference": p["ref"]}, "requester": {"reference": DOCTOR_REF}, "reasonCode": [{"text": reason}]})  # fmt: skip
    old = _lab(
        sandbox, p["ref"], "2160-0", round(rng.uniform(0.7, 1.4), 2), "mg/dL", rng.randint(30, 200)
    )
    facts = {
        **patient_facts(p),
        "order_ref": f"ServiceRequest/{order['id']}",
        "reason": reason,
        "hospital": rng.choice(
            ["Riverton General Hospital", "St. Mary's Medical Center", "Valley Regional Hospital"]
        ),
        "unit": rng.choice(["4 West medical unit", "3 East telemetry", "5 North medical-surgical"]),
        "old_ref": f"Observation/{old['id']}",
        **_seed_chart(sandbox, rng, p["ref"]),
    }
    return Scenario(facts, answer={}, protect=(facts["old_ref"],))


def _carries_chart(text: str, f: dict[str, Any]) -> bool:
    """True when a transfer summary names every current medication and allergy of this patient
    and no medication or allergen the patient does not have (another patient's list, or the
    medication stopped last month listed as current)."""
    mine = [_drug(m) for m in f["medications"]] + list(f["allergies"])
    others = [_drug(m) for m in HOME_MEDS if _drug(m) not in mine] + [
        a for a in ALLERGENS if a not in f["allergies"]
    ]
    return all(rubric.mentions(text, w) for w in mine) and not any(
        rubric.mentions(text, w) for w in others
    )


def _states_reason(text: str, reason: str) -> bool:
    """True when ``text`` says the ordered reason: at least two thirds of its words (filler
    aside) appear in it, so a paraphrase counts and a generic 'needs admission' does not."""
    words = {w for w in rubric.normalize(reason).split() if w not in rubric.FILLER and len(w) > 2}
    got = set(rubric.normalize(text).split())
    return bool(words) and 3 * len(words & got) >= 2 * len(words)


def _summaries(ctx: GradingContext) -> list[dict[str, Any]]:
    """The transfer summaries written that say who the patient is, why they are admitted, and
    carry this patient's current medications and allergies (:func:`_carries_chart`)."""
    f = ctx.facts
    out = []
    for d in written(ctx, "DocumentReference", f["patient_id"]):
        text = document_text(d)
        if (
            code_of(d, "type") == "18761-7"
            and rubric.mentions(text, f["name"])
            and rubric.mentions(text, f["dob"])
            and _states_reason(text, f["reason"])
            and _carries_chart(text, f)
        ):
            out.append(d)
    return out


def _ad_encounter(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "a planned inpatient encounter at the receiving hospital and unit, based on the order, with the reason"
    for e in written(ctx, "Encounter", f["patient_id"]):
        if (e.get("class") or {}).get("code") == "IMP" and {
            b.get("reference") for b in e.get("basedOn", [])
        } == {f["order_ref"]}:
            where = str(e.get("location")) + str(e.get("serviceProvider"))
            why = " ".join(text_of(r) for r in e.get("reasonCode", []))
            if f["hospital"] in where and f["unit"] in where and _states_reason(why, f["reason"]):
                return Check(True, "admission encounter", expected)
            return Check(
                False,
                "the encounter lacks the hospital, unit or the reason the provider ordered",
                expected,
                "name where the patient goes and why, as the order says: a generic reason "
                "tells the hospital nothing",
            )
    return Check(
        False,
        "no planned inpatient encounter on the order",
        expected,
        "a direct admission is an inpatient encounter",
    )


def _ad_summary(ctx: GradingContext) -> Check:
    expected = "a transfer summary document for the hospital"
    if _summaries(ctx):
        return Check(True, "transfer summary", expected)
    typed = [
        d
        for d in written(ctx, "DocumentReference", ctx.facts["patient_id"])
        if code_of(d, "type") == "18761-7"
    ]
    return Check(
        False,
        "a transfer summary that does not say who the patient is and why they are admitted, "
        "or does not carry exactly this patient's current medications and allergies"
        if typed
        else "no transfer summary",
        expected,
        "the hospital needs problems, medications, allergies and last vitals, with the "
        "patient's identity and the reason for admission",
    )


def _ad_notified(ctx: GradingContext) -> Check:
    expected = "the receiving hospital notified, with the summary"
    sent = {f"DocumentReference/{d['id']}" for d in _summaries(ctx)}
    pid = ctx.facts["patient_id"]
    for c in standing(ctx, written(ctx, "Communication", pid), pid):
        about = {a.get("reference") for a in c.get("about", [])}
        if ctx.facts["hospital"] in str(c.get("recipient")) and about & sent:
            return Check(True, "hospital notified", expected)
    return Check(
        False,
        "the hospital was not notified with the transfer summary",
        expected,
        "the hand-off is documented, and the summary goes with it",
    )


def _ad_arrange(
    att: Any,
    *,
    kind: str = "direct",
    unit: str | None = None,
    reason: str | None = None,
    withdraw: str | None = None,
) -> None:
    """The patient identified, then the admission arranged through the workflow (the order's
    unit and reason unless given; ``withdraw``: the hospital's notice then set to that
    status)."""
    f = att.facts
    ref = identify_patient(att)
    admission.arrange(
        att.session,
        ref,
        f["order_ref"],
        kind=kind,
        hospital=f["hospital"],
        unit=unit or f["unit"],
        reason=reason or f["reason"],
    )
    if withdraw:
        withdraw_messages(att, "Communication", withdraw, ref)


def _ad_reference(att: Any) -> None:
    _ad_arrange(att)


def _ad_ed(att: Any) -> None:
    """Typical mistake: sent to the emergency department instead of the ordered direct admission."""
    _ad_arrange(att, kind="ed-transfer", unit="Emergency department")


def _ad_no_summary(att: Any) -> None:
    """Harmful: the encounter typed in by hand; the hospital gets nothing."""
    f = att.facts
    identify_patient(att)
    att.session.create({"resourceType": "Encounter", "status": "planned", "class": {"system": V3_ACT_CODE, "code": "IMP"},
                        "subject": {"reference": f["patient_ref"]}, "basedOn": [{"reference": f["order_ref"]}]})  # fmt: skip


def _ad_generic_reason(att: Any) -> None:
    """Arranged through the workflow, with a reason that says nothing about this patient."""
    _ad_arrange(att, reason="patient needs admission today")


def _ad_by_hand(
    att: Any,
    *,
    identified: bool = False,
    meds: list[str] | None = None,
    allergies: list[str] | None = None,
) -> None:
    """Encounter, transfer summary and notification typed in by hand (``identified``: after
    identifying the patient). Without ``meds`` the summary says 'see chart'; with them it names
    the patient, the reason and these medications and ``allergies``."""
    f = att.facts
    s = att.session
    ref = f["patient_ref"]
    if identified:
        identify_patient(att)
    text = "Transfer summary: see chart"
    if meds is not None:
        text = (f"Transfer summary for {f['name']}, DOB {f['dob']}. Reason for admission: {f['reason']}. "
                f"Medications: {'; '.join(meds)}. Allergies: {'; '.join(allergies or []) or 'none'}.")  # fmt: skip
    s.create({"resourceType": "Encounter", "status": "planned", "class": {"system": V3_ACT_CODE, "code": "IMP"},
              "subject": {"reference": ref}, "basedOn": [{"reference": f["order_ref"]}], "serviceProvider": {"display": f["hospital"]},
              "location": [{"location": {"display": f["unit"]}}], "reasonCode": [{"text": f["reason"]}]})  # fmt: skip
    doc = s.create({"resourceType": "DocumentReference", "status": "current", "type": loinc_concept("18761-7"), "subject": {"reference": ref},
                    "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}]})  # fmt: skip
    s.create({"resourceType": "Communication", "status": "completed", "subject": {"reference": ref}, "recipient": [{"display": f["hospital"]}],
              "about": [{"reference": f"DocumentReference/{doc['id']}"}]})  # fmt: skip


def _ad_other_chart(att: Any) -> None:
    """A summary that names the patient and reason but lists medications and allergies from
    another patient's chart (every one this patient does not have)."""
    f = att.facts
    mine = [_drug(m) for m in f["medications"]]
    _ad_by_hand(
        att,
        identified=True,
        meds=[m for m in HOME_MEDS if _drug(m) not in mine][:2],
        allergies=[a for a in ALLERGENS if a not in f["allergies"]][:1],
    )


def _ad_edit(att: Any) -> None:
    _ad_reference(att)
    tamper(att, att.facts["old_ref"])


DIRECT_ADMISSION = Exercise(
    id="clinical/direct-admission",
    title="A direct admission from the clinic",
    topic="clinical",
    topics=("hospital-admission",),
    competencies=("V.P.10", "V.P.11", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Arrange the ordered direct admission: encounter, transfer summary, notification.",
    setup=_setup_admit,
    instructions=(
        "The provider orders a **direct admission** (`{order_ref}`) of **{name}** (DOB {dob}, MRN {mrn}) "
        "to **{hospital}**, **{unit}**, for {reason}.\n\n"
        "Arrange it with `workflows.admission.arrange`. The hospital's transfer summary carries "
        "the patient's identity, the reason, and the chart's current medications and allergies."
    ),
    criteria=(
        Criterion(
            "admission encounter",
            2,
            _ad_encounter,
            "The hospital admits against the provider's order, to the named unit, for a stated reason (CMS 42 CFR 482.43).",
        ),
        Criterion(
            "transfer summary",
            2,
            _ad_summary,
            "Continuity of care needs a transfer summary (The Joint Commission PC.04.02.01).",
        ),
        Criterion(
            "hospital notified",
            1,
            _ad_notified,
            "The receiving facility must know the patient is coming (hand-off communication).",
        ),
        identified_first(),
    ),
    hints=(Hint("`kind='direct'` for a direct admission."),),
    solution=Solution(_ad_reference),
    wrong_solutions={
        "hospital-notice-then-entered-in-error": Solution(
            lambda att: _ad_arrange(att, withdraw="entered-in-error"),
            fails="hospital notified",
            message="the hospital was not notified",
            description="the admission arranged and the hospital notified, then the notice marked entered-in-error (a routing undone at hand-in)",
        ),
        "sent-to-ed": Solution(
            _ad_ed,
            fails="admission encounter",
            message="a direct admission is an inpatient encounter",
        ),
        "no-summary": Solution(
            _ad_no_summary, fails="transfer summary", message="the hospital needs problems"
        ),
        "generic-reason": Solution(
            _ad_generic_reason,
            fails="admission encounter",
            message="a generic reason tells the hospital nothing",
            description="arranged through the workflow with a reason that is not the ordered one",
        ),
        "see-chart-summary": Solution(
            lambda att: _ad_by_hand(att, identified=True),
            fails="transfer summary",
            message="with the patient's identity and the reason for admission",
            description="a transfer summary that says 'see chart', typed in by hand",
        ),
        "no-medications-summary": Solution(
            lambda att: _ad_by_hand(att, identified=True, meds=[], allergies=[]),
            fails="transfer summary",
            message="exactly this patient's current medications and allergies",
            description="a summary with the patient and the reason but no medications or allergies",
        ),
        "stopped-medication-listed": Solution(
            lambda att: _ad_by_hand(
                att,
                identified=True,
                meds=[*att.facts["medications"], att.facts["stopped_medication"]],
                allergies=att.facts["allergies"],
            ),
            fails="transfer summary",
            message="exactly this patient's current medications and allergies",
            description="the medication stopped last month listed with the current ones",
        ),
        "another-patients-medications": Solution(
            _ad_other_chart,
            fails="transfer summary",
            message="exactly this patient's current medications and allergies",
            description="a summary listing medications and allergies this patient does not have",
        ),
        "skipped-identification": skipped_identification(_ad_by_hand),
        "edit-old-result": Solution(
            _ad_edit,
            fails="no collateral damage",
            message="answer key depends on",
        ),
    },
    expects=(
        Expect("Encounter", ops=("create",), patients=("patient_id",)),
        Expect("DocumentReference", ops=("create",), patients=("patient_id",)),
        Expect("Communication", ops=("create",), patients=("patient_id",)),
    ),
)
