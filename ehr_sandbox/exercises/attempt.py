"""A student's attempt at an exercise: instructions, a session, check(), submit(), hint(), reset().

- ``check()`` is practice: feedback only, never counted, never recorded in the course.
- ``submit()`` counts: refused once the assignment's attempt limit is used up; stamped by the
  course clock (the attempt's sandbox clock unless the course was given another clock; the
  student cannot pass a time); a submission after the due date is graded, recorded and
  flagged ``late=True`` (the gradebook shows late results and warns how many it left out).
- The expected answer fixed at setup (:class:`~ehr_sandbox.exercises.model.Scenario`) stays
  inside the attempt object and is never written to the attempt's file; ``att.facts`` is a
  read-only copy of what the student may see. In-process grades are self-reported
  (``graded_by="self"``); :meth:`Course.collect <ehr_sandbox.exercises.course.Course.collect>`
  re-derives the answer and re-grades hand-ins on the instructor's side.

>>> r = Result("demo/x", "alice", 1.0, 2.0, False,
...            [CriterionResult("a", 1.0, 1.0, True, "ok"), CriterionResult("b", 0.0, 1.0, False, "<b>x</b>")])
>>> "&lt;b&gt;" in r._repr_html_()
True
>>> Result.from_dict(r.to_dict()) == r
True
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ExerciseError, SandboxError
from ehr_sandbox.exercises import persistence
from ehr_sandbox.exercises.clinics import fresh_clinic
from ehr_sandbox.exercises.grading import GradingContext, SetupMark, event_kind
from ehr_sandbox.exercises.model import Exercise, Scenario
from ehr_sandbox.exercises.variants import Variant

if TYPE_CHECKING:
    from ehr_sandbox.exercises.course import Course

__all__ = [
    "Attempt",
    "CriterionResult",
    "Derived",
    "Result",
    "budget_patient",
    "create_counts",
    "derive",
    "grade_sandbox",
    "reference_budget",
    "unreadable_feedback",
    "withheld_feedback",
]

TAMPERED = "the record was tampered with"

LOGIN_KIND = "exercise-login"
"""Audit kind of a login as one of the exercise's other people (bookkeeping: not graded)."""


@dataclass(frozen=True)
class CriterionResult:
    """One criterion's outcome: points earned out of max, and the feedback sentence(s).

    ``withheld`` is set when the criterion graded the student's own hand-in: the feedback a
    student is given where grades count (the classroom server), which says whether it passed
    and what was expected but not which items of the hand-in are right or wrong (``feedback`` keeps the full text,
    for the instructor; see :meth:`Result.for_student`).

    >>> CriterionResult("reason", 0.0, 1.0, False, "no reason found").passed
    False
    """

    name: str
    points: float
    max_points: float
    passed: bool
    feedback: str
    withheld: str = ""


@dataclass(frozen=True)
class Result:
    """The outcome of ``Attempt.check()``.

    ``score`` is criterion points earned minus hint costs (never below 0); ``passed`` says
    whether the criteria met the exercise's pass mark and the audit trail verified.
    """

    exercise_id: str
    student: str
    score: float
    max_score: float
    passed: bool
    criteria: list[CriterionResult]
    tampered: bool = False
    hints_used: int = 0
    hint_penalty: float = 0.0
    attempt: int = 1
    checked_at: str = ""
    late: bool = False
    kind: str = "submission"
    graded_by: str = "self"
    flag: str = ""
    checks: int = 0

    @property
    def feedback(self) -> str:
        """Plain-text feedback, one line per criterion."""
        lines = [
            f"{self.exercise_id} — {self.student}: {self.score:g}/{self.max_score:g} ({'passed' if self.passed else 'not passed'})"
            + (
                " — practice, not counted (att.submit() hands in)"
                if self.kind == "practice"
                else ""
            )
        ]
        for c in self.criteria:
            lines.append(
                f"[{'x' if c.passed else ' '}] {c.name} ({c.points:g}/{c.max_points:g}): {c.feedback}"
            )
        if self.hint_penalty:
            lines.append(f"hints used: {self.hints_used} (-{self.hint_penalty:g})")
        return "\n".join(lines)

    def for_student(self) -> Result:
        """This result as a student is told it where grades count (the classroom server): a
        criterion that graded the student's hand-in says whether it passed and what was
        expected, never which of the handed-in items are right or wrong, so that checks cannot be used to find the
        answer item by item (the full feedback stays with the instructor).

        Examples
        --------
        >>> c = CriterionResult("list", 0.0, 2.0, False, "listed in error: Patient/p9",
        ...                     withheld="your hand-in does not match")
        >>> r = Result("reports/x", "ann", 0.0, 2.0, False, [c])
        >>> r.for_student().criteria[0].feedback
        'your hand-in does not match'
        >>> "p9" in str(r.for_student().to_dict()), "p9" in r.feedback
        (False, True)
        """
        shown = [
            replace(c, feedback=c.withheld, withheld="") if c.withheld else c for c in self.criteria
        ]
        return replace(self, criteria=shown)

    def failed(self) -> list[CriterionResult]:
        """The criteria that did not pass."""
        return [c for c in self.criteria if not c.passed]

    def criterion(self, name: str) -> CriterionResult:
        """The result of the criterion called ``name``."""
        for c in self.criteria:
            if c.name == name:
                return c
        raise ExerciseError(
            f"result: no criterion named {name!r} (criteria: {[c.name for c in self.criteria]})"
        )

    def __str__(self) -> str:
        return self.feedback

    def __repr__(self) -> str:
        from ehr_sandbox.display.reprs import result_text

        return result_text(self)

    def _repr_html_(self) -> str:
        head = html.escape(f"{self.exercise_id} — {self.student}")
        status = "passed" if self.passed else "not passed"
        color = "#1b7f3a" if self.passed else "#b00020"
        rows = "".join(
            "<tr><td>{}</td><td>{}</td><td>{:g}/{:g}</td><td>{}</td></tr>".format(
                "✔" if c.passed else "✘",
                html.escape(c.name),
                c.points,
                c.max_points,
                html.escape(c.feedback),
            )
            for c in self.criteria
        )
        extra = ""
        if self.hint_penalty:
            extra = f"<p>Hints used: {self.hints_used} (−{self.hint_penalty:g} points)</p>"
        if self.late:
            extra += "<p>Submitted after the due date (flagged late).</p>"
        return (
            f"<div><p><b>{head}</b>: <span style='color:{color}'>{self.score:g} / {self.max_score:g} — {status}</span></p>"
            f"<table><tr><th></th><th>Criterion</th><th>Points</th><th>Feedback</th></tr>{rows}</table>{extra}</div>"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what persistence and the course store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """Inverse of :meth:`to_dict`."""
        known = set(cls.__dataclass_fields__)
        data = {k: v for k, v in dict(data).items() if k in known}
        data["criteria"] = [CriterionResult(**c) for c in data.get("criteria", [])]
        return cls(**data)


@dataclass(frozen=True)
class Derived:
    """What setup fixed for one variant: public facts, the answer, protected refs, the mark,
    and the budget of the reference solution (:func:`create_counts`): how many records of each
    type it creates on each patient (``"Type|patient id"`` -> count) and which records that
    existed at setup it changes (``"changed|Type/id"`` -> 1); None when it could not be measured."""

    facts: dict[str, Any]
    answer: dict[str, Any]
    protect: tuple[str, ...]
    mark: SetupMark
    budget: dict[str, int] | None = None


CHANGED = "changed|"
"""Budget key prefix of a record that existed at setup and the reference solution changes."""

NEW_PATIENT = "new-patient-"
"""Budget name of a patient registered since setup (``new-patient-1`` for the first)."""


def budget_patient(pid: str, registered: list[str]) -> str:
    """The budget's name for patient ``pid``: its id, or ``new-patient-<n>`` when it is the
    n-th patient registered since setup (``registered``, in order). A new record's id is not
    the same in the reference's run and the student's (random in an encrypted sandbox), so
    the budget counts a new patient's records by when the patient was registered.

    >>> budget_patient("p7", ["x1", "p7"]), budget_patient("p1", ["x1"])
    ('new-patient-2', 'p1')
    """
    if pid and pid in registered:
        return f"{NEW_PATIENT}{registered.index(pid) + 1}"
    return pid


def create_counts(versions: list[dict[str, Any]]) -> dict[str, int]:
    """The work in ``versions`` (written after setup): records created per
    ``"Type|patient id"``, and ``"changed|Type/id"`` for each record that existed before and
    was changed (Provenance is the EHR's own).

    >>> create_counts([{"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p"},
    ...                 "meta": {"versionId": "1"}}, {"resourceType": "Provenance", "meta": {"versionId": "1"}},
    ...                {"resourceType": "Slot", "id": "s", "meta": {"versionId": "3"}}])
    {'Observation|p': 1, 'changed|Slot/s': 1}
    """
    from ehr_sandbox.access import patient_of

    out: dict[str, int] = {}
    firsts = [v for v in versions if str((v.get("meta") or {}).get("versionId", "")) == "1"]
    new = {f"{v.get('resourceType')}/{v.get('id')}" for v in firsts}
    registered = [str(v.get("id")) for v in firsts if v.get("resourceType") == "Patient"]
    for v in versions:
        rtype = v.get("resourceType", "")
        if rtype == "Provenance":
            continue
        ref = f"{rtype}/{v.get('id')}"
        if str((v.get("meta") or {}).get("versionId", "")) == "1":
            key = f"{rtype}|{budget_patient(patient_of(v) or '', registered)}"
            out[key] = out.get(key, 0) + 1
        elif ref not in new:
            out[CHANGED + ref] = 1
    return dict(sorted(out.items()))


def reference_budget(
    exercise: Exercise, sandbox: Any, variant: Variant, derived: Derived
) -> dict[str, int] | None:
    """Run the reference solution, and each of the exercise's ``alternatives``, on a copy of
    the sandbox as setup left it and measure their work (see :func:`create_counts`): the most
    records a student's work may create per type and patient (the largest count any of them
    creates), and the records that existed at setup any of them changes. None when the
    sandbox cannot be copied or the reference cannot run there (an alternative that cannot
    run adds nothing)."""
    copy_fn = getattr(sandbox, "copy", None)
    if not callable(copy_fn):
        return None
    budget: dict[str, int] = {}
    for i, solution in enumerate((exercise.solution, *exercise.alternatives)):
        twin = copy_fn()
        try:
            att = Attempt(exercise, variant, twin, derived, owns_sandbox=False)
            try:
                solution.apply(att)
            except (SandboxError, ExerciseError):
                if i == 0:
                    return None
                continue
            counts = create_counts(twin.system_session().changes_since(derived.mark.versions))
        finally:
            twin.close()
        for key, n in counts.items():
            budget[key] = max(budget.get(key, 0), n)
    return dict(sorted(budget.items()))


def _json_ready(value: Any, exercise_id: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ExerciseError(
            f"exercise {exercise_id}: setup {what} must be a dict (found {type(value).__name__})"
        )
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ExerciseError(
            f"exercise {exercise_id}: setup {what} must be JSON-serialisable ({exc})"
        ) from None


def derive(exercise: Exercise, sandbox: Any, variant: Variant) -> Derived:
    """Run the exercise's setup on ``sandbox`` and fix the scenario (facts, answer, mark)."""
    out = exercise.setup(sandbox, variant)
    scenario = out if isinstance(out, Scenario) else Scenario(out)
    facts = _json_ready(
        dict(scenario.facts)
        if isinstance(scenario.facts, dict | MappingProxyType)
        else scenario.facts,
        exercise.id,
        "facts",
    )
    answer = _json_ready(dict(scenario.answer), exercise.id, "answer")
    clash = sorted(set(facts) & set(answer))
    if clash:
        raise ExerciseError(
            f"exercise {exercise.id}: setup: keys {clash} are both public facts and answer; keep the answer apart"
        )
    mark = SetupMark(sandbox.audit.count(), sandbox.system_session().change_mark())
    derived = Derived(facts, answer, scenario.protect, mark)
    budget = reference_budget(exercise, sandbox, variant, derived)
    return Derived(facts, answer, scenario.protect, mark, budget)


def setup_digest(sandbox: Any, mark: SetupMark) -> str:
    """A fingerprint of the record as setup left it (every version up to the mark)."""
    h = hashlib.sha256()
    for v in sandbox.system_session().changes_since(0, until=mark.versions):
        h.update(json.dumps(v, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def _tamper_message(verdict: Any) -> str:
    where = (
        f" at entry {verdict.first_bad}" if getattr(verdict, "first_bad", None) is not None else ""
    )
    reason = f" ({verdict.reason})" if getattr(verdict, "reason", "") else ""
    return (
        f"{TAMPERED}: its audit trail does not verify{where}{reason}. A record whose history "
        "was altered cannot be trusted or graded (HIPAA 164.312(b)/(c): audit controls and integrity)."
    )


def unreadable_feedback(exc: SandboxError, why: str) -> str:
    """Feedback for a criterion whose grader read failed: the kind of error, never its message.

    The grader reads through the system account, so its error may name any record (one the
    student's role cannot read, another patient's); the student is told what kind of failure
    it was and where to look with their own session (docs/exercises.md, "What feedback may
    say").

    Examples
    --------
    >>> from ehr_sandbox.errors import NotFound
    >>> text = unreadable_feedback(NotFound("Observation/secret-1 was not found"), "Why.")
    >>> "secret-1" in text, text.startswith("could not be checked (NotFound)")
    (False, True)
    """
    return (
        f"could not be checked ({type(exc).__name__}): the record is in a state the grader "
        "cannot read; read what you wrote through att.session to see what is wrong. "
        f"Why it matters: {why}"
    )


def withheld_feedback(passed: bool, expected: str, why: str) -> str:
    """The feedback a student gets on the classroom server for a criterion that graded their
    hand-in: whether it met the criterion, what was expected and why, never which handed-in
    items are right or wrong (a passed criterion's full text can name items of the answer).

    >>> withheld_feedback(False, "the patients due", "Vaccines protect.")[:40]
    'your hand-in does not match the answer y'
    >>> withheld_feedback(True, "the patients due", "Vaccines protect.")
    'your hand-in meets this criterion: expected the patients due. Why it matters: Vaccines protect.'
    """
    if passed:
        return f"your hand-in meets this criterion: expected {expected}. Why it matters: {why}"
    return (
        f"your hand-in does not match the answer yet; expected {expected}. Which items of "
        "a hand-in are right or wrong is not shown here (a check must not be a way to find "
        "the answer): rework the query or the review, compare its result with what the "
        f"instructions ask, and hand in again. Why it matters: {why}"
    )


def grade_sandbox(
    exercise: Exercise, sandbox: Any, derived: Derived, student: str
) -> tuple[list[CriterionResult], bool]:
    """Run every criterion against ``sandbox`` with the scenario fixed at setup.

    Returns (criteria results, tampered). Used by attempts (self-reported grading) and by the
    instructor side (``Course.collect``), which passes the re-derived scenario.
    """
    verdict = sandbox.audit.verify()
    if not verdict.ok:
        msg = _tamper_message(verdict)
        return [
            CriterionResult(c.name, 0.0, float(c.points), False, msg) for c in exercise.criteria
        ], True
    # The grader reads as the sandbox's own system account unless the exercise names a user:
    # grading must see the whole record, not only what the student's role may see.
    grader = (
        sandbox.login(exercise.grader) if exercise.grader else sandbox.system_session("HOPERAT")
    )
    user = sandbox.user(exercise.role)
    ctx = GradingContext(
        sandbox,
        grader,
        copy.deepcopy(derived.facts),
        user,
        student,
        answer=copy.deepcopy(derived.answer),
        mark=derived.mark,
        protect=derived.protect,
        exercise=exercise,
        budget=derived.budget,
    )
    out: list[CriterionResult] = []
    for crit in exercise.criteria:
        ctx.read_hand_in = False
        try:
            chk = crit.run(ctx)
        except SandboxError as exc:  # the record is in a state the grader cannot read
            out.append(
                CriterionResult(
                    crit.name, 0.0, float(crit.points), False, unreadable_feedback(exc, crit.why)
                )
            )
            continue
        text = f"found {chk.found}; expected {chk.expected}."
        if chk.advice:
            text += f" Rule of thumb: {chk.advice}."
        text += f" Why it matters: {crit.why}"
        out.append(
            CriterionResult(
                crit.name,
                float(crit.points) if chk.passed else 0.0,
                float(crit.points),
                chk.passed,
                text,
                withheld=withheld_feedback(chk.passed, chk.expected, crit.why)
                if ctx.read_hand_in
                else "",
            )
        )
    return out, False


def hint_penalty(exercise: Exercise, used: int) -> float:
    """Points the first ``used`` hints cost."""
    return float(sum(h.cost for h in exercise.hints[:used]))


def score_result(
    exercise: Exercise,
    student: str,
    criteria: list[CriterionResult],
    tampered: bool,
    *,
    hints_used: int,
    **extra: Any,
) -> Result:
    """Assemble a Result from graded criteria (hint costs lower the score, not the pass)."""
    earned = sum(c.points for c in criteria)
    penalty = hint_penalty(exercise, hints_used)
    max_score = exercise.max_score
    return Result(
        exercise_id=exercise.id,
        student=student,
        score=0.0 if tampered else round(max(0.0, earned - penalty), 4),
        max_score=max_score,
        passed=(not tampered) and earned >= exercise.pass_fraction * max_score - 1e-9,
        criteria=criteria,
        tampered=tampered,
        hints_used=hints_used,
        hint_penalty=penalty,
        **extra,
    )


def hint_events(sandbox: Any, role: str) -> int:
    """How many hints the audit trail shows were taken in this sandbox."""
    return sum(1 for e in sandbox.audit.events(user=role) if event_kind(e) == "exercise-hint")


class Attempt:
    """A student's attempt (made by :func:`ehr_sandbox.exercises.start`).

    ``session`` is a Session logged in as the exercise's role; the student works through it.
    ``facts`` is a read-only copy of what the student may see; the expected answer is not
    reachable through the attempt's public attributes nor stored in its file.
    """

    def __init__(
        self,
        exercise: Exercise,
        variant: Variant,
        sandbox: Any,
        derived: Derived,
        *,
        course: Course | None = None,
        path: str | None = None,
        hints_used: list[int] | None = None,
        owns_sandbox: bool = True,
    ) -> None:
        self.exercise = exercise
        self.variant = variant
        self.sandbox = sandbox
        self.path = path
        self.hints_used: list[int] = list(hints_used or [])
        self.__derived = derived
        self.__course = course
        self._owns_sandbox = owns_sandbox
        self._pristine: Any = None
        self._session: Any = None

    # -- creation ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        exercise: Exercise,
        variant: Variant,
        *,
        sandbox: Any = None,
        path: str | Path | None = None,
        course: Course | None = None,
        derived: Derived | None = None,
    ) -> Attempt:
        """Copy the variant's pre-built clinic (unless a sandbox is given), run setup, remember
        the start state.

        ``derived`` is the scenario when setup already ran on ``sandbox`` (the classroom server
        runs setup once, keeps the scenario in its own database and reopens the attempt from
        its file on any worker)."""
        if derived is not None and sandbox is None:
            raise ExerciseError("derived: give the sandbox setup ran on with it")
        owns = sandbox is None
        if owns:
            if path is not None and Path(path).exists():
                raise ExerciseError(
                    f"path: {path} already exists; open it with exercises.open_attempt() or choose a new file"
                )
            sandbox = fresh_clinic(exercise, variant, path)
        if derived is None:
            derived = derive(exercise, sandbox, variant)
        att = cls(
            exercise,
            variant,
            sandbox,
            derived,
            course=course,
            path=str(path) if path else None,
            owns_sandbox=owns,
        )
        att._save_meta()
        # A file-backed attempt resets by re-copying its clinic and re-running setup.
        if path is None and getattr(sandbox, "path", None) is None:
            att._pristine = sandbox.copy()
        return att

    @classmethod
    def from_sandbox(
        cls,
        sandbox: Any,
        exercise: Exercise,
        *,
        course: Course | None = None,
        path: str | None = None,
        student: str | None = None,
    ) -> Attempt:
        """Rebuild an attempt from its sandbox (see ``open_attempt``): the scenario is
        re-derived from a fresh copy of the variant's clinic, never read back from the file."""
        meta = persistence.load_attempt_meta(sandbox, exercise.id, student)
        if meta is None:
            raise ExerciseError(
                f"sandbox {path or ''}: holds no exercise attempt (start one with exercises.start(..., path=))"
            )
        try:
            variant = Variant(meta["student"], meta["exercise_id"], int(meta["seed"]))
        except (KeyError, TypeError, ValueError):
            raise ExerciseError(
                f"sandbox {path or ''}: attempt metadata is incomplete (edited?)"
            ) from None
        if course is not None and course.variant(variant.student, exercise.id).seed != variant.seed:
            raise ExerciseError(
                f"sandbox {path or ''}: this attempt was not started in course {course.name!r}"
            )
        reference = fresh_clinic(exercise, variant)
        try:
            derived = derive(exercise, reference, variant)
        finally:
            reference.close()
        if derived.facts != meta.get("facts") or derived.mark.to_dict() != meta.get("mark"):
            raise ExerciseError(
                f"sandbox {path or ''}: the attempt's facts do not match its variant (edited?)"
            )
        return cls(
            exercise,
            variant,
            sandbox,
            derived,
            course=course,
            path=path,
            hints_used=list(meta.get("hints_used", [])),
        )

    def _save_meta(self) -> None:
        persistence.save_attempt_meta(
            self.sandbox,
            {
                "exercise_id": self.exercise.id,
                "student": self.variant.student,
                "seed": self.variant.seed,
                "facts": self.__derived.facts,
                "mark": self.__derived.mark.to_dict(),
                "hints_used": self.hints_used,
                "course": self.course.name if self.course else None,
            },
        )

    # -- what the student sees --------------------------------------------------------------
    @property
    def course(self) -> Course | None:
        """The course this attempt belongs to (read-only: course rules are kept by the course)."""
        return self.__course

    @property
    def facts(self) -> MappingProxyType[str, Any]:
        """A read-only copy of this variant's public facts (names and values in the instructions)."""
        return MappingProxyType(copy.deepcopy(self.__derived.facts))

    @property
    def student(self) -> str:
        """The student's id."""
        return self.variant.student

    @property
    def exercise_id(self) -> str:
        """The exercise's id (as a remote attempt has it: hand-ins name their exercise by it).

        >>> from types import SimpleNamespace as NS
        >>> Attempt.exercise_id.fget(NS(exercise=NS(id="records/correction")))
        'records/correction'
        """
        return self.exercise.id

    @property
    def instructions(self) -> str:
        """Markdown instructions with this variant's names and values."""
        head = f"### {self.exercise.title}\n\n*You are logged in as `{self.exercise.role}`.*\n\n"
        return head + self.exercise.render_instructions(self.__derived.facts)

    def _repr_markdown_(self) -> str:
        return self.instructions

    @property
    def session(self) -> Any:
        """A Session logged in as the exercise's role (the student's hands in the EHR)."""
        if self._session is None:
            self._session = self.sandbox.login(self.exercise.role)
        return self._session

    @property
    def user(self) -> Any:
        """The sandbox user the student works as."""
        return self.sandbox.user(self.exercise.role)

    # -- the exercise's other people --------------------------------------------------------
    def login(self, username: str) -> Any:
        """A Session as one of the exercise's other people (a colleague the task needs: the
        front-desk hire who tries a policy, the privacy officer who reviews an override).

        Only the staff the exercise declares (``exercise.actors``) may be logged in as; the
        login is recorded in the attempt's audit trail (``exercise-login``, as the student's
        user). What that person does is graded as theirs, never as the student's.

        Parameters
        ----------
        username : str
            One of the exercise's people (the instructions name them).

        Returns
        -------
        Session

        Raises
        ------
        AccessDenied
            Anyone else (the student's own role, the instructor, an administrator, any other
            user): the message names who may be logged in as.

        Examples
        --------
        >>> from types import SimpleNamespace as NS
        >>> ex = NS(id="demo/x", role="dr.okafor", actors=("po.wilson",))
        >>> Attempt.login(NS(exercise=ex, facts={}), "dr.okafor")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.AccessDenied: demo/x: login: username: expected one of the exercise's people: po.wilson (found 'dr.okafor'); you already work as dr.okafor (att.session)
        """
        from ehr_sandbox.exercises.people import person_login

        name = person_login(self.exercise, self.facts, username=username)
        self.sandbox.record_framework_action(self.exercise.role, LOGIN_KIND, detail=name)
        return self.sandbox.login(name)

    def login_patient(self, patient_id: str) -> Any:
        """A portal Session of the patient the exercise names (the patient who signs a form
        at the kiosk), their own record only.

        Parameters
        ----------
        patient_id : str
            The patient's id (``p1`` or ``Patient/p1``), as the instructions give it.

        Returns
        -------
        Session

        Raises
        ------
        AccessDenied
            Any other patient, or an exercise that names none.

        Examples
        --------
        >>> from types import SimpleNamespace as NS
        >>> ex = NS(id="demo/x", role="billing.ng", actors=("patient:patient_id",))
        >>> Attempt.login_patient(NS(exercise=ex, facts={"patient_id": "p1"}), "p2")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.AccessDenied: demo/x: login_patient: patient: expected the patient this exercise names (Patient/p1) (found 'p2')
        """
        from ehr_sandbox.exercises.people import person_login

        name = person_login(self.exercise, self.facts, patient=patient_id)
        self.sandbox.record_framework_action(self.exercise.role, LOGIN_KIND, detail=name)
        return self.sandbox.login_patient(name.split("/", 1)[1])

    # -- hints ------------------------------------------------------------------------------
    def _hints_taken(self) -> int:
        taken = len(self.hints_used)
        if self.course is not None:
            taken = max(taken, self.course.hints_taken(self.student, self.exercise.id))
        return taken

    def hint_cost(self) -> float | None:
        """What the next hint costs in points (None when there are no more hints)."""
        n = self._hints_taken()
        return self.exercise.hints[n].cost if n < len(self.exercise.hints) else None

    def hint(self, *, accept_cost: bool = False) -> str:
        """The next hint. A hint that costs points is only given with ``accept_cost=True``;
        without it you are told the cost first. Hints taken are recorded (audit trail, course).
        """
        n = self._hints_taken()
        total = len(self.exercise.hints)
        if n >= total:
            return "No more hints for this exercise: re-read the instructions and the feedback of check()."
        h = self.exercise.hints[n]
        cost = f"{h.cost:g} point{'s' if h.cost != 1 else ''}"
        if h.cost and not accept_cost:
            return (
                f"Hint {n + 1}/{total} costs {cost} off your score. "
                "Call att.hint(accept_cost=True) to take it."
            )
        self.hints_used.append(n)
        self._save_meta()
        self.sandbox.record_framework_action(self.exercise.role, "exercise-hint", detail=str(n))
        if self.course is not None:
            self.course.record_hint(self.student, self.exercise.id, n)
        paid = f" (cost {cost})" if h.cost else ""
        return f"Hint {n + 1}/{total}{paid}: {h.text}"

    # -- results ----------------------------------------------------------------------------
    @property
    def results(self) -> list[Result]:
        """Results of earlier checks and submissions of this attempt, oldest first."""
        return [
            Result.from_dict(r)
            for r in persistence.load_results(self.sandbox, self.exercise.id, self.student)
        ]

    @property
    def attempts_used(self) -> int:
        """How many submissions count against the attempt limit (the course's record if any)."""
        if self.course is not None:
            return self.course.attempts_used(self.student, self.exercise.id)
        return sum(1 for r in self.results if r.kind == "submission")

    # -- grading ----------------------------------------------------------------------------
    def grade(self) -> tuple[list[CriterionResult], bool]:
        """Run the criteria without recording anything; returns (criteria results, tampered)."""
        return grade_sandbox(self.exercise, self.sandbox, self.__derived, self.student)

    def _now(self) -> datetime:
        if self.course is not None:
            return self.course.now(self.sandbox)
        clock = self.sandbox.clock
        return clock.peek() if hasattr(clock, "peek") else clock()

    def _checks_used(self) -> int:
        local = sum(1 for r in self.results if r.kind == "practice")
        if self.course is not None:
            return max(local, self.course.checks_used(self.student, self.exercise.id))
        return local

    def check(self) -> Result:
        """Practice: grade the current work and return feedback. Never counts toward the grade
        and never uses up an attempt (see :meth:`submit`), but every check is recorded (the
        audit trail's ``exercise-check``, the course's count, which the instructor sees with
        each submission) and an assignment's ``max_checks`` limits them (ExerciseError).
        """
        assignment = self.course.assignment(self.exercise.id) if self.course is not None else None
        used = self._checks_used()
        if (
            assignment is not None
            and assignment.max_checks is not None
            and used >= assignment.max_checks
        ):
            raise ExerciseError(
                f"{self.exercise.id}: check limit reached: {self.student} has used {used} of "
                f"{assignment.max_checks} practice checks in course {self.course.name!r}; "  # type: ignore[union-attr]
                "read the feedback you have, or submit"
            )
        criteria, tampered = self.grade()
        when = self._now()
        result = score_result(
            self.exercise,
            self.student,
            criteria,
            tampered,
            hints_used=self._hints_taken(),
            attempt=0,
            checked_at=when.isoformat(),
            kind="practice",
            checks=used + 1,
        )
        self.sandbox.record_framework_action(
            self.exercise.role,
            "exercise-check",
            detail=json.dumps({"check": used + 1, "at": when.isoformat()}),
        )
        persistence.append_result(self.sandbox, result.to_dict())
        if self.course is not None:
            self.course.record_check(self.student, self.exercise.id)
        return result

    def submit(self) -> Result:
        """Hand in: grade, count against the attempt limit, stamp with the course clock.

        Refused (ExerciseError) once the assignment's attempt limit is used up; graded but
        flagged ``late`` after its due date.
        """
        assignment = self.course.assignment(self.exercise.id) if self.course is not None else None
        used = self.attempts_used
        if (
            assignment is not None
            and assignment.max_attempts is not None
            and used >= assignment.max_attempts
        ):
            raise ExerciseError(
                f"{self.exercise.id}: attempt limit reached: {self.student} has used {used} of "
                f"{assignment.max_attempts} attempts in course {self.course.name!r}; ask the instructor for more"  # type: ignore[union-attr]
            )
        when = self._now()
        criteria, tampered = self.grade()
        result = score_result(
            self.exercise,
            self.student,
            criteria,
            tampered,
            hints_used=self._hints_taken(),
            attempt=used + 1,
            checked_at=when.isoformat(),
            late=bool(assignment and assignment.due is not None and when > assignment.due),
            kind="submission",
            graded_by="self",
            checks=self._checks_used(),
        )
        self.sandbox.record_framework_action(
            self.exercise.role,
            "exercise-submit",
            detail=json.dumps({"attempt": used + 1, "at": when.isoformat()}),
        )
        persistence.append_result(self.sandbox, result.to_dict())
        if self.course is not None:
            self.course.record(result)
        return result

    # -- reset and files --------------------------------------------------------------------
    def reset(self, *, into: Any = None) -> None:
        """Go back to this variant's start state exactly (results, hints used and checks made
        are kept, on the audit trail too).

        ``into`` is a copy of this attempt's start state, setup done (the classroom server
        keeps one as an encrypted file and passes a new copy of it).
        """
        results = persistence.load_results(self.sandbox)
        if into is not None:
            fresh = into
        elif self._pristine is not None and self.path is None:
            fresh = self._pristine.copy()
        elif self._owns_sandbox:
            self.sandbox.close()
            if self.path is not None:
                from ehr_sandbox.sandbox import KEY_SUFFIX

                Path(self.path).unlink(missing_ok=True)
                Path(self.path + KEY_SUFFIX).unlink(missing_ok=True)
            fresh = fresh_clinic(self.exercise, self.variant, self.path)
            again = derive(self.exercise, fresh, self.variant)
            if again != self.__derived:
                raise ExerciseError(
                    f"{self.exercise.id}: reset produced a different scenario (setup is not deterministic)"
                )
        else:
            raise ExerciseError(f"{self.exercise.id}: this attempt has no start state to reset to")
        if self._owns_sandbox and self.sandbox is not fresh and self.path is None:
            self.sandbox.close()
        self.sandbox = fresh
        self._session = None
        self._save_meta()
        persistence.replace_results(self.sandbox, results)
        for n in self.hints_used:  # hints taken stay on the record after a reset
            self.sandbox.record_framework_action(
                self.exercise.role, "exercise-hint", detail=str(n), replay=True
            )
        practice = [
            r
            for r in results
            if r.get("kind") == "practice"
            and (r.get("exercise_id"), r.get("student")) == (self.exercise.id, self.student)
        ]
        for n, r in enumerate(practice, 1):  # and so do the checks made
            self.sandbox.record_framework_action(
                self.exercise.role,
                "exercise-check",
                detail=json.dumps({"check": n, "at": r.get("checked_at", "")}),
                replay=True,
            )

    def save(self, path: str | Path) -> Path:
        """Write this attempt's sandbox to a file that ``exercises.open_attempt`` and the CLI read."""
        target = Path(path)
        if target.exists():
            raise ExerciseError(f"path: {target} already exists; choose a new file name")
        for method in ("save", "backup"):
            fn = getattr(self.sandbox, method, None)
            if callable(fn):
                fn(str(target))
                return target
        raise ExerciseError(
            "save: this sandbox cannot be written to a file; start the attempt with "
            "exercises.start(..., path='alice.db') instead"
        )

    def __repr__(self) -> str:
        return f"<Attempt {self.exercise.id} student={self.student!r} hints={len(self.hints_used)}>"
