"""The declarative shape of an exercise: what it sets up, asks, grades and hints.

An instructor can define a new exercise in a notebook cell and ``register()`` it, or put it in
a ``.py`` file of their course folder (see :func:`ehr_sandbox.exercises.registry.load_file`).

>>> ex = Exercise(
...     id="demo/hello",
...     title="Say hello",
...     topic="demo",
...     competencies=("X.P.3",),
...     minutes=5,
...     role="ma.garcia",
...     setup=lambda sandbox, variant: {"name": "Ada"},
...     instructions="Greet **{name}**.",
...     criteria=(Criterion("greeted", 1, lambda ctx: (True, "a greeting", "a greeting"), "Courtesy matters."),),
...     solution=Solution(lambda att: None),
... )
>>> ex.max_score   # 1 point + the framework's 2-point "no collateral damage" criterion
3.0
>>> ex.criteria[-1].name
'no collateral damage'
>>> ex.render_instructions({"name": "Ada"})
'Greet **Ada**.'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.competencies import exam_areas, require_known
from ehr_sandbox.exercises.topics import require_topics
from synthetic.systems import SANDBOX_EXT_NOTE

if TYPE_CHECKING:
    from ehr_sandbox.exercises.attempt import Attempt
    from ehr_sandbox.exercises.grading import GradingContext
    from ehr_sandbox.exercises.variants import Variant

__all__ = ["COLLATERAL", "Check", "Criterion", "Exercise", "Expect", "Hint", "Scenario", "Solution"]

COLLATERAL = "no collateral damage"
"""Name of the criterion the framework adds to every exercise."""

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)+$")


class Check(NamedTuple):
    """What a criterion's check found: passed, what was found, what was expected, advice.

    ``advice`` is the short rule of thumb shown for the typical mistake (e.g. "never delete;
    void with a reason").

    >>> Check(False, "no reason", "a reason", "a correction needs a reason").passed
    False
    """

    passed: bool
    found: str
    expected: str
    advice: str = ""


CheckFn = Callable[["GradingContext"], "Check | tuple[bool, str, str] | tuple[bool, str, str, str]"]


@dataclass(frozen=True)
class Criterion:
    """One graded point of an exercise.

    ``check(ctx)`` returns ``(passed, found, expected)`` or a :class:`Check`; ``why`` is one
    sentence of the rule it enforces (HIPAA section, documentation standard, competency).

    >>> c = Criterion("reason given", 2, lambda ctx: (False, "no reason", "a reason"), "Corrections carry a reason.")
    >>> c.run(None)
    Check(passed=False, found='no reason', expected='a reason', advice='')
    """

    name: str
    points: float
    check: CheckFn
    why: str

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ExerciseError(f"criterion: name must be a non-empty string (found {self.name!r})")
        if not isinstance(self.points, int | float) or self.points <= 0:
            raise ExerciseError(
                f"criterion {self.name!r}: points must be a positive number (found {self.points!r})"
            )
        if not self.why:
            raise ExerciseError(f"criterion {self.name!r}: why must say which rule it enforces")

    def run(self, ctx: GradingContext | None) -> Check:
        """Run the check and normalise its answer to a :class:`Check`."""
        out = self.check(ctx)  # type: ignore[arg-type]
        if isinstance(out, Check):
            return out
        if isinstance(out, tuple) and len(out) in (3, 4):
            return Check(
                bool(out[0]), str(out[1]), str(out[2]), str(out[3]) if len(out) == 4 else ""
            )
        raise ExerciseError(
            f"criterion {self.name!r}: check must return (passed, found, expected[, advice]) (found {out!r})"
        )


@dataclass(frozen=True)
class Scenario:
    """What an exercise's setup fixes: public ``facts``, the instructor-side ``answer`` and the
    records the answer depends on (``protect``).

    ``facts`` fill the instructions and are what ``att.facts`` shows. ``answer`` (expected
    outcome, traps) is never shown to the student nor stored in the hand-in: the instructor
    side re-derives it from (course secret, student, exercise). Any write to a ``protect``ed
    reference after setup is reported by the collateral-damage criterion as a change to the
    answer key.

    >>> Scenario({"name": "Ada"}, answer={"ids": ["a1"]}, protect=("Appointment/a1",)).protect
    ('Appointment/a1',)
    """

    facts: Mapping[str, Any]
    answer: Mapping[str, Any] = field(default_factory=dict)
    protect: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "protect", tuple(self.protect))
        for ref in self.protect:
            if not isinstance(ref, str) or ref.count("/") != 1:
                raise ExerciseError(f"scenario: protect: expected 'Type/id' refs (found {ref!r})")


EVENT_KINDS = frozenset(
    {
        "disclose",
        "export",
        "deidentify",
        "break-glass-start",
        "btg-review",
        "sign",
        "import",
        "transaction",
        "rights-change",
        "key-rotation",
        "submit-report",
        "allergy-override",
    }
)
"""Audited actions other than resource writes that an exercise may expect (``Expect(kind)``)."""


@dataclass(frozen=True)
class Expect:
    """One kind of change an exercise expects the student to make.

    ``what`` is a resource type (a write) or an audited action kind (``disclose``, ``export``,
    ``deidentify``, ``break-glass-start``, ``sign``, ...). ``ops`` are the Provenance activities
    allowed for writes (``create``, ``update``, ``correct``, ``amend``, ``entered-in-error``,
    ``addendum``, ``late-entry``, ``registration-update``, ``label``); ``patients`` and
    ``recipients`` name keys of the scenario's facts or answer whose values are the patient ids
    (or recipient refs) allowed; ``"*"`` allows any. ``at_most`` caps how many such changes
    count as expected.

    >>> Expect("Observation", ops=("create",), patients=("right_id",)).what
    'Observation'
    """

    what: str
    ops: tuple[str, ...] | None = None
    patients: tuple[str, ...] | None = None
    recipients: tuple[str, ...] | None = None
    at_most: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.what, str) or not self.what:
            raise ExerciseError(
                f"expect: what must be a resource type or action kind (found {self.what!r})"
            )
        for name in ("ops", "patients", "recipients"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
            elif value is not None:
                object.__setattr__(self, name, tuple(value))
        if self.at_most is not None and (not isinstance(self.at_most, int) or self.at_most < 0):
            raise ExerciseError(f"expect {self.what}: at_most must be a non-negative integer")


@dataclass(frozen=True)
class Hint:
    """A hint, and the points it costs when used (0 by default).

    >>> Hint("Look at the patient's date of birth.", cost=0.5).cost
    0.5
    """

    text: str
    cost: float = 0.0

    def __post_init__(self) -> None:
        if self.cost < 0:
            raise ExerciseError(f"hint: cost must be >= 0 (found {self.cost!r})")


@dataclass(frozen=True)
class Solution:
    """A scripted way of doing the exercise, applied to an attempt.

    The reference solution has ``fails=None``; a wrong solution names the criterion it must
    fail and a fragment of the feedback that criterion must give.

    >>> Solution(lambda att: None, fails="reason given", message="needs a reason").is_reference
    False
    """

    apply: Callable[[Attempt], None]
    fails: str | None = None
    message: str | None = None
    description: str = ""

    @property
    def is_reference(self) -> bool:
        """True for a solution expected to score full marks."""
        return self.fails is None


DONE_TWICE = "done-twice"
"""The wrong solution the framework adds to every exercise: the whole task done twice."""


def done_twice(reference: Solution) -> Solution:
    """The reference applied twice: every record documented twice, every release made twice.

    The collateral-damage criterion must catch it (duplicate records, a second release). A
    repeat the EHR refuses (a :class:`~ehr_sandbox.errors.SandboxError`) is left undone.

    >>> done = []
    >>> trap = done_twice(Solution(lambda att: done.append(att)))
    >>> trap.apply("att"); done, trap.fails
    (['att', 'att'], 'no collateral damage')
    """
    import contextlib

    from ehr_sandbox.errors import SandboxError

    def apply(att: Attempt) -> None:
        reference.apply(att)
        with contextlib.suppress(SandboxError):
            reference.apply(att)

    return Solution(
        apply,
        fails=COLLATERAL,
        message="do only what the task needs",
        description="did the whole task twice (duplicate records, a second release)",
    )


ONE_MORE = "one-more-record"
"""The wrong solution the framework adds to every exercise: the task, plus one more record."""


_NOTE_URL = SANDBOX_EXT_NOTE
_WRITES = ("create", "update", "correct", "amend", "late_entry", "mark_entered_in_error")


def _work_of(att: Attempt, apply: Callable[[Attempt], None]) -> list[dict[str, Any]]:
    """Run ``apply`` and return the resource versions it wrote: from the record's history when
    the attempt's sandbox is at hand, else (an attempt on a classroom server) from what the
    session's write calls returned."""
    sandbox = getattr(att, "sandbox", None)
    if sandbox is not None and hasattr(sandbox, "system_session"):
        system = sandbox.system_session()
        mark = system.change_mark()
        apply(att)
        found = system.changes_since(mark)
    else:
        session, found = att.session, []
        saved = {n: getattr(session, n) for n in _WRITES if hasattr(session, n)}

        def tracked(fn: Callable[..., Any]) -> Callable[..., Any]:
            def call(*a: Any, **k: Any) -> Any:
                out = fn(*a, **k)
                if isinstance(out, dict) and out.get("resourceType"):
                    found.append(out)
                return out

            return call

        for n, fn in saved.items():
            setattr(session, n, tracked(fn))
        try:
            apply(att)
        finally:
            for n, fn in saved.items():
                setattr(session, n, fn)
    return [v for v in found if v.get("resourceType") != "Provenance"]


def _search(att: Attempt, kind: str) -> list[dict[str, Any]]:
    """Records of ``kind`` to pick from (the system's view when the sandbox is at hand)."""
    sandbox = getattr(att, "sandbox", None)
    session = sandbox.system_session() if hasattr(sandbox, "system_session") else att.session
    found = session.search(kind)
    return list(found.fetch() if hasattr(found, "fetch") else found)


def one_more_record(reference: Solution) -> Solution:
    """The reference, then one more record like the first one it created that the EHR accepts
    again, with an extension note (so it is not a duplicate): a second, different reading or
    message of a type the task expects. The collateral-damage criterion must catch it (more
    records than the task needs). When the EHR takes none again, the reference is applied twice.

    >>> one_more_record(Solution(lambda att: None)).fails
    'no collateral damage'
    """
    import contextlib

    from ehr_sandbox.errors import SandboxError

    def apply(att: Attempt) -> None:
        made = [
            v
            for v in _work_of(att, reference.apply)
            if str((v.get("meta") or {}).get("versionId")) == "1"
        ]
        for v in made:
            extra = {k: x for k, x in v.items() if k not in ("id", "meta", "text")}
            extra["extension"] = [
                *extra.get("extension", []),
                {"url": _NOTE_URL, "valueString": "second entry"},
            ]
            try:
                att.session.create(extra)
                return
            except SandboxError:
                continue
        with contextlib.suppress(SandboxError):  # nothing the EHR takes again: do it all twice
            reference.apply(att)

    return Solution(
        apply,
        fails=COLLATERAL,
        message="do only what the task needs",
        description="did the task, then added one more record of a kind it expects",
    )


OTHER_RECORD = "changed-another-record"
"""The wrong solution the framework adds where an exercise expects updates: the task, plus a
change to another existing record of a type the task updates."""


def another_record_changed(reference: Solution, expects: tuple[Expect, ...]) -> Solution:
    """The reference, then an update (an extension note) to an existing record of a type the
    exercise expects updates of, that the reference leaves alone: another slot, device, room,
    account or claim than the task's. The collateral-damage criterion must catch it.

    >>> another_record_changed(Solution(lambda att: None), ()).fails
    'no collateral damage'
    """
    from ehr_sandbox.errors import SandboxError

    kinds = [e.what for e in expects if _updates_records(e)]

    def apply(att: Attempt) -> None:
        done = {f"{v.get('resourceType')}/{v.get('id')}" for v in _work_of(att, reference.apply)}
        mine = {str(v) for v in att.facts.values() if isinstance(v, str)}
        for kind in kinds:
            try:
                found = _search(att, kind)
            except SandboxError:
                continue
            # records of the task's own patients first: the change must be caught as a record
            # the task does not change, not only as another patient's
            found.sort(key=lambda r: _patient_id(r) not in mine)
            for rec in found[:40]:
                if f"{kind}/{rec.get('id')}" in done:
                    continue
                note = {"url": _NOTE_URL, "valueString": "changed too"}
                try:
                    att.session.update({**rec, "extension": [*rec.get("extension", []), note]})
                    return
                except SandboxError:
                    continue

    return Solution(
        apply,
        fails=COLLATERAL,
        message="do only what the task needs",
        description="did the task, then changed another existing record of a type it updates",
    )


def _updates_records(expect: Expect) -> bool:
    """True when ``expect`` allows updates of a resource type (not an audited action kind)."""
    return expect.what[:1].isupper() and (expect.ops is None or "update" in expect.ops)


def _patient_id(resource: Mapping[str, Any]) -> str:
    from ehr_sandbox.access import patient_of

    return patient_of(resource) or ""


FRAMEWORK_TRAPS = (DONE_TWICE, ONE_MORE, OTHER_RECORD)
"""The wrong solutions the framework adds to exercises (see :class:`Exercise`)."""


def _as_solution(value: Solution | tuple[Any, ...], where: str) -> Solution:
    if isinstance(value, Solution):
        return value
    if isinstance(value, tuple) and len(value) == 3 and callable(value[0]):
        return Solution(value[0], fails=value[1], message=value[2])
    raise ExerciseError(
        f"{where}: expected a Solution or (fn, criterion name, message) (found {value!r})"
    )


@dataclass(frozen=True)
class Exercise:
    """A self-grading exercise (see EXERCISES.md "Shape").

    ``setup(sandbox, variant) -> facts`` prepares the scenario in the attempt's sandbox and
    returns the JSON-serialisable facts the instructions template and the criteria use.
    ``role`` is the username the student works as; ``grader`` a username to grade as (default:
    the sandbox's system session, which sees the whole record). ``patients`` and ``population`` shape the attempt's own sandbox.
    ``years`` of history are generated (few: exercises are about today's work, and small
    sandboxes keep start and reset fast). ``pass_fraction`` is the share of criterion points needed to pass (hint costs lower the
    score, not the pass). Every exercise gets the wrong solution ``done-twice`` (the reference
    applied twice, which the collateral-damage criterion must catch as duplicate records or a
    second release) and ``one-more-record`` (the reference plus one more, different record of a
    type it creates: more than the task needs); an exercise that expects updates also gets
    ``changed-another-record`` (the reference plus a change to another existing record of a
    type it updates). ``skip_traps`` names framework traps to leave out, each with its reason
    in a comment: a repeat that is harmless (a report handed in again replaces it) or that the
    EHR itself refuses, or no other record of the type to change. ``alternatives`` are other
    correct ways to do the task (a repeat order with a documented clinical reason instead of no
    order): each must score full marks like the reference, and what the collateral-damage
    criterion allows a student to create or change is what the reference or any alternative
    does (the budget is measured on each). ``local_only`` is the reason an exercise can be done
    only in a sandbox on the student's own machine (it works on local files); empty when it
    runs on the server too, where every reference solution must score full marks through the
    student's remote session. The server refuses to assign a local-only exercise, saying why.
    ``actors`` are the exercise's other people: staff usernames, or ``"patient:<fact>"`` for the
    patient whose id is that public fact. The student may also log in as them
    (``att.login(username)``, ``att.login_patient(patient_id)``, locally and on the server) and
    as nobody else; what they do is allowed by the collateral-damage criterion only as far as
    the exercise's ``expects`` declare it.
    """

    id: str
    title: str
    topic: str
    competencies: tuple[str, ...]
    minutes: int
    role: str
    setup: Callable[[Any, Variant], dict[str, Any]]
    instructions: str
    criteria: tuple[Criterion, ...]
    solution: Solution
    hints: tuple[Hint, ...] = ()
    wrong_solutions: Mapping[str, Solution] = field(default_factory=dict)
    summary: str = ""
    grader: str | None = None
    patients: int = 12
    years: int = 1
    population: str = "family-practice"
    reference_date: str = "2026-01-01"
    pass_fraction: float = 1.0
    topics: tuple[str, ...] = ()
    expects: tuple[Expect, ...] = ()
    actors: tuple[str, ...] = ()
    collateral_points: float = 2.0
    clinics: int = 4
    skip_traps: tuple[str, ...] = ()
    alternatives: tuple[Solution, ...] = ()
    local_only: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.match(self.id):
            raise ExerciseError(
                f"exercise id: expected 'topic/name' in lower case with hyphens (found {self.id!r})"
            )
        for name in ("title", "topic", "role", "instructions"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ExerciseError(f"exercise {self.id}: {name} must be a non-empty string")
        object.__setattr__(self, "competencies", require_known(self.competencies))
        object.__setattr__(self, "topics", require_topics(self.topics))
        object.__setattr__(self, "expects", tuple(self.expects))
        object.__setattr__(self, "actors", tuple(self.actors))
        for e in self.expects:
            if not isinstance(e, Expect):
                raise ExerciseError(
                    f"exercise {self.id}: expects must hold Expect(...) (found {e!r})"
                )
        if not isinstance(self.clinics, int) or self.clinics < 1:
            raise ExerciseError(f"exercise {self.id}: clinics must be a positive integer")
        if not isinstance(self.local_only, str):
            raise ExerciseError(
                f"exercise {self.id}: local_only: expected the reason as text, or '' "
                f"(found {self.local_only!r})"
            )
        criteria = tuple(c for c in self.criteria if c.name != COLLATERAL)
        if len(criteria) == len(tuple(self.criteria)):
            from ehr_sandbox.exercises.collateral import collateral_criterion

            criteria = (*criteria, collateral_criterion(self.collateral_points))
        else:
            criteria = tuple(self.criteria)
        object.__setattr__(self, "criteria", criteria)
        object.__setattr__(
            self, "hints", tuple(h if isinstance(h, Hint) else Hint(str(h)) for h in self.hints)
        )
        if not self.criteria:
            raise ExerciseError(f"exercise {self.id}: criteria must not be empty")
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names):
            raise ExerciseError(
                f"exercise {self.id}: criteria names must be unique (found {names})"
            )
        if not isinstance(self.minutes, int) or self.minutes <= 0:
            raise ExerciseError(
                f"exercise {self.id}: minutes must be a positive integer (found {self.minutes!r})"
            )
        if not 0 < self.pass_fraction <= 1:
            raise ExerciseError(
                f"exercise {self.id}: pass_fraction must be in (0, 1] (found {self.pass_fraction!r})"
            )
        if not callable(self.setup):
            raise ExerciseError(
                f"exercise {self.id}: setup must be callable(sandbox, variant) -> dict"
            )
        ref = _as_solution(self.solution, f"exercise {self.id}: solution")
        if not ref.is_reference:
            raise ExerciseError(
                f"exercise {self.id}: the reference solution must not name a failing criterion"
            )
        object.__setattr__(self, "solution", ref)
        alternatives = tuple(
            _as_solution(a, f"exercise {self.id}: alternative {i}")
            for i, a in enumerate(self.alternatives)
        )
        if not all(a.is_reference for a in alternatives):
            raise ExerciseError(
                f"exercise {self.id}: an alternative is a correct solution; it must not name a failing criterion"
            )
        object.__setattr__(self, "alternatives", alternatives)
        wrong = {
            k: _as_solution(v, f"exercise {self.id}: wrong solution {k!r}")
            for k, v in self.wrong_solutions.items()
        }
        for key, sol in wrong.items():
            if sol.fails not in names or not sol.message:
                raise ExerciseError(
                    f"exercise {self.id}: wrong solution {key!r} must name one of the criteria {names} "
                    f"and a message fragment (found fails={sol.fails!r}, message={sol.message!r})"
                )
        object.__setattr__(self, "skip_traps", tuple(self.skip_traps))
        unknown = sorted(set(self.skip_traps) - set(FRAMEWORK_TRAPS))
        if unknown:
            raise ExerciseError(
                f"exercise {self.id}: skip_traps: expected names from {list(FRAMEWORK_TRAPS)} (found {unknown})"
            )
        traps = {
            DONE_TWICE: lambda: done_twice(ref),
            ONE_MORE: lambda: one_more_record(ref),
            OTHER_RECORD: lambda: another_record_changed(ref, self.expects),
        }
        updates = any(_updates_records(e) for e in self.expects)
        for name, make in traps.items():
            if name in wrong or name in self.skip_traps or (name == OTHER_RECORD and not updates):
                continue
            wrong[name] = make()
        object.__setattr__(self, "wrong_solutions", wrong)

    @property
    def max_score(self) -> float:
        """Sum of the criteria's points."""
        return float(sum(c.points for c in self.criteria))

    @property
    def exams(self) -> list[str]:
        """Certification exams this exercise prepares for (from its competencies)."""
        return list(exam_areas(self.competencies))

    def render_instructions(self, facts: Mapping[str, Any]) -> str:
        """The Markdown instructions with this variant's facts filled in."""
        try:
            return self.instructions.format_map(dict(facts))
        except KeyError as exc:
            raise ExerciseError(
                f"exercise {self.id}: instructions use {{{exc.args[0]}}} but setup returned no such fact "
                f"(facts: {sorted(facts)})"
            ) from None

    def catalog_row(self) -> dict[str, Any]:
        """The DataFrame-friendly summary row used by ``catalog()``.

        >>> sorted(_demo().catalog_row())[:4]
        ['competencies', 'exams', 'id', 'max_score']
        >>> _demo().catalog_row()["remote"]  # it can be done on the classroom server
        True
        >>> _demo().catalog_row()["topics"]
        ['editing-records']
        """
        return {
            "id": self.id,
            "title": self.title,
            "topic": self.topic,
            "topics": list(self.topics),
            "competencies": list(self.competencies),
            "minutes": self.minutes,
            "role": self.role,
            "max_score": self.max_score,
            "exams": self.exams,
            "remote": not self.local_only,
        }


def _demo() -> Exercise:
    """A tiny exercise for doctests."""
    return Exercise(
        id="demo/hello",
        title="Say hello",
        topic="demo",
        competencies=("X.P.3",),
        minutes=5,
        role="ma.garcia",
        setup=lambda sandbox, variant: {},
        topics=("editing-records",),
        instructions="Hello.",
        criteria=(Criterion("ok", 1, lambda ctx: (True, "ok", "ok"), "Because."),),
        solution=Solution(lambda att: None),
    )
