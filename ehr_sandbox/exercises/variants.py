"""Per-student exercise variants: a deterministic seed from (course salt, student, exercise id).

The seed is an HMAC-SHA256 keyed by the course salt, so students cannot predict one another's
variant from their ids, while the instructor (who holds the salt) can regenerate any student's
variant exactly.

>>> a = Variant.of("course-salt", "alice", "records/correction")
>>> a == Variant.of("course-salt", "alice", "records/correction")
True
>>> a.seed != Variant.of("course-salt", "bob", "records/correction").seed
True
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from ehr_sandbox.errors import ExerciseError

__all__ = ["DEFAULT_SALT", "Variant", "variant_seed"]

DEFAULT_SALT = "ehr-sandbox/self-study"
"""Salt used when a student starts an exercise outside any course."""

T = TypeVar("T")


def variant_seed(salt: str, student: str, exercise_id: str) -> int:
    """A 63-bit seed from a keyed hash of (student, exercise id) under the course salt.

    >>> variant_seed("s", "alice", "x") == variant_seed("s", "alice", "x")
    True
    >>> 0 <= variant_seed("s", "alice", "x") < 2**63
    True
    """
    for field, value in (("salt", salt), ("student", student), ("exercise_id", exercise_id)):
        if not isinstance(value, str) or not value.strip():
            raise ExerciseError(f"variant: {field} must be a non-empty string (found {value!r})")
    # Length-prefix the parts so ("ab", "c") and ("a", "bc") cannot collide.
    message = f"{len(student)}:{student}|{len(exercise_id)}:{exercise_id}".encode()
    digest = hmac.new(salt.encode(), message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class Variant:
    """Which version of an exercise a student gets, with its own RNG stream.

    >>> v = Variant.of("salt", "alice", "records/correction")
    >>> v.rng().random() == v.rng().random()   # every call restarts the same stream
    True
    >>> 0 <= v.sandbox_seed < 2**31
    True
    """

    student: str
    exercise_id: str
    seed: int

    @classmethod
    def of(cls, salt: str, student: str, exercise_id: str) -> Variant:
        """Derive the variant of ``student`` for ``exercise_id`` under ``salt``.

        The salt is not kept: a variant (and so an attempt) does not reveal the course secret.

        >>> hasattr(Variant.of("s3cret", "alice", "records/correction"), "salt")
        False
        """
        return cls(student, exercise_id, variant_seed(salt, student, exercise_id))

    @property
    def sandbox_seed(self) -> int:
        """The seed the attempt's own small sandbox is generated with (fits a 32-bit int)."""
        return self.seed % (2**31 - 1)

    def rng(self) -> random.Random:
        """A fresh RNG for the scenario's choices (same variant, same choices)."""
        return random.Random(self.seed)

    def pick(self, options: Sequence[T], *, salt: str = "") -> T:
        """Choose one option deterministically; ``salt`` separates independent choices.

        >>> v = Variant.of("s", "alice", "x")
        >>> v.pick(["a", "b", "c"]) == v.pick(["a", "b", "c"])
        True
        """
        if not options:
            raise ExerciseError(
                f"variant {self.exercise_id}: nothing to choose from ({salt or 'options'})"
            )
        return random.Random(f"{self.seed}:{salt}").choice(list(options))
