"""Clinical exercises: rooming with an abnormal BP, a pediatric intake, a medication history.

Each patient has a same-name twin on today's schedule (the classic wrong-patient trap): the
student must identify with two identifiers. Graders read every version written since setup.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.clock import instant
from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.clinical.common import (
    ANOTHER_PROVIDER,
    MA,
    add_patient,
    code_of,
    identified_first,
    skipped_identification,
    standing,
    tamper,
    the_patients_provider,
    withdraw_messages,
    written,
)
from ehr_sandbox.exercises.builtin.common import (
    in_another_code_system,
    still_standing,
    then_withdrawn,
)
from ehr_sandbox.exercises.grading import GradingContext, text_of
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import history, intake, vitals
from ehr_sandbox.workflows.base import write
from ehr_sandbox.workflows.care import category, identify, loinc_concept, quantity, routed_task
from ehr_sandbox.workflows.content import table
from synthetic.systems import NDC, OBSERVATION_CATEGORY, RXNORM, UCUM

__all__ = ["MEDICATION_HISTORY", "PEDIATRIC_INTAKE", "ROOMING_ABNORMAL_BP", "find_patient"]

COMPLAINTS = [
    "headache for three days",
    "dizzy when standing up",
    "follow-up for blood pressure",
    "cough and congestion for a week",
    "pain in my left knee",
    "here for a medication check",
]


def look_up(att: Any, name: str, dob: str) -> str:
    """Find the patient's chart by name + date of birth (a search: nobody identified yet)."""
    matches = [p for p in att.session.find_patient(name=name, birthdate=dob)]
    return f"Patient/{matches[0]['id']}"


def find_patient(att: Any, name: str, dob: str) -> str:
    """Find and identify the patient by name + date of birth (what a careful MA does)."""
    return identify(att.session, look_up(att, name, dob), name=name, birth_date=dob)


def _vital_by_hand(att: Any, ref: str, code: str, value: float, unit: str) -> dict[str, Any]:
    """A vital-sign Observation typed straight into the chart (a plain create)."""
    return att.session.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": category("vital-signs"),
            "code": loinc_concept(code),
            "subject": {"reference": ref},
            "effectiveDateTime": instant(att.sandbox.clock.peek()),
            "valueQuantity": quantity(value, unit),
        }
    )


def _twins(sandbox: Any, rng: Any, age_days: int, gender: str) -> tuple[dict, dict]:
    right = add_patient(sandbox, rng, age_days=age_days, gender=gender)
    twin = add_patient(
        sandbox,
        rng,
        age_days=age_days + rng.randint(400, 3000),
        gender=gender,
        given=right["given"],
        family=right["family"],
    )
    return right, twin


def _prior_bp(sandbox: Any, patient: str, days_ago: int, sys: int, dia: int) -> dict[str, Any]:
    return sandbox.system_session().create(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
            "code": loinc_concept("85354-9"),
            "subject": {"reference": patient},
            "effectiveDateTime": instant(sandbox.clock.peek() - timedelta(days=days_ago)),
            "component": [
                {"code": loinc_concept("8480-6"), "valueQuantity": {"value": sys, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
                {"code": loinc_concept("8462-4"), "valueQuantity": {"value": dia, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
            ],
        }
    )  # fmt: skip


# ============================================================================ rooming, abnormal BP
def _setup_rooming(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    gender = rng.choice(["female", "male"])
    right, twin = _twins(sandbox, rng, rng.randint(45, 75) * 365 + rng.randint(0, 300), gender)
    prior = _prior_bp(
        sandbox, right["ref"], rng.randint(20, 60), rng.randint(132, 144), rng.randint(80, 88)
    )
    sys_ = rng.randint(152, 176)
    dia = rng.randint(92, min(108, sys_ - 40))
    facts = {
        "name": right["name"],
        "dob": right["dob"],
        "mrn": right["mrn"],
        "systolic": sys_,
        "diastolic": dia,
        "heart_rate": rng.randint(64, 96),
        "temp_f": round(rng.uniform(97.6, 99.0), 1),
        "complaint": rng.choice(COMPLAINTS),
        "prior_ref": f"Observation/{prior['id']}",
    }
    return Scenario(
        facts,
        answer={"patient_id": right["id"]},
        protect=(f"Observation/{prior['id']}",),
    )


def _twin_ids(ctx: GradingContext) -> list[str]:
    """Other patients with the scenario patient's name (the same-name trap)."""
    f = ctx.facts
    return [
        p["id"]
        for p in ctx.session.find_patient(name=f["name"])
        if p["id"] != ctx.answer["patient_id"]
    ]


def _bp_obs(ctx: GradingContext) -> list[dict[str, Any]]:
    """Blood pressures charted through the vitals workflow that still stand, as they are now."""
    vitals_written = written(ctx, "Observation", ctx.answer["patient_id"], "vitals.")
    return [o for o in still_standing(ctx, vitals_written, current=True) if code_of(o) == "85354-9"]


def _values(o: dict[str, Any]) -> dict[str, float]:
    return {
        code_of(c) or "": (c.get("valueQuantity") or {}).get("value")
        for c in o.get("component", [])
    }


def _pulse_charted(ctx: GradingContext, rate: float) -> bool:
    """A pulse of ``rate``/min charted on the scenario's patient through the vitals workflow,
    still standing at hand-in."""
    vitals_written = written(ctx, "Observation", ctx.answer["patient_id"], "vitals.")
    return any(
        code_of(o) == "8867-4"
        and (o.get("valueQuantity") or {}).get("value") == rate
        and (o.get("valueQuantity") or {}).get("code") == "/min"
        for o in still_standing(ctx, vitals_written, current=True)
    )


def _rooming_charted(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "the measured BP, pulse and temperature (UCUM [degF]) on the right patient's chart, through the vitals workflow"
    bps = _bp_obs(ctx)
    if not bps:
        other = [o for pid in _twin_ids(ctx) for o in written(ctx, "Observation", pid)]
        found = (
            "vitals charted on the other patient with the same name"
            if other
            else "no blood pressure recorded through the vitals workflow on this patient"
        )
        return Check(False, found, expected, "identify with two identifiers, then record_vitals")
    good = [o for o in bps if _values(o) == {"8480-6": f["systolic"], "8462-4": f["diastolic"]}]
    if not good:
        return Check(
            False,
            f"BP recorded as {_values(bps[-1])}",
            expected,
            "systolic first, diastolic second, as measured",
        )
    if not _pulse_charted(ctx, f["heart_rate"]):
        return Check(
            False,
            "pulse missing or not as measured",
            expected,
            "record every vital sign you measured, as measured",
        )
    vitals_written = written(ctx, "Observation", ctx.answer["patient_id"], "vitals.")
    temps = [o for o in still_standing(ctx, vitals_written, current=True) if code_of(o) == "8310-5"]
    if not any(
        (t.get("valueQuantity") or {}).get("code") == "[degF]"
        and (t.get("valueQuantity") or {}).get("value") == f["temp_f"]
        for t in temps
    ):
        return Check(
            False,
            "temperature missing or in the wrong unit",
            expected,
            "a Fahrenheit reading is recorded with unit [degF]",
        )
    return Check(True, "vitals on the right chart", expected)


def _rooming_routed(ctx: GradingContext) -> Check:
    expected = "a message to the patient's provider about the abnormal blood pressure, linked to the reading"
    pid = ctx.answer["patient_id"]
    bp_ids = {f"Observation/{o['id']}" for o in _bp_obs(ctx)}
    elsewhere = False
    for c in standing(ctx, written(ctx, "Communication", pid), pid):
        about = {a.get("reference") for a in c.get("about", [])}
        if not about & bp_ids:
            continue
        if any(the_patients_provider(ctx, pid, r.get("reference")) for r in c.get("recipient", [])):
            return Check(True, "the provider was messaged about the reading", expected)
        elsewhere = True
    if elsewhere:
        return Check(
            False,
            "the message about the reading went to someone other than the patient's provider",
            expected,
            "route an abnormal value to the provider who sees this patient (the chart's "
            "primary care provider), not to another practitioner",
        )
    return Check(
        False,
        "no message to the provider about the abnormal reading",
        expected,
        "an abnormal value is reported to the provider before they see the patient",
    )


def _rooming_cc(ctx: GradingContext) -> Check:
    want = set(rubric.normalize(ctx.facts["complaint"]).split())
    expected = "the chief complaint in the patient's own words"
    for o in still_standing(
        ctx, written(ctx, "Observation", ctx.answer["patient_id"]), current=True
    ):
        got = set(rubric.normalize(str(o.get("valueString", ""))).split())
        # the patient's words, give or take one, and not buried among other complaints
        extra = got - want - rubric.FILLER
        if code_of(o) == "8661-1" and len(want & got) >= len(want) - 1 and len(extra) <= 4:
            return Check(True, "chief complaint recorded", expected)
    return Check(
        False,
        "no chief complaint with the patient's words",
        expected,
        "record the reason for the visit as the patient said it",
    )


def _rooming_reference(
    att: Any,
    *,
    leave_out_pulse: bool = False,
    provider: str | None = None,
    complaint: str | None = None,
    withdraw: str | None = None,
) -> None:
    """The reference; ``leave_out_pulse``, ``provider`` (another practitioner for the alert)
    and ``complaint`` (another chief complaint) make the wrong solutions of those names;
    ``withdraw``: the alert then set to that status (stopped, entered in error)."""
    f = att.facts
    ref = find_patient(att, f["name"], f["dob"])
    intake.record_chief_complaint(att.session, ref, complaint or f["complaint"])
    vitals.record_vitals(
        att.session,
        ref,
        systolic=f["systolic"],
        diastolic=f["diastolic"],
        heart_rate=None if leave_out_pulse else f["heart_rate"],
        temperature=f["temp_f"],
        temperature_unit="[degF]",
        provider=provider,
    )
    if withdraw:
        withdraw_messages(att, "Communication", withdraw, ref)


def _rooming_raw(att: Any, *, typed_tag: bool = False) -> None:
    """Typical mistake: typing the vitals straight into the chart (no flag, no message);
    ``typed_tag``: with the vitals.record tag typed in."""
    f = att.facts
    ref = find_patient(att, f["name"], f["dob"])
    intake.record_chief_complaint(att.session, ref, f["complaint"])
    o = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
        "code": loinc_concept("85354-9"),
        "subject": {"reference": ref},
        "effectiveDateTime": instant(att.sandbox.clock.peek()),
        "component": [
            {"code": loinc_concept("8480-6"), "valueQuantity": {"value": f["systolic"], "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
            {"code": loinc_concept("8462-4"), "valueQuantity": {"value": f["diastolic"], "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
        ],
    }  # fmt: skip
    if typed_tag:
        write(att.session, o, operation="vitals.record")
    else:
        att.session.create(o)
    vitals.record_vitals(att.session, ref, heart_rate=f["heart_rate"], temperature=f["temp_f"])


def _rooming_every_complaint(att: Any) -> None:
    """The vitals right; the chief complaint recorded as every complaint the MA can think of
    (the patient's words among them)."""
    _rooming_reference(att, complaint="; ".join(COMPLAINTS))


def _rooming_unidentified(att: Any) -> None:
    """Skipped identification: the chart looked up by name and DOB, the pulse and
    temperature typed in, nobody identified."""
    f = att.facts
    ref = look_up(att, f["name"], f["dob"])
    _vital_by_hand(att, ref, "8867-4", f["heart_rate"], "/min")
    _vital_by_hand(att, ref, "8310-5", f["temp_f"], "[degF]")


def _rooming_both_twins(att: Any) -> None:
    """Harmful: not sure which chart, so the vitals go on both same-name patients."""
    f = att.facts
    _rooming_reference(att)
    s = att.session
    for p in s.find_patient(name=f["name"]):
        if p["birthDate"] != f["dob"]:
            ref = identify(s, f"Patient/{p['id']}", name=f["name"], birth_date=p["birthDate"])
            vitals.record_vitals(s, ref, systolic=f["systolic"], diastolic=f["diastolic"])


def _rooming_edit_prior(att: Any) -> None:
    """Answer-key change: 'fixing' last month's reading so today's does not look abnormal."""
    _rooming_reference(att)
    tamper(att, att.facts["prior_ref"])


ROOMING_ABNORMAL_BP = Exercise(
    id="clinical/rooming-abnormal-bp",
    title="Rooming a patient with a high blood pressure",
    topic="clinical",
    topics=("vital-signs", "patient-intake"),
    competencies=("I.P.1", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Identify with two identifiers, record the chief complaint and vitals; the high BP reaches the provider.",
    setup=_setup_rooming,
    instructions=(
        "You room **{name}** (DOB {dob}, MRN {mrn}). There is more than one patient with that name today.\n\n"
        'The patient says: *"{complaint}"*. You measure BP **{systolic}/{diastolic} mmHg**, pulse '
        "**{heart_rate}/min**, temperature **{temp_f} °F**.\n\n"
        "Identify the patient (`ehr_sandbox.workflows.care.identify`), record the chief complaint "
        "(`workflows.intake.record_chief_complaint`) and the vitals (`workflows.vitals.record_vitals`). "
        "Make sure the provider hears about the blood pressure before the visit."
    ),
    criteria=(
        Criterion(
            "vitals on the right chart",
            3,
            _rooming_charted,
            "Vitals recorded on the wrong patient or in the wrong unit mislead every later decision (MAERB I.P.1; The Joint Commission NPSG.01.01.01).",
        ),
        Criterion(
            "provider told of the abnormal BP",
            2,
            _rooming_routed,
            "An abnormal vital sign must reach the provider (MAERB I.P.1, V.P.11; 2017 ACC/AHA BP guideline).",
        ),
        Criterion(
            "chief complaint",
            1,
            _rooming_cc,
            "The chief complaint in the patient's words frames the visit (documentation standards; MAERB X.P.3).",
        ),
        identified_first(),
    ),
    hints=(
        Hint("Search by name and date of birth: `s.find_patient(name=..., birthdate=...)`."),
        Hint("`record_vitals` flags and routes abnormal values for you.", cost=1),
    ),
    solution=Solution(
        _rooming_reference, description="identify, chief complaint, vitals through the workflow"
    ),
    wrong_solutions={
        "complaint-then-entered-in-error": Solution(
            then_withdrawn(
                _rooming_reference,
                "Observation",
                patient=lambda att: look_up(att, att.facts["name"], att.facts["dob"]),
                only=lambda o: code_of(o) == "8661-1",
            ),
            fails="chief complaint",
            message="record the reason for the visit as the patient said it",
            description="the chief complaint recorded, then marked entered in error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "bp-then-entered-in-error": Solution(
            then_withdrawn(
                _rooming_reference,
                "Observation",
                patient=lambda att: look_up(att, att.facts["name"], att.facts["dob"]),
                only=lambda o: code_of(o) == "85354-9",
            ),
            fails="vitals on the right chart",
            message="record_vitals",
            description="the vitals charted through the workflow, then the blood pressure marked "
            "entered in error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "alert-then-entered-in-error": Solution(
            lambda att: _rooming_reference(att, withdraw="entered-in-error"),
            fails="provider told of the abnormal BP",
            message="no message to the provider about the abnormal reading",
            description="the abnormal-BP message to the provider sent, then marked entered-in-error (a routing undone at hand-in)",
        ),
        "vitals-tag-by-hand": Solution(
            lambda att: _rooming_raw(att, typed_tag=True),
            fails="vitals on the right chart",
            message="then record_vitals",
            description="BP typed by hand with the vitals.record tag: no flag, no message",
        ),
        "typed-into-chart": Solution(
            _rooming_raw,
            fails="provider told of the abnormal BP",
            message="reported to the provider",
            description="BP created by hand: no flag, no message",
        ),
        "both-same-name-charts": Solution(
            _rooming_both_twins,
            fails="no collateral damage",
            message="unexpected change",
            description="vitals also charted on the other patient with the same name",
        ),
        "edit-last-reading": Solution(
            _rooming_edit_prior,
            fails="no collateral damage",
            message="answer key depends on",
            description="last month's BP edited",
        ),
        "skipped-identification": skipped_identification(_rooming_unidentified),
        "every-complaint-listed": Solution(
            _rooming_every_complaint,
            fails="chief complaint",
            message="record the reason for the visit as the patient said it",
            description="the chief complaint recorded as a list of every common complaint",
        ),
        "pulse-left-out": Solution(
            lambda att: _rooming_reference(att, leave_out_pulse=True),
            fails="vitals on the right chart",
            message="record every vital sign you measured",
            description="BP and temperature charted through the workflow, the measured pulse left out",
        ),
        "bp-routed-to-another-provider": Solution(
            lambda att: _rooming_reference(att, provider=ANOTHER_PROVIDER),
            fails="provider told of the abnormal BP",
            message="not to another practitioner",
            description="the abnormal-BP alert routed to a practitioner who is not the patient's provider",
        ),
    },
    expects=(
        Expect("Observation", ops=("create",), patients=("patient_id",)),
        Expect("Communication", ops=("create",), patients=("patient_id",)),
    ),
)


# ============================================================================ pediatric intake
def _setup_peds(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    gender = rng.choice(["female", "male"])
    months = rng.randint(30, 120)
    right, twin = _twins(sandbox, rng, months * 30 + rng.randint(0, 25), gender)
    prior = _prior_weight(sandbox, right["ref"], rng)
    height = round(rng.uniform(88, 138), 1)
    bmi = rng.uniform(14.5, 22.0)
    weight = round(bmi * (height / 100) ** 2, 1)
    facts = {
        "name": right["name"],
        "dob": right["dob"],
        "mrn": right["mrn"],
        "weight_kg": weight,
        "height_cm": height,
        "temp_c": round(rng.uniform(36.4, 37.6), 1),
        "heart_rate": rng.randint(80, 120),
        "prior_ref": f"Observation/{prior['id']}",
    }
    return Scenario(
        facts,
        answer={"patient_id": right["id"]},
        protect=(facts["prior_ref"],),
    )


def _prior_weight(sandbox: Any, patient: str, rng: Any) -> dict[str, Any]:
    return sandbox.system_session().create(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
            "code": loinc_concept("29463-7"),
            "subject": {"reference": patient},
            "effectiveDateTime": instant(sandbox.clock.peek() - timedelta(days=rng.randint(90, 200))),
            "valueQuantity": {"value": round(rng.uniform(11, 25), 1), "unit": "kg", "system": UCUM, "code": "kg"},
        }
    )  # fmt: skip


def _peds_measured(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "weight, height and temperature as measured, in the units measured, on the right child's chart"
    obs = still_standing(ctx, written(ctx, "Observation", ctx.answer["patient_id"], "vitals."))
    got = {code_of(o): (o.get("valueQuantity") or {}) for o in obs}
    if not obs:
        return Check(
            False,
            "no vitals recorded through the workflow for this child",
            expected,
            "identify with two identifiers, then record_vitals",
        )
    checks = [
        ("29463-7", f["weight_kg"], "kg"),
        ("8302-2", f["height_cm"], "cm"),
        ("8310-5", f["temp_c"], "Cel"),
        ("8867-4", f["heart_rate"], "/min"),
    ]
    for code, value, unit in checks:
        q = got.get(code) or {}
        if q.get("value") != value or q.get("code") != unit:
            return Check(
                False,
                f"{code} recorded as {q.get('value')} {q.get('code')}",
                expected,
                "record each value with its own unit",
            )
    return Check(True, "measurements recorded", expected)


def _peds_percentile(ctx: GradingContext) -> Check:
    expected = "a BMI and its CDC BMI-for-age percentile computed from today's weight and height"
    obs = still_standing(ctx, written(ctx, "Observation", ctx.answer["patient_id"], "vitals."))
    bmi = [o for o in obs if code_of(o) == "39156-5"]
    pct = [o for o in obs if code_of(o) == "59576-9"]
    if not bmi or not pct:
        return Check(
            False,
            "no BMI percentile for the child",
            expected,
            "weigh and measure together so BMI and its percentile are computed",
        )
    want = vitals.bmi((ctx.facts["weight_kg"]), ctx.facts["height_cm"])
    if bmi[-1]["valueQuantity"]["value"] != want:
        return Check(
            False,
            f"BMI {bmi[-1]['valueQuantity']['value']}",
            expected,
            "BMI from today's measurements",
        )
    return Check(True, "BMI percentile recorded", expected)


def _peds_reference(att: Any, *, leave_out_pulse: bool = False, withdraw: bool = False) -> None:
    """The reference; ``leave_out_pulse`` makes the wrong solution of that name; ``withdraw``:
    every measurement then marked entered in error."""
    f = att.facts
    ref = find_patient(att, f["name"], f["dob"])
    done = vitals.record_vitals(
        att.session,
        ref,
        weight=f["weight_kg"],
        height=f["height_cm"],
        temperature=f["temp_c"],
        temperature_unit="Cel",
        heart_rate=None if leave_out_pulse else f["heart_rate"],
    )
    for o in done.observations if withdraw else ():
        att.session.mark_entered_in_error(f"Observation/{o['id']}", "charted in error")


def _peds_separately(att: Any) -> None:
    """Typical mistake: weight and height charted in two steps (no BMI, no percentile)."""
    f = att.facts
    ref = find_patient(att, f["name"], f["dob"])
    vitals.record_vitals(
        att.session,
        ref,
        weight=f["weight_kg"],
        temperature=f["temp_c"],
        temperature_unit="Cel",
        heart_rate=f["heart_rate"],
    )
    vitals.record_vitals(att.session, ref, height=f["height_cm"])


def _peds_typed_percentile(att: Any) -> None:
    """Weight and height charted apart, then a BMI and a made-up percentile typed in by hand
    with the vitals.record tag."""
    _peds_separately(att)
    f = att.facts
    ref = find_patient(att, f["name"], f["dob"])
    when = instant(att.sandbox.clock.peek())
    for code, value, unit in (
        ("39156-5", vitals.bmi(f["weight_kg"], f["height_cm"]), "kg/m2"),
        ("59576-9", 50.0, "%"),
    ):
        write(
            att.session,
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
                "code": loinc_concept(code),
                "subject": {"reference": ref},
                "effectiveDateTime": when,
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            },
            operation="vitals.record",
        )  # fmt: skip


def _peds_unidentified(att: Any) -> None:
    """Skipped identification: the chart looked up, weight and height typed in by hand."""
    f = att.facts
    ref = look_up(att, f["name"], f["dob"])
    _vital_by_hand(att, ref, "29463-7", f["weight_kg"], "kg")
    _vital_by_hand(att, ref, "8302-2", f["height_cm"], "cm")


def _peds_wrong_twin(att: Any) -> None:
    """Harmful: picks the first child of that name (the twin) without checking the DOB."""
    f = att.facts
    s = att.session
    for p in s.find_patient(name=f["name"]):
        if p["birthDate"] != f["dob"]:
            ref = identify(s, f"Patient/{p['id']}", name=f["name"], birth_date=p["birthDate"])
            vitals.record_vitals(
                s,
                ref,
                weight=f["weight_kg"],
                height=f["height_cm"],
                temperature=f["temp_c"],
                temperature_unit="Cel",
            )


def _peds_edit_prior(att: Any) -> None:
    _peds_reference(att)
    tamper(att, att.facts["prior_ref"])


PEDIATRIC_INTAKE = Exercise(
    id="clinical/pediatric-intake",
    title="Pediatric intake with growth percentiles",
    topic="clinical",
    topics=("patient-intake", "vital-signs"),
    competencies=("I.P.1", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Measure a child, record the vitals in their units and the BMI-for-age percentile.",
    setup=_setup_peds,
    instructions=(
        "Room the child **{name}** (DOB {dob}, MRN {mrn}); another child has the same name.\n\n"
        "You measure weight **{weight_kg} kg**, height **{height_cm} cm**, temperature **{temp_c} °C**, "
        "pulse **{heart_rate}/min**. Record them so the chart shows the BMI and its CDC growth "
        "percentile (`workflows.vitals.record_vitals`)."
    ),
    criteria=(
        Criterion(
            "measurements recorded",
            2,
            _peds_measured,
            "Growth is judged from exact measurements in their units (MAERB I.P.1; CDC growth charts).",
        ),
        Criterion(
            "BMI percentile",
            2,
            _peds_percentile,
            "A child's BMI means nothing without its percentile for age and sex (CDC 2000 growth charts; AAP).",
        ),
        identified_first(),
    ),
    hints=(Hint("Record weight and height in the same call."),),
    solution=Solution(_peds_reference),
    wrong_solutions={
        "measured-then-entered-in-error": Solution(
            lambda att: _peds_reference(att, withdraw=True),
            fails="measurements recorded",
            message="identify with two identifiers, then record_vitals",
            description="the vitals recorded, then every one marked entered in error (the task's "
            "own criteria passed before; only collateral damage caught it)",
        ),
        "percentile-tag-by-hand": Solution(
            _peds_typed_percentile,
            fails="BMI percentile",
            message="weigh and measure together",
            description="typed a BMI and a made-up percentile by hand with the vitals.record tag",
        ),
        "weight-and-height-apart": Solution(
            _peds_separately,
            fails="BMI percentile",
            message="weigh and measure together",
            description="two calls: no BMI",
        ),
        "other-child": Solution(
            _peds_wrong_twin,
            fails="measurements recorded",
            message="identify with two identifiers",
            description="charted on the same-name child",
        ),
        "edit-old-weight": Solution(
            _peds_edit_prior,
            fails="no collateral damage",
            message="answer key depends on",
            description="edits the previous weight",
        ),
        "skipped-identification": skipped_identification(_peds_unidentified),
        "pulse-left-out": Solution(
            lambda att: _peds_reference(att, leave_out_pulse=True),
            fails="measurements recorded",
            message="record each value with its own unit",
            description="weight, height and temperature charted, the measured pulse left out",
        ),
    },
    expects=(Expect("Observation", ops=("create",), patients=("patient_id",)),),
)


# ============================================================================ medication history
DUPLICATES = [
    (
        "1049221",
        "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet",
        "198440",
        "acetaminophen 500 MG Oral Tablet",
        "acetaminophen",
    ),
    (
        "314076",
        "lisinopril 10 MG Oral Tablet",
        "979492",
        "losartan potassium 50 MG Oral Tablet",
        "ras-blocker",
    ),
    (
        "312938",
        "sertraline 100 MG Oral Tablet",
        "310385",
        "fluoxetine 20 MG Oral Capsule",
        "ssri-snri",
    ),
    ("310965", "ibuprofen 200 MG Oral Tablet", "198014", "naproxen 500 MG Oral Tablet", "nsaid"),
    (
        "312961",
        "simvastatin 20 MG Oral Tablet",
        "259255",
        "atorvastatin 80 MG Oral Tablet",
        "statin",
    ),
]
OTHERS = [("200224", "montelukast 10 MG Oral Tablet"), ("966222", "levothyroxine sodium 0.075 MG Oral Tablet"), ("1014678", "cetirizine hydrochloride 10 MG Oral Tablet"), ("243670", "aspirin 81 MG Oral Tablet")]  # fmt: skip


def _setup_medhx(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    right, twin = _twins(sandbox, rng, rng.randint(40, 80) * 365, rng.choice(["female", "male"]))
    a_code, a_disp, b_code, b_disp, cls = rng.choice(DUPLICATES)
    o_code, o_disp = rng.choice(OTHERS)
    prior = _prior_bp(
        sandbox, right["ref"], rng.randint(30, 90), rng.randint(118, 138), rng.randint(70, 86)
    )
    facts = {
        "name": right["name"],
        "dob": right["dob"],
        "mrn": right["mrn"],
        "med_a": a_disp,
        "rx_a": a_code,
        "med_b": b_disp,
        "rx_b": b_code,
        "med_c": o_disp,
        "rx_c": o_code,
        "prior_ref": f"Observation/{prior['id']}",
    }
    return Scenario(
        facts,
        answer={"patient_id": right["id"], "dup_class": cls},
        protect=(facts["prior_ref"],),
    )


def _medhx_statements(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "the three medications the patient takes as active statements, each with its source"
    got = {
        code_of(s, "medicationCodeableConcept"): s
        for s in written(ctx, "MedicationStatement", ctx.answer["patient_id"])
    }
    missing = [f[k] for k in ("rx_a", "rx_b", "rx_c") if f[k] not in got]
    if missing:
        return Check(
            False,
            f"{len(missing)} of the patient's medications not recorded",
            expected,
            "list every medication the patient reports, coded",
        )
    misnamed = [
        k
        for k in ("a", "b", "c")
        if (shown := text_of(got[f[f"rx_{k}"]].get("medicationCodeableConcept") or {}))
        and f[f"med_{k}"].split()[0].lower() not in shown.lower()
    ]
    if misnamed:
        return Check(
            False,
            f"{len(misnamed)} statement(s) coded for one drug but named as another",
            expected,
            "the name on a medication entry is the drug its code says, as the patient reported it",
        )
    if any(
        got[f[k]].get("status") != "active" or not got[f[k]].get("informationSource")
        for k in ("rx_a", "rx_b", "rx_c")
    ):
        return Check(
            False, "a statement without active status or source", expected, "say who told you"
        )
    return Check(True, "medication history recorded", expected)


def _medhx_flagged(ctx: GradingContext) -> Check:
    expected = (
        "the duplicate therapy named in a task to the provider (the MA does not stop a medication)"
    )
    pid = ctx.answer["patient_id"]
    said: Check | None = None
    elsewhere = False
    for t in standing(ctx, written(ctx, "Task", pid), pid):
        named = _names_the_duplicate(ctx, str(t.get("description", "")))
        if not the_patients_provider(ctx, pid, (t.get("owner") or {}).get("reference")):
            elsewhere = elsewhere or named.passed
            continue
        said = named
        if said.passed:
            return Check(True, "duplicate therapy routed to the provider", expected)
    if elsewhere:
        return Check(
            False,
            "the duplicate was routed to someone other than the patient's provider",
            expected,
            "route it to the provider who prescribes for this patient (the chart's primary "
            "care provider), not to another practitioner",
        )
    if said is not None:
        return Check(
            False,
            f"a task to the provider that does not name the duplicate ({said.found})",
            expected,
            "say which two medications duplicate each other and that they are a duplicate "
            "therapy: a list of everything the patient takes tells the provider nothing",
        )
    stopped = [
        s
        for s in written(ctx, "MedicationStatement", ctx.answer["patient_id"])
        if s.get("status") in ("stopped", "not-taken")
    ]
    found = (
        "a medication marked stopped by the MA"
        if stopped
        else "no task to the provider about the duplicate"
    )
    return Check(False, found, expected, "duplicate therapy is the provider's decision: route it")


def _names_the_duplicate(ctx: GradingContext, text: str) -> Check:
    """The task's text names both drugs of the duplicate and says they duplicate each other
    (by the class or in words), and not the third medication (when it is not of that class):
    "no concerns", or all three called possible duplicates, is not the concern routed."""
    f = ctx.facts
    cls = table("medications")["classes"][ctx.answer["dup_class"]]["display"]
    forbidden = {"that there is nothing to worry about": ["no concern", "no concerns"]}
    if ctx.answer["dup_class"] not in intake.classes_of(f["rx_c"]):
        # the third medication is not part of the duplicate: naming it blurs which two are
        forbidden["a medication that is not part of the duplicate"] = [
            f["rx_c"],
            f["med_c"],
            f["med_c"].split()[0],
        ]
    return rubric.check_text(
        text,
        {
            "the first drug of the pair": [f["rx_a"], f["med_a"]],
            "the second drug of the pair": [f["rx_b"], f["med_b"]],
            "that they are a duplicate therapy": [
                "duplicate",
                "duplicates",
                "duplication",
                "same class",
                "same drug class",
                cls,
            ],
        },
        forbidden=forbidden,
        what="the task",
    )


def _medhx_entries(
    f: dict[str, Any], status_b: str = "active", name_a: str | None = None
) -> list[dict[str, Any]]:
    """The three statements; ``name_a``: the first one named as that drug (its code kept)."""
    return [
        {
            "rxnorm": f["rx_a"],
            "display": name_a or f["med_a"],
            "status": "active",
            "source": "patient",
        },
        {"rxnorm": f["rx_b"], "display": f["med_b"], "status": status_b, "source": "patient"},
        {"rxnorm": f["rx_c"], "display": f["med_c"], "status": "active", "source": "patient"},
    ]


def _medhx_reference(att: Any, withdraw: str | None = None, name_a: str | None = None) -> None:
    """The reference; ``withdraw``: the duplicate-therapy task then set to that status;
    ``name_a``: the first statement named as that drug (its code kept)."""
    f = att.facts
    ref = find_patient(att, f["name"], f["dob"])
    intake.reconcile_medications(att.session, ref, _medhx_entries(f, name_a=name_a))
    if withdraw:
        withdraw_messages(att, "Task", withdraw, ref)


def _medhx_stop_one(att: Any) -> None:
    """Typical mistake: the MA 'fixes' the duplicate by recording one drug as stopped."""
    f = att.facts
    ref = find_patient(att, f["name"], f["dob"])
    intake.reconcile_medications(att.session, ref, _medhx_entries(f, status_b="stopped"))


def _medhx_free_text(att: Any) -> None:
    """Harmful: the list typed as free text on the twin's chart, too."""
    _medhx_reference(att)
    f = att.facts
    s = att.session
    for p in s.find_patient(name=f["name"]):
        if p["birthDate"] != f["dob"]:
            ref = identify(s, f"Patient/{p['id']}", name=f["name"], birth_date=p["birthDate"])
            history.record_tobacco_use(s, ref, "266927001")


def _medhx_by_hand(
    att: Any, *, identified: bool = True, concern: bool = True, all_three: bool = False
) -> None:
    """The three statements typed in by hand and a Task to the patient's provider, also by
    hand; ``identified``: the patient identified first; ``concern``: the task names the
    duplicate (else it lists every medication and says there is no concern); ``all_three``:
    it calls all three medications possible duplicates."""
    f = att.facts
    s = att.session
    ref = (find_patient if identified else look_up)(att, f["name"], f["dob"])
    for k in ("a", "b", "c"):
        s.create(
            {
                "resourceType": "MedicationStatement",
                "status": "active",
                "medicationCodeableConcept": {
                    "coding": [{"system": RXNORM, "code": f[f"rx_{k}"], "display": f[f"med_{k}"]}]
                },
                "subject": {"reference": ref},
                "informationSource": {"display": "patient"},
            }
        )
    text = (
        f"Possible duplicate therapy: {f['med_a']} and {f['med_b']} are the same class"
        if concern
        else f"Medication list for your review: {f['rx_a']}, {f['rx_b']}, {f['rx_c']}. No concerns."
    )
    if all_three:
        text = f"Possible duplicate therapy among {f['med_a']}, {f['med_b']} and {f['med_c']}"
    s.create(routed_task(s, ref, "Practitioner/prac-dr.patel", text))


def _medhx_other_provider(att: Any) -> None:
    """The reconciliation run with the duplicate routed to another practitioner."""
    f = att.facts
    ref = find_patient(att, f["name"], f["dob"])
    intake.reconcile_medications(att.session, ref, _medhx_entries(f), provider=ANOTHER_PROVIDER)


def _medhx_edit(att: Any) -> None:
    _medhx_reference(att)
    tamper(att, att.facts["prior_ref"])


MEDICATION_HISTORY = Exercise(
    id="clinical/medication-history",
    title="A medication history with a duplicate therapy",
    topic="clinical",
    topics=("medical-history", "patient-intake"),
    competencies=("I.P.4", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Take the medication history; two drugs of one class go to the provider, not off the list.",
    setup=_setup_medhx,
    instructions=(
        "Take the medication history of **{name}** (DOB {dob}, MRN {mrn}). The patient takes, every day:\n\n"
        "- {med_a} (RxNorm {rx_a})\n- {med_b} (RxNorm {rx_b})\n- {med_c} (RxNorm {rx_c})\n\n"
        "Record them with `workflows.intake.reconcile_medications` (source: the patient). If anything looks unsafe, make sure the provider knows."
    ),
    criteria=(
        Criterion(
            "medications recorded",
            2,
            _medhx_statements,
            "An accurate medication list is the base of every prescribing decision (The Joint Commission NPSG.03.06.01).",
        ),
        Criterion(
            "duplicate therapy to the provider",
            3,
            _medhx_flagged,
            "Two drugs of one class can harm (e.g. acetaminophen overdose); changing therapy is the prescriber's decision (MAERB I.P.4; scope of practice).",
        ),
        identified_first(),
    ),
    hints=(Hint("Look at the drug classes: two of these do the same thing."),),
    solution=Solution(_medhx_reference),
    wrong_solutions={
        "coded-one-drug-named-another": Solution(
            lambda att: _medhx_reference(att, name_a=att.facts["med_c"]),
            fails="medications recorded",
            message="the name on a medication entry is the drug its code says",
            description="the first statement keeps its code but names another drug (another "
            "student's medication): scored full marks before",
        ),
        "duplicate-task-then-cancelled": Solution(
            lambda att: _medhx_reference(att, withdraw="cancelled"),
            fails="duplicate therapy to the provider",
            message="no task to the provider about the duplicate",
            description="the duplicate-therapy task routed to the provider, then cancelled (a routing undone at hand-in)",
        ),
        "rxnorm-filed-as-ndc": Solution(
            in_another_code_system(_medhx_reference, {RXNORM: NDC}),
            fails="medications recorded",
            message="list every medication the patient reports, coded",
            description="the right numbers filed under the NDC code system",
        ),
        "stop-one-drug": Solution(
            _medhx_stop_one,
            fails="duplicate therapy to the provider",
            message="route it",
            description="records one drug as stopped instead of telling the provider",
        ),
        "twin-chart-too": Solution(
            _medhx_free_text,
            fails="no collateral damage",
            message="unexpected change",
            description="writes on the same-name patient's chart",
        ),
        "edit-old-record": Solution(
            _medhx_edit,
            fails="no collateral damage",
            message="answer key depends on",
        ),
        "skipped-identification": skipped_identification(
            lambda att: _medhx_by_hand(att, identified=False)
        ),
        "medication-list-no-concern": Solution(
            lambda att: _medhx_by_hand(att, concern=False),
            fails="duplicate therapy to the provider",
            message="a list of everything the patient takes tells the provider nothing",
            description="a task to the provider that lists every medication (the duplicate's "
            "codes among them) and says there is no concern",
        ),
        "all-three-called-duplicates": Solution(
            lambda att: _medhx_by_hand(att, all_three=True),
            fails="duplicate therapy to the provider",
            message="say which two medications duplicate each other",
            description="a task calling all three medications possible duplicates",
        ),
        "duplicate-to-another-provider": Solution(
            _medhx_other_provider,
            fails="duplicate therapy to the provider",
            message="not to another practitioner",
            description="the duplicate routed to a practitioner who is not the patient's provider",
        ),
    },
    expects=(
        Expect("MedicationStatement", ops=("create",), patients=("patient_id",)),
        Expect("Task", ops=("create",), patients=("patient_id",)),
    ),
)
