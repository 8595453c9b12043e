"""Clinical exercises for the specialty presets: an ophthalmic workup (glaucoma follow-up), a
diabetic foot exam with routine foot care, a prenatal visit at 28 weeks, and a chiropractic
visit documented for Medicare."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ehr_sandbox.clock import instant
from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.clinical.common import (
    ANOTHER_PROVIDER,
    MA,
    add_patient,
    administered_safely,
    code_of,
    identified_first,
    identify_patient,
    patient_facts,
    routed_saying,
    skipped_identification,
    tamper,
    withdraw_messages,
    written,
)
from ehr_sandbox.exercises.builtin.common import still_standing, then_withdrawn
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import immunizations
from ehr_sandbox.workflows.care import SANDBOX_OBS, loinc_concept, routed_task
from ehr_sandbox.workflows.content import table
from ehr_sandbox.workflows.specialties import chiropractic, obgyn, ophthalmic, podiatric
from ehr_sandbox.workflows.specialties.common import modifiers_of
from synthetic.systems import CONDITION_VER_STATUS, ICD10CM, SANDBOX_PROCEDURE, UCUM

__all__ = ["CHIROPRACTIC_MEDICARE", "DIABETIC_FOOT_EXAM", "OPHTHALMIC_WORKUP", "PRENATAL_28_WEEKS"]


def _old_obs(
    sandbox: Any, patient: str, loinc: str, value: float, unit: str, days: int
) -> dict[str, Any]:
    return sandbox.system_session().create(
        {
            "resourceType": "Observation",
            "status": "final",
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


def _routed_finding(
    ctx: GradingContext,
    required: dict[str, list[str]],
    forbidden: dict[str, list[str]],
    what: str,
) -> Check | None:
    """The Tasks on the scenario patient graded by :func:`routed_saying`: a passing Check for
    the first that reaches the patient's own provider and says the finding; else why the
    nearest does not count; None when there is no task."""
    pid = ctx.facts["patient_id"]
    return routed_saying(
        ctx,
        pid,
        written(ctx, "Task", pid),
        required,
        forbidden,
        what,
        advice="the task says what was found and that it is abnormal: a task that reassures, "
        "or only names the test, asks the provider for nothing",
    )


def _routed_check(
    ctx: GradingContext,
    required: dict[str, list[str]],
    forbidden: dict[str, list[str]],
    what: str,
    *,
    expected: str,
    passed: str,
    missing: str,
    advice: str,
) -> Check:
    """The criterion's Check from :func:`_routed_finding`: ``passed`` when a task reaches the
    patient's provider and says the finding; the nearest task's reason when one does not; else
    ``missing`` with ``advice``."""
    found = _routed_finding(ctx, required, forbidden, what)
    if found is not None and found.passed:
        return Check(True, passed, expected)
    if found is not None:
        return Check(False, found.found, expected, found.advice)
    return Check(False, missing, expected, advice)


# ============================================================================ ophthalmic workup
LINES = ["20/20", "20/25", "20/30", "20/40", "20/50", "20/70"]
TARGETS = range(15, 19)
"""The target IOPs (mm[Hg]) a variant's patient can have."""


def _setup_eye(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox, rng, age_days=rng.randint(55, 85) * 365, gender=rng.choice(["female", "male"])
    )
    target = rng.randint(TARGETS[0], TARGETS[-1])
    high_right = rng.random() < 0.5
    hi, lo = target + rng.randint(3, 8), target - rng.randint(0, 3)
    old = _old_obs(sandbox, p["ref"], "79892-6", target - 1, "mm[Hg]", rng.randint(80, 120))
    facts = {
        **patient_facts(p),
        "target": target,
        "iop_right": hi if high_right else lo,
        "iop_left": lo if high_right else hi,
        "va_right": rng.choice(LINES),
        "va_left": rng.choice(LINES),
        "drops": "latanoprost 0.005% ophthalmic solution, 1 drop in each eye at bedtime",
        "adherence": rng.choice(["missed doses", "taking"]),
        "old_ref": f"Observation/{old['id']}",
    }
    return Scenario(facts, answer={}, protect=(facts["old_ref"],))


def _eye_values(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "acuity and IOP of each eye recorded under the right eye's code"
    got = {
        code_of(o): o
        for o in still_standing(ctx, written(ctx, "Observation", f["patient_id"]), current=True)
    }
    want = {"98499-7": f["va_right"], "98498-9": f["va_left"]}
    iop = {"79892-6": f["iop_right"], "79893-4": f["iop_left"]}
    if any(got.get(k, {}).get("valueString") != v for k, v in want.items()) or any(
        (got.get(k, {}).get("valueQuantity") or {}).get("value") != v for k, v in iop.items()
    ):
        return Check(
            False,
            "acuity or IOP missing or on the wrong eye",
            expected,
            "right eye (OD) and left eye (OS) each have their own code",
        )
    return Check(True, "both eyes recorded", expected)


def _eye_routed(ctx: GradingContext) -> Check:
    from ehr_sandbox.exercises.builtin.clinical.common import message_text, routed_saying

    f = ctx.facts
    high = max(f["iop_right"], f["iop_left"])
    side, other = ("right", "left") if f["iop_right"] > f["iop_left"] else ("left", "right")
    short = {"right": "OD", "left": "OS"}
    required = {
        "the pressure measured": [f"{high}"],
        "which eye": [side, short[side]],
        "that it is above the target": ["above", "over", "exceeds", "high", "elevated"],
    }
    forbidden = {
        "that it is normal": ["normal limits", "within normal", "is normal", "at target"],
        "the high pressure on the other eye": [
            f"{eye} {high}" for eye in (other, f"{other} eye", short[other])
        ],
    }
    expected = (
        "the IOP above the patient's target (the target stated), and in which eye, sent to the "
        "ophthalmologist today"
    )
    routed = _routed_check(
        ctx,
        required,
        forbidden,
        "the IOP task",
        expected=expected,
        passed="high IOP routed",
        missing="the high IOP was not routed",
        advice="an IOP above target goes to the ophthalmologist the same day",
    )
    if not routed.passed:
        return routed
    # the task that routes it must state this patient's target pressure (the ophthalmologist
    # judges the pressure against it), as the task stands at hand-in
    tasks = written(ctx, "Task", f["patient_id"])
    said = {
        t["id"]: _eye_target_stated(f, message_text(ctx.read(f"Task/{t['id']}") or t))
        for t in tasks
    }
    stating = [t for t in tasks if said[t["id"]].passed]
    found = routed_saying(ctx, f["patient_id"], stating, required, forbidden, "the IOP task")
    if found is not None and found.passed:
        return Check(True, "high IOP routed with the patient's target", expected)
    nearest = next((c for c in said.values() if not c.passed), found)
    return Check(False, nearest.found, expected, nearest.advice) if nearest else routed


def _eye_target_stated(facts: Any, text: str) -> Check:
    """Whether a routing's words state the patient's target IOP ("target 17", "above 17 mmHg",
    "target IOP of 17") and no other target a patient of this exercise can have."""
    from ehr_sandbox.exercises import stated

    targets = [
        *stated.numbers_after(text, ("target", "goal")),
        *stated.numbers_after(text, ("above", "over", "exceeds"), window=1),
    ]
    return stated.check_stated(
        targets,
        float(facts["target"]),
        name="the target pressure",
        what="the IOP task",
        rivals=[float(t) for t in TARGETS],
        advice="the ophthalmologist judges the pressure against this patient's target: state "
        "the target IOP in the task",
    )


def _eye_meds(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "the glaucoma drops and whether the patient uses them as prescribed, as reported"
    said = f["adherence"]
    contrary = [a for a in ophthalmic.ADHERENCE if a != said] + [
        f"{neg} {said}" for neg in ("no", "not", "denies", "never")
    ]
    for st in still_standing(
        ctx, written(ctx, "MedicationStatement", f["patient_id"]), current=True
    ):
        note = " ".join(str(n.get("text", "")) for n in st.get("note", []))
        if (
            "latanoprost" in str(st.get("medicationCodeableConcept"))
            and st.get("status") == ophthalmic.ADHERENCE[said]
            and rubric.mentions(note, said)
            and not any(rubric.mentions(note, c) for c in contrary)
        ):
            return Check(True, "drops and adherence recorded", expected)
    return Check(
        False,
        "no record of the drops and their use as the patient reported it",
        expected,
        "adherence explains a rising IOP: record what the patient reports, not its opposite",
    )


def _eye_reference(att: Any, withdraw: str | None = None, target: int | None = None) -> None:
    """The reference; ``withdraw``: the high-IOP task then set to that status; ``target``: the
    target pressure the workup is given (the patient's by default)."""
    f = att.facts
    ref = identify_patient(att)
    ophthalmic.glaucoma_follow_up(att.session, ref, medication=f["drops"], adherence=f["adherence"], va_right=f["va_right"], va_left=f["va_left"],
                                  iop_right=f["iop_right"], iop_left=f["iop_left"], target_iop=target or f["target"])  # fmt: skip
    if withdraw:
        withdraw_messages(att, "Task", withdraw, ref)


def _another_target(target: int) -> int:
    """Another target a patient of this exercise can have (one higher, lower at the top).

    >>> _another_target(15), _another_target(18)
    (16, 17)
    """
    return target + 1 if target + 1 in TARGETS else target - 1


def _eye_no_target(att: Any) -> None:
    """Typical mistake: IOP judged against 'normal' (21) instead of the patient's target."""
    f = att.facts
    ref = identify_patient(att)
    s = att.session
    for code, v in (("79892-6", f["iop_right"]), ("79893-4", f["iop_left"])):
        s.create({"resourceType": "Observation", "status": "final", "code": loinc_concept(code), "subject": {"reference": ref},
                  "valueQuantity": {"value": v, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}})  # fmt: skip
    for code, v in (("98499-7", f["va_right"]), ("98498-9", f["va_left"])):
        s.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": loinc_concept(code),
                "subject": {"reference": ref},
                "valueString": v,
            }
        )


def _eye_swapped(att: Any) -> None:
    """Harmful: right and left swapped."""
    f = att.facts
    ref = identify_patient(att)
    ophthalmic.glaucoma_follow_up(att.session, ref, medication=f["drops"], adherence=f["adherence"], va_right=f["va_left"], va_left=f["va_right"],
                                  iop_right=f["iop_left"], iop_left=f["iop_right"], target_iop=f["target"])  # fmt: skip


def _eye_task(
    att: Any, text: str, owner: str = "Practitioner/prac-dr.patel", note: str | None = None
) -> None:
    """The eyes and drops recorded by hand (identified), then a Task with ``text`` to ``owner``
    (``note``: the drops' note, by default the adherence the patient reported)."""
    f = att.facts
    s = att.session
    _eye_no_target(att)
    ref = f["patient_ref"]
    s.create({"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": {"text": f["drops"]},
              "subject": {"reference": ref}, "note": [{"text": note or f["adherence"]}], "informationSource": {"display": "patient"}})  # fmt: skip
    s.create(routed_task(s, ref, owner, text))


def _eye_high(f: dict[str, Any]) -> tuple[float, str, str]:
    """The high pressure, its eye and the other eye."""
    if f["iop_right"] > f["iop_left"]:
        return f["iop_right"], "right", "left"
    return f["iop_left"], "left", "right"


def _eye_wrong_eye(att: Any) -> None:
    """The high pressure routed, but said to be in the other eye."""
    high, _, other = _eye_high(att.facts)
    _eye_task(att, f"IOP {other} eye {high} mmHg, above target - please see today")


def _eye_adherence_reversed(att: Any) -> None:
    """The high IOP routed; the drops' note says the opposite of what the patient reported."""
    high, side, _ = _eye_high(att.facts)
    reported = att.facts["adherence"]
    _eye_task(
        att,
        f"IOP {side} eye {high} mmHg, above target - please see today",
        note="patient reports no missed doses, taking as prescribed"
        if reported == "missed doses"
        else "patient reports missed doses",
    )


def _eye_unidentified(att: Any) -> None:
    """Skipped identification: one IOP typed into the chart, nobody identified."""
    f = att.facts
    att.session.create({"resourceType": "Observation", "status": "final", "code": loinc_concept("79892-6"), "subject": {"reference": f["patient_ref"]},
                        "valueQuantity": {"value": f["iop_right"], "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}})  # fmt: skip


def _eye_other_provider(att: Any) -> None:
    """The workup through the workflow, the high IOP routed to another practitioner."""
    f = att.facts
    ref = identify_patient(att)
    ophthalmic.glaucoma_follow_up(att.session, ref, medication=f["drops"], adherence=f["adherence"], va_right=f["va_right"], va_left=f["va_left"],
                                  iop_right=f["iop_right"], iop_left=f["iop_left"], target_iop=f["target"], provider=ANOTHER_PROVIDER)  # fmt: skip


def _eye_edit(att: Any) -> None:
    _eye_reference(att)
    tamper(att, att.facts["old_ref"])


OPHTHALMIC_WORKUP = Exercise(
    id="clinical/ophthalmic-workup",
    title="An ophthalmic workup: glaucoma follow-up",
    topic="clinical",
    topics=("ophthalmic", "diagnostic-tests"),
    competencies=("I.P.2", "II.P.2", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Acuity and IOP per eye, the glaucoma drops and adherence; an IOP above target goes to the ophthalmologist.",
    setup=_setup_eye,
    instructions=(
        "Glaucoma follow-up for **{name}** (DOB {dob}, MRN {mrn}); target IOP **{target} mmHg**. "
        "Uncorrected acuity: right **{va_right}**, left **{va_left}**. IOP: right **{iop_right}**, left "
        "**{iop_left}** mmHg. The patient uses {drops} and reports: *{adherence}*.\n\n"
        "Use `workflows.specialties.ophthalmic.glaucoma_follow_up`."
    ),
    criteria=(
        Criterion(
            "both eyes recorded",
            2,
            _eye_values,
            "Each eye is measured and coded separately; a swap sends treatment to the wrong eye.",
        ),
        Criterion(
            "IOP above target routed",
            2,
            _eye_routed,
            "An IOP above the target pressure means progression risk (AAO POAG PPP 2020).",
        ),
        Criterion(
            "drops and adherence",
            1,
            _eye_meds,
            "Adherence to drops is the first question when IOP rises (AAO).",
        ),
        identified_first(),
    ),
    hints=(Hint("Pass `target_iop`: the patient's target, not the population normal."),),
    solution=Solution(_eye_reference),
    wrong_solutions={
        "measurements-then-entered-in-error": Solution(
            then_withdrawn(_eye_reference, "Observation"),
            fails="both eyes recorded",
            message="each have their own code",
            description="acuity and IOP recorded, then marked entered in error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "drops-then-entered-in-error": Solution(
            then_withdrawn(_eye_reference, "MedicationStatement"),
            fails="drops and adherence",
            message="record what the patient reports",
            description="the drops and their use recorded, then marked entered in error",
        ),
        "iop-task-then-entered-in-error": Solution(
            lambda att: _eye_reference(att, withdraw="entered-in-error"),
            fails="IOP above target routed",
            message="no longer stands",
            description="the high IOP routed to the provider, then the task marked entered-in-error (a routing undone at hand-in)",
        ),
        "another-target": Solution(
            lambda att: _eye_reference(att, target=_another_target(att.facts["target"])),
            fails="IOP above target routed",
            message="state the target IOP in the task",
            description="the workup run with another target pressure: the task routes the high "
            "IOP but states a target that is not the patient's (another student's target: it "
            "scored full marks before)",
        ),
        "no-target": Solution(
            _eye_no_target,
            fails="IOP above target routed",
            message="the ophthalmologist the same day",
        ),
        "eyes-swapped": Solution(
            _eye_swapped, fails="both eyes recorded", message="right eye (OD) and left eye (OS)"
        ),
        "iop-normal-task": Solution(
            lambda att: _eye_task(att, "IOP within normal limits, drops reviewed"),
            fails="IOP above target routed",
            message="a task that reassures",
            description="a task with 'IOP' in it that says the pressure is normal",
        ),
        "iop-on-the-wrong-eye": Solution(
            _eye_wrong_eye,
            fails="IOP above target routed",
            message="and in which eye",
            description="the task puts the high pressure in the other eye",
        ),
        "adherence-reversed": Solution(
            _eye_adherence_reversed,
            fails="drops and adherence",
            message="not its opposite",
            description="the drops' note says the opposite of what the patient reported",
        ),
        "iop-to-another-provider": Solution(
            _eye_other_provider,
            fails="IOP above target routed",
            message="not to another practitioner",
            description="the high IOP routed to a practitioner who is not the patient's provider",
        ),
        "skipped-identification": skipped_identification(_eye_unidentified),
        "edit-old-iop": Solution(
            _eye_edit,
            fails="no collateral damage",
            message="answer key depends on",
        ),
    },
    expects=(
        Expect("Observation", ops=("create",), patients=("patient_id",)),
        Expect("Task", ops=("create",), patients=("patient_id",)),
        Expect("MedicationStatement", ops=("create",), patients=("patient_id",)),
    ),
)


# ============================================================================ diabetic foot exam
FINDINGS = [
    (["absent-posterior-tibial-pulse", "absent-dorsalis-pedis-pulse"], "Q8"),
    (["absent-dorsalis-pedis-pulse", "edema", "paresthesias"], "Q9"),
    (["nontraumatic-amputation"], "Q7"),
]


def _setup_foot(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox, rng, age_days=rng.randint(55, 85) * 365, gender=rng.choice(["female", "male"])
    )
    lops_side = rng.choice(["right", "left"])
    felt = [True] * 5
    for i in rng.sample(range(5), rng.randint(2, 4)):
        felt[i] = False
    findings, mod = rng.choice(FINDINGS)
    absent_dp = "absent-dorsalis-pedis-pulse" in findings
    absent_pt = "absent-posterior-tibial-pulse" in findings
    pulses = {
        f"{lops_side} dorsalis-pedis": "absent" if absent_dp else "diminished",
        f"{lops_side} posterior-tibial": "absent" if absent_pt else "normal",
    }
    other = "left" if lops_side == "right" else "right"
    pulses.update({f"{other} dorsalis-pedis": "normal", f"{other} posterior-tibial": "normal"})
    a1c = _old_obs(
        sandbox, p["ref"], "4548-4", round(rng.uniform(6.8, 9.2), 1), "%", rng.randint(30, 120)
    )
    facts = {
        **patient_facts(p),
        "lops_side": lops_side,
        "felt": felt,
        "pulses": pulses,
        "findings": findings,
        "a1c_ref": f"Observation/{a1c['id']}",
    }
    return Scenario(facts, answer={"modifier": mod}, protect=(facts["a1c_ref"],))


def _foot_exam(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        "monofilament results of both feet, each on that foot's record, and the four pedal pulses"
    )
    got = {
        code_of(o): o
        for o in still_standing(ctx, written(ctx, "Observation", f["patient_id"]), current=True)
    }
    other = "left" if f["lops_side"] == "right" else "right"
    mono = {
        side: got.get(f"monofilament-{side}", {}).get("valueString") for side in ("right", "left")
    }
    pulses = {
        (c.get("code") or {}).get("text"): c.get("valueString")
        for c in got.get("pedal-pulses", {}).get("component", [])
    }
    felt = {f["lops_side"]: f"{sum(f['felt'])}/5 sites felt", other: "5/5 sites felt"}
    if mono != felt or pulses != f["pulses"]:
        return Check(
            False,
            "monofilament or pulses missing, not as felt, or on the wrong foot",
            expected,
            "each foot on its own record, each pulse as you felt it",
        )
    return Check(True, "foot exam recorded", expected)


def _foot_lops(ctx: GradingContext) -> Check:
    f = ctx.facts
    side = f["lops_side"]
    other = "left" if side == "right" else "right"
    return _routed_check(
        ctx,
        {
            "the loss of protective sensation": ["LOPS", "loss of protective sensation"],
            "which foot": [f"{side} foot", f"foot {side}", f"{side} sole"],
        },
        {
            "that sensation is intact": ["no LOPS", "no loss", "sensation intact", "intact"],
            "that the other foot lost sensation": [
                f"{lops} {lead}{other}"
                for lops in ("LOPS", "loss of protective sensation")
                for lead in ("", "in the ", "of the ", "on the ")
            ],
        },
        "the LOPS task",
        expected="loss of protective sensation, and on which foot, reported to the provider",
        passed="LOPS routed",
        missing="LOPS not reported",
        advice="loss of protective sensation changes the care plan",
    )


def _foot_modifier(ctx: GradingContext) -> Check:
    expected = (
        "routine foot care recorded with the Medicare class-findings modifier the findings support"
    )
    for proc in written(ctx, "Procedure", ctx.facts["patient_id"]):
        if code_of(proc) == "NAIL-DEBRIDE":
            if modifiers_of(proc) == [ctx.answer["modifier"]]:
                return Check(True, "modifier right", expected)
            return Check(
                False,
                f"modifier {modifiers_of(proc) or 'none'}",
                expected,
                "routine foot care is covered only with class findings",
            )
    return Check(
        False,
        "no routine foot care recorded",
        expected,
        "routine foot care is covered only with class findings",
    )


def _foot_args(f: dict[str, Any], swap: bool = False) -> dict[str, Any]:
    right = f["felt"] if f["lops_side"] == "right" else [True] * 5
    left = f["felt"] if f["lops_side"] == "left" else [True] * 5
    if swap:
        right, left = left, right
    return {
        "monofilament_right": right,
        "monofilament_left": left,
        "pulses": f["pulses"],
        "skin": "dry skin, thickened nails, no ulcers",
    }


def _foot_reference(att: Any) -> None:
    _foot_variant(att)


def _foot_no_modifier(att: Any) -> None:
    """Typical mistake: nail care charted without the class findings modifier."""
    f = att.facts
    ref = identify_patient(att)
    podiatric.diabetic_foot_exam(att.session, ref, **_foot_args(f))
    att.session.create({"resourceType": "Procedure", "status": "completed", "subject": {"reference": ref},
                        "code": {"coding": [{"system": SANDBOX_PROCEDURE, "code": "NAIL-DEBRIDE", "display": "Debridement of nails, 1 to 5"}]}})  # fmt: skip


def _foot_swapped(att: Any) -> None:
    """Harmful: the numb foot recorded as the other foot."""
    _foot_variant(att, swap=True)


def _foot_variant(
    att: Any,
    *,
    provider: str | None = None,
    pulses_normal: bool = False,
    swap: bool = False,
    both_numb: bool = False,
    withdraw: str | None = None,
) -> None:
    """The reference, or with the findings routed to ``provider``, every pulse recorded
    normal, the feet swapped, the other foot recorded as numb as the first, or the findings'
    task then set to ``withdraw`` (cancelled, entered in error)."""
    f = att.facts
    ref = identify_patient(att)
    args = _foot_args(f, swap=swap)
    if pulses_normal:
        args["pulses"] = {k: "normal" for k in f["pulses"]}
    if both_numb:
        args["monofilament_right"] = args["monofilament_left"] = f["felt"]
    podiatric.diabetic_foot_exam(att.session, ref, provider=provider, **args)
    podiatric.routine_foot_care(
        att.session,
        ref,
        service="NAIL-DEBRIDE",
        systemic_condition="E11.42",
        findings=f["findings"],
    )
    if withdraw:
        withdraw_messages(att, "Task", withdraw, ref)


def _foot_no_lops_task(att: Any, *, task: str = "Diabetic foot exam done: no LOPS") -> None:
    """The exam and modifier right, but the findings typed in by hand and a task to the provider
    that says ``task`` (by default: that there is no LOPS)."""
    f = att.facts
    s = att.session
    ref = identify_patient(att)
    other = "left" if f["lops_side"] == "right" else "right"
    for side, felt in ((f["lops_side"], sum(f["felt"])), (other, 5)):
        s.create({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": SANDBOX_OBS, "code": f"monofilament-{side}"}]},
                  "subject": {"reference": ref}, "valueString": f"{felt}/5 sites felt"})  # fmt: skip
    s.create({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": SANDBOX_OBS, "code": "pedal-pulses"}]},
              "subject": {"reference": ref}, "component": [{"code": {"text": k}, "valueString": v} for k, v in f["pulses"].items()]})  # fmt: skip
    podiatric.routine_foot_care(
        s, ref, service="NAIL-DEBRIDE", systemic_condition="E11.42", findings=f["findings"]
    )
    s.create(routed_task(s, ref, "Practitioner/prac-dr.patel", task))


def _foot_wrong_foot_task(att: Any) -> None:
    """The task reports the loss of protective sensation on the foot that felt every site."""
    other = "left" if att.facts["lops_side"] == "right" else "right"
    _foot_no_lops_task(att, task=f"Diabetic foot exam: LOPS {other} foot, please review")


def _foot_unidentified(att: Any) -> None:
    """Skipped identification: the monofilament result typed in, nobody identified."""
    f = att.facts
    att.session.create({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": SANDBOX_OBS, "code": f"monofilament-{f['lops_side']}"}]},
                        "subject": {"reference": f["patient_ref"]}, "valueString": f"{sum(f['felt'])}/5 sites felt"})  # fmt: skip


def _foot_edit(att: Any) -> None:
    _foot_reference(att)
    tamper(att, att.facts["a1c_ref"])


DIABETIC_FOOT_EXAM = Exercise(
    id="clinical/diabetic-foot-exam",
    title="A diabetic foot exam and routine foot care",
    topic="clinical",
    topics=("podiatric",),
    competencies=("I.P.3", "IX.P.3", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Monofilament and pulses per foot; LOPS routed; routine nail care with the right Q modifier.",
    setup=_setup_foot,
    instructions=(
        "Diabetic foot exam for **{name}** (DOB {dob}, MRN {mrn}; type 2 diabetes with polyneuropathy, "
        "E11.42). 10-g monofilament, five sites each foot: the **{lops_side}** foot felt {felt}; the other foot "
        "felt all five. Pulses: {pulses}.\n\nThe podiatrist then debrides the dystrophic nails (NAIL-DEBRIDE). "
        "Documented class findings: {findings}.\n\n"
        "Use `workflows.specialties.podiatric` (`diabetic_foot_exam`, `routine_foot_care`)."
    ),
    criteria=(
        Criterion(
            "foot exam recorded",
            2,
            _foot_exam,
            "The yearly diabetic foot exam prevents ulcers and amputations (ADA Standards of Care 2025).",
        ),
        Criterion(
            "LOPS routed",
            1,
            _foot_lops,
            "Loss of protective sensation (CMS NCD 70.2.1) needs the provider's plan.",
        ),
        Criterion(
            "class-findings modifier",
            2,
            _foot_modifier,
            "Medicare covers routine foot care only with class findings, shown by the Q7/Q8/Q9 modifier (Medicare Benefit Policy Manual ch. 15 s. 290).",
        ),
        identified_first(),
    ),
    hints=(Hint("`foot_care_modifier(findings)` shows what the findings support."),),
    solution=Solution(_foot_reference),
    wrong_solutions={
        "exam-then-entered-in-error": Solution(
            then_withdrawn(_foot_reference, "Observation"),
            fails="foot exam recorded",
            message="each pulse as you felt it",
            description="the monofilament and pulses recorded, then marked entered in error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "lops-task-then-cancelled": Solution(
            lambda att: _foot_variant(att, withdraw="cancelled"),
            fails="LOPS routed",
            message="no longer stands",
            description="the LOPS routed to the provider, then the task cancelled (a routing undone at hand-in)",
        ),
        "no-modifier": Solution(
            _foot_no_modifier,
            fails="class-findings modifier",
            message="covered only with class findings",
        ),
        "feet-swapped": Solution(
            _foot_swapped, fails="foot exam recorded", message="each foot on its own record"
        ),
        "pulses-all-normal": Solution(
            lambda att: _foot_variant(att, pulses_normal=True),
            fails="foot exam recorded",
            message="each pulse as you felt it",
            description="every pedal pulse recorded normal, the absent or diminished ones too",
        ),
        "no-lops-task": Solution(
            _foot_no_lops_task,
            fails="LOPS routed",
            message="a task that reassures",
            description="a task with 'LOPS' in it that says there is none",
        ),
        "lops-on-the-wrong-foot": Solution(
            _foot_wrong_foot_task,
            fails="LOPS routed",
            message="and on which foot",
            description="the task reports the loss of sensation on the foot that felt every site",
        ),
        "other-foot-recorded-numb": Solution(
            lambda att: _foot_variant(att, both_numb=True),
            fails="foot exam recorded",
            message="monofilament or pulses missing, not as felt",
            description="the foot that felt every site recorded with the same losses as the numb one",
        ),
        "findings-to-another-provider": Solution(
            lambda att: _foot_variant(att, provider=ANOTHER_PROVIDER),
            fails="LOPS routed",
            message="not to another practitioner",
            description="the LOPS routed to a practitioner who is not the patient's provider",
        ),
        "skipped-identification": skipped_identification(_foot_unidentified),
        "edit-a1c": Solution(
            _foot_edit,
            fails="no collateral damage",
            message="answer key depends on",
        ),
    },
    expects=(
        Expect("Observation", ops=("create",), patients=("patient_id",)),
        Expect("Procedure", ops=("create",), patients=("patient_id",)),
        Expect("Task", ops=("create",), patients=("patient_id",)),
    ),
)


# ============================================================================ prenatal visit at 28 weeks
def _setup_prenatal(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(sandbox, rng, age_days=rng.randint(20, 38) * 365, gender="female")
    days = 28 * 7 + rng.randint(0, 6)
    lmp = (sandbox.clock.peek().date() - timedelta(days=days)).isoformat()
    first = rng.random() < 0.5
    sup, wk = obgyn.expected_codes(28, first_pregnancy=first)
    old = _old_obs(sandbox, p["ref"], "11881-0", rng.randint(22, 25), "cm", 28)
    facts = {
        **patient_facts(p),
        "lmp": lmp,
        "gravida": "first pregnancy" if first else "third pregnancy (two living children)",
        "fundal": 28 + rng.randint(-1, 1),
        "fhr": rng.randint(125, 155),
        "lot": f"TD{rng.randint(1000, 9999)}",
        "vis": immunizations.vaccine("115")["vis"],
        "old_ref": f"Observation/{old['id']}",
    }
    return Scenario(facts, answer={"codes": [sup, wk], "first": first}, protect=(facts["old_ref"],))


def _pn_measured(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        "gestational age (dated by the patient's LMP, which it states), fundal height, fetal "
        "heart rate and urine protein/glucose recorded"
    )
    got = {code_of(o): o for o in still_standing(ctx, written(ctx, "Observation", f["patient_id"]))}
    weeks = (ctx.now.date() - date.fromisoformat(f["lmp"])).days // 7
    if (
        (got.get("11881-0", {}).get("valueQuantity") or {}).get("value") != f["fundal"]
        or (got.get("55283-6", {}).get("valueQuantity") or {}).get("value") != f["fhr"]
        or (got.get("49051-6", {}).get("valueQuantity") or {}).get("value") != weeks
        or got.get("20454-5", {}).get("valueString") != "negative"
        or got.get("25428-4", {}).get("valueString") != "negative"
    ):
        return Check(
            False,
            "prenatal measurements missing or different from what was measured, or a "
            "gestational age that does not follow from the LMP",
            expected,
            "record every prenatal measurement as measured, and the gestational age by the LMP",
        )
    dated = _pn_dated_by_lmp(f, got["49051-6"])
    if not dated.passed:
        return Check(False, dated.found, expected, dated.advice)
    return Check(True, "measurements recorded", expected)


def _pn_dated_by_lmp(facts: Any, age: dict[str, Any]) -> Check:
    """Whether the gestational age's note states the LMP it is dated by: this patient's, and no
    other LMP that dates a pregnancy to the same week (within six days of it)."""
    from datetime import timedelta

    from ehr_sandbox.exercises import stated

    lmp = date.fromisoformat(facts["lmp"])
    return stated.check_stated(
        stated.dates_in(" ".join(str(n.get("text", "")) for n in age.get("note", []) or [])),
        lmp,
        name="the date of the LMP",
        what="the gestational age",
        rivals=[lmp + timedelta(days=d) for d in range(-6, 7)],
        advice="a gestational age says which LMP dates it: the patient's, as she gave it",
    )


def _pn_codes(ctx: GradingContext) -> Check:
    expected = (
        "the supervision code of the right trimester and pregnancy, and the weeks-of-gestation code"
    )
    codes = {code_of(c) for c in written(ctx, "Condition", ctx.facts["patient_id"])}
    if set(ctx.answer["codes"]) <= codes and not any(
        (c or "").startswith("Z34") and c not in ctx.answer["codes"] for c in codes
    ):
        return Check(True, "codes right", expected)
    return Check(
        False,
        f"codes recorded: {sorted(c for c in codes if c)}",
        expected,
        "28 weeks is the third trimester",
    )


def _pn_tdap(ctx: GradingContext) -> Check:
    expected = "Tdap given in the 27-36 week window, with its VIS"
    # a dose charted and then entered in error was not given
    for i in still_standing(ctx, written(ctx, "Immunization", ctx.facts["patient_id"])):
        if code_of(i, "vaccineCode") == "115" and i.get("status") == "completed":
            if i.get("lotNumber") == ctx.facts["lot"] and any(
                e.get("publicationDate") == ctx.facts["vis"] for e in i.get("education", [])
            ):
                if administered_safely(ctx, i, "115"):
                    return Check(True, "Tdap given", expected)
                return Check(
                    False,
                    "a Tdap by a route it is not licensed for, at a site that does not fit, or "
                    "from a lot with no expiry or an expired one",
                    expected,
                    "check the route on the package insert, the site and the vial's expiry "
                    "before drawing up the dose",
                )
            return Check(
                False,
                "a Tdap without the vial's lot or the VIS edition handed out",
                expected,
                "record the lot of the vial you drew from and the VIS edition you gave: a "
                "recall finds the patient by lot",
            )
    return Check(
        False, "no Tdap this pregnancy", expected, "Tdap is given in every pregnancy at 27-36 weeks"
    )


def _pn_visit(
    att: Any, sup: str, wk: str, urine_protein: str = "negative", lmp: str | None = None
) -> str:
    """The patient identified and the visit recorded with codes ``sup``, ``wk`` (and
    ``urine_protein``: the dipstick as tested unless given; ``lmp``: the LMP given, the
    patient's unless given)."""
    f = att.facts
    ref = identify_patient(att)
    obgyn.prenatal_visit(att.session, ref, lmp=lmp or f["lmp"], fundal_height_cm=f["fundal"], fetal_heart_rate=f["fhr"], urine_protein=urine_protein,
                         urine_glucose="negative", supervision_code=sup, weeks_code=wk, first_pregnancy=f["gravida"] == "first pregnancy")  # fmt: skip
    return ref


def _pn_reference(att: Any, *, void_tdap: bool = False, lmp: str | None = None) -> None:
    """The reference; ``void_tdap``: the Tdap then marked entered in error; ``lmp``: the visit
    dated by that LMP instead of the patient's."""
    f = att.facts
    first = f["gravida"] == "first pregnancy"
    sup, wk = obgyn.expected_codes(28, first_pregnancy=first)
    ref = _pn_visit(att, sup, wk, lmp=lmp)
    screening = {k: False for k in immunizations.table("vaccines")["screening"]}
    given = immunizations.give(
        att.session,
        ref,
        cvx="115",
        lot=f["lot"],
        expiry="2030-03-31",
        route="IM",
        site="LD",
        vis_edition=f["vis"],
        screening=screening,
    )
    if void_tdap:
        att.session.mark_entered_in_error(f"Immunization/{given['id']}", "charted in error")


def _same_week_lmp(att: Any) -> str:
    """Another LMP that dates the pregnancy to the same completed week today (a day earlier,
    or later when a day earlier would make it a week more)."""
    lmp = date.fromisoformat(att.facts["lmp"])
    today = att.sandbox.clock.peek().date()
    earlier = lmp - timedelta(days=1)
    other = (
        earlier
        if (today - earlier).days // 7 == (today - lmp).days // 7
        else lmp + timedelta(days=1)
    )
    return other.isoformat()


def _pn_second_trimester(att: Any) -> None:
    """Typical mistake: 28 weeks coded as second trimester (charted by hand)."""
    f = att.facts
    first = f["gravida"] == "first pregnancy"
    sup, wk = obgyn.expected_codes(28, first_pregnancy=first)
    ref = _pn_visit(att, sup, wk)
    wrong = sup[:-1] + "2"
    att.session.create({"resourceType": "Condition", "subject": {"reference": ref}, "code": {"coding": [{"system": ICD10CM, "code": wrong}]},
                        "verificationStatus": {"coding": [{"system": CONDITION_VER_STATUS, "code": "confirmed"}]}})  # fmt: skip
    screening = {k: False for k in immunizations.table("vaccines")["screening"]}
    immunizations.give(
        att.session,
        ref,
        cvx="115",
        lot=f["lot"],
        expiry="2030-03-31",
        route="IM",
        site="LD",
        vis_edition=f["vis"],
        screening=screening,
    )


def _pn_no_tdap(att: Any) -> None:
    """Harmful: the Tdap put off to 'the next visit'."""
    f = att.facts
    first = f["gravida"] == "first pregnancy"
    _pn_visit(att, *obgyn.expected_codes(28, first_pregnancy=first))


def _pn_any_lot(
    att: Any,
    *,
    lot: str = "LOT1",
    vis: str = "2001-01-01",
    route: str = "IM",
    expiry: str = "2030-03-31",
) -> None:
    """The visit right; the Tdap typed in by hand, by default with a made-up lot and an old VIS
    edition (else with ``lot``/``vis`` given and ``route``/``expiry`` the one thing wrong)."""
    f = att.facts
    first = f["gravida"] == "first pregnancy"
    ref = _pn_visit(att, *obgyn.expected_codes(28, first_pregnancy=first))
    att.session.create({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"coding": [{"system": immunizations.CVX, "code": "115"}]},
                        "patient": {"reference": ref}, "occurrenceDateTime": instant(att.sandbox.clock.peek()), "primarySource": True,
                        "lotNumber": lot, "expirationDate": expiry, "education": [{"documentType": "VIS", "publicationDate": vis}],
                        "route": {"coding": [{"code": route}]}, "site": {"coding": [{"code": "LD" if route == "IM" else "LA"}]}})  # fmt: skip


def _pn_wrong_weeks(att: Any) -> None:
    """The reference, then the gestational age charted again by hand four weeks short."""
    _pn_reference(att)
    f = att.facts
    weeks = (att.sandbox.clock.peek().date() - date.fromisoformat(f["lmp"])).days // 7
    att.session.create({"resourceType": "Observation", "status": "final", "code": loinc_concept("49051-6"), "subject": {"reference": f["patient_ref"]},
                        "valueQuantity": {"value": weeks - 4, "unit": "wk", "system": UCUM, "code": "wk"}})  # fmt: skip


def _pn_unidentified(att: Any) -> None:
    """Skipped identification: the fundal height typed in, nobody identified."""
    f = att.facts
    att.session.create({"resourceType": "Observation", "status": "final", "code": loinc_concept("11881-0"), "subject": {"reference": f["patient_ref"]},
                        "valueQuantity": {"value": f["fundal"], "unit": "cm", "system": UCUM, "code": "cm"}})  # fmt: skip


def _pn_edit(att: Any) -> None:
    _pn_reference(att)
    tamper(att, att.facts["old_ref"])


PRENATAL_28_WEEKS = Exercise(
    id="clinical/prenatal-28-weeks",
    title="A prenatal visit at 28 weeks",
    topic="clinical",
    topics=("ob-gyn", "medication-administration"),
    competencies=("I.P.1", "IX.P.2", "X.P.3"),
    minutes=20,
    role=MA,
    summary="Prenatal measurements, trimester-specific codes and the Tdap window.",
    setup=_setup_prenatal,
    instructions=(
        "Routine prenatal visit for **{name}** (DOB {dob}, MRN {mrn}), {gravida}, LMP **{lmp}**. "
        "Fundal height **{fundal} cm**, fetal heart rate **{fhr}/min**, urine protein and glucose negative. "
        "No Tdap yet this pregnancy; the provider orders it today (lot {lot}, VIS edition {vis}; every "
        "screening answer is no).\n\n"
        "Use `workflows.specialties.obgyn.prenatal_visit` (choose the supervision and weeks codes) and "
        "`workflows.immunizations.give`."
    ),
    criteria=(
        Criterion(
            "prenatal measurements",
            2,
            _pn_measured,
            "Fundal height and FHR track fetal growth and well-being at every visit (ACOG).",
        ),
        Criterion(
            "trimester codes",
            2,
            _pn_codes,
            "ICD-10-CM pregnancy codes are trimester-specific; the weeks code (Z3A) must match (Official Guidelines I.C.15).",
        ),
        Criterion(
            "Tdap in the window",
            2,
            _pn_tdap,
            "Tdap at 27-36 weeks protects the newborn from pertussis (ACIP).",
        ),
        identified_first(),
    ),
    hints=(Hint("`obgyn.gestational_age(lmp, today)` and `obgyn.trimester(weeks)`."),),
    solution=Solution(_pn_reference),
    wrong_solutions={
        "dated-by-another-lmp": Solution(
            lambda att: _pn_reference(att, lmp=_same_week_lmp(att)),
            fails="prenatal measurements",
            message="which LMP dates it",
            description="the visit dated by another LMP of the same week (another student's "
            "LMP scored full marks before: only the weeks were compared)",
        ),
        "tdap-then-entered-in-error": Solution(
            lambda att: _pn_reference(att, void_tdap=True),
            fails="Tdap in the window",
            message="Tdap is given in every pregnancy",
            description="the Tdap charted, then marked entered in error (it passed the Tdap "
            "criterion before; only collateral damage caught it)",
        ),
        "second-trimester-code": Solution(
            _pn_second_trimester, fails="trimester codes", message="28 weeks is the third trimester"
        ),
        "tdap-put-off": Solution(
            _pn_no_tdap, fails="Tdap in the window", message="Tdap is given in every pregnancy"
        ),
        "tdap-made-up-lot": Solution(
            _pn_any_lot,
            fails="Tdap in the window",
            message="a recall finds the patient by lot",
            description="the Tdap typed in by hand with a made-up lot and an old VIS edition",
        ),
        "tdap-subcutaneous": Solution(
            lambda att: _pn_any_lot(att, lot=att.facts["lot"], vis=att.facts["vis"], route="SC"),
            fails="Tdap in the window",
            message="check the route on the package insert",
            description="the Tdap (IM only) typed in as given subcutaneously",
        ),
        "tdap-expired-lot": Solution(
            lambda att: _pn_any_lot(
                att, lot=att.facts["lot"], vis=att.facts["vis"], expiry="2021-03-31"
            ),
            fails="Tdap in the window",
            message="the vial's expiry",
            description="the Tdap typed in from a lot that expired years ago",
        ),
        "urine-protein-not-as-tested": Solution(
            lambda att: _pn_visit(
                att,
                *obgyn.expected_codes(
                    28, first_pregnancy=att.facts["gravida"] == "first pregnancy"
                ),
                urine_protein="1+",
            ),
            fails="prenatal measurements",
            message="record every prenatal measurement as measured",
            description="the urine protein recorded 1+ when the dipstick read negative",
        ),
        "gestational-age-off": Solution(
            _pn_wrong_weeks,
            fails="prenatal measurements",
            message="the gestational age by the LMP",
            description="the gestational age charted by hand four weeks short of the LMP's",
        ),
        "skipped-identification": skipped_identification(_pn_unidentified),
        "edit-last-fundal": Solution(
            _pn_edit,
            fails="no collateral damage",
            message="answer key depends on",
        ),
    },
    expects=(
        Expect("Observation", ops=("create",), patients=("patient_id",)),
        Expect("Condition", ops=("create",), patients=("patient_id",)),
        Expect("Immunization", ops=("create",), patients=("patient_id",)),
        Expect("Task", ops=("create",), patients=("patient_id",)),
    ),
)


# ============================================================================ chiropractic for Medicare
REGION_SETS = [["lumbar"], ["cervical", "thoracic"], ["thoracic", "lumbar", "pelvic"], ["cervical"]]
GOAL_WEEKS = range(4, 9)
"""The time frames (weeks) a variant's plan of care can set for its goals."""
PAIN_GOAL = "2/10"


def _setup_chiro(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox, rng, age_days=rng.randint(66, 85) * 365, gender=rng.choice(["female", "male"])
    )
    regions = rng.choice(REGION_SETS)
    primary = rng.choice(regions)
    part = {
        "pain": f"tenderness at the {primary} segments, {rng.randint(4, 8)}/10",
        "range-of-motion": f"{primary} motion limited by about {rng.randint(20, 45)} percent",
    }
    if rng.random() < 0.5:
        part["asymmetry"] = "palpable rotation of one segment"
    old = _old_obs(sandbox, p["ref"], "72514-3", rng.randint(5, 9), "{score}", 14)
    weeks = rng.randint(GOAL_WEEKS[0], GOAL_WEEKS[-1])
    facts = {
        **patient_facts(p),
        "regions": regions,
        "primary": primary,
        "part": part,
        "goals": f"reduce pain to {PAIN_GOAL} and restore {primary} motion to normal within {weeks} weeks",
        "goal_weeks": weeks,
        "old_ref": f"Observation/{old['id']}",
    }
    dx = table("specialties")["chiropractic"]["regions"][primary]
    return Scenario(facts, answer={"dx": dx}, protect=(facts["old_ref"],))


def _chiro_part(ctx: GradingContext) -> Check:
    expected = (
        "subluxation shown by two PART elements including asymmetry or range of motion, each "
        "one the exam found"
    )
    # a PART entered in error afterwards documents nothing
    for o in still_standing(ctx, written(ctx, "Observation", ctx.facts["patient_id"])):
        found = {
            (c.get("code") or {}).get("text")
            for c in o.get("component", [])
            if c.get("valueString")
        }
        if (
            code_of(o) == "subluxation-part"
            and len(found) >= 2
            and found & {"asymmetry", "range-of-motion"}
        ):
            if not found <= set(ctx.facts["part"]):
                return Check(
                    False,
                    "the PART names a finding the exam did not find",
                    expected,
                    "document only the findings of the exam: a PART element added to meet "
                    "Medicare's rule is a false record of care",
                )
            if not _part_as_found(o, ctx.facts):
                return Check(
                    False,
                    "a PART element says other than what the exam found",
                    expected,
                    "document each finding as the exam found it: its region, its score and "
                    "its measure",
                )
            return Check(True, "PART documented", expected)
    return Check(
        False,
        "no PART documentation",
        expected,
        "document the physical findings of the subluxation: two PART elements, one of them "
        "asymmetry or range of motion",
    )


def _part_as_found(part: dict[str, Any], facts: Any) -> bool:
    """True when each PART element of the Observation ``part`` says what the exam found: every
    number of the finding (a pain score, a percent of motion lost) and the regions it names,
    no other region.

    >>> facts = {"part": {"pain": "tenderness at the lumbar segments, 5/10"}}
    >>> obs = lambda v: {"component": [{"code": {"text": "pain"}, "valueString": v}]}
    >>> _part_as_found(obs("lumbar tenderness 5/10"), facts), _part_as_found(obs("lumbar 6/10"), facts)
    (True, False)
    >>> _part_as_found(obs("tenderness at the cervical segments, 5/10"), facts)
    False
    """
    import re

    regions = table("specialties")["chiropractic"]["regions"]
    for c in part.get("component", []) or []:
        said = str(c.get("valueString") or "")
        found = str(facts["part"].get((c.get("code") or {}).get("text"), ""))
        if not said or not found:
            continue
        if not all(rubric.mentions(said, n) for n in re.findall(r"\d+", found)):
            return False
        if {r for r in regions if rubric.mentions(said, r)} != {
            r for r in regions if rubric.mentions(found, r)
        }:
            return False
    return True


def _chiro_dx(ctx: GradingContext) -> Check:
    expected = "the segmental dysfunction of the primary region as the diagnosis"
    codes = [code_of(c) for c in written(ctx, "Condition", ctx.facts["patient_id"])]
    if codes and all(c == ctx.answer["dx"] for c in codes):
        return Check(True, "diagnosis right", expected)
    return Check(
        False, f"diagnoses {codes}", expected, "the primary diagnosis is the region treated"
    )


def _chiro_at(ctx: GradingContext) -> Check:
    expected = (
        "the manipulation recorded for the regions treated, with the AT modifier for active "
        "treatment and the plan's measurable goals (pain, the primary region's motion, the time "
        "frame)"
    )
    nearest = None
    for proc in written(ctx, "Procedure", ctx.facts["patient_id"]):
        if code_of(proc) == chiropractic.cmt_code(ctx.facts["regions"]) and modifiers_of(proc) == [
            "AT"
        ]:
            current = ctx.read(f"Procedure/{proc['id']}") or proc
            # the regions manipulated are the ones treated: a region left out or added is a
            # record (and a claim) of other care, even when the CMT code counts the same
            sites = {
                r
                for b in current.get("bodySite", []) or []
                for r in table("specialties")["chiropractic"]["regions"]
                if rubric.mentions(str(b.get("text", "")) + " " + str(b), r)
            }
            if sites != set(ctx.facts["regions"]):
                nearest = nearest or Check(
                    False,
                    "the manipulation names other regions than the ones treated",
                    expected,
                    "record the regions the chiropractor manipulated, each of them and no other",
                )
                continue
            goals = _chiro_goals_stated(
                ctx.facts, " ".join(str(n.get("text", "")) for n in current.get("note", []) or [])
            )
            if goals.passed:
                return Check(True, "AT on active treatment, with the plan's goals", expected)
            nearest = nearest or goals
    if nearest is not None:
        return Check(False, nearest.found, expected, nearest.advice)
    return Check(
        False,
        "no manipulation with the AT modifier",
        expected,
        "active treatment with a plan carries AT",
    )


def _chiro_goals_stated(facts: Any, text: str) -> Check:
    """Whether the plan's words on the manipulation state this patient's measurable goals:
    the pain goal, the motion of the primary region (no region that was not treated) and the
    time frame (no other time frame a plan of this exercise can set)."""
    from ehr_sandbox.exercises import stated

    what = "the plan of care on the manipulation"
    advice = (
        "AT needs a plan of care with this patient's measurable goals (Benefit Policy Manual "
        "ch. 15 s. 240.1.2): the pain goal, the region's motion and the time frame, as the plan "
        "sets them"
    )
    if not rubric.mentions(text, PAIN_GOAL):
        return Check(
            False, f"{what} does not state the pain goal", f"{what} states the pain goal", advice
        )
    named = {r for r in table("specialties")["chiropractic"]["regions"] if rubric.mentions(text, r)}
    region = stated.check_stated(
        named,
        facts["primary"],
        name="the region whose motion is to be restored",
        what=what,
        rivals=[
            r for r in table("specialties")["chiropractic"]["regions"] if r not in facts["regions"]
        ],
        advice=advice,
    )
    if not region.passed:
        return region
    return stated.check_stated(
        stated.counts_of(text, ("week", "weeks", "wk", "wks")),
        float(facts["goal_weeks"]),
        name="the time frame of the goals",
        what=what,
        rivals=[float(w) for w in GOAL_WEEKS],
        advice=advice,
    )


def _chiro_reference(
    att: Any,
    *,
    extra_finding: bool = False,
    void_part: bool = False,
    weeks: int | None = None,
    pain: str | None = None,
    regions: list[str] | None = None,
) -> None:
    """The reference (``extra_finding``: a tissue-tone finding the exam did not find added to
    the PART; ``void_part``: the PART then entered in error; ``weeks``: the plan's goals given
    that time frame instead of the patient's; ``pain``: the PART's pain finding said so instead
    of as found; ``regions``: the regions recorded as manipulated instead of the ones treated)."""
    f = att.facts
    ref = identify_patient(att)
    part = (
        {**f["part"], "tissue-tone": "hypertonic paraspinal muscles"}
        if extra_finding
        else dict(f["part"])
    )
    if pain is not None:
        part["pain"] = pain
    goals = f["goals"]
    if weeks is not None:
        goals = goals.replace(f"within {f['goal_weeks']} weeks", f"within {weeks} weeks")
    written_ = chiropractic.visit(att.session, ref, regions=regions or f["regions"], primary_dx=table("specialties")["chiropractic"]["regions"][f["primary"]],
                                  part=part, treatment="active", plan_goals=goals)  # fmt: skip
    for r in written_ if void_part else ():
        if r.get("resourceType") == "Observation" and code_of(r) == "subluxation-part":
            att.session.mark_entered_in_error(f"Observation/{r['id']}", "charted in error")


def _same_count_regions(facts: Any) -> list[str]:
    """Regions other than the ones treated that the CMT code counts alike (1-2 or 3-4
    regions), the primary kept: one added to one or three, the other dropped from two.

    >>> _same_count_regions({"regions": ["lumbar"], "primary": "lumbar"})
    ['lumbar', 'cervical']
    >>> _same_count_regions({"regions": ["cervical", "thoracic"], "primary": "thoracic"})
    ['thoracic']
    """
    regions = list(facts["regions"])
    if len(regions) == 2:
        return [facts["primary"]]
    spare = next(r for r in table("specialties")["chiropractic"]["regions"] if r not in regions)
    return [*regions, spare]


def _another_time_frame(weeks: int) -> int:
    """Another time frame a plan of this exercise can set (a week longer, shorter at the top).

    >>> _another_time_frame(4), _another_time_frame(8)
    (5, 7)
    """
    return weeks + 1 if weeks + 1 in GOAL_WEEKS else weeks - 1


def _another_score(pain: str) -> str:
    """The pain finding with a score one point higher (lower at the top).

    >>> _another_score("tenderness at the lumbar segments, 5/10")
    'tenderness at the lumbar segments, 6/10'
    """
    head, score = pain.rsplit(", ", 1)
    n = int(score.split("/")[0])
    return f"{head}, {n + 1 if n < 10 else n - 1}/10"


def _chiro_maintenance(att: Any) -> None:
    """Typical mistake: recorded as maintenance (no AT) although the plan is corrective."""
    f = att.facts
    ref = identify_patient(att)
    chiropractic.visit(att.session, ref, regions=f["regions"], primary_dx=table("specialties")["chiropractic"]["regions"][f["primary"]],
                       part=f["part"], treatment="maintenance")  # fmt: skip


def _chiro_wrong_dx(att: Any) -> None:
    """Harmful: the diagnosis of a region not treated added by hand (a claim for care not given)."""
    _chiro_reference(att)
    f = att.facts
    regions = table("specialties")["chiropractic"]["regions"]
    other = next(code for r, code in regions.items() if r not in f["regions"])
    att.session.create({"resourceType": "Condition", "subject": {"reference": f["patient_ref"]}, "code": {"coding": [{"system": ICD10CM, "code": other}]},
                        "verificationStatus": {"coding": [{"system": CONDITION_VER_STATUS, "code": "confirmed"}]}})  # fmt: skip


def _chiro_part_by_hand(att: Any, *, identified: bool = True) -> None:
    """The PART typed in by hand with pain and tissue tone only (neither asymmetry nor range of
    motion: the workflow refuses it); ``identified``: the patient identified first."""
    f = att.facts
    s = att.session
    if identified:
        identify_patient(att)
    s.create({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": SANDBOX_OBS, "code": "subluxation-part"}]},
              "subject": {"reference": f["patient_ref"]},
              "component": [{"code": {"text": "pain"}, "valueString": f["part"]["pain"]}, {"code": {"text": "tissue-tone"}, "valueString": "tight"}]})  # fmt: skip


def _chiro_edit(att: Any) -> None:
    _chiro_reference(att)
    tamper(att, att.facts["old_ref"])


CHIROPRACTIC_MEDICARE = Exercise(
    id="clinical/chiropractic-medicare",
    title="A chiropractic visit documented for Medicare",
    topic="clinical",
    topics=("chiropractic",),
    competencies=("IX.P.1", "IX.P.3", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Regions, subluxation by PART, primary diagnosis, and the AT modifier for active treatment.",
    setup=_setup_chiro,
    instructions=(
        "Medicare patient **{name}** (DOB {dob}, MRN {mrn}). The chiropractor manipulated the {regions} "
        "region(s); the primary subluxation is **{primary}**. Exam findings: {part}. This is active, "
        "corrective treatment with a plan: *{goals}*.\n\n"
        "Document it, with the plan's goals, with `workflows.specialties.chiropractic.visit`."
    ),
    criteria=(
        Criterion(
            "PART documented",
            2,
            _chiro_part,
            "Medicare requires the subluxation shown by x-ray or by PART findings (Benefit Policy Manual ch. 15 s. 240.1.2).",
        ),
        Criterion(
            "primary diagnosis",
            1,
            _chiro_dx,
            "The primary diagnosis is the subluxation of a treated region; coding care not given is false billing.",
        ),
        Criterion(
            "AT modifier",
            2,
            _chiro_at,
            "Only active/corrective treatment is covered and it carries the AT modifier (HCPCS; ch. 15 s. 240.1.3).",
        ),
        identified_first(),
    ),
    hints=(Hint("`chiropractic.cmt_code(regions)` picks the CMT code."),),
    solution=Solution(_chiro_reference),
    wrong_solutions={
        "part-then-entered-in-error": Solution(
            lambda att: _chiro_reference(att, void_part=True),
            fails="PART documented",
            message="no PART documentation",
            description="the PART recorded, then entered in error (it passed the PART criterion "
            "before; only collateral damage caught it)",
        ),
        "goals-of-another-plan": Solution(
            lambda att: _chiro_reference(att, weeks=_another_time_frame(att.facts["goal_weeks"])),
            fails="AT modifier",
            message="this patient's measurable goals",
            description="the visit documented right, with the plan's goals set to another time "
            "frame (another student's plan: it scored full marks before)",
        ),
        "pain-score-misreported": Solution(
            lambda att: _chiro_reference(att, pain=_another_score(att.facts["part"]["pain"])),
            fails="PART documented",
            message="as the exam found it",
            description="the PART's pain finding charted with another score (another "
            "student's PART findings scored full marks before)",
        ),
        "regions-misrecorded": Solution(
            lambda att: _chiro_reference(att, regions=_same_count_regions(att.facts)),
            fails="AT modifier",
            message="each of them and no other",
            description="the visit documented right, with a region left out or added where the "
            "CMT code stays the same (another student's regions scored full marks before)",
        ),
        "as-maintenance": Solution(
            _chiro_maintenance,
            fails="AT modifier",
            message="active treatment with a plan carries AT",
        ),
        "untreated-region-coded": Solution(
            _chiro_wrong_dx,
            fails="primary diagnosis",
            message="the primary diagnosis is the region treated",
        ),
        "part-without-asymmetry-or-motion": Solution(
            _chiro_part_by_hand,
            fails="PART documented",
            message="one of them asymmetry or range of motion",
            description="a PART typed in by hand with pain and tissue tone only",
        ),
        "skipped-identification": skipped_identification(
            lambda att: _chiro_part_by_hand(att, identified=False)
        ),
        "finding-not-found-added": Solution(
            lambda att: _chiro_reference(att, extra_finding=True),
            fails="PART documented",
            message="document only the findings of the exam",
            description="a tissue-tone finding the exam did not find added to the PART",
        ),
        "edit-pain-score": Solution(
            _chiro_edit,
            fails="no collateral damage",
            message="answer key depends on",
        ),
    },
    expects=(
        Expect("Observation", ops=("create",), patients=("patient_id",)),
        Expect("Condition", ops=("create",), patients=("patient_id",), at_most=1),
        Expect("Procedure", ops=("create",), patients=("patient_id",)),
    ),
)
