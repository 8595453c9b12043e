"""The drug-allergy check every medication order and administration passes through.

A real EHR alerts when a drug is ordered for a patient recorded as allergic to it, directly or
through a cross-reactive class (penicillin allergy -> any penicillin, and the cephalosporins);
the order goes through only with a documented override reason. Drug classes, their RxNorm
members, the allergy substances that mean an allergy to them, and cross-reactivity are content
(``synthetic/content/data/drug_classes.toml``, with their sources).

>>> order = {"resourceType": "MedicationRequest", "status": "active", "subject": {"reference": "Patient/p1"},
...          "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "308192",
...                                                   "display": "amoxicillin 500 MG Oral Tablet"}]}}
>>> allergy = {"resourceType": "AllergyIntolerance", "id": "a1", "code": {"coding": [{"code": "764146007",
...            "display": "Penicillin"}]}, "clinicalStatus": {"coding": [{"code": "active"}]}}
>>> [c.drug_class for c in conflicts(order, [allergy])]
['Penicillins']
>>> ceph = {**order, "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "309097"}]}}
>>> [(c.drug_class, c.via) for c in conflicts(ceph, [allergy])]
[('Cephalosporins', 'Penicillins')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from synthetic.systems import RXNORM

__all__ = ["CHECKED_TYPES", "RXNORM", "Conflict", "conflicts", "drug_codes", "needs_check"]

CHECKED_TYPES = frozenset({"MedicationRequest", "MedicationAdministration"})
"""Resource types whose writes pass the drug-allergy check."""

_GIVING = {
    "MedicationRequest": {"active", "completed"},
    "MedicationAdministration": {"in-progress", "completed"},
}
"""Statuses in which an order is live or a dose is given (a draft, a held or a cancelled order is
not checked; signing a draft, i.e. making it active, is)."""


@dataclass(frozen=True)
class Conflict:
    """One drug-allergy conflict: the drug, its class, the allergy and (if any) the class it
    cross-reacts through.

    Parameters
    ----------
    drug : str
        The drug's display name.
    drug_class : str
        Its class (``Penicillins``).
    allergy : str
        The recorded allergy's text.
    allergy_ref : str
        ``AllergyIntolerance/id``.
    via : str, optional
        The allergy's class when the conflict is a cross-reaction ("" for a direct one).

    Examples
    --------
    >>> c = Conflict("cefalexin 500 MG", "Cephalosporins", "Penicillin", "AllergyIntolerance/a1", "Penicillins")
    >>> c.via, c == Conflict(*[c.drug, c.drug_class, c.allergy, c.allergy_ref, c.via])
    ('Penicillins', True)
    """

    drug: str
    drug_class: str
    allergy: str
    allergy_ref: str
    via: str = ""


@lru_cache(maxsize=1)
def _classes() -> tuple[Any, ...]:
    from synthetic.content import load_content  # type: ignore[attr-defined]

    return tuple(load_content().drug_classes)


def drug_codes(
    resource: Mapping[str, Any], medication: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    """(RxNorm code, display) pairs of the drug a resource orders or gives.

    ``medication`` is the Medication a ``medicationReference`` points at, when there is one.

    >>> drug_codes({"medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1", "display": "x"}]}})
    [('1', 'x')]
    """
    concept = resource.get("medicationCodeableConcept") or (medication or {}).get("code") or {}
    return [
        (str(c.get("code")), str(c.get("display") or concept.get("text") or c.get("code")))
        for c in concept.get("coding", []) or []
        if c.get("system") == RXNORM and c.get("code")
    ]


def needs_check(resource: Mapping[str, Any], before: Mapping[str, Any] | None) -> bool:
    """True when a write orders or gives a drug anew (a create, a changed drug, a reactivation).

    >>> needs_check({"resourceType": "MedicationRequest", "status": "cancelled"}, None)
    False
    >>> needs_check({"resourceType": "MedicationRequest", "status": "active"}, {"status": "draft"})
    True
    """
    rtype = resource.get("resourceType", "")
    if rtype not in CHECKED_TYPES or resource.get("status") not in _GIVING[rtype]:
        return False
    if before is None:
        return True
    changed_drug = drug_codes(resource) != drug_codes(before) or resource.get(
        "medicationReference"
    ) != before.get("medicationReference")
    return changed_drug or before.get("status") not in _GIVING[rtype]


def _active(allergy: Mapping[str, Any]) -> bool:
    status = {c.get("code") for c in (allergy.get("clinicalStatus") or {}).get("coding", [])}
    verification = {
        c.get("code") for c in (allergy.get("verificationStatus") or {}).get("coding", [])
    }
    return "active" in status and not verification & {"refuted", "entered-in-error"}


def conflicts(
    resource: Mapping[str, Any],
    allergies: Iterable[Mapping[str, Any]],
    medication: Mapping[str, Any] | None = None,
) -> list[Conflict]:
    """The drug-allergy conflicts of an order/administration against the patient's allergies.

    Only active allergies that are not refuted or entered in error count. Drug classes and
    cross-reactivity come from the content (``drug_classes.toml``).

    Parameters
    ----------
    resource : mapping
        A MedicationRequest or MedicationAdministration.
    allergies : iterable of mapping
        The patient's AllergyIntolerance resources.
    medication : mapping, optional
        The Medication the resource references, when it names its drug that way.

    Returns
    -------
    list of Conflict
        Empty when the drug is safe for these allergies.

    Examples
    --------
    >>> order = {"resourceType": "MedicationRequest", "status": "active",
    ...          "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "308192",
    ...                                                   "display": "amoxicillin 500 MG Oral Tablet"}]}}
    >>> allergy = {"resourceType": "AllergyIntolerance", "id": "a1", "code": {"coding": [{"code": "764146007",
    ...            "display": "Penicillin"}]}, "clinicalStatus": {"coding": [{"code": "active"}]}}
    >>> [(c.drug, c.drug_class, c.allergy_ref) for c in conflicts(order, [allergy])]
    [('amoxicillin 500 MG Oral Tablet', 'Penicillins', 'AllergyIntolerance/a1')]
    >>> refuted = {**allergy, "verificationStatus": {"coding": [{"code": "refuted"}]}}
    >>> conflicts(order, [refuted])
    []
    """
    classes = _classes()
    by_id = {c.id: c for c in classes}
    drugs = drug_codes(resource, medication)
    out: list[Conflict] = []
    for allergy in allergies:
        if not _active(allergy):
            continue
        substance = {
            c.get("code") for c in (allergy.get("code") or {}).get("coding", []) if c.get("code")
        }
        allergic = [c for c in classes if substance & set(c.allergens)]
        if not allergic:
            continue
        label = (allergy.get("code") or {}).get("text") or next(
            (
                c.get("display")
                for c in (allergy.get("code") or {}).get("coding", [])
                if c.get("display")
            ),
            "a drug class",
        )
        ref = f"AllergyIntolerance/{allergy.get('id', '')}"
        for code, display in drugs:
            for cls in classes:
                if code not in cls.rxnorm:
                    continue
                for allergic_cls in allergic:
                    if allergic_cls.id == cls.id:
                        out.append(Conflict(display, cls.display, label, ref))
                    elif allergic_cls.id in cls.cross_reactive_with:
                        out.append(
                            Conflict(
                                display, cls.display, label, ref, by_id[allergic_cls.id].display
                            )
                        )
    return out
