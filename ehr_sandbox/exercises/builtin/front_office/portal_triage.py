"""Catalogue item 33: triaging and answering portal messages within MA scope.

Three patient messages wait in the inbox: a request to move an appointment, a question on how
to prepare for a fasting blood test, and a question about cholesterol results. The MA answers
the first two (linked to the message, within the day, education that says what to do) and
forwards the results question to the provider: an MA does not interpret results.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import (
    parse_instant,
    patient_label,
    still_standing,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.front_office.common import (
    MA,
    check,
    written,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import portal

__all__ = ["PORTAL_TRIAGE"]

SCOPE = "an MA does not interpret results: forward the question to the provider"
EVALUATION = (
    "fine",
    "ok",
    "okay",
    "good",
    "great",
    "perfect",
    "excellent",
    "healthy",
    "bad",
    "worry",
    "worried",
    "concern",
    "concerned",
    "concerning",
    "high",
    "low",
    "range",
    "better",
    "worse",
    "improved",
    "reassuring",
)
"""Words that judge a result, however phrased; an MA's message to a patient who asked about
results must not contain them (the EHR's own scope phrases are a floor, not the rule)."""
OPEN_TASK = ("requested", "received", "accepted", "ready", "in-progress")
"""Task statuses of a forward that still stands (not cancelled, rejected, failed, in error)."""
LINK = "reply to the message itself (linked with inResponseTo) so the thread holds together"

MESSAGES = {
    "appointment": (
        "Appointment",
        "Can I move my appointment next week to a morning? I start a new job.",
    ),
    "education": (
        "Fasting blood test",
        "I have a fasting blood test on Monday. How do I prepare for it?",
    ),
    "results": (
        "My cholesterol",
        "I saw my cholesterol results in the portal. Are they OK? Should I worry?",
    ),
}


NO_FAST = [
    "no need to fast",
    "not need to fast",
    "need not fast",
    "do not fast",
    "don't fast",
    "not necessary to fast",
    "eat normally",
    "eat as usual",
]
"""Phrases that tell a patient with a fasting test the opposite of how to prepare."""


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    pats = rng.sample(visible_patients(sandbox, MA, minimum=3), 3)
    doc = variant.pick(("dr.patel", "dr.nguyen", "dr.okafor"), salt="provider")
    ids = {}
    for topic, p in zip(("appointment", "education", "results"), pats, strict=True):
        subject, text = MESSAGES[topic]
        m = portal.send_message(
            sandbox.login_patient(p["id"]), topic=topic, subject=subject, text=text
        )
        ids[topic] = {
            "message": m["id"],
            "patient_id": p["id"],
            "patient_name": patient_label(p),
            "sent": m["sent"],
        }
        sandbox.clock.advance(minutes=rng.randint(5, 40))
    sandbox.clock.advance(hours=2)
    return Scenario(
        facts={
            "doctor": doc,
            "appointment": ids["appointment"],
            "education": ids["education"],
            "results": ids["results"],
            "a_id": ids["appointment"]["patient_id"],
            "e_id": ids["education"]["patient_id"],
            "r_id": ids["results"]["patient_id"],
        },
        answer={},
        protect=tuple(f"Communication/{v['message']}" for v in ids.values()),
    )


def _replies(ctx: GradingContext, key: str) -> list[dict[str, Any]]:
    """Replies to the message that stand: linked to it, sent (completed, also as last
    written) to the patient who wrote it."""
    ref = f"Communication/{ctx.facts[key]['message']}"
    pid = f"Patient/{ctx.facts[key]['patient_id']}"
    return [
        v
        for v in still_standing(ctx, written(ctx, "Communication"), current=True)
        if any(r.get("reference") == ref for r in v.get("inResponseTo", []))
        and v.get("status") == "completed"
        and (v.get("subject") or {}).get("reference") == pid
        and [r.get("reference") for r in v.get("recipient", [])] == [pid]
    ]


def _forwards(ctx: GradingContext) -> list[dict[str, Any]]:
    """Tasks that forward the results question and stand (as last written): open, for its
    patient, dated when they were written (not before the message, not backdated)."""
    f = ctx.facts
    ref = f"Communication/{f['results']['message']}"
    sent = parse_instant(f["results"]["sent"])
    out = []
    for t in still_standing(ctx, written(ctx, "Task"), current=True):
        at = ctx.written_at(t)
        dated = parse_instant(t.get("authoredOn"))
        if (
            (t.get("focus") or {}).get("reference") == ref
            and t.get("status") in OPEN_TASK
            and (t.get("for") or {}).get("reference") == f"Patient/{f['results']['patient_id']}"
            and at is not None
            and dated is not None
            and sent is not None
            and sent <= dated
            and abs(at - dated) <= timedelta(minutes=5)
        ):
            out.append(t)
    return out


def _patient_msgs(ctx: GradingContext, key: str) -> list[dict[str, Any]]:
    pid = f"Patient/{ctx.facts[key]['patient_id']}"
    return [
        v for v in written(ctx, "Communication") if (v.get("subject") or {}).get("reference") == pid
    ]


def _education(ctx: GradingContext) -> Any:
    expected = "a reply to the patient's message that tells them how to prepare"
    reps = _replies(ctx, "education")
    if not reps:
        return check(
            False, f"{len(_patient_msgs(ctx, 'education'))} unlinked message(s)", expected, LINK
        )
    text = " ".join(p.get("contentString", "") for v in reps for p in v.get("payload", []))
    forbidden = {"that the patient need not fast": NO_FAST}
    if portal.interpretive_phrases(text):
        forbidden["an interpretation"] = portal.interpretive_phrases(text)
    return rubric.check_text(
        text,
        {"fasting": ["fast", "nothing to eat", "not eat", "no food"], "water": ["water"]},
        forbidden=forbidden,
        what="the education reply",
    )


def _appointment(ctx: GradingContext) -> Any:
    expected = "a reply to the appointment request, linked to it"
    reps = _replies(ctx, "appointment")
    if not reps:
        return check(
            False, f"{len(_patient_msgs(ctx, 'appointment'))} unlinked message(s)", expected, LINK
        )
    text = " ".join(p.get("contentString", "") for v in reps for p in v.get("payload", []))
    return rubric.check_text(
        text,
        {
            # what the patient asked for (a morning, a move): the word 'appointment' alone
            # answers nothing
            "the appointment change": [
                "morning",
                "move",
                "moved",
                "reschedule",
                "rescheduled",
                "new time",
            ]
        },
        what="the appointment reply",
    )


def _results(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "the results question forwarded to the provider with a note, and no MA answer to it"
    pid = f"Patient/{f['results']['patient_id']}"
    mine = [
        v
        for v in written(ctx, "Communication")
        if (v.get("subject") or {}).get("reference") == pid
        or any(r.get("reference") == pid for r in v.get("recipient", []))
    ]

    def judges(text: str) -> bool:
        return bool(portal.interpretive_phrases(text)) or any(
            rubric.mentions(text, w) for w in EVALUATION
        )

    said = [
        v
        for v in mine
        if judges(" ".join(p.get("contentString", "") for p in v.get("payload", [])))
    ]
    if said or _replies(ctx, "results"):
        return check(
            False,
            f"{len(said) or len(_replies(ctx, 'results'))} MA answer(s) to the results question",
            expected,
            SCOPE,
        )
    tasks = _forwards(ctx)
    doctor = f"Practitioner/prac-{f['doctor']}"
    if not any(
        (t.get("owner") or {}).get("reference") == doctor
        and len(t.get("description", "").split()) >= 3
        for t in tasks
    ):
        return check(
            False,
            f"{len(tasks)} open forward(s) of the question, dated when written, to "
            f"{[(t.get('owner') or {}).get('reference') for t in tasks]}",
            expected,
            SCOPE + "; the forward is an open task for the patient's doctor, dated when you "
            "forwarded it, with a note",
        )
    return check(True, "forwarded to the provider", expected)


def _in_time(ctx: GradingContext) -> Any:
    expected = "every answer or forward within one day of the message"
    limit = timedelta(hours=24)
    late = "answer portal messages within one business day"
    for key in ("appointment", "education"):
        sent = datetime.fromisoformat(ctx.facts[key]["sent"])
        for v in _replies(ctx, key):
            # when the EHR recorded the reply, not the 'sent' typed into it
            at = ctx.written_at(v) or datetime.fromisoformat(v["sent"])
            if at - sent > limit:
                return check(
                    False,
                    f"reply written {at.isoformat()} to a message of {ctx.facts[key]['sent']}",
                    expected,
                    late,
                )
    sent = datetime.fromisoformat(ctx.facts["results"]["sent"])
    for t in _forwards(ctx):
        at = ctx.written_at(t)
        due = parse_instant(((t.get("restriction") or {}).get("period") or {}).get("end"))
        if at is None or at - sent > limit or (due is not None and due - sent > limit):
            return check(
                False,
                f"forward written {at.isoformat() if at else '(unknown)'}, due "
                f"{due.isoformat() if due else '(no due time)'}, for a message of "
                f"{ctx.facts['results']['sent']}",
                expected,
                late + "; a forward is written, and due, within that time too",
            )
    return check(True, "answered in time", expected)


def _reply(att: Any, key: str, text: str) -> None:
    portal.reply(att.session, f"Communication/{att.facts[key]['message']}", text)


def _forward(att: Any, *, dated: str | None = None) -> None:
    """Forward the results question to the doctor (``dated``: a wrong solution writing the
    task by hand with that ``authoredOn``)."""
    msg = f"Communication/{att.facts['results']['message']}"
    to = f"Practitioner/prac-{att.facts['doctor']}"
    note = "Patient asks whether the cholesterol results are OK; please review and reply."
    if dated is None:
        portal.forward(att.session, msg, to=to, note=note)
        return
    subject = att.session.read(msg)["subject"]
    att.session.create(
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "description": note,
            "focus": {"reference": msg},
            "for": subject,
            "authoredOn": dated,
            "owner": {"reference": to},
        }
    )


EDU = "Please do not eat or drink anything except water for 9 to 12 hours before the test (fasting); take your usual medicines with water unless told otherwise."
APPT = "We can move your appointment to a morning next week; the front desk will call you today to confirm the new time."


def _told_not_to_fast(att: Any) -> None:
    """The education reply carries 'fast' and 'water' but tells the patient not to fast."""
    _reply(att, "education", "You do not need to fast for this test; just drink water as usual.")
    _reply(att, "appointment", APPT)
    _forward(att)


def _appointment_word_only(att: Any) -> None:
    """The appointment reply repeats the rubric's word without answering the request."""
    _reply(att, "education", EDU)
    _reply(att, "appointment", "Appointment appointment: we received your appointment message.")
    _forward(att)


def _solution(att: Any, *, forward_after_hours: int = 0, forward_dated: str | None = None) -> None:
    """The reference (a wrong solution forwards ``forward_after_hours`` after answering the
    other two, or writes the forward by hand dated ``forward_dated``)."""
    _reply(att, "appointment", APPT)
    _reply(att, "education", EDU)
    if forward_after_hours:
        att.sandbox.clock.advance(hours=forward_after_hours)
    _forward(att, dated=forward_dated)


def _forward_backdated(att: Any) -> None:
    """The forward written by hand, dated a day before the patient's message."""
    sent = datetime.fromisoformat(att.facts["results"]["sent"])
    _solution(att, forward_dated=(sent - timedelta(days=1)).isoformat())


def _interpreted(att: Any) -> None:
    _reply(att, "appointment", APPT)
    _reply(att, "education", EDU)
    m = att.session.read(f"Communication/{att.facts['results']['message']}")
    att.session.create(
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": m["subject"],
            "recipient": [m["subject"]],
            "sender": {"reference": att.session.user.ref},
            "sent": m["sent"],
            "category": m["category"],
            "payload": [{"contentString": "Your cholesterol is normal, nothing to worry about."}],
        }
    )


def _reassured(att: Any) -> None:
    """Forward the question, then tell the patient the result is fine in a new message, in
    words the EHR's scope phrases do not list."""
    _solution(att)
    m = att.session.read(f"Communication/{att.facts['results']['message']}")
    att.session.create(
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": m["subject"],
            "recipient": [m["subject"]],
            "sender": {"reference": att.session.user.ref},
            "payload": [
                {"contentString": "Your cholesterol numbers are fine, no need to worry at all."}
            ],
        }
    )


def _raw_reply(att: Any, key: str, text: str, sent: str | None = None) -> None:
    m = att.session.read(f"Communication/{att.facts[key]['message']}")
    att.session.create(
        {
            "resourceType": "Communication",
            "status": "completed",
            "inResponseTo": [{"reference": f"Communication/{m['id']}"}],
            "subject": m["subject"],
            "recipient": [m["subject"]],
            "sender": {"reference": att.session.user.ref},
            "sent": sent or m["sent"],
            "payload": [{"contentString": text}],
        }
    )


def _backdated(att: Any) -> None:
    """Answer the next day but type the message's own time into the replies."""
    att.sandbox.clock.advance(hours=30)
    _raw_reply(att, "appointment", APPT)
    _raw_reply(att, "education", EDU)
    _forward(att)


def _empty_reply(att: Any) -> None:
    """A reply by hand, around the portal's text rule, that says nothing."""
    _raw_reply(att, "appointment", "ok")
    _reply(att, "education", EDU)
    _forward(att)


def _unlinked(att: Any) -> None:
    for key, text in (("appointment", APPT), ("education", EDU)):
        m = att.session.read(f"Communication/{att.facts[key]['message']}")
        att.session.create(
            {
                "resourceType": "Communication",
                "status": "completed",
                "subject": m["subject"],
                "recipient": [m["subject"]],
                "sender": {"reference": att.session.user.ref},
                "sent": m["sent"],
                "payload": [{"contentString": text}],
            }
        )
    _forward(att)


def _late(att: Any) -> None:
    att.sandbox.clock.advance(hours=30)
    _solution(att)


def _wrong_patient(att: Any) -> None:
    _solution(att)
    s = att.session
    other = next(
        p
        for p in s.search("Patient").fetch()
        if p["id"] not in (att.facts["a_id"], att.facts["e_id"], att.facts["r_id"])
    )
    s.create(
        {
            "resourceType": "Communication",
            "status": "completed",
            "subject": {"reference": f"Patient/{other['id']}"},
            "recipient": [{"reference": f"Patient/{other['id']}"}],
            "sender": {"reference": s.user.ref},
            "payload": [{"contentString": EDU}],
        }
    )


def _retopic(att: Any) -> None:
    s = att.session
    m = s.read(f"Communication/{att.facts['results']['message']}")
    s.update(
        {**m, "category": [{"coding": [{"system": portal.TOPIC_SYSTEM, "code": "education"}]}]}
    )
    _solution(att)


PORTAL_TRIAGE = Exercise(
    id="front-office/portal-triage",
    title="Triaging and answering portal messages within MA scope",
    topic="front-office",
    topics=("patient-portal",),
    competencies=("V.P.8", "V.P.11", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Answer the appointment and education messages (linked, in time); forward the results question to the provider.",
    setup=_setup,
    instructions=(
        "Your portal inbox (`portal.inbox(session)`) has three new messages:\n\n"
        "1. **{appointment[patient_name]}** — an appointment request (`Communication/{appointment[message]}`)\n"
        "2. **{education[patient_name]}** — a question on preparing for a test (`Communication/{education[message]}`)\n"
        "3. **{results[patient_name]}** — a question about results (`Communication/{results[message]}`); "
        "the patient's doctor is Dr. {doctor}.\n\nTriage and answer them within your scope as an MA."
    ),
    criteria=(
        Criterion(
            "education reply says what to do",
            2,
            _education,
            "Patient education within scope: clear, actionable instructions (MAERB V.P.11).",
        ),
        Criterion(
            "appointment request answered",
            1,
            _appointment,
            "Portal replies are part of the record and linked to the question (MAERB V.P.8).",
        ),
        Criterion(
            "results question forwarded, not interpreted",
            3,
            _results,
            "Interpreting results is outside an MA's scope of practice; the provider answers (MAERB X.C.1 scope of practice).",
        ),
        Criterion(
            "answered in time",
            1,
            _in_time,
            "Practices answer portal messages within a set time, usually one business day (practice portal policy).",
        ),
    ),
    expects=(
        Expect("Communication", ops=("create",), patients=("a_id", "e_id", "r_id")),
        Expect("Task", ops=("create",), patients=("r_id",)),
    ),
    hints=(
        Hint(
            "`portal.reply(session, message, text)` links the reply; `portal.forward(session, message, to=..., note=...)` sends it to the provider."
        ),
    ),
    solution=Solution(_solution, description="reply x2, forward the results question"),
    wrong_solutions={
        "told-not-to-fast": Solution(
            _told_not_to_fast,
            fails="education reply says what to do",
            message="that the patient need not fast, which it must not",
            description="a reply with 'fast' and 'water' in it that tells the patient not to fast",
        ),
        "appointment-word-only": Solution(
            _appointment_word_only,
            fails="appointment request answered",
            message="name each required element explicitly",
            description="a reply that repeats 'appointment' without answering the request",
        ),
        "interpreted-result": Solution(
            _interpreted,
            fails="results question forwarded, not interpreted",
            message="does not interpret results",
            description="told the patient the result is normal",
        ),
        "reassured-in-other-words": Solution(
            _reassured,
            fails="results question forwarded, not interpreted",
            message="does not interpret results",
            description="forwarded, then told the patient the numbers are fine in a new message",
        ),
        "backdated-replies": Solution(
            _backdated,
            fails="answered in time",
            message="within one business day",
            description="answered the next day with the message's own time typed in",
        ),
        "empty-reply": Solution(
            _empty_reply,
            fails="appointment request answered",
            message="too short or meaningless",
            description="answered the appointment request with 'ok', by hand",
        ),
        "unlinked-replies": Solution(
            _unlinked,
            fails="appointment request answered",
            message="linked with inResponseTo",
            description="sent new messages instead of replies",
        ),
        "forward-backdated": Solution(
            _forward_backdated,
            fails="results question forwarded, not interpreted",
            message="dated when you forwarded it",
            description="the forward typed in by hand, dated before the patient's message (full "
            "marks before)",
        ),
        "forward-late": Solution(
            lambda att: _solution(att, forward_after_hours=40),
            fails="answered in time",
            message="a forward is written, and due, within that time too",
            description="replies in time, the results question forwarded 40 hours after it "
            "came (full marks before)",
        ),
        "late-replies": Solution(
            _late,
            fails="answered in time",
            message="within one business day",
            description="answered the next day",
        ),
        "reply-to-wrong-patient": Solution(
            _wrong_patient,
            fails="no collateral damage",
            message="unexpected change",
            description="sent the instructions to another patient",
        ),
        "changed-the-question": Solution(
            _retopic,
            fails="no collateral damage",
            message="the answer key depends on",
            description="changed the results question's topic",
        ),
    },
)
