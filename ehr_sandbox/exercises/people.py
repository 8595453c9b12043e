"""The other people of an exercise: whom a student may also log in as, and nobody else.

An exercise names them in ``Exercise.actors``: staff usernames of the attempt's sandbox
(``"fd.smith"``), or ``"patient:<fact>"`` for the portal login of the patient whose id is the
public fact ``<fact>`` (``"patient:patient_id"``). The attempt's ``login`` and
``login_patient`` (locally and on a classroom server) ask :func:`person_login` which sandbox
login a request stands for; anything not declared is refused with :class:`AccessDenied`
naming who may be logged in as. The collateral-damage criterion reads the same list: what a
declared person does still counts against what the exercise expects.

>>> from types import SimpleNamespace as NS
>>> ex = NS(id="demo/x", role="po.wilson", actors=("fd.smith", "patient:patient_id"))
>>> person_login(ex, {"patient_id": "p1"}, username="fd.smith")
'fd.smith'
>>> person_login(ex, {"patient_id": "p1"}, patient="Patient/p1")
'patient/p1'
>>> person_login(ex, {"patient_id": "p1"}, username="admin")
Traceback (most recent call last):
...
ehr_sandbox.errors.AccessDenied: demo/x: login: username: expected one of the exercise's people: fd.smith (found 'admin')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ehr_sandbox.errors import AccessDenied

__all__ = ["PATIENT_PREFIX", "declared_patients", "declared_staff", "person_login"]

PATIENT_PREFIX = "patient:"
"""An actor ``patient:<fact>`` is the portal login of the patient whose id is that fact."""


def declared_staff(exercise: Any) -> tuple[str, ...]:
    """The staff usernames an exercise declares as its other people (in declared order).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> declared_staff(NS(actors=("po.wilson", "patient:pid")))
    ('po.wilson',)
    """
    return tuple(a for a in exercise.actors if not a.startswith(PATIENT_PREFIX))


def declared_patients(exercise: Any, facts: Mapping[str, Any]) -> tuple[str, ...]:
    """The patient ids an exercise declares as its other people, from the attempt's public
    ``facts`` (fixed at setup).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> declared_patients(NS(actors=("po.wilson", "patient:pid")), {"pid": "Patient/p9"})
    ('p9',)
    """
    out: list[str] = []
    for actor in exercise.actors:
        if actor.startswith(PATIENT_PREFIX):
            value = facts.get(actor[len(PATIENT_PREFIX) :])
            if isinstance(value, str) and value:
                out.append(value.split("/", 1)[1] if value.startswith("Patient/") else value)
    return tuple(out)


def person_login(
    exercise: Any,
    facts: Mapping[str, Any],
    *,
    username: str | None = None,
    patient: str | None = None,
) -> str:
    """The sandbox login (a staff username, or ``patient/<id>``) of one of the exercise's
    declared people; exactly one of ``username`` and ``patient`` is given.

    Parameters
    ----------
    exercise : Exercise
        The exercise (its ``id``, ``role`` and ``actors``).
    facts : Mapping
        The attempt's public facts fixed at setup (they name the declared patients).
    username : str, optional
        A staff username.
    patient : str, optional
        A patient id (``p1`` or ``Patient/p1``).

    Returns
    -------
    str
        ``username`` itself, or ``patient/<id>``.

    Raises
    ------
    AccessDenied
        Not one of the exercise's people (the student's own role, the instructor, an
        administrator, any other user or patient): the message names who may be.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> ex = NS(id="demo/x", role="dr.okafor", actors=("po.wilson",))
    >>> person_login(ex, {}, patient="p2")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.AccessDenied: demo/x: login_patient: patient: expected the patient this exercise names (none) (found 'p2')
    """
    where = f"{exercise.id}: "
    if (username is None) == (patient is None):
        raise AccessDenied(where + "login: expected a username or a patient id, exactly one")
    if username is not None:
        staff = declared_staff(exercise)
        if not isinstance(username, str) or username not in staff:
            own = (
                f"; you already work as {exercise.role} (att.session)"
                if username == exercise.role
                else ""
            )
            names = ", ".join(staff) or "none"
            raise AccessDenied(
                f"{where}login: username: expected one of the exercise's people: {names} "
                f"(found {username!r}){own}"
            )
        return username
    pid = patient.split("/", 1)[1] if isinstance(patient, str) and "/" in patient else patient
    allowed = declared_patients(exercise, facts)
    if not isinstance(pid, str) or pid not in allowed:
        names = ", ".join(f"Patient/{p}" for p in allowed) or "none"
        raise AccessDenied(
            f"{where}login_patient: patient: expected the patient this exercise names "
            f"({names}) (found {patient!r})"
        )
    return f"patient/{pid}"
