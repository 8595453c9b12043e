"""Pre-built clinics that attempts start from: generated once per process, copied per attempt.

Generating a staffed clinic takes seconds; copying one (SQLite backup API) takes
milliseconds. An exercise draws its clinic from a small pool (``Exercise.clinics``) keyed by
its generation settings; the variant picks which clinic, and the scenario inside it (patients,
values) comes from the variant's own choices. The instructor side re-derives a student's
scenario from a fresh copy of the same clinic.

>>> from ehr_sandbox.exercises.model import _demo
>>> from ehr_sandbox.exercises.variants import Variant
>>> ex = _demo()
>>> a = fresh_clinic(ex, Variant.of("s", "alice", ex.id))
>>> b = fresh_clinic(ex, Variant.of("s", "alice", ex.id))
>>> a is not b and a.grader_session().change_mark() == b.grader_session().change_mark()
True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ehr_sandbox.exercises.model import Exercise
    from ehr_sandbox.exercises.variants import Variant

__all__ = ["clinic_seed", "clear_cache", "fresh_clinic"]

_CACHE: dict[tuple[Any, ...], Any] = {}


def clinic_seed(exercise: Exercise, variant: Variant) -> int:
    """The generation seed of the clinic this variant works in (one of ``exercise.clinics``).

    >>> from ehr_sandbox.exercises.model import _demo
    >>> from ehr_sandbox.exercises.variants import Variant
    >>> clinic_seed(_demo(), Variant.of("s", "alice", "demo/hello")) in range(1009, 1009 + 7919 * 4, 7919)
    True
    """
    return 1009 + 7919 * (variant.seed % exercise.clinics)


def _key(exercise: Exercise, seed: int) -> tuple[Any, ...]:
    return (
        exercise.patients,
        exercise.years,
        exercise.population,
        exercise.reference_date,
        seed,
    )


def fresh_clinic(exercise: Exercise, variant: Variant, path: str | Path | None = None) -> Any:
    """A new copy of the variant's pre-built clinic (in memory, or written to ``path``)."""
    from ehr_sandbox.clinic_cache import generate_cached  # on disk, shared by processes
    from ehr_sandbox.sandbox import Sandbox  # late import: exercises sit above the session layer

    seed = clinic_seed(exercise, variant)
    key = _key(exercise, seed)
    base = _CACHE.get(key)
    if base is None:
        base = generate_cached(
            patients=exercise.patients,
            seed=seed,
            reference_date=exercise.reference_date,
            years=exercise.years,
            population=exercise.population,
        )
        _CACHE[key] = base
    if path is None:
        return base.copy()
    base.save(str(path))
    return Sandbox.open(str(path))


def clear_cache() -> int:
    """Drop the cached clinics (returns how many were held)."""
    n = len(_CACHE)
    for sb in _CACHE.values():
        sb.close()
    _CACHE.clear()
    return n
