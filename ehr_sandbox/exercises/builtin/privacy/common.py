"""Helpers shared by the "Privacy and access control" exercises (``privacy`` package).

The hand-in helpers (:func:`submit`, :func:`disclose`, the accounting of disclosures), the
role constants, the record lookups and the audit-trail readers, and the few helpers that
more than one exercise uses, live here once; each exercise module imports what it needs.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ehr_sandbox.access import patient_of
from ehr_sandbox.audit.events import event_username
from ehr_sandbox.errors import ExerciseError, NotFound, ValidationError
from ehr_sandbox.exercises.builtin.common import HAND_IN, hand_ins, record_hand_in, ref_id
from ehr_sandbox.exercises.grading import GradingContext, event_detail, event_kind
from ehr_sandbox.references import split_reference, split_relative
from synthetic.systems import V3_ACT_REASON, V3_CONFIDENTIALITY

PRIVACY_OFFICER = "po.wilson"
BILLING = "billing.davis"
FRONT_DESK = "fd.smith"
ACT_REASON = V3_ACT_REASON
CONFIDENTIALITY = V3_CONFIDENTIALITY


def _plain_reference(ref: object) -> bool:
    """True for a relative, unversioned reference ``Type/id``."""
    parts = split_relative(ref) if isinstance(ref, str) else None
    return parts is not None and parts[2] is None


def work_dir() -> Path:
    """Where exercises put the files a student works on (encrypted clinics, research folders).

    ``EHR_SANDBOX_WORK_DIR`` when set (test runs set a fresh one, so parallel runs of the same
    student never share files), else the system's temp folder.

    >>> work_dir().name
    'ehr-sandbox-exercises'
    """
    base = os.environ.get("EHR_SANDBOX_WORK_DIR") or tempfile.gettempdir()
    return Path(base) / "ehr-sandbox-exercises"


# ------------------------------------------------------------------------------------------
# Hand-in helpers
# ------------------------------------------------------------------------------------------
SUBMIT_KIND = HAND_IN
DISCLOSE_KIND = "disclose"
REVIEW_KIND = "btg-review"


def submit(att: Any, value: Any) -> None:
    """Hand in an exercise's artefact (JSON-ready: dict, list, str); a new one replaces it.

    The hand-in is an audited action of the student's session (``submit-report`` in the
    tamper-evident audit trail): it cannot be edited afterwards, only replaced.

    >>> from ehr_sandbox import exercises
    >>> att = exercises.start("privacy/snooping-review", "doctest")
    >>> submit(att, ["3", "7"])
    >>> submitted(att.sandbox, "privacy/snooping-review", "doctest")
    ['3', '7']
    """
    if value is None:
        raise ExerciseError("submit: expected something to hand in (found None)")
    try:
        value = json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise ExerciseError(
            f"submit: expected JSON-ready data (dict, list, str, numbers) (found {type(value).__name__})"
        ) from None
    record_hand_in(att, value)


def _hand_ins(
    events: Iterable[Mapping[str, Any]], exercise_id: str, student: str, user: str | None
) -> list[Any]:
    return hand_ins(events, exercise_id, student=student, user=user)


def submitted(sandbox: Any, exercise_id: str, student: str) -> Any:
    """What was last handed in for ``exercise_id`` with :func:`submit` (None when nothing).

    >>> from types import SimpleNamespace as NS
    >>> submitted(NS(audit=NS(events=lambda: [])), "privacy/x", "alice") is None
    True
    """
    found = _hand_ins(sandbox.audit.events(), exercise_id, student, None)
    return found[-1] if found else None


def submitted_answer(ctx: GradingContext, exercise_id: str) -> Any:
    """The student's last hand-in since setup, made as the exercise's user (None if none)."""
    found = _hand_ins(ctx.events(SUBMIT_KIND), exercise_id, ctx.student, ctx.user.username)
    return found[-1] if found else None


def _next_disclosure_id(session: Any) -> str:
    """A disclosure id this user has not used yet (``disclosure-<n>``), from their own
    recorded disclosures: asked through the session, so it works the same on a server.

    >>> from types import SimpleNamespace as NS
    >>> _next_disclosure_id(NS(own_actions=lambda kind: []))
    'disclosure-1'
    >>> ev = {"outcomeDesc": json.dumps({"id": "disclosure-4"})}
    >>> _next_disclosure_id(NS(own_actions=lambda kind: [ev, ev]))
    'disclosure-5'
    """
    used = [0]
    for ev in session.own_actions(DISCLOSE_KIND):
        detail = event_detail(ev)
        if isinstance(detail, Mapping):
            match = re.fullmatch(r"disclosure-(\d+)", str(detail.get("id", "")))
            if match:
                used.append(int(match.group(1)))
    return f"disclosure-{max(used) + 1}"


def disclose(
    session: Any,
    *,
    recipient: str,
    purpose: str,
    refs: Iterable[str],
    authorization: str | None = None,
) -> dict[str, Any]:
    """Release resources to an outside ``recipient``: returns the collection Bundle to send.

    Every resource is read through ``session`` (the policy decides, the audit trail logs
    the read); the release is then recorded in the tamper-evident audit trail as a
    ``disclose`` action per patient, with who, when, to whom, why (a v3-ActReason purpose such
    as HPAYMT), under which ``authorization`` (``Consent/id``) and what. That is the accounting
    of disclosures (HIPAA 164.528): it is read back from the audit trail, so it cannot be
    edited. Nothing is recorded when any read is refused.

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=2, seed=1, years=1)
    >>> s = sb.login("billing.davis")
    >>> claim = s.search("Claim").first()
    >>> payer = s.read(claim["insurance"][0]["coverage"]["reference"])["payor"][0]["reference"]
    >>> bundle = disclose(s, recipient=payer, purpose="HPAYMT", refs=[f"Claim/{claim['id']}"])
    >>> bundle["type"], len(accounting_of_disclosures(sb))
    ('collection', 1)
    """
    if not _plain_reference(recipient):
        raise ValidationError(
            "disclosure", "recipient", "a reference 'Type/id' to the recipient", found=recipient
        )
    if not isinstance(purpose, str) or not re.fullmatch(r"[A-Z]{3,12}", purpose):
        raise ValidationError(
            "disclosure", "purpose", "a v3-ActReason purpose code such as HPAYMT", found=purpose
        )
    if authorization is not None and not (
        isinstance(authorization, str) and authorization.startswith("Consent/")
    ):
        raise ValidationError(
            "disclosure", "authorization", "a reference 'Consent/id'", found=authorization
        )
    try:
        session.read(recipient)
    except NotFound:
        raise ValidationError(
            "disclosure",
            "recipient",
            "an existing Organization, Practitioner, RelatedPerson or Patient you can see",
            found=recipient,
        ) from None
    wanted = list(dict.fromkeys(refs))
    if not wanted or not all(_plain_reference(r) for r in wanted):
        raise ValidationError(
            "disclosure", "refs", "a non-empty list of references 'Type/id'", found=wanted
        )
    released = [session.read(r) for r in wanted]  # all reads first: no partial accounting
    patients = sorted({p for p in (patient_of(r) for r in released) if p})
    entry = {
        "id": _next_disclosure_id(session),
        "when": session.now().replace(microsecond=0).isoformat(),
        "by": session.user.username,
        "recipient": recipient,
        "purpose": purpose,
        "authorization": authorization,
        "patients": patients,
        "refs": [f"{r['resourceType']}/{r['id']}" for r in released],
        "versions": [str(r.get("meta", {}).get("versionId", "")) for r in released],
    }
    detail = json.dumps(entry, sort_keys=True)
    for pid in patients or [None]:
        session.audit_action(DISCLOSE_KIND, patient=pid, ref=recipient, detail=detail)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in released],
    }


def _entries(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Disclosures recorded in audit events, one per release (oldest first)."""
    seen: dict[str, dict[str, Any]] = {}
    for ev in events:
        if event_kind(ev) != DISCLOSE_KIND or str(ev.get("outcome")) != "0":
            continue
        detail = event_detail(ev)
        if not isinstance(detail, Mapping) or "id" not in detail:
            continue
        entry = dict(detail)
        entry["by"] = event_username(ev)  # who really did it: the audit trail's word
        seen.setdefault(str(detail["id"]) + "|" + str(entry["by"]), entry)
    return list(seen.values())


def accounting_of_disclosures(sandbox: Any, patient: str | None = None) -> list[dict[str, Any]]:
    """The disclosures recorded in a sandbox's audit trail (oldest first), optionally for one
    patient id.

    >>> from types import SimpleNamespace as NS
    >>> accounting_of_disclosures(NS(audit=NS(events=lambda: [])))
    []
    """
    entries = _entries(sandbox.audit.events())
    if patient is None:
        return entries
    return [e for e in entries if patient in e.get("patients", [])]


def review_override(po: Any, index: int, *, appropriate: bool, note: str) -> None:
    """Review one pending break-the-glass use as the privacy officer (session ``po``, local
    or remote): ``po.review_btg``, which records the review in the review queue and, as a
    ``btg-review`` action, in the tamper-evident audit trail (the grader's source: the queue
    is only a to-do list).

    >>> from types import SimpleNamespace as NS
    >>> review_override(NS(btg_review_queue=lambda: []), 0, appropriate=True, note="x")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: btg_review: index: expected 0..-1 (found 0)
    """
    pending = po.btg_review_queue()
    if not isinstance(index, int) or not 0 <= index < len(pending):
        raise ValidationError("btg_review", "index", f"0..{len(pending) - 1}", found=index)
    po.review_btg(index, appropriate=appropriate, note=note)


def refs_in(node: Any) -> set[str]:
    """Every reference string inside ``node`` (:func:`ehr_sandbox.references.references_in`).

    >>> sorted(refs_in({"a": {"reference": "Patient/1"}, "b": [{"reference": "Patient/1"}]}))
    ['Patient/1']
    """
    from ehr_sandbox.references import references_in

    return set(references_in(node))


# ------------------------------------------------------------------------------------------
# Audit-trail helpers
# ------------------------------------------------------------------------------------------
def event_seq(ev: Mapping[str, Any]) -> int:
    return int(ev.get("id", 0))


def event_subtype(ev: Mapping[str, Any]) -> str:
    sub = ev.get("subtype") or [{}]
    return str(sub[0].get("code", ""))


def event_entity_ref(ev: Mapping[str, Any]) -> str | None:
    for ent in ev.get("entity", []):
        if (ent.get("role") or {}).get("code") == "4":
            parts = split_reference((ent.get("what") or {}).get("reference", ""))
            return f"{parts[0]}/{parts[1]}" if parts else None
    return None


def last_audit_seq(sandbox: Any) -> int:
    events = sandbox.audit.events()
    return max((event_seq(e) for e in events), default=0)


def users_by_practitioner(sandbox: Any) -> dict[str, str]:
    return {u.practitioner_id: u.username for u in sandbox.users if u.practitioner_id}


def records_of_patient(sandbox: Any, rtype: str, pid: str) -> list[dict[str, Any]]:
    """Resources of a type about a patient (store order, deterministic)."""
    found = sandbox.grader_session().search(rtype, [("patient", f"Patient/{pid}")]).fetch()
    out = [r for r in found if patient_of(r) == pid]
    return sorted(out, key=lambda r: r["id"])


def living_patients(sandbox: Any) -> list[dict[str, Any]]:
    found = [
        p
        for p in sandbox.grader_session().search("Patient").fetch()
        if not p.get("deceasedDateTime") and not p.get("deceasedBoolean")
    ]
    return sorted(found, key=lambda p: p["id"])


def treated_by(sandbox: Any, username: str) -> set[str]:
    return set(sandbox.treating(username))


# ------------------------------------------------------------------------------------------
# Used by more than one exercise, or by the helpers above
# ------------------------------------------------------------------------------------------
def payer_of(sandbox: Any, claim: Mapping[str, Any]) -> tuple[str, str]:
    """(``Organization/id``, name) of the health plan a claim is billed to.

    Only an Organization is a payer here: a self-pay Coverage names the patient, which is not
    a health plan (ExerciseError, so setup picks another claim).
    """
    for ins in claim.get("insurance", []) or []:
        grader = sandbox.grader_session()
        cov = grader.read("Coverage", ref_id(ins.get("coverage")))
        for payor in (cov or {}).get("payor", []) or []:
            ref = payor.get("reference", "")
            if ref.startswith("Organization/"):
                org = grader.read(ref)
                name = org.get("name") if isinstance(org.get("name"), str) else None
                return ref, str(name or payor.get("display") or ref)
    raise ExerciseError(f"setup: Claim/{claim.get('id')} names no health plan")


def has_plan(sandbox: Any, claim: Mapping[str, Any]) -> bool:
    try:
        payer_of(sandbox, claim)
    except ExerciseError:
        return False
    return True


def disclosure_events(ctx: GradingContext) -> list[dict[str, Any]]:
    """Every release since setup, from the audit trail."""
    return _entries(ctx.events(DISCLOSE_KIND))


def disclosures_to(ctx: GradingContext, recipient: str) -> list[dict[str, Any]]:
    return [d for d in disclosure_events(ctx) if d.get("recipient") == recipient]


def reads_logged(ctx: GradingContext, entry: Mapping[str, Any], after: int = 0) -> list[str]:
    """Refs of a disclosure that the audit trail shows no successful read of by its user."""
    read = {
        event_entity_ref(e)
        for e in ctx.audit_events(user=entry.get("by"))
        if event_seq(e) > after and str(e.get("outcome")) == "0"
    }
    return [r for r in entry.get("refs", []) if r not in read]
