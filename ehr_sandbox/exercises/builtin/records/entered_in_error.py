"""Catalogue item 1, ``records/entered-in-error``: a BP charted on a look-alike patient is voided
(entered-in-error, with a reason) and re-charted on the right patient.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import (
    blood_pressure,
    bp_values,
    mrn,
    patient_facts,
    patient_label,
    ref_id,
    rewrite_answer_key,
    sandbox_now,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.records.common import (
    MA,
    VALID_RESULT,
    bp_readings,
    change_documented,
    created_by_user,
    describe_bps,
    iso_instant,
    last_change,
    same_instant,
)
from ehr_sandbox.exercises.grading import GradingContext, provenance_reason
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution

__all__ = ["ENTERED_IN_ERROR", "VOID_ADVICE"]

VOID_ADVICE = "never delete; void with a reason"


def _likeness(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, int, int]:
    """Smaller = more alike (same family name, same first initial, close birth year)."""
    na, nb = (a.get("name") or [{}])[0], (b.get("name") or [{}])[0]
    ga, gb = (na.get("given") or ["?"])[0], (nb.get("given") or ["?"])[0]
    ya, yb = int(str(a.get("birthDate", "0"))[:4] or 0), int(str(b.get("birthDate", "0"))[:4] or 0)
    return (
        0 if na.get("family") == nb.get("family") else 1,
        0 if ga[:1] == gb[:1] else 1,
        abs(ya - yb),
    )


def _setup_eie(sandbox: Any, variant: Any) -> dict[str, Any]:
    patients = visible_patients(sandbox, MA, minimum=2)
    right = variant.pick(patients, salt="right")
    wrong = min(
        (p for p in patients if p["id"] != right["id"]),
        key=lambda p: (_likeness(right, p), p["id"]),
    )
    rng = variant.rng()
    systolic = rng.randint(112, 158)
    diastolic = rng.randint(64, min(98, systolic - 30))
    taken = iso_instant(sandbox_now(sandbox) - timedelta(minutes=rng.randint(15, 90)))
    obs = sandbox.login(MA).create(
        blood_pressure(f"Patient/{wrong['id']}", systolic, diastolic, taken)
    )
    return {
        **patient_facts(right, "right"),
        **patient_facts(wrong, "wrong"),
        "obs_id": obs["id"],
        "systolic": systolic,
        "diastolic": diastolic,
        "taken": taken,
    }


def _eie_original_kept(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"Observation/{f['obs_id']}"
    expected = (
        f"{ref} still on {f['wrong_name']}'s chart, unchanged, with status 'entered-in-error'"
    )
    obs = ctx.read(ref)
    if obs is None:
        return Check(False, f"{ref} no longer exists", expected, VOID_ADVICE)
    if ref_id(obs.get("subject")) != f["wrong_id"]:
        return Check(
            False,
            f"{ref} was overwritten: it now points at Patient/{ref_id(obs.get('subject'))}",
            expected,
            VOID_ADVICE,
        )
    if bp_values(obs) != (f["systolic"], f["diastolic"]):
        return Check(
            False,
            f"{ref} was overwritten with {'/'.join(map(str, bp_values(obs)))}",
            expected,
            VOID_ADVICE,
        )
    if obs.get("status") != "entered-in-error":
        return Check(False, f"{ref} has status {obs.get('status')!r}", expected, VOID_ADVICE)
    return Check(True, f"{ref} kept with status 'entered-in-error'", expected)


def _eie_void_documented(ctx: GradingContext) -> Check:
    ref = f"Observation/{ctx.facts['obs_id']}"
    obs, prov = last_change(ctx, ref)
    if obs is None or obs.get("status") != "entered-in-error":
        return Check(
            False,
            f"{ref} was not voided",
            "a void recorded with mark_entered_in_error and a reason",
            VOID_ADVICE,
        )
    chk = change_documented(
        ctx,
        prov,
        "entered-in-error",
        f"the void of {ref}",
        "session.mark_entered_in_error(ref, reason=...)",
    )
    if not chk.passed:
        return chk
    f = ctx.facts
    family = f["right_name"].split()[-1]
    # a reason that names a third patient (by name or MRN) says the reading is someone else's
    others = [
        term
        for p in ctx.search("Patient")
        if p.get("id") not in (f["right_id"], f["wrong_id"])
        for term in (patient_label(p), mrn(p))
        if term
        and term not in (f["right_name"], f["wrong_name"], f["right_mrn"], f["wrong_mrn"])
        and len(term) > 3
    ]
    return rubric.check_text(
        provenance_reason(prov or {}),
        {
            "what was wrong (charted on the wrong patient)": [
                "wrong patient",
                "wrong chart",
                "charted on",
                "documented on",
                "entered on",
                "recorded on",
                "incorrect patient",
                f["wrong_name"].split()[-1],
            ],
            # the family name alone names nobody when the look-alike shares it
            "whose reading it is (the right patient's name)": [
                f["right_name"],
                family if family != f["wrong_name"].split()[-1] else f["right_name"],
            ],
            # two identifiers: a name next to another patient's MRN, or an MRN next to another
            # name, says whose reading it is no more than a guess
            "a second identifier of the right patient (MRN or date of birth)": [
                f["right_mrn"],
                f["right_dob"],
                _us_date(f["right_dob"]),
            ],
        },
        forbidden={"another patient as the reading's owner": others},
        what="the void reason",
    )


def _eie_recharted(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"a final BP {f['systolic']}/{f['diastolic']} mmHg on {f['right_name']}'s chart, taken {f['taken']}, charted by {ctx.user.username}"
    readings = bp_readings(ctx, f["right_id"])
    # only readings charted by the student count: an older reading with the same values is not it
    new = {v["id"] for v in ctx.versions_since_setup() if v.get("resourceType") == "Observation"}
    mine = [
        o for o in readings if o["id"] != f["obs_id"] and o["id"] in new and created_by_user(ctx, o)
    ]
    same = [
        o
        for o in mine
        if bp_values(o) == (f["systolic"], f["diastolic"]) and o.get("status") in VALID_RESULT
    ]
    if not same:
        return Check(
            False,
            f"you charted {describe_bps(mine)} on {f['right_name']}'s chart",
            expected,
            "chart the reading again on the right patient",
        )
    good = [o for o in same if same_instant(o.get("effectiveDateTime"), f["taken"])]
    if not good:
        return Check(
            False,
            f"the reading is charted at {same[0].get('effectiveDateTime')}",
            expected,
            "keep the time the reading was taken",
        )
    return Check(True, f"Observation/{good[0]['id']} on {f['right_name']}'s chart", expected)


def _eie_solution(att: Any, *, mrn_said: str | None = None, name_said: str | None = None) -> None:
    """The reference (``mrn_said``, ``name_said``: the void reason gives that MRN, that name,
    for the right patient)."""
    f, s = att.facts, att.session
    s.mark_entered_in_error(
        f"Observation/{f['obs_id']}",
        reason=f"Charted on the wrong patient; belongs to {name_said or f['right_name']} "
        f"(MRN {mrn_said or f['right_mrn']})",
    )
    s.create(blood_pressure(f"Patient/{f['right_id']}", f["systolic"], f["diastolic"], f["taken"]))


def _us_date(day: str) -> str:
    """A date as people in the US write it.

    >>> _us_date("1984-01-19")
    '01/19/1984'
    """
    y, m, d = day.split("-")
    return f"{m}/{d}/{y}"


def _third_mrn(att: Any) -> str:
    """The MRN of a patient who is neither the right nor the wrong one."""
    f = att.facts
    return next(
        mrn(p)
        for p in att.session.search("Patient").fetch()
        if p["id"] not in (f["right_id"], f["wrong_id"]) and mrn(p)
    )


def _eie_overwrite(att: Any) -> None:
    f, s = att.facts, att.session
    obs = s.read("Observation", f["obs_id"])
    obs["subject"] = {"reference": f"Patient/{f['right_id']}"}
    s.update(obs)


def _eie_meaningless_reason(att: Any) -> None:
    f, s = att.facts, att.session
    s.mark_entered_in_error(f"Observation/{f['obs_id']}", reason="fix")
    s.create(blood_pressure(f"Patient/{f['right_id']}", f["systolic"], f["diastolic"], f["taken"]))


def _eie_also_other_chart(att: Any) -> None:
    """Harm: a first try charts the reading on a third patient, later voided ("repaired")."""
    f, s = att.facts, att.session
    others = [
        p["id"]
        for p in s.search("Patient").fetch()
        if p["id"] not in (f["right_id"], f["wrong_id"])
    ]
    stray = s.create(
        blood_pressure(f"Patient/{others[0]}", f["systolic"], f["diastolic"], f["taken"])
    )
    s.mark_entered_in_error(
        f"Observation/{stray['id']}",
        reason=f"Charted on the wrong patient; belongs to {f['right_name']}",
    )
    _eie_solution(att)


def _eie_answer_key(att: Any) -> None:
    """Answer-key change: claim the reading belonged to the patient it was charted on."""
    f = rewrite_answer_key(att, right_id=att.facts["wrong_id"], right_name=att.facts["wrong_name"])
    s = att.session
    s.mark_entered_in_error(
        f"Observation/{f['obs_id']}",
        reason=f"Charted on the wrong patient; belongs to {f['right_name']} (MRN {f['wrong_mrn']})",
    )
    s.create(blood_pressure(f"Patient/{f['right_id']}", f["systolic"], f["diastolic"], f["taken"]))


def _eie_status_edit(att: Any) -> None:
    f, s = att.facts, att.session
    obs = s.read("Observation", f["obs_id"])
    obs["status"] = "entered-in-error"
    s.update(obs)
    s.create(blood_pressure(f"Patient/{f['right_id']}", f["systolic"], f["diastolic"], f["taken"]))


ENTERED_IN_ERROR = Exercise(
    id="records/entered-in-error",
    title="Entered in error: a BP on the wrong patient",
    topic="records",
    topics=("editing-records", "vital-signs"),
    competencies=("X.P.3", "VI.P.6", "I.P.1"),
    minutes=15,
    role=MA,
    summary="BP charted on a look-alike patient: void it and re-chart it on the right patient.",
    setup=_setup_eie,
    instructions=(
        "This morning you measured a blood pressure of **{systolic}/{diastolic} mmHg** at `{taken}` for "
        "**{right_name}** (DOB {right_dob}, MRN {right_mrn}). It was charted by mistake on "
        "**{wrong_name}** (DOB {wrong_dob}, MRN {wrong_mrn}) as `Observation/{obs_id}`.\n\n"
        "1. Void the wrong entry with `att.session.mark_entered_in_error(ref, reason=...)` (the operation "
        "that voids: it keeps the entry with status `entered-in-error`; never delete or edit it). The "
        "reason says what was wrong and whose reading it is, by two identifiers (the name, and the MRN or date of birth).\n"
        "2. Chart the reading on the right patient (`att.session.create(...)`), with the time it was taken.\n\n"
        "Change nothing else.\n\n"
        "Work through `att.session`; `att.check()` gives feedback, `att.submit()` hands in."
    ),
    criteria=(
        Criterion(
            "original kept and voided",
            3,
            _eie_original_kept,
            "The legal record keeps every entry: an error is voided (status entered-in-error), never erased or overwritten (documentation standards; MAERB X.P.3).",
        ),
        Criterion(
            "void documented",
            2,
            _eie_void_documented,
            "Who voided an entry and why must be on the record (HIPAA 164.312(b) audit controls; MAERB X.P.3).",
        ),
        Criterion(
            "re-charted on the right patient",
            3,
            _eie_recharted,
            "The right patient's chart must show the reading actually taken, at the time it was taken (MAERB I.P.1, X.P.3).",
        ),
    ),
    hints=(
        Hint("`att.session.mark_entered_in_error(ref, reason=...)` voids without deleting."),
        Hint(
            "Copy the wrong Observation, drop its `id` and `meta`, point `subject` at the right patient and `create` it.",
            cost=1,
        ),
    ),
    expects=(
        Expect("Observation", ops=("entered-in-error",), patients=("wrong_id",), at_most=1),
        Expect("Observation", ops=("create",), patients=("right_id",), at_most=1),
    ),
    solution=Solution(
        _eie_solution,
        description="void with a reason, then create a new Observation on the right patient",
    ),
    wrong_solutions={
        "reason-names-another-patient": Solution(
            lambda att: _eie_solution(att, mrn_said=_third_mrn(att)),
            fails="void documented",
            message="another patient as the reading's owner",
            description="the void reason gives the right patient's name with a third patient's "
            "MRN (another student's right_mrn scored full marks before)",
        ),
        "owner-named-as-the-other-patient": Solution(
            lambda att: _eie_solution(att, name_said=att.facts["wrong_name"]),
            fails="void documented",
            message="the right patient's name",
            description="the void reason gives the right MRN under the wrong patient's name "
            "(another student's right_name with this MRN scored full marks before)",
        ),
        "overwrite": Solution(
            _eie_overwrite,
            fails="original kept and voided",
            message=VOID_ADVICE,
            description="move the Observation to the right patient by editing it",
        ),
        "status-edit": Solution(
            _eie_status_edit,
            fails="void documented",
            message="mark_entered_in_error",
            description="set the status by a plain update, with no reason",
        ),
        "meaningless-reason": Solution(
            _eie_meaningless_reason,
            fails="void documented",
            message="too short or meaningless",
            description="void with the reason 'fix'",
        ),
        "stray-chart-repaired": Solution(
            _eie_also_other_chart,
            fails="no collateral damage",
            message="unexpected change",
            description="chart on a third patient first, void it, then do it right",
        ),
        "answer-key": Solution(
            _eie_answer_key,
            fails="re-charted on the right patient",
            message="chart the reading again on the right patient",
            description="rewrite the facts so the wrong patient looks right, then re-chart there",
        ),
    },
)
