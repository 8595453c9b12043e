"""Per-patient build state shared by the builders (ids, random stream, output list).

>>> import random
>>> ctx = RecordContext("p1", random.Random(0))
>>> ctx.new_id("obs"), ctx.new_id("obs"), ctx.new_id("enc")
('p1-obs-0', 'p1-obs-1', 'p1-enc-0')
>>> ctx.subject
{'reference': 'Patient/p1'}
"""

from __future__ import annotations

import random
from typing import Any

from synthetic.frozen import FrozenDict
from synthetic.ids import numbered


class RecordContext:
    """Mutable state while one patient's record is built.

    ``encounter``/``when``/``day`` describe the visit being documented so that builders
    called for it do not need a dozen parameters.

    >>> RecordContext("b", random.Random(0)).out
    []
    """

    __slots__ = (
        "base",
        "rng",
        "out",
        "counters",
        "prefixes",
        "subject",
        "encounter",
        "when",
        "day",
        "performer",
        "clinician",
        "security",
    )

    def __init__(self, base: str, rng: random.Random) -> None:
        self.base = base
        self.rng = rng
        self.out: list[dict[str, Any]] = []
        self.counters: dict[str, int] = {}
        self.prefixes: dict[str, str] = {}
        """``f"{base}-{kind}-"`` per kind, made on the kind's first id (see :meth:`new_id`)."""
        # shared by every resource of the record: frozen (see synthetic.frozen)
        self.subject: dict[str, str] = FrozenDict(reference=f"Patient/{base}")
        self.encounter: dict[str, str] | None = None
        self.when = ""
        self.day = 0
        self.performer: list[dict[str, str]] = []
        self.clinician: list[dict[str, str]] = []
        self.security: tuple[dict[str, str], ...] | None = None

    def new_id(self, kind: str) -> str:
        """Next id of ``kind`` in this record (ordinals count from 0 per kind).

        >>> RecordContext("b", random.Random(0)).new_id("x")
        'b-x-0'
        """
        counters = self.counters
        n = counters.get(kind, 0)
        counters[kind] = n + 1
        prefix = self.prefixes.get(kind)
        if prefix is None:  # the id's stem is formatted once per kind, not per resource
            prefix = self.prefixes[kind] = f"{self.base}-{kind}-"
        return numbered(prefix, n)

    def add(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Append ``resource`` to the record and return it.

        >>> RecordContext("b", random.Random(0)).add({"id": 1})
        {'id': 1}
        """
        self.out.append(resource)
        return resource
