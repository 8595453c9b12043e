"""Small FHIR helpers shared by the built-in exercises (building and reading resources).

>>> obs = blood_pressure("Patient/p1", 138, 84, "2026-01-05T08:30:00+00:00")
>>> bp_values(obs)
(138, 84)
>>> patient_label({"name": [{"given": ["Ana", "M"], "family": "Ruiz"}], "birthDate": "1980-02-03",
...                "identifier": [{"system": MRN_SYSTEM, "value": "MRN1"}]})
'Ana M Ruiz'
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.grading import HAND_IN_KIND
from synthetic.systems import LOINC, MRN, OBSERVATION_CATEGORY, UCUM

__all__ = [
    "BP_PANEL",
    "DIASTOLIC",
    "MRN_SYSTEM",
    "SYSTOLIC",
    "blood_pressure",
    "bp_values",
    "changed_fields",
    "document_text",
    "mrn",
    "parse_instant",
    "patient_facts",
    "patient_label",
    "note_type",
    "progress_note",
    "ref_id",
    "rewrite_answer_key",
    "sandbox_now",
    "still_standing",
    "then_withdrawn",
    "withdraw",
    "visible_patients",
    "WITHDRAWN_STATUSES",
]

MRN_SYSTEM = MRN
BP_PANEL, SYSTOLIC, DIASTOLIC = "85354-9", "8480-6", "8462-4"
VITALS_CATEGORY = {
    "coding": [
        {
            "system": OBSERVATION_CATEGORY,
            "code": "vital-signs",
            "display": "Vital Signs",
        }
    ]
}


def sandbox_now(sandbox: Any) -> datetime:
    """The sandbox's current instant, without moving its clock.

    >>> from datetime import datetime, timezone
    >>> class Clinic:  # anything with a ``clock``
    ...     clock = staticmethod(lambda: datetime(2026, 1, 5, tzinfo=timezone.utc))
    >>> sandbox_now(Clinic()).isoformat()
    '2026-01-05T00:00:00+00:00'
    """
    clock = sandbox.clock
    return clock.peek() if hasattr(clock, "peek") else clock()


def _mmhg(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}


def blood_pressure(subject: str, systolic: int, diastolic: int, effective: str) -> dict[str, Any]:
    """A US Core blood-pressure panel Observation (LOINC 85354-9, UCUM mm[Hg])."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [VITALS_CATEGORY],
        "code": {
            "coding": [
                {
                    "system": LOINC,
                    "code": BP_PANEL,
                    "display": "Blood pressure panel with all children optional",
                }
            ],
            "text": "Blood pressure",
        },
        "subject": {"reference": subject},
        "effectiveDateTime": effective,
        "component": [
            {
                "code": {
                    "coding": [
                        {"system": LOINC, "code": SYSTOLIC, "display": "Systolic blood pressure"}
                    ]
                },
                "valueQuantity": _mmhg(systolic),
            },
            {
                "code": {
                    "coding": [
                        {"system": LOINC, "code": DIASTOLIC, "display": "Diastolic blood pressure"}
                    ]
                },
                "valueQuantity": _mmhg(diastolic),
            },
        ],
    }


def bp_values(obs: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(systolic, diastolic) of a blood-pressure Observation (None where absent)."""
    out: dict[str, int | None] = {SYSTOLIC: None, DIASTOLIC: None}
    for comp in obs.get("component", []) or []:
        for coding in (comp.get("code") or {}).get("coding", []):
            if coding.get("code") in out:
                value = (comp.get("valueQuantity") or {}).get("value")
                out[coding["code"]] = int(value) if isinstance(value, int | float) else None
    return out[SYSTOLIC], out[DIASTOLIC]


def is_bp(obs: Mapping[str, Any]) -> bool:
    """True for a blood-pressure panel Observation.

    >>> is_bp(blood_pressure("Patient/p", 120, 80, "2026-01-01T08:00:00+00:00"))
    True
    """
    return any(c.get("code") == BP_PANEL for c in (obs.get("code") or {}).get("coding", []))


def note_type(sandbox: Any) -> dict[str, Any]:
    """The LOINC note type the sandbox's own notes use (so it is in the shipped code set).

    Falls back to a text-only type when the sandbox holds no coded note.
    """
    first = sandbox.system_session().search("DocumentReference", _count="1").first()
    coding = [
        c for c in ((first or {}).get("type") or {}).get("coding", []) if c.get("system") == LOINC
    ]
    return {"coding": coding[:1], "text": "Progress note"} if coding else {"text": "Progress note"}


def progress_note(
    subject: str,
    author: str,
    text: str,
    when: str,
    *,
    title: str = "Progress note",
    type_: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A DocumentReference holding a plain-text clinical note (type from :func:`note_type`)."""
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": type_ or {"text": title},
        "subject": {"reference": subject},
        "date": when,
        "author": [{"reference": author}],
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode()).decode(),
                    "title": title,
                }
            }
        ],
    }


def document_text(doc: Mapping[str, Any]) -> str:
    """The plain text of a DocumentReference's attachments (data decoded), joined.

    >>> document_text(progress_note("Patient/p", "Practitioner/d", "Hello", "2026-01-01T08:00:00+00:00"))
    'Hello'
    """
    parts = []
    for content in doc.get("content", []) or []:
        att = content.get("attachment") or {}
        if att.get("data"):
            try:
                parts.append(base64.b64decode(att["data"]).decode("utf-8", "replace"))
            except (ValueError, TypeError):
                continue
    return "\n".join(parts)


def patient_label(patient: Mapping[str, Any]) -> str:
    """The patient's name as people read it (given names, then family)."""
    name = (patient.get("name") or [{}])[0]
    return " ".join([*name.get("given", []), name.get("family", "")]).strip() or patient.get(
        "id", "?"
    )


def mrn(patient: Mapping[str, Any]) -> str:
    """The patient's MRN ('' when absent)."""
    for ident in patient.get("identifier", []) or []:
        if ident.get("system") == MRN_SYSTEM:
            return str(ident.get("value", ""))
    return ""


def patient_facts(patient: Mapping[str, Any], prefix: str) -> dict[str, str]:
    """``{prefix}_id``, ``_name``, ``_dob``, ``_mrn`` facts for instructions and graders.

    >>> patient_facts({"id": "p1", "name": [{"family": "Ruiz"}], "birthDate": "1980-02-03"}, "right")["right_dob"]
    '1980-02-03'
    """
    return {
        f"{prefix}_id": str(patient["id"]),
        f"{prefix}_name": patient_label(patient),
        f"{prefix}_dob": str(patient.get("birthDate", "unknown")),
        f"{prefix}_mrn": mrn(patient) or "(none)",
    }


def visible_patients(sandbox: Any, username: str, *, minimum: int = 1) -> list[dict[str, Any]]:
    """Living patients ``username`` may see in this sandbox, sorted by id (deterministic)."""
    session = sandbox.login(username)
    found = [
        p
        for p in session.search("Patient").fetch()
        if not p.get("deceasedDateTime") and not p.get("deceasedBoolean")
    ]
    found.sort(key=lambda p: p["id"])
    if len(found) < minimum:
        raise ExerciseError(
            f"setup: {username} can see {len(found)} patient(s) in this sandbox; the exercise needs at "
            f"least {minimum} (generate a larger sandbox)"
        )
    return found


def ref_id(reference: Mapping[str, Any] | None) -> str:
    """The id part of a ``{"reference": "Type/id"}`` ('' when absent).

    >>> ref_id({"reference": "Patient/p1"})
    'p1'
    """
    from ehr_sandbox.references import split_reference

    parts = split_reference(str((reference or {}).get("reference", "")))
    return parts[1] if parts else ""


def changed_fields(
    before: dict[str, Any], after: dict[str, Any], *, ignore: tuple[str, ...] = ("meta", "text")
) -> list[str]:
    """The top-level fields that differ between two versions of a resource (``ignore``d ones,
    which the EHR writes, left out): what a change touched besides what it was meant to.

    >>> changed_fields({"status": "final", "effectiveDateTime": "t1", "meta": {"versionId": "1"}},
    ...                {"status": "corrected", "effectiveDateTime": "t2", "meta": {"versionId": "2"}},
    ...                ignore=("meta", "status"))
    ['effectiveDateTime']
    """
    keys = (set(before) | set(after)) - set(ignore)
    return sorted(k for k in keys if before.get(k) != after.get(k))


def parse_instant(text: str | None) -> datetime | None:
    """A timezone-aware datetime from FHIR dateTime text (None when absent or date-only).

    >>> parse_instant("2026-01-04T15:30:00+00:00").hour
    15
    """
    if not text or "T" not in text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else None


def relabel_codes(concept: Any, systems: Mapping[str, str]) -> Any:
    """A copy of a FHIR fragment with every Coding's ``system`` renamed by ``systems`` (the
    same codes, another code system).

    >>> from synthetic.systems import NDC, RXNORM
    >>> relabel_codes({"coding": [{"system": RXNORM, "code": "314076"}]}, {RXNORM: NDC})
    {'coding': [{'system': 'http://hl7.org/fhir/sid/ndc', 'code': '314076'}]}
    """
    if isinstance(concept, Mapping):
        out = {k: relabel_codes(v, systems) for k, v in concept.items()}
        if isinstance(out.get("system"), str) and "code" in out and "value" not in out:
            out["system"] = systems.get(out["system"], out["system"])
        return out
    if isinstance(concept, list):
        return [relabel_codes(v, systems) for v in concept]
    return concept


def in_another_code_system(apply: Any, systems: Mapping[str, str]) -> Any:
    """What a student who files the right codes under the wrong code system does (used by
    wrong solutions): ``apply`` runs with every record the attempt's session writes relabelled
    by ``systems`` (e.g. RxNorm numbers filed as NDC codes, which the EHR cannot check).

    >>> from synthetic.systems import NDC, RXNORM
    >>> from types import SimpleNamespace
    >>> written = []
    >>> att = SimpleNamespace(session=SimpleNamespace(create=written.append, update=written.append))
    >>> in_another_code_system(lambda a: a.session.create({"code": {"coding": [{"system": RXNORM, "code": "1"}]}}),
    ...                        {RXNORM: NDC})(att)
    >>> written[0]["code"]["coding"][0]["system"] == NDC
    True
    """

    def run(att: Any) -> None:
        s = att.session
        create, update = s.create, s.update
        s.create = lambda res, *a, **k: create(relabel_codes(res, systems), *a, **k)
        s.update = lambda res, *a, **k: update(relabel_codes(res, systems), *a, **k)
        try:
            apply(att)
        finally:
            s.create, s.update = create, update

    return run


def rewrite_answer_key(att: Any, **changes: Any) -> dict[str, Any]:
    """What a student trying to change the answer key does (used by wrong solutions): edit
    ``att.facts`` in memory (refused: it is read-only) and rewrite the facts stored in the
    attempt's sandbox. Returns the facts as the student now believes them; graders never read
    either place, so grading is unaffected.

    >>> from types import SimpleNamespace
    >>> from types import MappingProxyType
    >>> att = SimpleNamespace(facts=MappingProxyType({"right": 138}), sandbox=SimpleNamespace(state={}))
    >>> rewrite_answer_key(att, right=183)["right"], att.facts["right"]
    (183, 138)
    """
    from ehr_sandbox.exercises import persistence

    with contextlib.suppress(TypeError, AttributeError):
        att.facts.update(changes)  # read-only: raises
    forged = {**dict(att.facts), **changes}
    try:
        metas = dict(att.sandbox.state.get(persistence.ATTEMPT_KEY) or {})
        for meta in metas.values():
            meta["facts"] = forged
        att.sandbox.state[persistence.ATTEMPT_KEY] = metas
    except (AttributeError, TypeError):
        pass
    return forged


WITHDRAWN_STATUSES = frozenset({"entered-in-error", "cancelled", "revoked"})
"""Statuses of a record that was written and then taken back: it stands for nothing."""


def still_standing(
    ctx: Any,
    versions: Iterable[Mapping[str, Any]],
    *,
    current: bool = False,
    withdrawn: Collection[str] = WITHDRAWN_STATUSES,
    open_tasks: Collection[str] | None = None,
    patient_id: str | None = None,
) -> list[dict[str, Any]]:
    """What of ``versions`` (written since setup, oldest first) still stands at hand-in: the
    one reader every grader uses for "the work was done and not taken back".

    A record stands when its current version (``ctx.read``) exists, its status is not one of
    ``withdrawn`` (by default :data:`WITHDRAWN_STATUSES`: entered in error, cancelled, revoked)
    it is not verified ``entered-in-error`` (a Condition or an allergy voided) and not
    deactivated (``active`` false: a patient registered and then deactivated); with
    ``open_tasks``, a Task stands only while its status is one of them (one closed or put on
    hold by its sender waits for nobody); with ``patient_id``, only while it is still about
    that patient (a record moved to another chart is not this patient's). Work written and
    then withdrawn, closed or moved was not done; an earlier version of it does not count.

    ``current=False`` returns the versions given (every one, as written) of the records that
    stand: for criteria about how the work was written (by which workflow, with what it said
    then). ``current=True`` returns each standing record once, as it is now (in the order it
    was first written): for criteria about what the record says at hand-in (a value written
    right and then amended away is graded as amended).

    Examples
    --------
    >>> now = {"Observation/o1": {"resourceType": "Observation", "id": "o1", "status": "entered-in-error"},
    ...        "Observation/o2": {"resourceType": "Observation", "id": "o2", "status": "amended",
    ...                           "valueQuantity": {"value": 7}, "subject": {"reference": "Patient/p1"}}}
    >>> ctx = type("Ctx", (), {"read": lambda self, ref: now.get(ref)})()
    >>> sent = [{**now["Observation/o1"], "status": "final"},
    ...         {**now["Observation/o2"], "status": "final", "valueQuantity": {"value": 5}}]
    >>> [(v["id"], v["valueQuantity"]["value"]) for v in still_standing(ctx, sent)]
    [('o2', 5)]
    >>> [(v["id"], v["valueQuantity"]["value"]) for v in still_standing(ctx, sent, current=True)]
    [('o2', 7)]
    >>> still_standing(ctx, sent, patient_id="p2")
    []

    A record deactivated stands for nothing either:

    >>> now["Patient/p3"] = {"resourceType": "Patient", "id": "p3", "active": False}
    >>> still_standing(ctx, [{**now["Patient/p3"], "active": True}])
    []

    A Task stands for its owner only while open:

    >>> now["Task/t1"] = {"resourceType": "Task", "id": "t1", "status": "on-hold"}
    >>> still_standing(ctx, [{**now["Task/t1"], "status": "requested"}], open_tasks={"requested"})
    []
    """
    from ehr_sandbox.access import patient_of

    out: list[dict[str, Any]] = []
    verdict: dict[str, dict[str, Any] | None] = {}
    for v in versions:
        ref = f"{v.get('resourceType')}/{v.get('id')}"
        if ref not in verdict:
            now = ctx.read(ref)
            verification = ((now or {}).get("verificationStatus") or {}).get("coding") or [{}]
            stands = (
                now is not None
                and now.get("status") not in withdrawn
                and verification[0].get("code") != "entered-in-error"
                and now.get("active") is not False
                and (
                    open_tasks is None
                    or now.get("resourceType") != "Task"
                    or now.get("status") in open_tasks
                )
                and (patient_id is None or patient_of(now) == patient_id)
            )
            verdict[ref] = dict(now) if stands and now is not None else None
            if current and verdict[ref] is not None:
                out.append(verdict[ref])
        if not current and verdict[ref] is not None:
            out.append(dict(v))
    return out


def withdraw(session: Any, ref: str, reason: str = "charted in error") -> dict[str, Any]:
    """Take back the record ``ref`` through ``session`` as its type allows (used by wrong
    solutions that do the work and then undo it): entered in error where the type has that
    status (or a verification status), else deactivated (``active`` false: a Patient is
    never voided), else its status set to ``entered-in-error`` (a MedicationStatement) or
    ``cancelled``, else deactivated (a type with no status). Returns the new version; the
    EHR's last refusal when none of these fits the type.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=1, seed=3, years=1).login("fd.smith")
    >>> p = fd.search("Patient").first()
    >>> withdraw(fd, f"Patient/{p['id']}")["active"]
    False
    """
    from ehr_sandbox.errors import ValidationError

    try:
        return dict(session.mark_entered_in_error(ref, reason))
    except ValidationError as exc:
        current, refused = session.read(ref), exc
    changes: list[dict[str, Any]] = [{"status": "entered-in-error"}, {"status": "cancelled"}]
    if "active" in current or current.get("resourceType") == "Patient":
        changes.insert(0, {"active": False})
    else:
        changes.append({"active": False})  # a type with no status (a RelatedPerson)
    for change in changes:
        try:
            return dict(session.update({**current, **change}, reason=reason))
        except ValidationError as exc:
            refused = exc
    raise refused


def then_withdrawn(
    reference: Any,
    rtype: str,
    *,
    patient: Any = "patient_ref",
    only: Any = None,
) -> Any:
    """A wrong solution: ``reference(att)``, then every ``rtype`` record it wrote (of one
    patient: ``patient`` names the fact holding the reference, or is a function of the attempt
    returning it, or None for every patient; ``only(record)`` narrows them) taken back through
    the student's own session (:func:`withdraw`). Work done and withdrawn before hand-in was
    not done: the grader must read what still stands (:func:`still_standing`).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=1, seed=3, years=1).login("fd.smith")
    >>> att = SimpleNamespace(session=fd, facts={})
    >>> new = {"resourceType": "Patient", "name": [{"family": "Quist", "given": ["Ola"]}],
    ...        "birthDate": "1990-02-03", "gender": "female"}
    >>> then_withdrawn(lambda a: a.session.create(new), "Patient", patient=None)(att)
    >>> [p.get("active") for p in fd.search("Patient", family="Quist").fetch()]
    [False]
    """
    from ehr_sandbox.access import patient_of
    from ehr_sandbox.errors import SearchError

    def run(att: Any) -> None:
        s = att.session
        who = patient(att) if callable(patient) else att.facts[patient] if patient else None

        def records() -> list[dict[str, Any]]:
            if not who:
                return list(s.search(rtype).fetch())
            try:
                return list(s.search(rtype, patient=who).fetch())
            except SearchError:  # a type not searched by patient (MedicationStatement)
                pid = str(who).rsplit("/", 1)[-1]
                return [r for r in s.search(rtype).fetch() if patient_of(r) == pid]

        before = {r["id"] for r in records()}
        reference(att)
        for r in records():
            if r["id"] not in before and (only is None or only(r)):
                withdraw(s, f"{rtype}/{r['id']}")

    return run


HAND_IN = HAND_IN_KIND
"""Audit action kind of a hand-in (:func:`record_hand_in`, the one writer)."""


def record_hand_in(att: Any, answer: Any) -> None:
    """Record a hand-in as an audited action of the student's session: the one writer of
    every section's hand-in (:func:`hand_in` here, the reports section's ``hand_in`` and the
    privacy section's ``submit`` check their answer's shape, then call it).

    The entry is ``submit-report`` with the detail ``{"exercise", "student", "answer"}``; only
    the attempt's public side is used (``exercise_id``, ``student`` and ``session``), so the
    same call hands in on a classroom server, and the audit entry names the user who handed
    in. :func:`hand_ins` reads them back.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> att = NS(exercise_id="privacy/x", student="ann", session=sb.login("po.wilson"))
    >>> record_hand_in(att, ["3", "7"])
    >>> hand_ins(sb.audit.events(), "privacy/x", student="ann", user="po.wilson")
    [['3', '7']]
    """
    import json

    detail = json.dumps(
        {"exercise": att.exercise_id, "student": att.student, "answer": answer},
        sort_keys=True,
        default=str,
    )
    att.session.audit_action(HAND_IN, detail=detail)


def hand_ins(
    events: Iterable[Mapping[str, Any]],
    exercise_id: str,
    *,
    student: str | None = None,
    user: str | None = None,
) -> list[Any]:
    """The answers handed in for ``exercise_id`` (by ``student``, as ``user``, when given) in
    ``events``, oldest first: the one reader of :func:`record_hand_in`'s entries.

    An entry written before hand-ins had one shape (the privacy section's ``value``, the
    front office's entry without a ``student``) is read as it was written.

    Examples
    --------
    >>> import json
    >>> ev = lambda user, **d: {"subtype": [{"code": HAND_IN}], "outcomeDesc": json.dumps(d),
    ...     "agent": [{"requestor": True, "altId": user}]}
    >>> events = [ev("po.wilson", exercise="privacy/x", student="ann", answer=[1]),
    ...           ev("po.wilson", exercise="privacy/x", student="bob", answer=[2]),
    ...           ev("ma.garcia", exercise="privacy/x", student="ann", answer=[3]),
    ...           ev("po.wilson", exercise="privacy/x", student="ann", value=[4])]
    >>> hand_ins(events, "privacy/x", student="ann", user="po.wilson")
    [[1], [4]]
    >>> hand_ins(events, "privacy/y")
    []
    """
    from ehr_sandbox.audit import event_username
    from ehr_sandbox.exercises.grading import event_detail, event_kind

    out = []
    for ev in events:
        if event_kind(ev) != HAND_IN or (user is not None and event_username(ev) != user):
            continue
        detail = event_detail(ev)
        if not isinstance(detail, Mapping) or detail.get("exercise") != exercise_id:
            continue
        if student is not None and detail.get("student") != student:
            continue
        key = "answer" if "answer" in detail else "value"
        if key in detail:
            out.append(detail[key])
    return out


def hand_in(att: Any, answer: dict[str, Any]) -> None:
    """Hand in an answer (a figure, a measured report) as an audited action of the student's
    session: the clinic's one hand-in (front office, EMR/EHR).

    Amounts are given as strings with cents (``"123.45"``); the last hand-in counts. Written
    by :func:`record_hand_in` (the one writer), so the same call hands in on a classroom
    server; the audit entry names the user who handed in.

    >>> hand_in(None, ["123.45"])
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ExerciseError: hand_in: expected a dict of answers (found list)
    """
    from ehr_sandbox.errors import ExerciseError

    if not isinstance(answer, dict):
        raise ExerciseError(f"hand_in: expected a dict of answers (found {type(answer).__name__})")
    record_hand_in(att, answer)


def handed_in(ctx: Any) -> dict[str, Any] | None:
    """The last answer handed in by the exercise's user since setup (None when none), from a
    :class:`~ehr_sandbox.exercises.grading.GradingContext`.

    Hand-ins by other users, or for another exercise, do not count.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.exercises.grading import GradingContext, SetupMark
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> mark = SetupMark(sb.audit.count(), sb.system_session().change_mark())
    >>> ex = NS(id="front-office/day-sheet")
    >>> ctx = GradingContext(sb, sb.system_session(), {}, sb.user("fd.smith"), "ann", mark=mark, exercise=ex)
    >>> handed_in(ctx) is None
    True
    >>> as_ = lambda user, exercise=ex.id: NS(exercise_id=exercise, student="ann", session=sb.login(user))
    >>> hand_in(as_("fd.smith"), {"total": "10.00"})
    >>> hand_in(as_("fd.smith"), {"total": "12.50"})
    >>> hand_in(as_("fd.brown"), {"total": "99.00"})
    >>> hand_in(as_("fd.smith", "front-office/post-era"), {"total": "1.00"})
    >>> handed_in(ctx)  # the last one of this user for this exercise
    {'total': '12.50'}
    >>> record_hand_in(as_("fd.smith"), "every word of the instructions")
    >>> handed_in(ctx) is None  # the last hand-in is not a dict of answers: no answer
    True
    """
    found = hand_ins(ctx.events(HAND_IN), ctx.exercise.id, user=ctx.user.username)
    return dict(found[-1]) if found and isinstance(found[-1], Mapping) else None


def shown_as_referenced(ctx: Any, reference: Mapping[str, Any] | None) -> bool:
    """True when a Reference's ``display`` (the name people see) names the record its
    ``reference`` points to, or there is no display: a payer, prescriber or patient shown
    under another's name misleads everyone who reads it while the record says otherwise.

    The referenced record's name (an Organization's ``name``, a person's given and family
    names) must be the display, or be contained in it (``"Riverton Blue PPO (group 1)"``).

    Examples
    --------
    >>> orgs = {"Organization/o1": {"resourceType": "Organization", "name": "Riverton Blue PPO"}}
    >>> ctx = type("Ctx", (), {"read": lambda self, ref: orgs.get(ref)})()
    >>> shown_as_referenced(ctx, {"reference": "Organization/o1", "display": "Riverton Blue PPO"})
    True
    >>> shown_as_referenced(ctx, {"reference": "Organization/o1", "display": "Unity Health HMO"})
    False
    >>> shown_as_referenced(ctx, {"reference": "Organization/o1"})
    True
    """
    from ehr_sandbox.exercises.rubric import normalize

    display = (reference or {}).get("display")
    if not display:
        return True
    target = ctx.read(str((reference or {}).get("reference", "")))
    if target is None:
        return False
    name = target.get("name")
    label = patient_label(target) if isinstance(name, list) else str(name or "")
    shown, named = normalize(str(display)), normalize(label)
    return bool(named) and (shown == named or f" {named} " in f" {shown} ")
