"""A student's attempt at an exercise: instructions, a session, check(), hint(), reset().

Policy (documented choice): an attempt over the assignment's attempt limit is **refused**
with :class:`~ehr_sandbox.errors.ExerciseError` before anything is graded; an attempt after
the due date is **graded, recorded and flagged** ``late=True`` (the gradebook leaves late
results out unless asked to count them).

>>> r = Result("demo/x", "alice", 1.0, 2.0, False,
...            [CriterionResult("a", 1.0, 1.0, True, "ok"), CriterionResult("b", 0.0, 1.0, False, "<b>x</b>")])
>>> "&lt;b&gt;" in r._repr_html_()
True
>>> Result.from_dict(r.to_dict()) == r
True
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ExerciseError, SandboxError
from ehr_sandbox.exercises import persistence
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Exercise
from ehr_sandbox.exercises.variants import Variant

if TYPE_CHECKING:
    from ehr_sandbox.exercises.course import Course

__all__ = ["Attempt", "CriterionResult", "Result", "build_sandbox"]

TAMPERED = "the record was tampered with"


@dataclass(frozen=True)
class CriterionResult:
    """One criterion's outcome: points earned out of max, and the feedback sentence(s).

    >>> CriterionResult("reason", 0.0, 1.0, False, "no reason found").passed
    False
    """

    name: str
    points: float
    max_points: float
    passed: bool
    feedback: str


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

    @property
    def feedback(self) -> str:
        """Plain-text feedback, one line per criterion."""
        lines = [
            f"{self.exercise_id} — {self.student}: {self.score:g}/{self.max_score:g} ({'passed' if self.passed else 'not passed'})"
        ]
        for c in self.criteria:
            lines.append(
                f"[{'x' if c.passed else ' '}] {c.name} ({c.points:g}/{c.max_points:g}): {c.feedback}"
            )
        if self.hint_penalty:
            lines.append(f"hints used: {self.hints_used} (-{self.hint_penalty:g})")
        return "\n".join(lines)

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
        data = dict(data)
        data["criteria"] = [CriterionResult(**c) for c in data.get("criteria", [])]
        return cls(**data)


def build_sandbox(exercise: Exercise, variant: Variant, path: str | Path | None = None) -> Any:
    """Generate the attempt's own small sandbox for this variant (file-backed if ``path``)."""
    from ehr_sandbox.sandbox import Sandbox  # late import: exercises sit above the session layer

    if path is None:  # a pre-built clinic copied from the on-disk cache (see clinic_cache)
        from ehr_sandbox.clinic_cache import generate_cached

        return generate_cached(
            patients=exercise.patients,
            seed=variant.sandbox_seed,
            reference_date=exercise.reference_date,
            years=exercise.years,
            population=exercise.population,
        )
    return Sandbox.generate(
        patients=exercise.patients,
        seed=variant.sandbox_seed,
        path=str(path) if path is not None else None,
        reference_date=exercise.reference_date,
        years=exercise.years,
        population=exercise.population,
    )


def _json_ready(facts: dict[str, Any], exercise_id: str) -> dict[str, Any]:
    if not isinstance(facts, dict):
        raise ExerciseError(
            f"exercise {exercise_id}: setup must return a dict of facts (found {type(facts).__name__})"
        )
    try:
        return json.loads(json.dumps(facts))
    except (TypeError, ValueError) as exc:
        raise ExerciseError(
            f"exercise {exercise_id}: setup facts must be JSON-serialisable ({exc})"
        ) from None


@dataclass
class Attempt:
    """A student's attempt (made by :func:`ehr_sandbox.exercises.start`).

    ``session`` is a Session logged in as the exercise's role; the student works through it.
    """

    exercise: Exercise
    variant: Variant
    sandbox: Any
    facts: dict[str, Any]
    course: Course | None = None
    path: str | None = None
    hints_used: list[int] = field(default_factory=list)
    _pristine: Any = field(default=None, repr=False)
    _owns_sandbox: bool = field(default=True, repr=False)
    _session: Any = field(default=None, repr=False)

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
    ) -> Attempt:
        """Build the sandbox (unless given), run the exercise's setup, remember the start state."""
        owns = sandbox is None
        if owns:
            if path is not None and Path(path).exists():
                raise ExerciseError(
                    f"path: {path} already exists; open it with exercises.open_attempt() or choose a new file"
                )
            sandbox = build_sandbox(exercise, variant, path)
        facts = _json_ready(exercise.setup(sandbox, variant), exercise.id)
        att = cls(
            exercise,
            variant,
            sandbox,
            facts,
            course=course,
            path=str(path) if path else None,
            _owns_sandbox=owns,
        )
        att._save_meta()
        # A file-backed attempt resets by regenerating its variant (deterministic), so it needs
        # no in-memory snapshot of the start state.
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
        """Rebuild an attempt from the metadata stored in its sandbox (see ``open_attempt``)."""
        meta = persistence.load_attempt_meta(sandbox, exercise.id, student)
        if meta is None:
            raise ExerciseError(
                f"sandbox {path or ''}: holds no exercise attempt (start one with exercises.start(..., path=))"
            )
        variant = Variant.of(meta["salt"], meta["student"], meta["exercise_id"])
        if variant.seed != meta.get("seed"):
            raise ExerciseError(
                f"sandbox {path or ''}: attempt metadata does not match its variant (edited?)"
            )
        return cls(
            exercise,
            variant,
            sandbox,
            meta["facts"],
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
                "salt": self.variant.salt,
                "seed": self.variant.seed,
                "facts": self.facts,
                "hints_used": self.hints_used,
                "course": self.course.name if self.course else None,
            },
        )

    # -- what the student sees --------------------------------------------------------------
    @property
    def student(self) -> str:
        """The student's id."""
        return self.variant.student

    @property
    def instructions(self) -> str:
        """Markdown instructions with this variant's names and values."""
        head = f"### {self.exercise.title}\n\n*You are logged in as `{self.exercise.role}`.*\n\n"
        return head + self.exercise.render_instructions(self.facts)

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
        for u in self.sandbox.users:
            if u.username == self.exercise.role:
                return u
        raise ExerciseError(
            f"exercise {self.exercise.id}: role user {self.exercise.role!r} is not a user of this sandbox"
        )

    def hint(self) -> str:
        """The next hint (recorded; it may cost points if the exercise says so)."""
        n = len(self.hints_used)
        if n >= len(self.exercise.hints):
            return "No more hints for this exercise: re-read the instructions and the feedback of check()."
        self.hints_used.append(n)
        self._save_meta()
        h = self.exercise.hints[n]
        cost = f" (costs {h.cost:g} point{'s' if h.cost != 1 else ''})" if h.cost else ""
        return f"Hint {n + 1}/{len(self.exercise.hints)}{cost}: {h.text}"

    @property
    def results(self) -> list[Result]:
        """Results of earlier checks of this attempt, oldest first."""
        return [
            Result.from_dict(r)
            for r in persistence.load_results(self.sandbox, self.exercise.id, self.student)
        ]

    @property
    def attempts_used(self) -> int:
        """How many times this student has checked this exercise (course records if any)."""
        if self.course is not None:
            return self.course.attempts_used(self.student, self.exercise.id)
        return persistence.attempt_count(self.sandbox, self.exercise.id, self.student)

    # -- grading ----------------------------------------------------------------------------
    def grade(self) -> tuple[list[CriterionResult], bool]:
        """Run the criteria without recording anything; returns (criteria results, tampered)."""
        verdict = self.sandbox.audit.verify()
        if not verdict.ok:
            where = (
                f" at entry {verdict.first_bad}"
                if getattr(verdict, "first_bad", None) is not None
                else ""
            )
            reason = f" ({verdict.reason})" if getattr(verdict, "reason", "") else ""
            msg = (
                f"{TAMPERED}: its audit trail does not verify{where}{reason}. A record whose history "
                "was altered cannot be trusted or graded (HIPAA 164.312(b)/(c): audit controls and integrity)."
            )
            return [
                CriterionResult(c.name, 0.0, float(c.points), False, msg)
                for c in self.exercise.criteria
            ], True
        # The grader reads as the sandbox's own system account unless the exercise names a user:
        # grading must see the whole record, not only what the student's role may see.
        grader = (
            self.sandbox.login(self.exercise.grader)
            if self.exercise.grader
            else self.sandbox.system_session("HOPERAT")
        )
        ctx = GradingContext(self.sandbox, grader, dict(self.facts), self.user, self.student)
        out: list[CriterionResult] = []
        for crit in self.exercise.criteria:
            try:
                chk = crit.run(ctx)
            except (
                SandboxError
            ) as exc:  # the record is in a state the grader cannot read: not passed
                out.append(
                    CriterionResult(
                        crit.name,
                        0.0,
                        float(crit.points),
                        False,
                        f"could not be checked: {exc}. Why it matters: {crit.why}",
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
                )
            )
        return out, False

    def check(self, *, at: datetime | None = None) -> Result:
        """Grade the current record state and audit trail; record and return the Result.

        Refused (ExerciseError) when the course assignment's attempt limit is used up;
        graded but flagged ``late`` after its due date.
        """
        used = self.attempts_used
        assignment = self.course.assignment(self.exercise.id) if self.course is not None else None
        if (
            assignment is not None
            and assignment.max_attempts is not None
            and used >= assignment.max_attempts
        ):
            raise ExerciseError(
                f"{self.exercise.id}: attempt limit reached: {self.student} has used {used} of "
                f"{assignment.max_attempts} attempts in course {self.course.name!r}; ask the instructor for more"  # type: ignore[union-attr]
            )
        when = at or (self.course.now() if self.course is not None else datetime.now(UTC))
        if when.tzinfo is None:
            raise ExerciseError(f"at: expected a timezone-aware datetime (found {when!r})")
        criteria, tampered = self.grade()
        earned = sum(c.points for c in criteria)
        penalty = sum(
            self.exercise.hints[i].cost for i in self.hints_used if i < len(self.exercise.hints)
        )
        max_score = self.exercise.max_score
        result = Result(
            exercise_id=self.exercise.id,
            student=self.student,
            score=0.0 if tampered else round(max(0.0, earned - penalty), 4),
            max_score=max_score,
            passed=(not tampered) and earned >= self.exercise.pass_fraction * max_score - 1e-9,
            criteria=criteria,
            tampered=tampered,
            hints_used=len(self.hints_used),
            hint_penalty=float(penalty),
            attempt=used + 1,
            checked_at=when.isoformat(),
            late=bool(assignment and assignment.due is not None and when > assignment.due),
        )
        persistence.append_result(self.sandbox, result.to_dict())
        if self.course is not None:
            self.course.record(result)
        return result

    # -- reset and files --------------------------------------------------------------------
    def reset(self) -> None:
        """Go back to this variant's start state exactly (results and hints used are kept)."""
        results = persistence.load_results(self.sandbox)
        if self._pristine is not None and self.path is None:
            fresh = self._pristine.copy()
        elif self._owns_sandbox:
            self.sandbox.close()
            if self.path is not None:
                from ehr_sandbox.sandbox import KEY_SUFFIX

                Path(self.path).unlink(missing_ok=True)
                Path(self.path + KEY_SUFFIX).unlink(missing_ok=True)
            fresh = build_sandbox(self.exercise, self.variant, self.path)
            facts = _json_ready(self.exercise.setup(fresh, self.variant), self.exercise.id)
            if facts != self.facts:
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
