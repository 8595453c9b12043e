"""Catalogue item 16 of EXERCISES.md: Break the glass.

Defines and registers ``privacy/break-the-glass`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from ehr_sandbox.audit.events import event_patient, event_username
from ehr_sandbox.errors import ExerciseError, SandboxError
from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import patient_label, ref_id
from ehr_sandbox.exercises.builtin.privacy.common import (
    PRIVACY_OFFICER,
    REVIEW_KIND,
    event_subtype,
    living_patients,
    treated_by,
    users_by_practitioner,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import (
    COLLATERAL,
    Check,
    Criterion,
    Exercise,
    Expect,
    Hint,
    Scenario,
    Solution,
)
from ehr_sandbox.exercises.registry import register
from ehr_sandbox.session import BTG_MINUTES


# ------------------------------------------------------------------------------------------
# 16. Break the glass
# ------------------------------------------------------------------------------------------
def _purposes(ev: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for agent in ev.get("agent", []):
        if agent.get("requestor"):
            out |= codes(agent.get("purposeOfUse", []))
    return out


BTG_PHYSICIAN = "dr.okafor"
ROUTINE_COLLEAGUE = "dr.patel"
BTG_START_CODE, BTG_STOP_CODE = "110127", "110138"
EMERGENCIES = (
    "collapsed in the waiting room and is unresponsive",
    "has severe chest pain and shortness of breath",
    "is having an anaphylactic reaction after a bee sting",
    "arrived confused with a glucose of 41 mg/dL",
)
EMERGENCY_WORDS = {
    EMERGENCIES[0]: ["unresponsive", "collapsed", "unconscious", "syncope", "passed out"],
    EMERGENCIES[1]: [
        "chest pain",
        "shortness of breath",
        "short of breath",
        "cardiac",
        "heart attack",
        "myocardial",
    ],
    EMERGENCIES[2]: ["anaphylactic", "anaphylaxis", "allergic reaction", "bee sting"],
    EMERGENCIES[3]: ["glucose", "hypoglycemia", "hypoglycaemia", "low blood sugar", "confused"],
}
"""How a reason may name each emergency (a rubric's alternatives)."""
CONTRARY = (
    "not appropriate",
    "inappropriate",
    "not justified",
    "unjustified",
    "not warranted",
    "unwarranted",
    "not necessary",
    "unnecessary",
    "not legitimate",
    "illegitimate",
)
"""A judgement that the access was not appropriate (a note that says it contradicts
``appropriate=True``)."""


def other_emergencies(words: list[str]) -> list[str]:
    """The words that name an emergency other than the one ``words`` name: a reason or a
    review that names every emergency at once names none (keyword stuffing).

    >>> "chest pain" in other_emergencies(EMERGENCY_WORDS[EMERGENCIES[0]])
    True
    >>> "collapsed" in other_emergencies(EMERGENCY_WORDS[EMERGENCIES[0]])
    False
    """
    own = set(words)
    return sorted({w for ws in EMERGENCY_WORDS.values() for w in ws} - own)


ROUTINE = (
    "calls to ask whether their cholesterol result came back",
    "wants a refill of a routine prescription",
    "asks for a copy of last year's immunization record",
)


def _setup_btg(sandbox: Any, variant: Any) -> Scenario:
    """One emergency patient whose chart is closed to the physician, and a routine caller.

    Only the emergency needs a patient the physician does not treat; the routine caller is
    any other patient (whether the chart is open or closed to the physician, a routine request
    never justifies an override), so setup succeeds in every clinic.
    """
    treated = treated_by(sandbox, BTG_PHYSICIAN)
    living = living_patients(sandbox)
    closed = [p for p in living if p["id"] not in treated]
    if not closed:
        raise ExerciseError(f"setup: need a patient {BTG_PHYSICIAN} does not treat")
    emergency = variant.pick(closed, salt="emergency")
    others = [p for p in living if p["id"] != emergency["id"]]
    routine = variant.pick([p for p in others if p["id"] not in treated] or others, salt="routine")
    by_prac = users_by_practitioner(sandbox)
    gp = ref_id((emergency.get("generalPractitioner") or [{}])[0])
    routine_gp = by_prac.get(ref_id((routine.get("generalPractitioner") or [{}])[0]))
    what = variant.pick(EMERGENCIES, salt="what")
    return Scenario(
        facts={
            "emergency_id": emergency["id"],
            "emergency_name": patient_label(emergency),
            "emergency_what": what,
            "emergency_gp": by_prac.get(gp, "another physician"),
            "routine_id": routine["id"],
            "routine_name": patient_label(routine),
            "routine_what": variant.pick(ROUTINE, salt="routine-what"),
        },
        answer={
            "emergency_words": EMERGENCY_WORDS[what],
            "routine_gp": routine_gp or "dr.patel",
        },
    )


def _btg_events(ctx: GradingContext, code: str) -> list[dict[str, Any]]:
    return [
        e
        for e in ctx.events()
        if event_subtype(e) == code and event_username(e) == ctx.user.username
    ]


def _btg_override(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"break-the-glass on {f['emergency_name']} with a reason, and the chart read under it"
    )
    starts = [
        e
        for e in _btg_events(ctx, BTG_START_CODE)
        if event_patient(e) == f["emergency_id"] and str(e.get("outcome")) == "0"
    ]
    if not starts:
        return Check(
            False,
            "no emergency override for the emergency patient",
            expected,
            "session.break_glass(patient, reason)",
        )
    judged = [
        rubric.check_text(
            str(e.get("outcomeDesc") or ""),
            # the word "emergency" alone names no emergency: the reason says which one
            {"the emergency (what is happening to this patient)": ctx.answer["emergency_words"]},
            forbidden={
                "an emergency this patient is not having": other_emergencies(
                    ctx.answer["emergency_words"]
                )
            },
            what="the override reason",
        )
        for e in starts
    ]
    if not any(c.passed for c in judged):
        return Check(
            False,
            judged[0].found,
            expected,
            "the reason says what the emergency is, so the reviewer can judge the access",
        )
    used = [
        e
        for e in ctx.events()
        if event_username(e) == ctx.user.username
        and event_patient(e) == f["emergency_id"]
        and "BTG" in _purposes(e)
        and str(e.get("outcome")) == "0"
        and event_subtype(e) not in (BTG_START_CODE, BTG_STOP_CODE)
    ]
    if not used:
        return Check(False, "the override was started but the chart was never read", expected)
    return Check(
        True, f"override with reason {starts[0].get('outcomeDesc')!r}, {len(used)} reads", expected
    )


def _btg_not_routine(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"no break-the-glass except for {f['emergency_name']}'s emergency"
    misuse = [e for e in _btg_events(ctx, BTG_START_CODE) if event_patient(e) != f["emergency_id"]]
    if misuse:
        names = {f["routine_id"]: f["routine_name"]}
        who = sorted({names.get(event_patient(e) or "", event_patient(e) or "?") for e in misuse})
        return Check(
            False,
            f"break-the-glass used for a routine look-up ({', '.join(who)})",
            expected,
            "the glass is for emergencies; route routine requests to the patient's own care team",
        )
    return Check(True, "break-the-glass used only for the emergency", expected)


EXPIRED = "expired"
"""The reason the sandbox records when it closes an override nobody ended (its time ran out)."""


def _btg_ended(ctx: GradingContext) -> Check:
    """Every override on the emergency patient ended by the user (an override left to expire
    was left open for its whole hour)."""
    f = ctx.facts
    expected = "each override ended by you once the emergency was handled (not left to expire)"
    mine = [
        e
        for e in ctx.events()
        if event_username(e) == ctx.user.username
        and event_patient(e) == f["emergency_id"]
        and event_subtype(e) in (BTG_START_CODE, BTG_STOP_CODE)
        and str(e.get("outcome")) == "0"
    ]
    opened, left = False, 0
    for e in mine:
        if event_subtype(e) == BTG_START_CODE:
            left += opened  # a new override while one was open: the first was never ended
            opened = True
        elif opened:
            left += e.get("outcomeDesc") == EXPIRED
            opened = False
    left += opened
    if not mine:
        return Check(False, "no override to end", expected, "session.end_break_glass(patient)")
    if left:
        return Check(
            False,
            f"the override was left open ({left} not ended by you; the sandbox closed it "
            "when its time ran out, or it is still open)",
            expected,
            "session.end_break_glass(patient) as soon as the emergency is handled",
        )
    return Check(True, "override ended", expected)


def _btg_reviewed(ctx: GradingContext) -> Check:
    """Every override the student started on the emergency patient is reviewed by the privacy
    officer, judged appropriate, with a note that gives this access's grounds (this patient's
    emergency, not the generic word, not every emergency at once, not a contrary judgement)."""
    f = ctx.facts
    expected = (
        f"each override on {f['emergency_name']} reviewed by {PRIVACY_OFFICER} (an audited review), "
        "with a note that judges the access and gives its grounds (what the emergency was)"
    )
    starts = [
        e
        for e in _btg_events(ctx, BTG_START_CODE)
        if event_patient(e) == f["emergency_id"] and str(e.get("outcome")) == "0"
    ]
    reviews = [
        e["detail"]
        for e in ctx.events(REVIEW_KIND)
        if event_username(e) == PRIVACY_OFFICER and isinstance(e.get("detail"), dict)
    ]
    mine = [
        r
        for r in reviews
        if r.get("user") == ctx.user.username and r.get("patient") == f["emergency_id"]
    ]
    if not mine:
        return Check(
            False,
            "no audited review of the override by the privacy officer",
            expected,
            "every emergency override is reviewed by the privacy officer: po.review_btg(index, appropriate=..., note=...)",
        )
    if len({str(r.get("started")) for r in mine}) < len(starts):
        return Check(
            False,
            f"{len(starts)} overrides on the emergency patient, only {len(mine)} reviewed",
            expected,
            "review every override in the queue, not only one",
        )
    for review in mine:
        verdict = rubric.check_text(
            str(review.get("note") or ""),
            {
                "the judgement": [
                    "appropriate",
                    "justified",
                    "legitimate",
                    "warranted",
                    "necessary",
                ],
                "the grounds (what the emergency was)": ctx.answer["emergency_words"],
            },
            forbidden={
                "an emergency this patient was not having": other_emergencies(
                    ctx.answer["emergency_words"]
                ),
                "that the access was not appropriate": CONTRARY
                if review.get("appropriate")
                else (),
            },
            what="the review note",
        )
        if not verdict.passed:
            return Check(
                False,
                verdict.found,
                expected,
                "a review says whether the access was appropriate and why: the emergency it was for",
            )
        if not review.get("appropriate"):
            return Check(False, "the emergency override was judged inappropriate", expected)
    return Check(True, f"reviewed by {PRIVACY_OFFICER}", expected)


def _btg_emergency(att: Any) -> None:
    f, s = att.facts, att.session
    s.break_glass(
        f"Patient/{f['emergency_id']}",
        f"Emergency: patient {f['emergency_what']}; need allergies and medications",
    )
    s.read("Patient", f["emergency_id"])
    s.search("AllergyIntolerance", patient=f"Patient/{f['emergency_id']}").fetch()
    s.search("MedicationRequest", patient=f"Patient/{f['emergency_id']}").fetch()
    s.end_break_glass(f["emergency_id"])


def _btg_review(att: Any, note: str | None = None, *, last_only: bool = False) -> None:
    """The privacy officer reviews the queue: the emergency's override as appropriate (with
    ``note`` instead of the reference's, when given), any other as not; ``last_only`` reviews
    only the newest item."""
    po = att.login(PRIVACY_OFFICER)
    pending = len(po.btg_review_queue())
    for _ in range(1 if last_only else pending):
        index = pending - 1 if last_only else 0
        item = po.btg_review_queue()[index]
        ok = item["patient"] == att.facts["emergency_id"]
        text = (
            (note or "Access appropriate: emergency treatment, the patient {emergency_what}")
            if ok
            else "Not appropriate: a routine request for another physician's patient, no emergency"
        )
        po.review_btg(index, appropriate=ok, note=text.format(**att.facts))


def _btg_solution(att: Any) -> None:
    _btg_emergency(att)
    _btg_review(att)


def _btg_routine(att: Any) -> None:
    f, s = att.facts, att.session
    _btg_emergency(att)
    s.break_glass(f"Patient/{f['routine_id']}", "Patient called about a result")
    s.search("Observation", patient=f"Patient/{f['routine_id']}").fetch()
    s.end_break_glass(f["routine_id"])
    _btg_review(att)


def _btg_meaningless_reason(att: Any) -> None:
    f, s = att.facts, att.session
    s.break_glass(f"Patient/{f['emergency_id']}", "need access now")
    s.read("Patient", f["emergency_id"])
    s.search("AllergyIntolerance", patient=f"Patient/{f['emergency_id']}").fetch()
    s.end_break_glass(f["emergency_id"])
    _btg_review(att)


def _btg_reason(att: Any, reason: str) -> None:
    f, s = att.facts, att.session
    s.break_glass(f"Patient/{f['emergency_id']}", reason)
    s.read("Patient", f["emergency_id"])
    s.search("AllergyIntolerance", patient=f"Patient/{f['emergency_id']}").fetch()
    s.end_break_glass(f["emergency_id"])
    _btg_review(att)


def _btg_noted(att: Any, note: str) -> None:
    """The reference solution with the privacy officer's note replaced by ``note``."""
    _btg_emergency(att)
    _btg_review(att, note)


def _btg_left_to_expire(att: Any) -> None:
    """The reference's override, never ended: the clock runs past its hour (the sandbox closes
    it as expired), then the review."""
    f, s = att.facts, att.session
    s.break_glass(
        f"Patient/{f['emergency_id']}",
        f"Emergency: patient {f['emergency_what']}; need allergies and medications",
    )
    s.read("Patient", f["emergency_id"])
    att.sandbox.clock.advance(minutes=BTG_MINUTES + 1)
    with contextlib.suppress(SandboxError):
        s.read("Patient", f["emergency_id"])  # refused: the grant expired (and is logged so)
    _btg_review(att)


def _btg_twice_one_reviewed(att: Any) -> None:
    """The reference's override done twice; only the second is reviewed."""
    _btg_emergency(att)
    _btg_emergency(att)
    _btg_review(att, last_only=True)


EVERY_EMERGENCY = (
    "Emergency: patient collapsed and unresponsive, chest pain, anaphylaxis or low glucose"
)


def _btg_another_emergency(att: Any) -> str:
    return next(e for e in EMERGENCIES if e != att.facts["emergency_what"])


def _btg_colleague_login(att: Any) -> None:
    # Harm: the routine caller's chart is opened under a colleague's login instead of an override.
    f = att.facts
    _btg_solution(att)
    colleague = att.sandbox.login(ROUTINE_COLLEAGUE)
    with contextlib.suppress(SandboxError):
        colleague.search("Observation", patient=f"Patient/{f['routine_id']}").fetch()


def _btg_queue_edited(att: Any) -> None:
    # Answer-key attack: the review queue is marked reviewed around the EHR.
    _btg_emergency(att)
    private = getattr(att.sandbox, "private", None)
    if private is None:
        return
    queue = private.get("btg_review", [])
    for item in queue:
        item.update(
            reviewed=True,
            appropriate=True,
            reviewer=PRIVACY_OFFICER,
            note="Emergency treatment documented; access appropriate",
        )
    private.set("btg_review", queue)


def _btg_rubber_stamp(att: Any) -> None:
    _btg_emergency(att)
    po = att.login(PRIVACY_OFFICER)
    for _ in range(len(po.btg_review_queue())):
        po.review_btg(0, appropriate=True, note="ok")


BREAK_THE_GLASS = register(
    Exercise(
        id="privacy/break-the-glass",
        title="Break the glass: emergency access, then review",
        topic="privacy",
        competencies=("X.P.2", "XI.P.2"),
        minutes=15,
        role=BTG_PHYSICIAN,
        summary="Override access for an emergency with a reason, end it, and review it as privacy officer.",
        setup=_setup_btg,
        instructions=(
            "You are covering the clinic. **{emergency_name}** (`Patient/{emergency_id}`), a patient "
            "of {emergency_gp}, {emergency_what}. You do not treat this patient, so the chart is "
            "closed to you — but you need their allergies and medications now.\n\n"
            "1. Break the glass for this patient with a reason "
            "(`att.session.break_glass('Patient/{emergency_id}', reason)`), read what you need, "
            "and end the override (`att.session.end_break_glass('{emergency_id}')`).\n"
            "2. Meanwhile **{routine_name}** (`Patient/{routine_id}`) {routine_what}. That is "
            "routine work: no override, and no one else's login; if the chart is closed to you, "
            "it goes to the patient's own physician.\n"
            "3. Then, as the privacy officer (`po = att.login('po.wilson')`), review each "
            "override in `po.btg_review_queue()` with "
            "`po.review_btg(index, appropriate=..., note=...)`: the note says whether the "
            "access was appropriate and why (the emergency it was for).\n\nThen call `att.check()`."
        ),
        criteria=(
            Criterion(
                "emergency override with a reason",
                3,
                _btg_override,
                "Emergency access is allowed, with a documented reason (HIPAA 164.312(a)(2)(ii) emergency access procedure).",
            ),
            Criterion(
                "no override for routine work",
                3,
                _btg_not_routine,
                "Break-the-glass is for emergencies only; a routine look-up is an unauthorized access (HIPAA 164.502(a); MAERB X.P.2).",
            ),
            Criterion(
                "override ended",
                1,
                _btg_ended,
                "Emergency access lasts only as long as the emergency (HIPAA 164.312(a)(2)(iii) automatic logoff).",
            ),
            Criterion(
                "override reviewed",
                2,
                _btg_reviewed,
                "Every override is reviewed by the privacy officer (HIPAA 164.308(a)(1)(ii)(D) information system activity review).",
            ),
        ),
        hints=(
            Hint(
                "A routine request for someone else's patient goes to that patient's physician: no override."
            ),
            Hint(
                "The review queue lists pending items; index 0 is the oldest pending one.", cost=1
            ),
        ),
        solution=Solution(
            _btg_solution, description="override for the emergency only, ended and reviewed"
        ),
        topics=("privacy-security",),
        expects=(
            Expect(BTG_START_CODE, patients=("emergency_id",)),
            Expect(BTG_STOP_CODE, patients=("emergency_id",)),
            Expect(REVIEW_KIND),
        ),
        actors=(PRIVACY_OFFICER,),
        wrong_solutions={
            "emergency-unnamed": Solution(
                lambda att: _btg_reason(att, "Emergency access needed for this patient right now"),
                fails="emergency override with a reason",
                message="the reason says what the emergency is",
                description="a reason with the word 'emergency' that names no emergency",
            ),
            "another-emergency": Solution(
                lambda att: _btg_reason(att, f"Emergency: patient {_btg_another_emergency(att)}"),
                fails="emergency override with a reason",
                message="the reason says what the emergency is",
                description="a reason that names an emergency other than this patient's",
            ),
            "meaningless-reason": Solution(
                _btg_meaningless_reason,
                fails="emergency override with a reason",
                message="too short or meaningless",
                description="breaks the glass with the reason 'need access now'",
            ),
            "routine-under-colleague-login": Solution(
                _btg_colleague_login,
                fails=COLLATERAL,
                message="login",
                description="looks up the routine caller's results under a colleague's login",
            ),
            "queue-edited": Solution(
                _btg_queue_edited,
                fails="override reviewed",
                message="no audited review",
                description="marks the review queue reviewed around the EHR (answer-key attack)",
            ),
            "every-emergency-reason": Solution(
                lambda att: _btg_reason(att, EVERY_EMERGENCY + "; need allergies"),
                fails="emergency override with a reason",
                message="an emergency this patient is not having",
                description="a reason that names every emergency at once (keyword stuffing)",
            ),
            "generic-review": Solution(
                lambda att: _btg_noted(
                    att, "Access appropriate: emergency treatment of this patient"
                ),
                fails="override reviewed",
                message="does not say the grounds",
                description="a review note that gives generic grounds, not what the emergency was",
            ),
            "every-emergency-review": Solution(
                lambda att: _btg_noted(att, "Access appropriate: " + EVERY_EMERGENCY),
                fails="override reviewed",
                message="an emergency this patient was not having",
                description="a review note that names every emergency at once",
            ),
            "contrary-review": Solution(
                lambda att: _btg_noted(
                    att, "Not appropriate and not justified, though the patient {emergency_what}"
                ),
                fails="override reviewed",
                message="that the access was not appropriate",
                description="judged appropriate with a note that says the access was not",
            ),
            "left-to-expire": Solution(
                _btg_left_to_expire,
                fails="override ended",
                message="left open",
                description="never ends the override: it runs out its hour and the sandbox closes it",
            ),
            "second-override-unreviewed": Solution(
                _btg_twice_one_reviewed,
                fails="override reviewed",
                message="only 1 reviewed",
                description="breaks the glass twice for the emergency; only the second is reviewed",
            ),
            "rubber-stamp-review": Solution(
                _btg_rubber_stamp,
                fails="override reviewed",
                message="too short or meaningless",
                description="reviews the override with the note 'ok'",
            ),
            "routine-lookup": Solution(
                _btg_routine,
                fails="no override for routine work",
                message="routine look-up",
                description="also breaks the glass for the routine phone call",
            ),
            "unreviewed": Solution(
                _btg_emergency,
                fails="override reviewed",
                message="no audited review",
                description="never reviews the override",
            ),
        },
        patients=12,
    )
)
