"""What the exercise framework tells a student stays within what the student may know.

For every exercise in the catalogue, one student (chosen from the exercise id) runs the
reference solution and one declared wrong solution. Every text the student receives is
collected: ``check()`` and ``submit()`` feedback, every hint (and the "no more hints" line),
and the messages of refusals the EHR raised at the student's sessions. Then:

- none of those texts holds identifying text of a record the student's sessions (the
  exercise's role and its declared people) cannot read, or a value the student's view masks:
  the grader session's view of the record is compared with the student sessions' view,
  computed on the attempt's own sandbox after the work was done;
- none holds a fact of another student's variant (a second variant is generated) that
  differs from this student's and that the student cannot see in their own record;
- the expected part of a criterion's feedback ("expected ...") never states a value of the
  student's own answer key, in ``check()`` or in ``submit()``, and ``submit()`` says no more
  than ``check()`` said of the same work (docs/exercises.md, "What feedback may say").
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from ehr_sandbox import exercises
from ehr_sandbox.errors import SandboxError
from ehr_sandbox.exercises import Check, Criterion, Exercise, Hint, Scenario, Solution
from ehr_sandbox.exercises.clinics import fresh_clinic
from ehr_sandbox.exercises.people import declared_patients, declared_staff
from ehr_sandbox.exercises.variants import DEFAULT_SALT, Variant
from ehr_sandbox.session import Session

EXERCISES = sorted(exercises.catalog(as_frame=True)["id"])

MIN_TEXT = 6
"""Shortest free-text string treated as identifying (shorter ones are codes and words)."""

TEXTY = re.compile(r"[\s\d]")

FRAMEWORK_TRAPS = ("done-twice", "one-more-record", "changed-another-record")
"""Wrong solutions the framework adds to every exercise (the test picks a declared one)."""

STUDENT_CALLS = (
    "read",
    "vread",
    "history",
    "search",
    "chart",
    "find_patient",
    "create",
    "update",
    "write",
    "mark_entered_in_error",
    "correct",
    "amend",
    "addendum",
    "break_glass",
    "sign",
    "export",
    "deidentify",
    "transaction",
)


def student_of(exercise_id: str, salt: str = "") -> str:
    """One student per exercise, from its id (and ``salt`` for the second variant)."""
    digest = hashlib.sha256(f"{salt}{exercise_id}".encode()).hexdigest()
    return f"student-{int(digest[:8], 16) % 30:02d}"


def wrong_of(exercise: Any) -> str:
    """One declared wrong solution, chosen from the exercise id."""
    names = sorted(n for n in exercise.wrong_solutions if n not in FRAMEWORK_TRAPS) or sorted(
        exercise.wrong_solutions
    )
    return names[int(hashlib.sha256(exercise.id.encode()).hexdigest()[:8], 16) % len(names)]


def leaves(value: Any) -> Iterator[Any]:
    """Every scalar inside a JSON-like value."""
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from leaves(v)
    elif value is not None:
        yield value


def identifying(resource: dict[str, Any]) -> set[str]:
    """Identifying text of a record: its reference, its id, names and free text."""
    rid = str(resource.get("id", ""))
    out = {f"{resource.get('resourceType')}/{rid}"}
    if len(rid) >= MIN_TEXT:
        out.add(rid)
    for name in resource.get("name") or []:
        if isinstance(name, dict):
            given = " ".join(name.get("given") or [])
            if given and name.get("family"):
                out.add(f"{given} {name['family']}")
    for leaf in leaves(resource):
        if (
            isinstance(leaf, str)
            and len(leaf) >= MIN_TEXT
            and TEXTY.search(leaf)  # text and numbers, not a code word ("correct")
            and not leaf.startswith("http")
        ):
            out.add(leaf)
    return out


def corpus(sessions: list[Session]) -> set[str]:
    """What the student's sessions can read: the identifying text of every record they read
    (as they read it: masked where the role's view masks it) and every string in it."""
    seen: set[str] = set()
    for s in sessions:
        for rtype in s.readable_types():
            for r in s.resources(rtype):
                seen |= identifying(r)
                seen.update(str(v) for v in leaves(r))
    return seen


def student_sessions(att: Any) -> list[Session]:
    """The student's own sessions: the exercise's role and the people it declares."""
    sb = att.sandbox
    out = [sb.login(att.exercise.role)]
    out += [sb.login(name) for name in declared_staff(att.exercise)]
    out += [sb.login_patient(pid) for pid in declared_patients(att.exercise, att.facts)]
    return out


def written_since_setup(att: Any) -> set[str]:
    """Every string of every version written since setup: the student's own work."""
    mark = att._Attempt__derived.mark  # noqa: SLF001 - the test plays the instructor
    seen: set[str] = set()
    for v in att.sandbox.system_session().changes_since(mark.versions):
        seen |= identifying(v)
        seen.update(str(x) for x in leaves(v))
    return seen


def hidden_text(
    att: Any, own: str, seen: set[str], known: dict[tuple[Any, ...], frozenset[str]]
) -> set[str]:
    """Identifying text of what the grader reads and the student's sessions cannot (or read
    masked), minus anything the student can read anywhere (``seen``), wrote, or was told.

    ``known`` keeps the identifying text of records as setup left them (by type, id and
    version), for the next run on the same attempt; records written since setup are read anew.
    """
    mark = att._Attempt__derived.mark  # noqa: SLF001 - the test plays the instructor
    written = {
        (v.get("resourceType"), v.get("id"))
        for v in att.sandbox.system_session().changes_since(mark.versions)
    }
    grader = att.sandbox.system_session()
    out: set[str] = set()
    for rtype in grader.readable_types():
        for r in grader.resources(rtype):
            if (rtype, r.get("id")) in written:
                texts = frozenset(identifying(r))
            else:
                version = (rtype, r.get("id"), (r.get("meta") or {}).get("versionId"))
                if version not in known:
                    known[version] = frozenset(identifying(r))
                texts = known[version]
            out |= {t for t in texts if t not in seen and t not in own}
    return out


def found_in(texts: list[str], needles: set[str]) -> list[tuple[str, str]]:
    """(needle, text) pairs where a needle occurs in a text as a whole token."""
    hits = []
    everything = "\n".join(texts)
    for needle in sorted(n for n in needles if n in everything):
        pattern = re.compile(rf"(?<![\w/-]){re.escape(needle)}(?![\w-])")
        for text in texts:
            if pattern.search(text):
                hits.append((needle, text))
                break
    return hits


def derive(ex: Any, clinic: Any, variant: Variant) -> tuple[dict[str, Any], dict[str, Any]]:
    """Another variant's facts and answer, from its setup alone (no reference budget)."""
    out = ex.setup(clinic, variant)
    scenario = out if isinstance(out, Scenario) else Scenario(out)
    return json.loads(json.dumps(dict(scenario.facts), default=str)), json.loads(
        json.dumps(dict(scenario.answer), default=str)
    )


def facts_of(att: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    derived = att._Attempt__derived  # noqa: SLF001 - the test plays the instructor
    return derived.facts, derived.answer


def key_values(answer: dict[str, Any], public: str) -> set[str]:
    """The answer key's values a student could type (not facts they were told)."""
    out: set[str] = set()
    for v in leaves(answer):
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float) and abs(v) >= 10:
            text = f"{v:g}" if isinstance(v, float) else str(v)
        elif isinstance(v, str) and len(v) >= 4:
            text = v
        else:
            continue
        if text not in public:
            out.add(text)
    return out


def expected_part(feedback: str) -> str:
    m = re.search(r"; expected (.*?)(?: Rule of thumb:| Why it matters:|$)", feedback, re.S)
    return m.group(1) if m else ""


@pytest.fixture
def refusals(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Messages of every refusal raised at a session that is not the system account's."""
    said: list[str] = []

    def wrap(fn: Any) -> Any:
        @functools.wraps(fn)
        def call(self: Session, *a: Any, **k: Any) -> Any:
            try:
                return fn(self, *a, **k)
            except SandboxError as exc:
                if self.context.role_info.relationship != "bypass":
                    said.append(str(exc))
                raise

        return call

    for name in STUDENT_CALLS:
        if hasattr(Session, name):
            monkeypatch.setattr(Session, name, wrap(getattr(Session, name)))
    return said


def run(att: Any, solution: Any, refusals: list[str]) -> list[str]:
    """Apply a solution, then check, submit and take every hint; the texts the student got."""
    try:
        solution.apply(att)
    except SandboxError as exc:
        refusals.append(str(exc))
    practice = att.check()
    said = [practice.feedback]
    for _ in range(len(att.exercise.hints) + 1):
        said.append(att.hint(accept_cost=True))
    handed_in = att.submit()
    said.append(handed_in.feedback)
    # after submit the feedback says no more than check() said of the same work
    assert [c.feedback for c in handed_in.criteria] == [c.feedback for c in practice.criteria]
    return said


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_feedback_tells_only_what_the_student_may_know(
    exercise_id: str, refusals: list[str]
) -> None:
    ex = exercises.get(exercise_id)
    student = student_of(exercise_id)
    att = exercises.start(exercise_id, student)
    facts, answer = facts_of(att)
    own = json.dumps([facts, answer], sort_keys=True) + att.instructions
    keys = key_values(answer, json.dumps(facts) + att.instructions)
    problems: list[str] = []
    known: dict[tuple[Any, ...], frozenset[str]] = {}
    for label, solution in (("reference", ex.solution), (wrong_of(ex), None)):
        if solution is None:
            att.reset()
            solution = ex.wrong_solutions[label]
        refusals.clear()
        said = run(att, solution, refusals) + list(refusals)
        seen = corpus(student_sessions(att)) | written_since_setup(att)
        hidden = hidden_text(att, own, seen, known)
        for needle, text in found_in(said, hidden):
            problems.append(f"{label}: names {needle!r}, hidden from {ex.role}: {text[:300]}")
        for text in said:
            for line in text.splitlines():
                for key in sorted(keys):
                    if key in expected_part(line):
                        problems.append(f"{label}: 'expected' states the answer {key!r}: {line}")
        other_student = student_of(exercise_id, salt="other:")
        if other_student == student:
            other_student += "-b"
        if label == "reference":
            variant = Variant.of(DEFAULT_SALT, other_student, exercise_id)
            clinic = fresh_clinic(ex, variant)
            o_facts, o_answer = derive(ex, clinic, variant)
            clinic.close()
            theirs = {
                str(v)
                for v in leaves([o_facts, o_answer])
                if not isinstance(v, bool) and len(str(v)) >= MIN_TEXT
            }
            foreign = {v for v in theirs if v not in own and v not in seen}
        for needle, text in found_in(said, foreign):
            problems.append(
                f"{label}: states {needle!r} of {other_student}'s variant: {text[:300]}"
            )
    att.sandbox.close()
    assert not problems, f"{exercise_id} ({student}):\n  " + "\n  ".join(problems)


def test_a_grader_error_names_no_record_the_student_cannot_read() -> None:
    """A criterion whose grader read fails on a record hidden from the student's role: the
    framework's "could not be checked" feedback must not quote the grader's error (which names
    that record)."""

    def setup(sandbox: Any, variant: Any) -> Scenario:
        return Scenario({"n": variant.rng().randint(1, 9)})

    def grader_fails(ctx: Any) -> Any:
        student = ctx.sandbox.login(ctx.user.username)
        readable = set(student.readable_types())
        rtype = next(t for t in ctx.session.readable_types() if t not in readable)
        record = next(iter(ctx.session.resources(rtype)))
        hidden.update(record)
        ctx.session.vread(rtype, record["id"], 10**6)  # no such version: NotFound names it
        return Check(True, "it", "it")

    hidden: dict[str, Any] = {}
    ex = Exercise(
        id="test/grader-error",
        title="A grader that fails",
        topic="course",
        topics=("editing-records",),
        competencies=("I.P.1",),
        minutes=1,
        role="fd.smith",
        setup=setup,
        instructions="Do nothing ({n}).",
        criteria=(
            Criterion(
                "read fails",
                1,
                grader_fails,
                "A grader error stays the grader's.",
            ),
        ),
        expects=(),
        hints=(Hint("none"),),
        solution=Solution(lambda att: None),
        wrong_solutions={"w": Solution(lambda att: None, fails="read fails", message="x")},
        skip_traps=("done-twice", "one-more-record"),
    )
    exercises.register(ex, replace=True)
    try:
        att = exercises.start(ex.id, "alice")
        said = att.check().feedback
        att.sandbox.close()
    finally:
        exercises.unregister(ex.id)
    crit = said.splitlines()[1]
    assert "could not be checked" in crit, said
    assert hidden and not found_in([said], identifying(hidden)), said
