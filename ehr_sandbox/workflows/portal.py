"""The patient portal inbox: messages routed to a pool by topic, answered within scope and time.

A patient's message (``Communication`` with a topic) lands in the pool its topic is routed to
(``portal.toml``, shared with the generator). Staff answer with a reply linked to it
(``inResponseTo``, so the thread holds together) within the practice's time limit. A medical
assistant may book appointments and send education, but may not interpret results, diagnose or
advise treatment: such messages are forwarded to the provider (a ``Task``), and an MA reply that interprets is refused. Results are
released to the portal without delay (21st Century Cures Act).

>>> pool_of("results"), pool_of("appointment")
('provider', 'front-desk')
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.workflows.base import Rule, RuleRefused, now, now_text, ref_of, write
from ehr_sandbox.workflows.content import table
from synthetic.systems import SANDBOX_PORTAL_TOPIC, TASK_CODE

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "TOPIC_SYSTEM",
    "forward",
    "inbox",
    "interpretive_phrases",
    "pool_of",
    "release_result",
    "reply",
    "send_message",
    "thread",
]

TOPIC_SYSTEM = SANDBOX_PORTAL_TOPIC
_T = table("portal")
RULES = {
    r.id: r
    for r in (
        Rule("portal.topic", "a portal message has one of the practice's topics", _T["source"]),
        Rule("portal.pool", "a message is answered by the pool it is routed to", _T["source"]),
        Rule(
            "portal.ma-scope",
            "a medical assistant does not interpret results, diagnose or advise treatment; such messages go to the provider",
            _T["source"],
        ),
        Rule("portal.reply-text", "a reply says something the patient can act on", _T["source"]),
        Rule(
            "portal.release-final",
            "results are released to the portal when final, without delay",
            _T["source"],
        ),
    )
}


def _topic(code: str) -> dict[str, Any]:
    for t in _T["topic"]:
        if t["code"] == code:
            return t
    raise RuleRefused(
        RULES["portal.topic"],
        resource="Communication",
        path="category",
        expected="one of " + ", ".join(t["code"] for t in _T["topic"]),
        found=code,
    )


def pool_of(topic: str) -> str:
    """The pool a topic is routed to.

    >>> pool_of("billing")
    'billing'
    """
    return _topic(topic)["pool"]


def _me(session: Session) -> dict[str, Any]:
    ref = session.user.ref
    return {"reference": ref} if ref else {"display": session.user.username}


def topic_of(message: dict[str, Any]) -> str | None:
    """The topic code of a portal message.

    >>> topic_of({"category": [{"coding": [{"system": TOPIC_SYSTEM, "code": "refill"}]}]})
    'refill'
    """
    for cat in message.get("category", []):
        for c in cat.get("coding", []):
            if c.get("system") == TOPIC_SYSTEM:
                return c.get("code")
    return None


def interpretive_phrases(text: str) -> list[str]:
    """Phrases in a text that interpret, diagnose or advise treatment (outside MA scope).

    >>> interpretive_phrases("Your potassium is normal, nothing to worry about.")
    ['normal', 'nothing to worry']
    >>> interpretive_phrases("Dr. Patel will review your results and reply by tomorrow.")
    []
    """
    low = " " + text.lower() + " "
    found = []
    for phrase in _T["ma_scope"]["forbidden"]:
        if phrase in ("normal", "abnormal"):
            import re

            if re.search(rf"\b{phrase}\b", low):
                found.append(phrase)
        elif phrase in low:
            found.append(phrase)
    return found


def send_message(session: Session, *, topic: str, subject: str, text: str) -> dict[str, Any]:
    """A patient sends a portal message (the session is the patient's portal login).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> pid = sb.system_session().search("Patient").first()["id"]
    >>> m = send_message(sb.login_patient(pid), topic="appointment", subject="Reschedule", text="Can I move my visit to Friday?")
    >>> m["status"], topic_of(m)
    ('completed', 'appointment')
    """
    _topic(topic)
    if session.role != "patient" or not session.patient_id:
        raise ValidationError(
            "Communication", "sender", "a patient's portal session (sandbox.login_patient)"
        )
    if not text or len(text.strip()) < 3:
        raise ValidationError("Communication", "payload", "the message text")
    pat = f"Patient/{session.patient_id}"
    msg = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [
            {
                "coding": [
                    {"system": TOPIC_SYSTEM, "code": topic, "display": _topic(topic)["display"]}
                ]
            }
        ],
        "subject": {"reference": pat},
        "topic": {"text": subject},
        "sent": now_text(session),
        "sender": {"reference": pat},
        "recipient": [{"reference": "Organization/practice-1"}],
        "payload": [{"contentString": text.strip()}],
    }
    return write(session, msg, operation="portal.send")


def _replies(session: Session, message_ref: str) -> list[dict[str, Any]]:
    pat_msgs = session.search(
        "Communication", patient=session.read(message_ref)["subject"]["reference"]
    ).fetch()
    return [
        m
        for m in pat_msgs
        if any(r.get("reference") == message_ref for r in m.get("inResponseTo", []))
    ]


def inbox(session: Session, *, pool: str | None = None) -> list[dict[str, Any]]:
    """Open patient messages (no staff reply yet), with topic, pool, due time and overdue flag.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> pid = sb.system_session().search("Patient").first()["id"]
    >>> _ = send_message(sb.login_patient(pid), topic="education", subject="Diet", text="Where is the low-salt diet sheet?")
    >>> [(m["topic"], m["pool"]) for m in inbox(sb.system_session())]
    [('education', 'ma')]
    """
    out = []
    limit = timedelta(hours=int(_T["reply_within_hours"]))
    current = now(session)
    for m in session.resources("Communication"):
        sender = (m.get("sender") or {}).get("reference", "")
        if (
            not sender.startswith("Patient/")
            or m.get("inResponseTo")
            or m.get("status") != "completed"
        ):
            continue
        t = topic_of(m)
        if t is None or (pool is not None and pool_of(t) != pool):
            continue
        ref = ref_of(m)
        answered = [
            r
            for r in _replies(session, ref)
            if not (r.get("sender") or {}).get("reference", "").startswith("Patient/")
        ]
        forwarded = (
            [x for x in session.search("Task", focus=ref).fetch()]
            if session.can_read("Task")
            else []
        )
        if answered:
            continue
        due = datetime.fromisoformat(m["sent"]) + limit
        out.append(
            {
                "message": ref,
                "patient": m["subject"]["reference"],
                "topic": t,
                "pool": pool_of(t),
                "sent": m["sent"],
                "due": due.isoformat(),
                "overdue": current > due,
                "forwarded": [ref_of(x) for x in forwarded],
                "text": (m.get("payload") or [{}])[0].get("contentString", ""),
            }
        )
    return sorted(out, key=lambda x: x["sent"])


def _check_scope(session: Session, topic: str, text: str, ref: str) -> None:
    role = session.role
    t = _topic(topic)
    allowed_roles = _T["pools"][t["pool"]]
    if role == "medical_assistant":
        if not t["ma_may_answer"]:
            raise RuleRefused(
                RULES["portal.ma-scope"],
                resource=ref,
                path="category",
                expected=f"a topic an MA may answer; forward '{topic}' messages to the {t['pool']} pool",
                found=topic,
            )
        bad = interpretive_phrases(text)
        if bad:
            raise RuleRefused(
                RULES["portal.ma-scope"],
                resource="Communication",
                path="payload",
                expected="a reply that does not interpret, diagnose or advise treatment",
                found=bad,
            )
    elif role not in allowed_roles and role != "physician":
        raise RuleRefused(
            RULES["portal.pool"],
            resource=ref,
            path="category",
            expected=f"a member of the {t['pool']} pool ({', '.join(allowed_roles)})",
            found=role,
        )


def reply(session: Session, message: str, text: str) -> dict[str, Any]:
    """Reply to a patient's portal message (linked with ``inResponseTo``), within scope.

    Parameters
    ----------
    session : Session
        A member of the topic's pool.
    message : str
        ``Communication/<id>`` of the patient's message.
    text : str
        The reply.

    Raises
    ------
    RuleRefused
        ``portal.ma-scope`` (an MA answering results/symptoms/refills, or interpreting),
        ``portal.pool``, ``portal.reply-text``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=5, seed=1, years=1)
    >>> ma = sb.login("ma.garcia")
    >>> pid = ma.search("Patient").first()["id"]
    >>> m = send_message(sb.login_patient(pid), topic="results", subject="Lab", text="Is my cholesterol OK?")
    >>> reply(ma, f"Communication/{m['id']}", "Your cholesterol is normal.")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Communication/...: category: expected a topic an MA may answer; forward 'results' messages to the provider pool (found 'results'). Refused by rule portal.ma-scope: ...
    """
    msg = session.read(message)
    t = topic_of(msg) or ""
    if not text or len(text.split()) < 4:
        raise RuleRefused(
            RULES["portal.reply-text"],
            resource="Communication",
            path="payload",
            expected="a reply of at least a sentence",
            found=text,
        )
    _check_scope(session, t, text, message)
    out = {
        "resourceType": "Communication",
        "status": "completed",
        "inResponseTo": [{"reference": message}],
        "category": msg.get("category", []),
        "subject": msg["subject"],
        "topic": msg.get("topic", {"text": "Reply"}),
        "sent": now_text(session),
        "sender": _me(session),
        "recipient": [msg["subject"]],
        "payload": [{"contentString": text.strip()}],
    }
    return write(session, out, operation="portal.reply")


def forward(session: Session, message: str, *, to: str, note: str) -> dict[str, Any]:
    """Forward a message outside your scope to a provider: a Task focused on the message.

    ``to`` is ``Practitioner/<id>`` (usually the patient's PCP). The task is due within the
    practice's reply limit of the original message.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=5, seed=1, years=1)
    >>> ma = sb.login("ma.garcia")
    >>> pid = ma.search("Patient").first()["id"]
    >>> m = send_message(sb.login_patient(pid), topic="results", subject="Lab", text="Is my cholesterol OK?")
    >>> t = forward(ma, f"Communication/{m['id']}", to="Practitioner/prac-dr.patel", note="Patient asks about lipid results")
    >>> t["focus"]["reference"] == f"Communication/{m['id']}", t["owner"]["reference"]
    (True, 'Practitioner/prac-dr.patel')
    """
    msg = session.read(message)
    if not to.startswith(("Practitioner/", "PractitionerRole/")):
        raise ValidationError("Task", "owner", "'Practitioner/<id>'", found=to)
    session.read(to)
    if not note or len(note.split()) < 3:
        raise ValidationError("Task", "description", "what the provider needs to know (a sentence)")
    due = datetime.fromisoformat(msg["sent"]) + timedelta(hours=int(_T["reply_within_hours"]))
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "description": note.strip(),
        "focus": {"reference": message},
        "for": msg["subject"],
        "authoredOn": now_text(session),
        "requester": _me(session),
        "owner": {"reference": to},
        "restriction": {"period": {"end": due.isoformat()}},
    }
    return write(session, task, operation="portal.forward")


def thread(session: Session, message: str) -> list[dict[str, Any]]:
    """A message and every reply linked to it, oldest first.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=5, seed=1, years=1)
    >>> ma = sb.login("ma.garcia")
    >>> pid = ma.search("Patient").first()["id"]
    >>> m = send_message(sb.login_patient(pid), topic="appointment", subject="Visit", text="Can I come on Friday?")
    >>> _ = reply(ma, f"Communication/{m['id']}", "Yes, Friday at 9:00 is booked for you.")
    >>> [x["payload"][0]["contentString"] for x in thread(ma, f"Communication/{m['id']}")]
    ['Can I come on Friday?', 'Yes, Friday at 9:00 is booked for you.']
    """
    first = session.read(message)
    out = [first, *_replies(session, message)]
    return sorted(out, key=lambda m: m.get("sent", ""))


def release_result(session: Session, report: str, *, text: str | None = None) -> dict[str, Any]:
    """Tell the patient a final result is in their portal (Cures Act: release without delay).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=3, seed=1, years=1).system_session()
    >>> rep = next(r for r in s.search("DiagnosticReport").fetch() if r.get("status") == "final")
    >>> release_result(s, f"DiagnosticReport/{rep['id']}")["about"][0]["reference"].startswith("DiagnosticReport/")
    True
    """
    rep = session.read(report)
    if rep.get("status") not in ("final", "amended", "corrected"):
        raise RuleRefused(
            RULES["portal.release-final"],
            resource=report,
            path="status",
            expected="a final result",
            found=rep.get("status"),
        )
    body = (
        text
        or "A new test result is available in your portal. Your care team will contact you if anything needs follow-up."
    )
    if session.role == "medical_assistant" and interpretive_phrases(body):
        raise RuleRefused(
            RULES["portal.ma-scope"],
            resource="Communication",
            path="payload",
            expected="a release notice that does not interpret",
            found=interpretive_phrases(body),
        )
    msg = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [
            {"coding": [{"system": TOPIC_SYSTEM, "code": "results", "display": "Result released"}]}
        ],
        "subject": rep["subject"],
        "about": [{"reference": report}],
        "sent": now_text(session),
        "sender": _me(session),
        "recipient": [rep["subject"]],
        "payload": [{"contentString": body}],
    }
    return write(session, msg, operation="portal.release-result")
