"""Which patients a user has a treatment relationship with (the policy's rule 3).

A clinician treats the patients on their panel (``generalPractitioner``), those whose
encounters they took part in, and those booked with them this week. Medical assistants and
nurses room every patient on this week's schedule. Patients relate only to themselves.

Only what happened or is really on the schedule counts: an Appointment that is a request or
an entry on a list (``proposed``, ``pending``, ``waitlist``), was ``cancelled`` or was
``entered-in-error`` grants nobody access, and neither does an Encounter that was cancelled
or entered in error (a mistaken booking, or a portal user's request naming a clinician, must
not open a chart to the whole rooming staff). A participant who ``declined`` an Appointment
is not in it (FHIR participationstatus): the booking opens no chart to a practitioner who
declined it, nor puts a patient who declined it on the schedule. ``accepted``, ``tentative``
and ``needs-action`` (asked, not yet answered) keep the participant in the booking: the
appointment is booked with them and they prepare for it.

>>> # the public form is sandbox.treating("dr.patel") (the Sandbox passes its store here)
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ehr_sandbox.users import User

ROOMING_ROLES = frozenset({"medical_assistant", "nurse", "front_desk"})
"""Roles that work with every patient on this week's schedule."""

SCHEDULED_STATUSES = ("booked", "arrived", "checked-in", "fulfilled", "noshow")
"""Appointment statuses that put a patient on the schedule (and so in a relationship)."""

DECLINED = "declined"
"""The participationstatus of a participant who will not take part (not in the booking)."""

ENCOUNTER_STATUSES = (
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "unknown",
)
"""Encounter statuses of a contact that happened or is planned (not cancelled, not an error)."""


def _patient_ids(resources: list[dict[str, Any]]) -> set[str]:
    from ehr_sandbox.access import patients_of

    return {pid for r in resources for pid in patients_of(r)}


def _referenced_patients(
    store: Any,
    resource_type: str,
    query: Any,
    params: tuple[str, ...],
    *,
    per_value: bool = False,
    known: frozenset[str] = frozenset(),
) -> set[str]:
    """The patients the matches of ``query`` point at through reference ``params``: the
    values the search index holds for them (``Store.reference_values``, in SQL; ``per_value``
    when the matches may be many and their patients few), plus those of the matches it holds
    none for, decoded (the same ids as ``patients_of`` on every match: both take the
    ``Patient/id`` references of those fields). Decoded entirely when the index cannot answer
    (an encrypting store). Patients in ``known`` may be left out (the caller has them)."""
    skip = [f"Patient/{pid}" for pid in sorted(known)]
    answer = store.reference_values(resource_type, query, params, per_value=per_value, skip=skip)
    if answer is None:
        return _patient_ids(store.search(resource_type, query))
    values, unindexed = answer
    out = {ref[8:] for ref in values if ref.startswith("Patient/")}
    return out | _patient_ids(store.read_many(resource_type, unindexed))


def attending(appointment: dict[str, Any]) -> dict[str, Any]:
    """``appointment`` without the participants who declined it (what the booking holds).

    >>> appt = {"resourceType": "Appointment", "participant": [
    ...     {"actor": {"reference": "Patient/a"}, "status": "accepted"},
    ...     {"actor": {"reference": "Practitioner/d"}, "status": "declined"},
    ...     {"actor": {"reference": "Practitioner/e"}, "status": "needs-action"}]}
    >>> [p["actor"]["reference"] for p in attending(appt)["participant"]]
    ['Patient/a', 'Practitioner/e']
    """
    people = appointment.get("participant")
    if not isinstance(people, list):
        return appointment
    kept = [p for p in people if not (isinstance(p, dict) and p.get("status") == DECLINED)]
    return {**appointment, "participant": kept}


def books(appointment: dict[str, Any], actor: str) -> bool:
    """True when ``actor`` (``Type/id``) takes part in ``appointment`` (and did not decline).

    >>> appt = {"participant": [{"actor": {"reference": "Practitioner/d"}, "status": "declined"},
    ...                         {"actor": {"reference": "Practitioner/e"}, "status": "tentative"}]}
    >>> books(appt, "Practitioner/d"), books(appt, "Practitioner/e")
    (False, True)
    """
    from ehr_sandbox.references import split_reference

    want = split_reference(actor)
    for p in attending(appointment).get("participant") or ():
        ref = (p.get("actor") or {}).get("reference") if isinstance(p, dict) else None
        if isinstance(ref, str) and want is not None and split_reference(ref) == want:
            return True
    return False


def schedule_window(reference_date: date) -> tuple[str, str]:
    """This week (Monday to Sunday) of the reference date, as search date bounds.

    >>> schedule_window(date(2026, 1, 1))
    ('2025-12-29', '2026-01-04')
    """
    monday = reference_date - timedelta(days=reference_date.weekday())
    return monday.isoformat(), (monday + timedelta(days=6)).isoformat()


_ID_CHUNK = 2000
"""Ids per ``_id`` clause when this week's Appointments are narrowed down."""


def _scheduled(store: Any, week: list[tuple[str, str]], me: str | None) -> set[str]:
    """The patients of this week's real bookings (with ``me`` only, when given), leaving out
    whoever declined (who declined is in the participant, not in the index).

    The schedule spans years and this week holds little of it, so this week's Appointments
    are found first (the date range drives, from the index alone), then those of them that
    match every clause (the same clauses, with an ``_id`` clause that only narrows the
    candidates), decoded. An encrypting store checks date ranges on decoded rows, so there it
    keeps the direct search (a clinician's bookings decoded, not the whole schedule)."""
    from ehr_sandbox.search import parse

    mine = [("actor", me)] if me is not None else []
    if store.encrypting:
        booked = store.search("Appointment", parse("Appointment", [*mine, *week]))
    else:
        dated = [p for p in week if p[0] == "date"]
        ids = store.search_ids("Appointment", parse("Appointment", dated))
        booked = []
        for k in range(0, len(ids), _ID_CHUNK):
            narrowed = [("_id", ",".join(ids[k : k + _ID_CHUNK])), *mine, *week]
            booked += store.search("Appointment", parse("Appointment", narrowed))
    if me is not None:
        booked = [a for a in booked if books(a, me)]
    return _patient_ids([attending(a) for a in booked])


def treating_patients(store: Any, user: User, reference_date: date) -> set[str]:
    """Patient ids ``user`` has a relationship with on ``reference_date``'s week.

    The panel (patients whose general practitioner the user is), patients of the user's
    encounters, patients booked with the user this week, and (rooming roles) everyone booked
    this week. A patient login treats only itself.

    Parameters
    ----------
    store : Store
        The clinic's store (the sandbox hands it over; nothing else should).
    user : User
        The account.
    reference_date : date
        The clinic's today; its week is the schedule that counts.

    Returns
    -------
    set of str
        Patient ids.

    Examples
    --------
    The sandbox calls it with its store (:meth:`Sandbox.treating <ehr_sandbox.sandbox.Sandbox.treating>`
    is the way in); nothing else should reach the store.

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=4, seed=1, years=1)
    >>> panel = {p["id"] for p in sb.grader_session().search(
    ...     "Patient", **{"general-practitioner": "Practitioner/prac-dr.patel"}).fetch()}
    >>> bool(panel) and panel <= sb.treating("dr.patel")  # a physician treats their panel
    True
    """
    from ehr_sandbox.search import parse

    if user.role == "patient":
        return {user.patient_id} if user.patient_id else set()
    start, end = schedule_window(reference_date)
    week = [
        ("date", f"ge{start}"),
        ("date", f"le{end}"),
        ("status", ",".join(SCHEDULED_STATUSES)),
    ]
    out: set[str] = set()
    if user.practitioner_id:
        me = f"Practitioner/{user.practitioner_id}"
        out |= set(store.search_ids("Patient", parse("Patient", [("general-practitioner", me)])))
        encounters = parse(
            "Encounter", [("participant", me), ("status", ",".join(ENCOUNTER_STATUSES))]
        )
        # years of encounters name a few hundred patients: look from the patients' side,
        # for the patients not already on the panel
        out |= _referenced_patients(
            store,
            "Encounter",
            encounters,
            ("subject", "patient"),
            per_value=True,
            known=frozenset(out),
        )
        out |= _scheduled(store, week, me)
    if user.role in ROOMING_ROLES:
        out |= _scheduled(store, week, None)
    return out
