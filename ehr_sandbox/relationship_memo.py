"""Whom each user treats, worked out once per state of the clinic's data, not once per login.

Working out a clinician's relationships reads every Encounter they took part in (years of
them) and this week's schedule: most of the cost of a fresh login's first search. The
answer depends only on the user's role, practitioner and patient ids, the reference date and
the stored resources, so a later login of the same user on the same data can reuse it.

The data is named by :meth:`~ehr_sandbox.store.Store.change_mark` (the last version row:
every write of a resource, by any path and by any process sharing the file, adds one, and
version rows are never deleted; marks only grow once committed). An answer is kept only
when it was worked out outside a transaction, so it is about committed data: a write rolled
back later (whose row number the next write takes again) never leaves an answer behind. Any
write since makes the next look-up work it out again. (A write landing while an answer is
worked out moves the mark past the one the answer is kept under, so it is never reused.)

>>> from datetime import date
>>> from ehr_sandbox.store import Store
>>> from ehr_sandbox.users import User
>>> st = Store()
>>> calls = []
>>> def work_out(store, user, day):
...     calls.append(user.username)
...     return {p["id"] for p in store.iter_type("Patient")}
>>> memo = RelationshipMemo(st, work_out)
>>> doc = User("dr.a", "physician", "Dr A", "prac-a")
>>> _ = st.create({"resourceType": "Patient", "id": "p1"})
>>> sorted(memo.treating(doc, date(2026, 1, 1))), sorted(memo.treating(doc, date(2026, 1, 1)))
(['p1'], ['p1'])
>>> len(calls)  # the second login reused the answer
1
>>> _ = st.create({"resourceType": "Patient", "id": "p2"})
>>> sorted(memo.treating(doc, date(2026, 1, 1))), len(calls)  # a write: worked out again
(['p1', 'p2'], 2)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from ehr_sandbox.users import User

__all__ = ["RelationshipMemo", "memo_key"]

WorkOut = Callable[[Any, User, date], Iterable[str]]
"""``(store, user, reference_date) -> patient ids``: the definition (``treating_patients``)."""


def memo_key(user: User, reference_date: date) -> tuple[str, str | None, str | None, str]:
    """What the answer depends on besides the data: role, practitioner, patient, date.

    Two accounts that agree on all four treat the same patients (the username is not part
    of the definition).

    Parameters
    ----------
    user
        The account.
    reference_date
        The sandbox's reference date (its week is the schedule that counts).

    Returns
    -------
    tuple
        ``(role, practitioner_id, patient_id, reference date in ISO form)``.

    Examples
    --------
    >>> memo_key(User("dr.a", "physician", "Dr A", "prac-a"), date(2026, 1, 1))
    ('physician', 'prac-a', None, '2026-01-01')
    """
    return (user.role, user.practitioner_id, user.patient_id, reference_date.isoformat())


class RelationshipMemo:
    """Answers of ``work_out`` per :func:`memo_key`, each valid for one change mark."""

    def __init__(self, store: Any, work_out: WorkOut) -> None:
        self._store = store
        self._work_out = work_out
        self._answers: dict[tuple[str, str | None, str | None, str], tuple[int, frozenset[str]]]
        self._answers = {}
        self._lock = threading.Lock()

    def treating(self, user: User, reference_date: date) -> frozenset[str]:
        """The patient ids ``user`` treats on ``reference_date``'s week, on the current data.

        Parameters
        ----------
        user
            The account.
        reference_date
            The sandbox's reference date.

        Returns
        -------
        frozenset[str]
            Exactly what ``work_out`` returns on the store as it is now.

        Examples
        --------
        >>> from ehr_sandbox.store import Store
        >>> st = Store()
        >>> memo = RelationshipMemo(st, lambda store, user, day: {"p1"})
        >>> memo.treating(User("rn.b", "nurse", "RN B", "prac-b"), date(2026, 1, 1))
        frozenset({'p1'})
        """
        key = memo_key(user, reference_date)
        mark = self._store.change_mark()
        with self._lock:
            kept = self._answers.get(key)
        if kept is not None and kept[0] == mark:
            return kept[1]
        answer = frozenset(self._work_out(self._store, user, reference_date))
        # Keep only an answer about committed data: inside a transaction the mark counts rows
        # a rollback may take back, and the next write would then carry the same mark.
        if not self._store.connection.in_transaction:
            with self._lock:
                self._answers[key] = (mark, answer)
        return answer

    def forget(self) -> None:
        """Drop every kept answer (the next look-up of each user works it out again).

        Examples
        --------
        >>> from ehr_sandbox.store import Store
        >>> memo = RelationshipMemo(Store(), lambda store, user, day: set())
        >>> memo.forget()
        """
        with self._lock:
            self._answers.clear()
