"""Which patients a user has a treatment relationship with (the policy's rule 3).

A clinician treats the patients on their panel (``generalPractitioner``), those whose
encounters they took part in, and those booked with them this week. Medical assistants and
nurses room every patient on this week's schedule. Patients relate only to themselves.

>>> # the public form is sandbox.treating("dr.patel") (the Sandbox passes its store here)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from ehr_sandbox.users import User

IndexedReferences = Callable[[Any, str, Iterable[str], Sequence[str]], dict[str, list[str]]]
"""``(store, resource_type, ids, params) -> {id: ["Type/id", ...]}`` (see ``store.refs``)."""

ROOMING_ROLES = frozenset({"medical_assistant", "nurse", "front_desk"})
"""Roles that work with every patient on this week's schedule."""


def _patient_ids(resources: list[dict[str, Any]]) -> set[str]:
    from ehr_sandbox.access import patient_of

    return {pid for r in resources if (pid := patient_of(r))}


def _encounter_patients(store: Any, query: Any, references: IndexedReferences | None) -> set[str]:
    """The patients of the Encounters matching ``query``: read from the search index's
    ``subject``/``patient`` rows where ``references`` (the store's ``indexed_references``)
    has them, decoded otherwise (the same ids as ``patient_of`` on every match: both take the
    ``Type/id`` of ``Encounter.subject``)."""
    if references is None:
        return _patient_ids(store.search("Encounter", query))
    ids = store.search_ids("Encounter", query)
    indexed = references(store, "Encounter", ids, ("subject", "patient"))
    out = {ref[8:] for refs in indexed.values() for ref in refs if ref.startswith("Patient/")}
    missing = [rid for rid in ids if rid not in indexed]
    return out | _patient_ids(store.read_many("Encounter", missing))


def schedule_window(reference_date: date) -> tuple[str, str]:
    """This week (Monday to Sunday) of the reference date, as search date bounds.

    >>> schedule_window(date(2026, 1, 1))
    ('2025-12-29', '2026-01-04')
    """
    monday = reference_date - timedelta(days=reference_date.weekday())
    return monday.isoformat(), (monday + timedelta(days=6)).isoformat()


def treating_patients(
    store: Any, user: User, reference_date: date, *, references: IndexedReferences | None = None
) -> set[str]:
    """Patient ids ``user`` has a relationship with on ``reference_date``'s week.

    ``references`` is the store's ``indexed_references`` (the Sandbox passes it): with it the
    patients of the user's Encounters come from the search index instead of decoding them all.
    """
    from ehr_sandbox.search import parse

    if user.role == "patient":
        return {user.patient_id} if user.patient_id else set()
    start, end = schedule_window(reference_date)
    week = [("date", f"ge{start}"), ("date", f"le{end}")]
    out: set[str] = set()
    if user.practitioner_id:
        me = f"Practitioner/{user.practitioner_id}"
        out |= set(store.search_ids("Patient", parse("Patient", [("general-practitioner", me)])))
        out |= _encounter_patients(store, parse("Encounter", [("participant", me)]), references)
        out |= _patient_ids(
            store.search("Appointment", parse("Appointment", [("actor", me), *week]))
        )
    if user.role in ROOMING_ROLES:
        out |= _patient_ids(store.search("Appointment", parse("Appointment", week)))
    return out
