"""A second random stream per patient for the clinical MA steps.

The clinical MA steps (rooming, screening, point of care, deliveries, refills) draw from their
own stream, seeded by the patient's id base, so adding or changing them never shifts the main
stream's draws (conditions, visits, vitals) of the same patient. Same seed and index, same
draws, in any worker.

>>> import random
>>> from synthetic.context import RecordContext
>>> s = SideRng()
>>> a = s.of(RecordContext("p-1", random.Random(0))).random()
>>> b = SideRng().of(RecordContext("p-1", random.Random(5))).random()
>>> a == b
True
"""

from __future__ import annotations

import random

from synthetic.context import RecordContext


class SideRng:
    """The side stream of the patient being built (a new stream when the patient changes).

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> s = SideRng(); c = RecordContext("p-2", random.Random(0))
    >>> s.of(c) is s.of(c)
    True
    """

    __slots__ = ("_base", "_rng", "_ctx")

    def __init__(self) -> None:
        self._base = ""
        self._rng = random.Random(0)
        self._ctx: RecordContext | None = None

    def of(self, ctx: RecordContext) -> random.Random:
        """The side stream of ``ctx``'s patient.

        Examples
        --------
        >>> import random
        >>> from synthetic.context import RecordContext
        >>> s = SideRng()
        >>> a, b = RecordContext("p-1", random.Random(0)), RecordContext("p-2", random.Random(0))
        >>> s.of(a) is s.of(a)  # one stream while the patient is the same
        True
        >>> first = s.of(a).random()
        >>> s.of(b).random() != first, SideRng().of(a).random() == first  # seeded by the patient
        (True, True)
        """
        if ctx is not self._ctx:
            self._ctx = ctx
            self._base = ctx.base
            self._rng = random.Random(f"clinical-ma:{ctx.base}")
        return self._rng
