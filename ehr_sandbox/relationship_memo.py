"""Whom each user treats, worked out once per state of the clinic's data, not once per login.

Working out a clinician's relationships reads every Encounter they took part in (years of
them) and this week's schedule: most of the cost of a fresh login's first search. The
answer depends only on the user's role, practitioner and patient ids, the reference date and
the stored resources, so a later login of the same user on the same data can reuse it.

The data is named by a change mark (the store's last version row: every write of a resource,
by any path and by any process sharing the file, adds one, and version rows are never
deleted; marks only grow once committed). An answer is kept only when it was worked out
outside a transaction, so it is about committed data: a write rolled back later (whose row
number the next write takes again) never leaves an answer behind. Any write since makes the
next look-up work it out again. (A write landing while an answer is worked out moves the mark
past the one the answer is kept under, so it is never reused.) The memo never sees the store:
the sandbox (the door) hands it the mark, the transaction state and the definition.

>>> from datetime import date
>>> from ehr_sandbox.users import User
>>> data = {"mark": 1, "patients": {"p1"}}
>>> calls = []
>>> def work_out(user, day):
...     calls.append(user.username)
...     return set(data["patients"])
>>> memo = RelationshipMemo(lambda: data["mark"], lambda: False, work_out)
>>> doc = User("dr.a", "physician", "Dr A", "prac-a")
>>> sorted(memo.treating(doc, date(2026, 1, 1))), sorted(memo.treating(doc, date(2026, 1, 1)))
(['p1'], ['p1'])
>>> len(calls)  # the second login reused the answer
1
>>> data.update(mark=2, patients={"p1", "p2"})  # a write
>>> sorted(memo.treating(doc, date(2026, 1, 1))), len(calls)  # worked out again
(['p1', 'p2'], 2)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import date

from ehr_sandbox.users import User

__all__ = ["RelationshipMemo", "memo_key"]

WorkOut = Callable[[User, date], Iterable[str]]
"""``(user, reference_date) -> patient ids``: the definition (``treating_patients``)."""


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
    """Answers of ``work_out`` per :func:`memo_key`, each valid for one change mark.

    Parameters
    ----------
    mark : callable
        Reads the data's change mark.
    in_transaction : callable
        Says whether a transaction is open (its writes may yet be rolled back): an answer
        worked out then is not kept.
    work_out : callable
        The definition, ``(user, reference_date) -> patient ids``.

    Examples
    --------
    >>> from datetime import date
    >>> from ehr_sandbox.users import User
    >>> open_tx, calls = {"now": True}, []
    >>> memo = RelationshipMemo(lambda: 1, lambda: open_tx["now"], lambda user, day: calls.append(1) or {"p1"})
    >>> doc, day = User("dr.a", "physician", "Dr A", "prac-a"), date(2026, 1, 1)
    >>> sorted(memo.treating(doc, day)), sorted(memo.treating(doc, day)), len(calls)
    (['p1'], ['p1'], 2)
    >>> open_tx["now"] = False  # committed data: the answer is kept and reused
    >>> _ = memo.treating(doc, day); _ = memo.treating(doc, day); len(calls)
    3
    """

    def __init__(
        self, mark: Callable[[], int], in_transaction: Callable[[], bool], work_out: WorkOut
    ) -> None:
        self._mark = mark
        self._in_transaction = in_transaction
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
            Exactly what ``work_out`` returns on the data as it is now.

        Examples
        --------
        >>> memo = RelationshipMemo(lambda: 1, lambda: False, lambda user, day: {"p1"})
        >>> memo.treating(User("rn.b", "nurse", "RN B", "prac-b"), date(2026, 1, 1))
        frozenset({'p1'})
        """
        key = memo_key(user, reference_date)
        mark = self._mark()
        with self._lock:
            kept = self._answers.get(key)
        if kept is not None and kept[0] == mark:
            return kept[1]
        answer = frozenset(self._work_out(user, reference_date))
        # Keep only an answer about committed data: inside a transaction the mark counts rows
        # a rollback may take back, and the next write would then carry the same mark.
        if not self._in_transaction():
            with self._lock:
                self._answers[key] = (mark, answer)
        return answer

    def forget(self) -> None:
        """Drop every kept answer (the next look-up of each user works it out again).

        Examples
        --------
        >>> memo = RelationshipMemo(lambda: 1, lambda: False, lambda user, day: set())
        >>> memo.forget()
        """
        with self._lock:
            self._answers.clear()
