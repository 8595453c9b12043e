"""Catalogue item 2, ``records/correction``: a transposed systolic value is corrected with a
reason while the history keeps the old value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import (
    blood_pressure,
    bp_values,
    changed_fields,
    patient_facts,
    ref_id,
    rewrite_answer_key,
    sandbox_now,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.records.common import (
    MA,
    change_documented,
    iso_instant,
    last_change,
)
from ehr_sandbox.exercises.grading import GradingContext, provenance_reason
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution
from synthetic.systems import LOINC

__all__ = ["CORRECTION"]


def _setup_correction(sandbox: Any, variant: Any) -> dict[str, Any]:
    patient = variant.pick(visible_patients(sandbox, MA), salt="patient")
    rng = variant.rng()
    tens, units = rng.choice([2, 3, 4]), rng.choice([5, 6, 7, 8])
    right, keyed = 100 + 10 * tens + units, 100 + 10 * units + tens  # e.g. 138 keyed as 183
    diastolic = rng.randint(70, 92)
    taken = iso_instant(sandbox_now(sandbox) - timedelta(minutes=rng.randint(10, 60)))
    obs = sandbox.login(MA).create(
        blood_pressure(f"Patient/{patient['id']}", keyed, diastolic, taken)
    )
    return {
        **patient_facts(patient, "patient"),
        "obs_id": obs["id"],
        "right": right,
        "keyed": keyed,
        "diastolic": diastolic,
        "taken": taken,
    }


def _corr_value(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"Observation/{f['obs_id']}"
    expected = f"{ref} reading {f['right']}/{f['diastolic']} mmHg"
    obs = ctx.read(ref)
    if obs is None:
        return Check(
            False, f"{ref} is gone", expected, "correct the existing entry; never delete it"
        )
    if obs.get("status") == "entered-in-error":
        return Check(
            False,
            f"{ref} was voided instead of corrected",
            expected,
            "a keying error on the right patient is corrected, not voided",
        )
    vals = bp_values(obs)
    if vals != (f["right"], f["diastolic"]) or ref_id(obs.get("subject")) != f["patient_id"]:
        return Check(
            False, f"{ref} reads {vals[0]}/{vals[1]}", expected, "fix only the wrong value"
        )
    # the correction changes the systolic value (and the status) only: the time taken, the
    # code, the performer stay as charted
    charted = (ctx.history(ref) or [obs])[-1]
    others = [
        k
        for k in changed_fields(charted, obs, ignore=("meta", "text", "status", "component"))
        + [
            f"component[{i}].{k}"
            for i, (a, b) in enumerate(
                zip(charted.get("component", []), obs.get("component", []), strict=False)
            )
            for k in changed_fields(a, b, ignore=("valueQuantity",))
        ]
    ]
    if others:
        return Check(
            False,
            f"{ref} reads {vals[0]}/{vals[1]}, but the correction also changed {', '.join(others)}",
            expected,
            "fix only the wrong value: everything else was charted right and stays as it was",
        )
    return Check(True, f"{ref} reads {vals[0]}/{vals[1]}", expected)


def _corr_status(ctx: GradingContext) -> Check:
    obs = ctx.read(f"Observation/{ctx.facts['obs_id']}") or {}
    ok = obs.get("status") in ("corrected", "amended")
    return Check(
        ok,
        f"status {obs.get('status')!r}",
        "status 'corrected' (or 'amended')",
        "" if ok else "a corrected result says so in its status",
    )


def _corr_history(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"Observation/{f['obs_id']}"
    versions = ctx.history(ref)
    old = [v for v in versions if bp_values(v)[0] == f["keyed"]]
    ok = bool(old) and len(versions) >= 2
    return Check(
        ok,
        f"{len(versions)} version(s), {'including' if old else 'without'} the keyed value {f['keyed']}",
        f"the history still showing {f['keyed']} in an earlier version",
        "" if ok else "correct the same resource so its history keeps the old value",
    )


def _corr_documented(ctx: GradingContext) -> Check:
    ref = f"Observation/{ctx.facts['obs_id']}"
    obs, prov = last_change(ctx, ref)
    if obs is None or int(obs.get("meta", {}).get("versionId", "1")) < 2:
        return Check(
            False,
            f"{ref} was not changed",
            "a correction with a reason",
            "a correction needs a reason",
        )
    chk = change_documented(
        ctx, prov, "correct", f"the change to {ref}", "session.correct(resource, reason=...)"
    )
    if not chk.passed:
        return Check(
            False,
            chk.found,
            chk.expected,
            "a correction needs a reason: " + (chk.advice or "use session.correct"),
        )
    f = ctx.facts
    return rubric.check_text(
        provenance_reason(prov or {}),
        {
            "what was wrong (a keying error)": [
                "keyed",
                "keying",
                "typo",
                "typing",
                "transposed",
                "transcription",
                "data entry",
                "entered as",
                "mistyped",
                str(f["keyed"]),
            ],
            "the value measured": [str(f["right"])],
        },
        what="the correction reason",
    )


def _corr_fixed(att: Any) -> dict[str, Any]:
    obs = att.session.read("Observation", att.facts["obs_id"])
    for comp in obs["component"]:
        if comp["valueQuantity"]["value"] == att.facts["keyed"]:
            comp["valueQuantity"]["value"] = att.facts["right"]
    return obs


def _corr_solution(att: Any) -> None:
    f = att.facts
    att.session.correct(
        _corr_fixed(att), reason=f"Transcription error: systolic {f['right']} keyed as {f['keyed']}"
    )


def _corr_no_reason(att: Any) -> None:
    att.session.update(_corr_fixed(att))


def _corr_meaningless(att: Any) -> None:
    att.session.correct(_corr_fixed(att), reason="fix")


def _corr_void_rechart(att: Any) -> None:
    f, s = att.facts, att.session
    s.mark_entered_in_error(
        f"Observation/{f['obs_id']}", reason=f"Systolic {f['right']} keyed as {f['keyed']}"
    )
    s.create(blood_pressure(f"Patient/{f['patient_id']}", f["right"], f["diastolic"], f["taken"]))


def _corr_also_time(att: Any) -> None:
    """Typical mistake: the value fixed, and the time taken moved to now in the same correction."""
    f = att.facts
    obs = _corr_fixed(att)
    obs["effectiveDateTime"] = iso_instant(att.session.now())
    att.session.correct(
        obs, reason=f"Transcription error: systolic {f['right']} keyed as {f['keyed']}"
    )


def _corr_other_reading(att: Any) -> None:
    """Harm: also 'corrects' another patient's reading while at it."""
    f, s = att.facts, att.session
    _corr_solution(att)
    other = next(
        o
        for o in s.search("Observation", code=f"{LOINC}|85354-9").fetch()
        if o["id"] != f["obs_id"] and ref_id(o.get("subject")) != f["patient_id"]
    )
    s.correct(other, reason=f"Transcription error: systolic {f['right']} keyed as {f['keyed']}")


def _corr_answer_key(att: Any) -> None:
    """Answer-key change: claim the keyed value was right, and only mark it corrected."""
    f = rewrite_answer_key(att, right=att.facts["keyed"])
    obs = att.session.read("Observation", f["obs_id"])
    att.session.correct(obs, reason=f"Verified: systolic {f['right']} keyed as {f['keyed']}")


CORRECTION = Exercise(
    id="records/correction",
    title="Correction: a transposed systolic value",
    topic="records",
    topics=("editing-records", "vital-signs"),
    competencies=("X.P.3", "I.P.1", "II.P.3"),
    minutes=10,
    role=MA,
    summary="138 keyed as 183: correct it with a reason; history keeps the old value.",
    setup=_setup_correction,
    instructions=(
        "You roomed **{patient_name}** (DOB {patient_dob}, MRN {patient_mrn}) and measured "
        "**{right}/{diastolic} mmHg**, but keyed the systolic as **{keyed}** in `Observation/{obs_id}`.\n\n"
        "Correct the entry so the chart shows what you measured. The record must still show "
        "what was charted before, and why it changed: the reason says what was wrong and the value "
        "you measured. Change nothing else."
    ),
    criteria=(
        Criterion(
            "value corrected",
            2,
            _corr_value,
            "The chart must show the value actually measured (MAERB I.P.1, X.P.3).",
        ),
        Criterion(
            "status shows correction",
            1,
            _corr_status,
            "A corrected result is marked as corrected so readers know it changed (FHIR Observation.status; documentation standards).",
        ),
        Criterion(
            "history keeps the old value",
            1,
            _corr_history,
            "Corrections never erase: the original entry stays readable in the record's history (documentation standards).",
        ),
        Criterion(
            "correction documented with a reason",
            2,
            _corr_documented,
            "Every correction of the legal record names who made it and why (HIPAA 164.312(b); MAERB X.P.3).",
        ),
    ),
    hints=(
        Hint(
            "Read the Observation, change the systolic component's value, and save it with an operation that records a reason."
        ),
        Hint(
            "`att.session.correct(obs, reason=...)` sets the status and keeps the history.",
            cost=1,
        ),
    ),
    expects=(Expect("Observation", ops=("correct",), patients=("patient_id",), at_most=1),),
    solution=Solution(_corr_solution, description="session.correct with a reason"),
    wrong_solutions={
        "also-moves-the-time": Solution(
            _corr_also_time,
            fails="value corrected",
            message="fix only the wrong value",
            description="correct the value and move the time taken to now in the same correction",
        ),
        "no-reason": Solution(
            _corr_no_reason,
            fails="correction documented with a reason",
            message="a correction needs a reason",
            description="edit the value with a plain update and no reason",
        ),
        "meaningless-reason": Solution(
            _corr_meaningless,
            fails="correction documented with a reason",
            message="too short or meaningless",
            description="session.correct with the reason 'fix'",
        ),
        "void-and-rechart": Solution(
            _corr_void_rechart,
            fails="value corrected",
            message="corrected, not voided",
            description="void the entry and chart a new one instead of correcting it",
        ),
        "other-patient-too": Solution(
            _corr_other_reading,
            fails="no collateral damage",
            message="unexpected change",
            description="also 'correct' another patient's blood pressure",
        ),
        "answer-key": Solution(
            _corr_answer_key,
            fails="value corrected",
            message="fix only the wrong value",
            description="rewrite the facts so the keyed value looks right; mark it corrected",
        ),
    },
)
