"""Generic cheats every exercise's grader must fail: mutations of the exercise's own reference
solution that need nothing exercise-specific (see ``tests/test_generic_cheats.py``).

- ``undo``: the reference, then everything it created voided (entered-in-error, or cancelled /
  revoked / stopped / inactive where the type's status allows) and everything it changed put
  back as it was, through the sessions of the people who may write it (the student's own, then
  the exercise's other people);
- ``hand-in stuffing``: nothing done in the EHR; the instructions and every hint handed in as
  a text, and in the shape of the reference's hand-in (each text field the text, each list the
  text's words and ids);
- ``other variant``: the reference driven by another student's facts (whole, then one fact at
  a time) against this student's attempt;
- ``another patient``: the reference driven with each patient-id fact pointing at another
  patient of the clinic.

A mutation driven by other facts that ends with the same records and hand-ins as the reference
is the same answer (the fact did not matter to it), not a cheat. Records are compared with what
each change says of itself (its Provenance activity and reason); hand-ins for what
they state: an entry with an empty value (``''``, ``None``, an empty list or mapping) states
nothing, and says the same as the entry left out (a role matrix that lists a type with no
rights is the same policy as one that leaves it out: the EHR grants nothing the role table
does not grant; the graders read a missing row as no rights).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ehr_sandbox import exercises
from ehr_sandbox.errors import SandboxError
from ehr_sandbox.exercises.builtin.common import HAND_IN, hand_ins, record_hand_in
from ehr_sandbox.exercises.grading import event_kind
from ehr_sandbox.exercises.model import EVENT_KINDS

POOL = 30
"""Students a battery student is picked from (the traps' full run)."""

_UNDO_STATUSES = ("cancelled", "revoked", "stopped", "inactive", "abandoned", "rejected")
_SKIP_TYPES = {"Provenance", "AuditEvent"}


def cheat_students(exercise_id: str) -> list[str]:
    """The students the battery runs for: one per exercise in CI, chosen from the exercise id
    (``EHR_SANDBOX_CHEAT_STUDENTS=n`` widens it to n students)."""
    count = int(os.environ.get("EHR_SANDBOX_CHEAT_STUDENTS", "1"))
    start = int(hashlib.sha256(exercise_id.encode()).hexdigest(), 16) % POOL
    return [f"student-{(start + i) % POOL:02d}" for i in range(min(count, POOL))]


@dataclass
class Battery:
    """What the battery found for one exercise and student."""

    exercise_id: str
    student: str
    reference_full: bool = False
    ran: dict[str, str] = field(default_factory=dict)  # mutation -> outcome
    skipped: dict[str, str] = field(default_factory=dict)  # mutation -> reason
    full_marks: list[str] = field(default_factory=list)  # cheats that scored full marks
    only_collateral: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)  # the grader raised instead of failing


class _Driven:
    """The attempt, with other facts (what a student who copied another's answer would use)."""

    def __init__(self, att: Any, facts: dict[str, Any]) -> None:
        object.__setattr__(self, "_att", att)
        object.__setattr__(self, "facts", MappingProxyType(dict(facts)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._att, name)


def _full(att: Any) -> tuple[bool, bool]:
    """(full marks, failed only the collateral-damage criterion)."""
    result = att.check()
    full = result.passed and result.score == att.exercise.max_score
    failed = [c.name for c in result.criteria if not c.passed]
    return full, failed == [exercises.COLLATERAL]


def _text(att: Any) -> str:
    parts = [att.instructions]
    for h in att.exercise.hints:
        try:
            parts.append(h.text.format_map(dict(att.facts)))
        except (KeyError, ValueError, IndexError):
            parts.append(h.text)
    return "\n".join(parts)


def _run(att: Any, apply: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Apply, returning the versions written and the refusal that stopped it (if any)."""
    system = att.sandbox.system_session()
    mark = system.change_mark()
    error = None
    try:
        apply(att)
    except Exception as exc:  # a reference driven by wrong facts may stop anywhere
        error = f"{type(exc).__name__}: {exc}"
    return system.changes_since(mark), error


def _outcome(att: Any, versions: list[dict[str, Any]]) -> str:
    """What the attempt did, for comparing answers: records written (without ids, versions and
    times) and hand-ins."""
    drop = {"id", "meta", "text"}
    recs = sorted(
        json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True, default=str)
        for r in versions
        if r.get("resourceType") not in _SKIP_TYPES
    )
    # what a change says of itself (its activity and reason) is part of the answer: a void
    # reason naming another patient is not the same answer as one naming this one
    recs += sorted(
        json.dumps([r.get("activity"), r.get("reason")], sort_keys=True, default=str)
        for r in versions
        if r.get("resourceType") == "Provenance"
    )
    handed = [
        stated_answer(h)
        for h in hand_ins(att.sandbox.audit.events(), att.exercise.id, student=att.student)
    ]
    events = [
        json.dumps([event_kind(e), e.get("outcomeDesc")], default=str)
        for e in att.sandbox.audit.events()
        if event_kind(e) in EVENT_KINDS and event_kind(e) != HAND_IN
    ]
    return json.dumps([recs, handed, sorted(events)], sort_keys=True, default=str)


_EMPTY: tuple[Any, ...] = ("", None, [], {})


def stated_answer(answer: Any) -> Any:
    """What a hand-in states: mappings without their empty entries (at any depth), the rest as
    it is. An empty entry says nothing the entry left out does not say.

    >>> stated_answer({"Patient": "crus", "Observation": "", "notes": {"a": [], "b": "x"}})
    {'Patient': 'crus', 'notes': {'b': 'x'}}
    >>> stated_answer(["", "x"])  # a list's items are what it states, empty ones too
    ['', 'x']
    """
    if isinstance(answer, dict):
        kept = {k: stated_answer(v) for k, v in answer.items()}
        return {k: v for k, v in kept.items() if not any(v == e for e in _EMPTY)}
    if isinstance(answer, list | tuple):
        return [stated_answer(v) for v in answer]
    return answer


def _sessions(att: Any) -> list[Any]:
    out = [att.session]
    for actor in att.exercise.actors:
        try:
            if actor.startswith("patient:"):
                out.append(att.login_patient(str(att.facts[actor.split(":", 1)[1]])))
            else:
                out.append(att.login(actor))
        except (SandboxError, KeyError):
            continue
    return out


def _withdraw(session: Any, ref: str) -> bool:
    try:
        session.mark_entered_in_error(ref, "withdrawn")
        return True
    except SandboxError:
        pass
    try:
        current = session.read(ref)
    except SandboxError:
        return False
    tries = []
    if "status" in current:
        tries += [{**current, "status": s} for s in _UNDO_STATUSES if s != current["status"]]
    if current.get("active") is True:
        tries.append({**current, "active": False})
    for body in tries:
        try:
            session.update(body, reason="withdrawn")
            return True
        except SandboxError:
            continue
    return False


def _revert(session: Any, system: Any, ref: str, before: str) -> bool:
    rtype, rid = ref.split("/", 1)
    try:
        old = system.vread(rtype, rid, before)
        current = session.read(ref)
    except SandboxError:
        return False
    body = {k: v for k, v in old.items() if k != "meta"}
    body["meta"] = {"versionId": current["meta"]["versionId"]}
    try:
        session.update(body, reason="put back")
        return True
    except SandboxError:
        return False


def undo(att: Any, versions: list[dict[str, Any]]) -> tuple[int, int]:
    """Withdraw what ``versions`` (the reference's writes) created and put back what they
    changed; returns (records touched, records undone)."""
    first: dict[str, int] = {}
    for v in versions:
        if v.get("resourceType") in _SKIP_TYPES:
            continue
        ref = f"{v['resourceType']}/{v['id']}"
        first.setdefault(ref, int(v["meta"]["versionId"]))
    system = att.sandbox.system_session()
    sessions = _sessions(att)
    done = 0
    for ref, vid in reversed(list(first.items())):
        for s in sessions:
            ok = _withdraw(s, ref) if vid == 1 else _revert(s, system, ref, str(vid - 1))
            if ok:
                done += 1
                break
    return len(first), done


_WORD = re.compile(r"[A-Za-z0-9][\w./:-]*[A-Za-z0-9]|[A-Za-z0-9]")


def stuffed(shape: Any, text: str) -> Any:
    """``shape`` (a reference hand-in) with every text the exercise's text and every list its
    words and ids (numbers kept as text: the words stand in for them)."""
    if isinstance(shape, dict):
        return {k: stuffed(v, text) for k, v in shape.items()}
    if isinstance(shape, list | tuple):
        return sorted(set(_WORD.findall(text)))
    return text


def patient_facts(att: Any) -> dict[str, str]:
    """Facts whose value is a patient of the clinic (``p3`` or ``Patient/p3``)."""
    system = att.sandbox.system_session()
    out = {}
    for k, v in att.facts.items():
        if not isinstance(v, str) or not v:
            continue
        pid = v.split("/", 1)[1] if v.startswith("Patient/") else v
        if "/" in pid or not re.fullmatch(r"[A-Za-z0-9.-]{1,64}", pid):
            continue
        try:
            system.read("Patient", pid)
        except SandboxError:
            continue
        out[k] = v
    return out


def run_battery(exercise_id: str, student: str, *, per_fact: bool = True) -> Battery:
    """Run every generic cheat of one exercise for one student."""
    ex = exercises.get(exercise_id)
    b = Battery(exercise_id, student)
    att = exercises.start(exercise_id, student)
    try:
        _battery(att, ex, b, per_fact)
    finally:
        att.sandbox.close()
    return b


def _grade(att: Any, b: Battery, name: str, note: str) -> None:
    try:
        full, only_collateral = _full(att)
    except Exception as exc:  # the grader must fail a wrong answer with feedback, not raise
        b.crashed.append(f"{name}: {type(exc).__name__}: {exc}")
        return
    b.ran[name] = note + (" -> FULL MARKS" if full else "")
    if full:
        b.full_marks.append(name)
    elif only_collateral:
        b.only_collateral.append(name)


def _battery(att: Any, ex: Any, b: Battery, per_fact: bool) -> None:
    own = dict(att.facts)
    att.reset()
    versions, error = _run(att, ex.solution.apply)
    reference = _outcome(att, versions)
    shapes = hand_ins(att.sandbox.audit.events(), ex.id, student=att.student)
    b.reference_full = error is None and _full(att)[0]
    # (a) undo
    touched, done = undo(att, versions)
    if not touched:
        b.skipped["undo"] = "the reference creates or changes no record (actions and hand-ins only)"
    elif not done:
        b.skipped["undo"] = f"the EHR refuses to withdraw any of the {touched} records it wrote"
    else:
        _grade(att, b, "undo", f"{done}/{touched} records withdrawn")
    # (b) hand-in stuffing
    text = _text(att)
    if not shapes:
        b.skipped["stuff-shape"] = "the reference hands nothing in (its answer is in the EHR)"
    for name, answer in [("stuff-text", text)] + [
        ("stuff-shape", stuffed(s, text)) for s in shapes[-1:]
    ]:
        att.reset()
        record_hand_in(att, answer)
        _grade(att, b, name, "instructions and hints handed in")
    # (c) another variant's facts; (d) another patient
    others = _other_facts(ex, b.student, own)
    if others is None:
        b.skipped["other-variant"] = "every student of the pool gets the same facts"
    else:
        _driven(att, ex, b, "other-variant", others, reference)
        if per_fact:
            for k in sorted(own):
                if k in others and others[k] != own[k]:
                    _driven(att, ex, b, f"other-fact:{k}", {**own, k: others[k]}, reference)
    pf = patient_facts(att)
    if not pf:
        b.skipped["another-patient"] = "no fact names a patient by id"
    else:
        system = att.sandbox.system_session()
        ids = sorted(p["id"] for p in system.search("Patient").fetch())
        taken = {v.split("/")[-1] for v in pf.values()}
        spare = [p for p in ids if p not in taken]
        swapped = dict(own)
        for k, v in pf.items():
            new = spare[0] if spare else v
            swapped[k] = f"Patient/{new}" if v.startswith("Patient/") else new
        _driven(att, ex, b, "another-patient", swapped, reference)


def _other_facts(ex: Any, student: str, own: dict[str, Any]) -> dict[str, Any] | None:
    start = int(student.rsplit("-", 1)[1])
    for i in range(1, POOL):
        other = exercises.start(ex.id, f"student-{(start + i) % POOL:02d}")
        try:
            facts = dict(other.facts)
        finally:
            other.sandbox.close()
        if facts != own:
            return facts
    return None


def _driven(att: Any, ex: Any, b: Battery, name: str, facts: dict[str, Any], ref: str) -> None:
    att.reset()
    versions, error = _run(att, lambda a: ex.solution.apply(_Driven(a, facts)))
    try:
        full, only_collateral = _full(att)
    except Exception as exc:  # the grader must fail a wrong answer with feedback, not raise
        b.crashed.append(f"{name}: {type(exc).__name__}: {exc}")
        return
    if full and _outcome(att, versions) == ref:
        b.skipped[name] = (
            "the reference does the same with these facts (the fact does not change the answer)"
        )
        return
    note = f"refused: {error[:80]}" if error else "ran"
    b.ran[name] = note + (" -> FULL MARKS" if full else "")
    if full:
        b.full_marks.append(name)
    elif only_collateral:
        b.only_collateral.append(name)
