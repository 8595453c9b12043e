"""Catalogue item 3, ``records/amendment-request``: a patient's request to amend a note (HIPAA
164.526) is accepted (addendum, link, notify) or denied with grounds, within 60 days.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import (
    document_text,
    note_type,
    parse_instant,
    patient_facts,
    progress_note,
    ref_id,
    rewrite_answer_key,
    sandbox_now,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.records.common import (
    PHYSICIAN,
    created_by_user,
    iso_instant,
    last_change,
)
from ehr_sandbox.exercises.grading import GradingContext, provenance_reason, text_of
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution
from synthetic.systems import SANDBOX_MESSAGE_CATEGORY

__all__ = [
    "AMENDMENT_REQUEST",
    "AMEND_ADVICE",
    "DECISION_ADVICE",
    "MESSAGE_CATEGORY",
    "NOTICE_ADVICE",
]

MESSAGE_CATEGORY = SANDBOX_MESSAGE_CATEGORY

AMENDMENT_SCENARIOS: tuple[dict[str, str], ...] = (
    {
        "decision": "accept",
        "note": "Social history: current smoker, about 1 pack per day.",
        "request": "My visit note says I smoke a pack a day. I have never smoked. Please correct my record.",
        "amendment": "Amendment at the patient's request: the patient has never smoked; the social history line 'current smoker, about 1 pack per day' is incorrect.",
        "keyword": "never smoked",
    },
    {
        "decision": "accept",
        "note": "Allergies: no known drug allergies.",
        "request": "My note says I have no drug allergies, but I am allergic to penicillin (I get hives). Please fix this.",
        "amendment": "Amendment at the patient's request: the patient reports a penicillin allergy (hives); 'no known drug allergies' is incorrect.",
        "keyword": "penicillin",
    },
    {
        "decision": "deny",
        "note": "Assessment: blood pressure elevated at today's visit; recheck in 4 weeks.",
        "request": "Please remove the high blood pressure from my note. My pressure is fine at home.",
        "amendment": "",
        "keyword": "",
    },
    {
        "decision": "deny",
        "note": "Plan: influenza vaccine offered; patient declined today.",
        "request": "Please take out that I refused the flu shot. I don't want that in my record.",
        "amendment": "",
        "keyword": "",
    },
)
DENIAL_FORBIDDEN: dict[str, list[str]] = {
    "that the request was accepted": [
        "was accepted",
        "is accepted",
        "been accepted",
        "we accepted",
        "have accepted",
        "was approved",
        "been approved",
        "we approved",
        "was granted",
        "been granted",
        "was amended",
        "been amended",
        "have amended",
        "amendment was added",
        "amendment has been added",
    ],
    "that the note is inaccurate or incomplete (the opposite of the basis)": [
        "not accurate",
        "inaccurate",
        "not complete",
        "incomplete",
    ],
    "that the patient may not disagree or complain": [
        "cannot submit",
        "can not submit",
        "may not submit",
        "cannot file",
        "may not file",
        "no right",
        "cannot complain",
        "can not complain",
        "may not complain",
        "do not complain",
    ],
}
"""What a denial must not say: the words of the elements it requires, turned against them."""

NOTICE_ADVICE = "the written answer states the decision and what the patient can do next"
DECISION_ADVICE = "carry out the physician's decision"
AMEND_ADVICE = (
    "never silently edit the clinician's note; append the amendment and link it to the request"
)


def _setup_amendment(sandbox: Any, variant: Any) -> dict[str, Any]:
    from ehr_sandbox.errors import AccessDenied

    doctor = sandbox.login(PHYSICIAN)
    patient = variant.pick(visible_patients(sandbox, PHYSICIAN), salt="patient")
    scenario = variant.pick(AMENDMENT_SCENARIOS, salt="scenario")
    rng = variant.rng()
    now = sandbox_now(sandbox)
    visit = now - timedelta(days=rng.randint(30, 90))
    received = now - timedelta(days=rng.randint(3, 40))
    text = f"Office visit {visit.date().isoformat()}.\n{scenario['note']}\nSigned: {doctor.user.display}"
    note = doctor.create(
        progress_note(
            f"Patient/{patient['id']}",
            doctor.user.ref,
            text,
            iso_instant(visit),
            type_=note_type(sandbox),
        )
    )
    request = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [
            {
                "coding": [
                    {
                        "system": MESSAGE_CATEGORY,
                        "code": "amendment-request",
                        "display": "Amendment request (HIPAA 164.526)",
                    }
                ]
            }
        ],
        "subject": {"reference": f"Patient/{patient['id']}"},
        "sender": {"reference": f"Patient/{patient['id']}"},
        "recipient": [{"reference": doctor.user.ref}],
        "about": [{"reference": f"DocumentReference/{note['id']}"}],
        "sent": iso_instant(received),
        "payload": [{"contentString": scenario["request"]}],
    }
    try:  # the request comes through the patient portal
        req = sandbox.login_patient(patient["id"]).create(request)
    except AccessDenied:
        req = sandbox.system_session().create(request)
    return {
        **patient_facts(patient, "patient"),
        "doctor": doctor.user.display,
        "note_id": note["id"],
        "note_version": note["meta"]["versionId"],
        "note_line": scenario["note"],
        "request_id": req["id"],
        "received": iso_instant(received),
        "received_day": received.date().isoformat(),
        "deadline": (received + timedelta(days=60)).date().isoformat(),
        "request_text": scenario["request"],
        "decision": scenario["decision"],
        "decision_text": (
            "**accepted** the request. Append this amendment to the note and link it to the request: "
            f"*{scenario['amendment']}*"
            if scenario["decision"] == "accept"
            else "**denied** the request because the note is **accurate and complete** (164.526(a)(2)(iv)). "
            "Send the patient a written denial that states this basis and their right to submit a "
            "statement of disagreement (and how to complain)."
        ),
        "amendment": scenario["amendment"],
        "keyword": scenario["keyword"],
    }


def _addenda(ctx: GradingContext) -> list[dict[str, Any]]:
    target = f"DocumentReference/{ctx.facts['note_id']}"
    return [
        d
        for d in ctx.all("DocumentReference")
        if any(
            r.get("code") == "appends" and (r.get("target") or {}).get("reference") == target
            for r in d.get("relatesTo", []) or []
        )
        and d.get("status") != "entered-in-error"
    ]


def _replies(ctx: GradingContext) -> list[dict[str, Any]]:
    req = f"Communication/{ctx.facts['request_id']}"
    return [
        c
        for c in ctx.all("Communication")
        if any(r.get("reference") == req for r in c.get("inResponseTo", []) or [])
        # a reply in preparation, not done or voided was never sent
        and c.get("status") == "completed"
        and any(
            ref_id(r) == ctx.facts["patient_id"]
            and (r.get("reference") or "").startswith("Patient/")
            for r in c.get("recipient", []) or []
        )
    ]


def _amend_note_unchanged(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"DocumentReference/{f['note_id']}"
    expected = (
        f"{ref} unchanged (version {f['note_version']}) with the amendment appended separately"
    )
    note, prov = last_change(ctx, ref)
    if note is None:
        return Check(False, f"{ref} is gone", expected, AMEND_ADVICE)
    version = str(note.get("meta", {}).get("versionId"))
    if version != str(f["note_version"]):
        how = "/".join(sorted(ctx.activity(prov))) if prov else "an unknown operation"
        return Check(
            False,
            f"{ref} was edited in place (now version {version}, through {how})",
            expected,
            AMEND_ADVICE,
        )
    if not _addenda(ctx) and not _replies(ctx):
        return Check(False, "the request has not been answered yet", expected, AMEND_ADVICE)
    return Check(True, f"{ref} still at version {version}", expected)


def _request_day_misstated(ctx: GradingContext, text: str | None) -> bool:
    """True when ``text`` gives a date another request of this exercise could have been
    received on (3 to 40 days back) that is neither this request's day nor the note's: the
    answer names another request.

    A text that gives no date, or today's, the note's visit day or the request's own day,
    misstates nothing.
    """
    from ehr_sandbox.exercises import stated

    f = ctx.facts
    note = ctx.read(f"DocumentReference/{f['note_id']}") or {}
    own = {date.fromisoformat(f["received_day"]), *stated.dates_in(str(note.get("date") or ""))}
    today = ctx.now.date()
    rivals = {today - timedelta(days=k) for k in range(3, 41)} - own
    return bool(stated.dates_in(text) & rivals)


MISSTATED_ADVICE = (
    "name the request as it was received: the day the patient's request came in, not another"
)


def _amend_decision(ctx: GradingContext) -> Check:
    f = ctx.facts
    addenda = _addenda(ctx)
    if f["decision"] == "deny":
        expected = "a written denial (a reply to the request) and no amendment appended"
        if addenda:
            return Check(
                False,
                f"{len(addenda)} amendment(s) appended",
                expected,
                f"{DECISION_ADVICE}: this request was denied",
            )
        if not _replies(ctx):
            return Check(
                False,
                "no denial was sent",
                expected,
                "a denial must be given to the patient in writing (164.526(d))",
            )
        return Check(True, "denied in writing; no amendment appended", expected)
    expected = f"an addendum (relatesTo appends DocumentReference/{f['note_id']}) holding the amendment the physician approved, written by {ctx.user.username}"
    if not addenda:
        return Check(
            False,
            "no document appends the note",
            expected,
            f"{DECISION_ADVICE}: append the approved amendment; {AMEND_ADVICE}",
        )
    # the physician approved a text: a document that only names the subject ("patient states
    # never smoked, not verified") is not that amendment
    good = [d for d in addenda if rubric.mentions(document_text(d), f["amendment"])]
    if not good:
        return Check(
            False,
            "the appended document does not contain the amendment",
            expected,
            f"{DECISION_ADVICE}: append the amendment text the physician approved, as approved",
        )
    if not any(created_by_user(ctx, d) for d in good):
        return Check(
            False,
            "the amendment was not appended by you",
            expected,
            "append it in your own session",
        )
    reasons = [
        provenance_reason(p)
        for d in good
        for p in ctx.provenance_of_version(f"DocumentReference/{d['id']}", "1")
    ]
    if any(_request_day_misstated(ctx, r) for r in reasons):
        return Check(
            False,
            "the amendment's reason gives the request another day than it was received",
            expected,
            MISSTATED_ADVICE,
        )
    return Check(True, f"DocumentReference/{good[0]['id']} appends the note", expected)


def _amend_notified(ctx: GradingContext) -> Check:
    f = ctx.facts
    replies = _replies(ctx)
    if f["decision"] == "accept":
        expected = (
            "a reply to the patient's request (inResponseTo) that links the amendment (about)"
        )
        if not replies:
            return Check(
                False,
                "no reply to the request was sent to the patient",
                expected,
                "tell the patient the amendment was made (164.526(c)(2))",
            )
        linked = {d["id"] for d in _addenda(ctx)}
        ok = [
            c
            for c in replies
            if any(
                r.get("reference", "").startswith("DocumentReference/") and ref_id(r) in linked
                for r in c.get("about", []) or []
            )
        ]
        if not ok:
            return Check(
                False,
                "the reply does not link the amendment",
                expected,
                "link the amendment in the reply's about",
            )
        chk = rubric.check_text(
            text_of(ok[0].get("payload", [])),
            {
                "that the request was accepted": [
                    "accepted",
                    "accept",
                    "approved",
                    "agreed",
                    "granted",
                ],
                "that the amendment was added to the record": [
                    "added",
                    "appended",
                    "amended",
                    "amendment",
                    "attached",
                ],
            },
            forbidden={
                "that the request was denied": [
                    "denied",
                    "deny",
                    "declined",
                    "rejected",
                    "cannot accept",
                    "not accepted",
                    "unable to",
                ]
            },
            what="the reply",
        )
        if chk.passed and _request_day_misstated(ctx, text_of(ok[0].get("payload", []))):
            return Check(
                False,
                "the reply gives the request another day than it was received",
                expected,
                MISSTATED_ADVICE,
            )
        return chk if chk.passed else Check(False, chk.found, expected, NOTICE_ADVICE)
    expected = "a written denial to the patient (inResponseTo the request) stating the basis and the right to disagree"
    if not replies:
        return Check(
            False,
            "no reply to the request was sent to the patient",
            expected,
            "a denial must be given to the patient in writing (164.526(d))",
        )
    required = {
        "the basis of the denial (the note is accurate and complete)": ["accurate and complete"],
        "the right to submit a statement of disagreement": [
            "statement of disagreement",
            "disagreement",
            "disagree",
        ],
        "how to complain (to the covered entity or the Secretary of HHS)": [
            "complain",
            "complaint",
        ],
    }
    checks = [
        rubric.check_text(
            text_of(c.get("payload", [])), required, forbidden=DENIAL_FORBIDDEN, what="the denial"
        )
        for c in replies
    ]
    for c, chk in zip(replies, checks, strict=True):
        if chk.passed and _request_day_misstated(ctx, text_of(c.get("payload", []))):
            return Check(
                False,
                "the denial gives the request another day than it was received",
                expected,
                MISSTATED_ADVICE,
            )
        if chk.passed:
            return Check(True, f"Communication/{c['id']}: {chk.found}", expected)
    worst = checks[0]
    return Check(
        False,
        worst.found,
        expected,
        f"{NOTICE_ADVICE}: a denial states its basis, the right to disagree and how to complain (164.526(d)(1))",
    )


def _amend_timely(ctx: GradingContext) -> Check:
    f = ctx.facts
    received = parse_instant(f["received"])
    expected = f"an answer by {f['deadline']} (60 days after the request)"
    # the time the EHR recorded the reply, not the 'sent' the author typed
    times = [
        parse_instant(p.get("recorded"))
        for c in _replies(ctx)
        for p in ctx.provenance_of_version(f"Communication/{c['id']}", "1")
    ]
    times = [t for t in times if t is not None]
    if not times or received is None:
        return Check(False, "no answer yet", expected, "answer within 60 days (164.526(b)(2))")
    first = min(times)
    ok = first <= received + timedelta(days=60)
    return Check(
        ok,
        f"answered on {first.date().isoformat()}",
        expected,
        "" if ok else "answer within 60 days (164.526(b)(2))",
    )


def _reply(att: Any, text: str, about: list[str], status: str = "completed") -> dict[str, Any]:
    f = att.facts
    s = att.session
    return {
        "resourceType": "Communication",
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": MESSAGE_CATEGORY,
                        "code": "amendment-request",
                        "display": "Amendment request (HIPAA 164.526)",
                    }
                ]
            }
        ],
        "subject": {"reference": f"Patient/{f['patient_id']}"},
        "sender": {"reference": s.user.ref},
        "recipient": [{"reference": f"Patient/{f['patient_id']}"}],
        "inResponseTo": [{"reference": f"Communication/{f['request_id']}"}],
        "about": [{"reference": r} for r in about],
        "sent": iso_instant(s.now()),  # the EHR's clock, asked through the session
        "payload": [{"contentString": text}],
    }


def _amend_solution(att: Any, reply_status: str = "completed", day: str | None = None) -> None:
    """The reference (``reply_status``: the reply's status; ``day``: the day the reason and
    the reply give the request, the day it was received unless given)."""
    f, s = att.facts, att.session
    day = day or f["received_day"]
    note = f"DocumentReference/{f['note_id']}"
    if f["decision"] == "accept":
        add = s.addendum(
            note,
            f["amendment"],
            reason=f"Patient amendment request of {day} accepted (HIPAA 164.526)",
        )
        s.create(
            _reply(
                att,
                f"Your request of {day} to amend your record was accepted. The amendment has been added to your visit note.",
                [note, f"DocumentReference/{add['id']}"],
                reply_status,
            )
        )
    else:
        s.create(
            _reply(
                att,
                (
                    f"Your request of {day} to amend your record was denied because the note is accurate and complete "
                    "(45 CFR 164.526(a)(2)(iv)). You have the right to submit a written statement of disagreement, "
                    "which we will add to your record, and you may complain to our privacy officer or to the "
                    "Secretary of Health and Human Services."
                ),
                [note],
                reply_status,
            )
        )


def _another_request_day(att: Any) -> str:
    """A day another request could have been received on: the day after this one's (before,
    when that is too recent)."""
    day = date.fromisoformat(att.facts["received_day"])
    today = sandbox_now(att.sandbox).date()
    other = day + timedelta(days=1)
    return (other if other <= today - timedelta(days=3) else day - timedelta(days=1)).isoformat()


def _amend_edit_note(att: Any) -> None:
    f, s = att.facts, att.session
    note = s.read("DocumentReference", f["note_id"])
    import base64

    note["content"][0]["attachment"]["data"] = base64.b64encode(
        f"Office visit.\n(line removed at the patient's request)\n{f['amendment']}".encode()
    ).decode()
    s.update(note)
    s.create(_reply(att, "Your record was updated.", [f"DocumentReference/{f['note_id']}"]))


def _amend_contradicting_reply(att: Any) -> None:
    """Typical mistake: the right action with a reply that says the opposite (accept), or a
    denial that leaves out how to complain (deny)."""
    f, s = att.facts, att.session
    note = f"DocumentReference/{f['note_id']}"
    if f["decision"] == "accept":
        add = s.addendum(note, f["amendment"], reason="Patient amendment request accepted")
        s.create(
            _reply(
                att,
                "Regarding your amendment request: denied. Please contact the office with questions.",
                [note, f"DocumentReference/{add['id']}"],
            )
        )
    else:
        s.create(
            _reply(
                att,
                "Your request was denied because the note is accurate and complete. You may submit "
                "a written statement of disagreement, which we will add to your record.",
                [note],
            )
        )


def _amend_reply_says_opposite(att: Any) -> None:
    """Keyword-stuffed reply: every rubric word, in a reply that says the opposite (denied:
    'accepted', the note 'not accurate and complete'; accepted: 'not accepted')."""
    f, s = att.facts, att.session
    note = f"DocumentReference/{f['note_id']}"
    if f["decision"] == "accept":
        add = s.addendum(note, f["amendment"], reason="Patient amendment request accepted")
        text = "Your request was not accepted; an amendment was added to the record."
        s.create(_reply(att, text, [note, f"DocumentReference/{add['id']}"]))
        return
    text = (
        "Your request was accepted, although the note is not accurate and complete. You have "
        "no right to a statement of disagreement; do not complain."
    )
    s.create(_reply(att, text, [note]))


def _amend_own_words(att: Any) -> None:
    """Not the physician's decision: accepted, an addendum that names the subject but not the
    approved amendment ('not verified, the entry stands'); denied, the request's text
    appended anyway. Each with a reply that reads right."""
    f, s = att.facts, att.session
    note = f"DocumentReference/{f['note_id']}"
    if f["decision"] == "accept":
        text = f"Patient states {f['keyword']}; not verified, the chart entry stands."
    else:
        text = f"Amendment at the patient's request: {f['request_text']}"
    add = s.addendum(note, text, reason="Patient amendment request (HIPAA 164.526)")
    s.create(
        _reply(
            att,
            "Your request to amend your record was accepted. The amendment has been added to your visit note.",
            [note, f"DocumentReference/{add['id']}"],
        )
    )


def _amend_reply_not_sent(att: Any) -> None:
    """The right answer, but the reply created as a draft (status 'preparation'): never sent."""
    _amend_solution(att, reply_status="preparation")


def _amend_other_patient(att: Any) -> None:
    """Harm: the right answer, plus the reply copied to another patient of the practice."""
    f, s = att.facts, att.session
    _amend_solution(att)
    other = next(p["id"] for p in s.search("Patient").fetch() if p["id"] != f["patient_id"])
    mine = [
        c
        for c in s.search("Communication", subject=f"Patient/{f['patient_id']}").fetch()
        if c.get("inResponseTo")
    ]
    copy_ = dict(mine[-1])
    for k in ("id", "meta"):
        copy_.pop(k, None)
    copy_["recipient"] = [{"reference": f"Patient/{other}"}]
    copy_["subject"] = {"reference": f"Patient/{other}"}
    s.create(copy_)


def _amend_answer_key(att: Any) -> None:
    """Answer-key change: flip the physician's decision in the facts and act on it."""
    flipped = "deny" if att.facts["decision"] == "accept" else "accept"
    rewrite_answer_key(att, decision=flipped)
    f, s = att.facts, att.session
    note = f"DocumentReference/{f['note_id']}"
    if flipped == "accept":
        add = s.addendum(
            note,
            f"Amendment at the patient's request: {f['request_text']}",
            reason="Patient amendment request accepted (HIPAA 164.526)",
        )
        s.create(
            _reply(
                att,
                "Your request to amend your record was accepted and the amendment was added to your note.",
                [note, f"DocumentReference/{add['id']}"],
            )
        )
    else:
        s.create(
            _reply(
                att,
                "Your request to amend your record was denied because the note is accurate and "
                "complete. You may submit a statement of disagreement, and you may complain to our "
                "privacy officer or to the Secretary of HHS.",
                [note],
            )
        )


AMENDMENT_REQUEST = Exercise(
    id="records/amendment-request",
    title="Patient amendment request (HIPAA 164.526)",
    topic="records",
    topics=("editing-records", "patient-portal", "privacy-security"),
    competencies=("X.P.2", "X.P.3", "X.P.4", "V.P.8"),
    minutes=20,
    role=PHYSICIAN,
    summary="A portal request to amend a note: accept (append, link, notify) or deny with grounds, within 60 days.",
    setup=_setup_amendment,
    instructions=(
        "On {received_day} **{patient_name}** (DOB {patient_dob}, MRN {patient_mrn}) sent a request through "
        "the patient portal (`Communication/{request_id}`) to amend your note `DocumentReference/{note_id}`:\n\n"
        "> {request_text}\n\nThe note says: *{note_line}*\n\n"
        "You reviewed it and {decision_text}\n\n"
        "Answer the patient by replying to their request (a `Communication` to the patient with "
        "`inResponseTo` the request) before **{deadline}**. Never change the note itself, and "
        "change nothing else. An acceptance says the request was accepted and the amendment added "
        "(and links it in `about`); a denial states its basis, the patient's right to submit a "
        "statement of disagreement, and how to complain."
    ),
    criteria=(
        Criterion(
            "note not silently edited",
            3,
            _amend_note_unchanged,
            "An amendment is appended to the record and linked, never written over the clinician's entry (HIPAA 164.526(c)(1)).",
        ),
        Criterion(
            "decision carried out",
            3,
            _amend_decision,
            "An accepted amendment is appended to the affected record; a denied one changes nothing (HIPAA 164.526(c), (d)).",
        ),
        Criterion(
            "patient notified",
            2,
            _amend_notified,
            "The patient is told the outcome in writing; a denial states the basis and the right to disagree (HIPAA 164.526(c)(2), (d)(1)).",
        ),
        Criterion(
            "answered within 60 days",
            1,
            _amend_timely,
            "A covered entity acts on an amendment request within 60 days of receiving it (HIPAA 164.526(b)(2)).",
        ),
    ),
    hints=(
        Hint(
            "Accepting: `att.session.addendum(note_ref, text, reason=...)` appends without touching the note."
        ),
        Hint(
            "Your reply is a Communication with `recipient` the patient, `inResponseTo` the request and `about` the documents it concerns.",
            cost=1,
        ),
    ),
    expects=(
        Expect("DocumentReference", ops=("addendum",), patients=("patient_id",), at_most=1),
        Expect("Communication", ops=("create",), patients=("patient_id",), at_most=1),
    ),
    solution=Solution(
        _amend_solution,
        description="addendum + linked reply (accept) or written denial with basis and right to disagree",
    ),
    wrong_solutions={
        "request-day-misstated": Solution(
            lambda att: _amend_solution(att, day=_another_request_day(att)),
            fails="patient notified",
            message="name the request as it was received",
            description="the decision carried out, its reason and the reply giving the request "
            "another day (another student's request day scored full marks before)",
        ),
        "edit-note": Solution(
            _amend_edit_note,
            fails="note not silently edited",
            message=AMEND_ADVICE,
            description="edit the clinician's note in place",
        ),
        "contradicting-reply": Solution(
            _amend_contradicting_reply,
            fails="patient notified",
            message=NOTICE_ADVICE,
            description="accepted: reply says 'denied'; denied: no word on how to complain",
        ),
        "reply-says-opposite": Solution(
            _amend_reply_says_opposite,
            fails="patient notified",
            message=NOTICE_ADVICE,
            description="a reply with every rubric word that says the opposite of the decision",
        ),
        "amendment-in-own-words": Solution(
            _amend_own_words,
            fails="decision carried out",
            message=DECISION_ADVICE,
            description="accepted: an addendum that names the subject, not the approved amendment; denied: the request appended anyway",
        ),
        "reply-not-sent": Solution(
            _amend_reply_not_sent,
            fails="patient notified",
            message="no reply to the request was sent to the patient",
            description="the right reply created as a draft (status 'preparation'), never sent",
        ),
        "reply-to-another-patient": Solution(
            _amend_other_patient,
            fails="no collateral damage",
            message="unexpected change",
            description="the right answer, also sent to another patient",
        ),
        "answer-key": Solution(
            _amend_answer_key,
            fails="decision carried out",
            message=DECISION_ADVICE,
            description="flip the physician's decision in the facts and act on it",
        ),
    },
)
