"""Which search parameters the store keeps in its index, and which it checks on candidates.

A generated clinic wrote about ten index rows per resource, most of them for parameters no
code path searches on (``_tag``, ``_security``, ``_profile``, ``_lastUpdated``, statuses,
categories, quantities...). The store now indexes the parameters a search *drives* on or
sorts by:

- every reference parameter (compartments, relationships, chains, ``_include`` and
  ``_revinclude`` all walk references);
- every date parameter but ``_lastUpdated`` (date ranges and ``_sort`` by date);
- ``identifier`` and ``code`` (look-ups by MRN, by username, by LOINC code);
- every parameter of ``Patient`` (demographic look-ups; a clinic has few patients);
- the ``status`` of Appointments and Encounters (since ``drivers-v2``: whom a clinician
  treats counts only bookings and contacts of some statuses, on every fresh login).

Every other parameter is still supported, with the same results: a search first selects the
candidates with its indexed clauses (all resources of the type when it has none), decodes
them, and checks the other clauses on those candidates' own values, with the same SQL on a
private in-memory index (the path encrypted stores already took for range clauses). So a
search on ``_security`` alone reads every resource of the type; a search that also names a
patient reads only that patient's resources.

The plan a store was built with is recorded in its ``sandbox_meta`` (``store.index_plan``);
a store without one (made before the plan existed) has every parameter indexed.

>>> indexed("Observation", "patient"), indexed("Observation", "_security")
(True, False)
>>> sorted(unindexed("Patient"))
['_lastUpdated', '_profile', '_security', '_tag']
"""

from __future__ import annotations

from functools import cache

from ehr_sandbox.search.registry import params_for

PLAN_KEY = "store.index_plan"
"""sandbox_meta key: the name of the plan the store's index follows (absent: everything)."""

PLAN = "drivers-v2"
"""The current plan's name (change it when :func:`indexed` changes: old stores keep theirs
until :meth:`~ehr_sandbox.store.Store.reindex`)."""

DRIVERS_V1 = "drivers-v1"
"""The previous plan: as ``drivers-v2`` without the statuses of Appointment and Encounter."""

ALL = "all"
"""The plan of stores made before index plans: every parameter is indexed."""

_ALWAYS = frozenset({"identifier", "code"})
_FULL_TYPES = frozenset({"Patient"})
_META = frozenset({"_lastUpdated", "_tag", "_security", "_profile"})
_STATUS_TYPES = frozenset({"Appointment", "Encounter"})


def indexed(resource_type: str, name: str, plan: str = PLAN) -> bool:
    """True when the store's index holds parameter ``name`` of ``resource_type`` under ``plan``.

    >>> indexed("Slot", "start"), indexed("Slot", "status"), indexed("Slot", "status", ALL)
    (True, False, True)
    >>> indexed("Encounter", "status"), indexed("Encounter", "status", DRIVERS_V1)
    (True, False)
    """
    if plan == ALL:
        return True
    p = params_for(resource_type).get(name)
    if p is None:
        return False
    if p.type == "special":
        return True  # _id: answered from the resources table, never from index rows
    if name in _META:
        return False
    if resource_type in _FULL_TYPES:
        return True
    if name == "status" and resource_type in _STATUS_TYPES and plan != DRIVERS_V1:
        return True
    return p.type in ("reference", "date") or name in _ALWAYS


@cache
def unindexed(resource_type: str, plan: str = PLAN) -> frozenset[str]:
    """The parameters of ``resource_type`` the index does not hold under ``plan``.

    >>> "status" in unindexed("Observation"), unindexed("Observation", ALL)
    (True, frozenset())
    """
    return frozenset(
        name for name in params_for(resource_type) if not indexed(resource_type, name, plan)
    )


PLANS = (PLAN, DRIVERS_V1, ALL)
"""The plans this version of ehr-sandbox can read and write."""


def known(plan: str) -> bool:
    """True for a plan this version of ehr-sandbox can read.

    >>> known(PLAN), known(ALL), known("from-the-future")
    (True, True, False)
    """
    return plan in PLANS
