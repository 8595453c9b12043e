"""Ophthalmic workup: visual acuity, intraocular pressure, glaucoma follow-up with medication.

:func:`eye_workup` records uncorrected Snellen acuity (LOINC 98499-7 right, 98498-9 left) and IOP
(79892-6 right, 79893-4 left, mm[Hg]); an IOP above 21 mmHg — or above the patient's target
pressure — is flagged ``H`` and routed to the ophthalmologist the same day.
:func:`glaucoma_follow_up` adds the glaucoma drops as a ``MedicationStatement`` with the
patient's adherence.

>>> iop_flag(24), iop_flag(18), iop_flag(19, target=17)
('H', None, 'H')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule
from ehr_sandbox.workflows.care import (
    category,
    demo_session,
    identify,
    loinc_concept,
    mrn_of,
    now_text,
    provider_of,
    quantity,
    read_patient,
    refuse,
    require_identified,
    routed_task,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from ehr_sandbox.workflows.diagnostics import snellen_fraction
from synthetic.systems import V3_OBSERVATION_INTERPRETATION

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "demo_session",
    "eye_workup",
    "glaucoma_follow_up",
    "identify",
    "iop_flag",
    "mrn_of",
]

INTERP = V3_OBSERVATION_INTERPRETATION
_AAO = "AAO Preferred Practice Pattern: Primary Open-Angle Glaucoma (2020)"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("ophthalmic.iop", "IOP is measured in mm[Hg] for each eye within the measurable range", _AAO),
        Rule("ophthalmic.adherence", "a glaucoma follow-up records the drops and whether the patient uses them", _AAO),
    )
}  # fmt: skip
ADHERENCE = {"taking": "active", "missed doses": "active", "stopped": "stopped"}


def iop_flag(value: float, *, target: float | None = None) -> str | None:
    """``"H"`` when IOP is above the normal limit (21 mmHg) or the patient's target pressure.

    Examples
    --------
    >>> iop_flag(21)
    """
    limit = table("specialties")["ophthalmic"]["iop_normal_high"]
    if value > limit or (target is not None and value > target):
        return "H"
    return None


def eye_workup(
    session: Session,
    patient: str,
    *,
    va_right: str,
    va_left: str,
    iop_right: float,
    iop_left: float,
    target_iop: float | None = None,
    provider: str | None = None,
) -> list[dict[str, Any]]:
    """Visual acuity and IOP for both eyes; a high IOP routes a same-day Task.

    Returns the written resources (four Observations, then the Task when routed).

    Raises
    ------
    RuleRefused
        ``diagnostics.vision`` (not a Snellen line), ``ophthalmic.iop``, ``care.two-identifiers``.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> out = eye_workup(s, ref, va_right="20/25", va_left="20/30", iop_right=26, iop_left=19)
    >>> [r["resourceType"] for r in out][-1], out[2]["interpretation"][0]["coding"][0]["code"]
    ('Task', 'H')
    """
    ref = require_identified(session, patient, "Observation")
    snellen_fraction(va_right), snellen_fraction(va_left)
    lo, hi = table("specialties")["ophthalmic"]["iop_plausible"]
    for side, v in (("right", iop_right), ("left", iop_left)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise refuse(RULES["ophthalmic.iop"], "Observation (IOP)", side, f"{lo}-{hi} mm[Hg]", v)
    when = now_text(session)
    out: list[dict[str, Any]] = []
    for code, v in (("98499-7", va_right), ("98498-9", va_left)):
        out.append(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": category("exam"),
                "code": loinc_concept(code),
                "subject": {"reference": ref},
                "effectiveDateTime": when,
                "performer": [user_ref(session)],
                "valueString": v,
            }
        )
    high = []
    for code, side, v in (("79892-6", "right", iop_right), ("79893-4", "left", iop_left)):
        o: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": category("exam"),
            "code": loinc_concept(code),
            "subject": {"reference": ref},
            "effectiveDateTime": when,
            "performer": [user_ref(session)],
            "valueQuantity": quantity(v, "mm[Hg]"),
        }
        f = iop_flag(v, target=target_iop)
        if f:
            o["interpretation"] = [{"coding": [{"system": INTERP, "code": f}]}]
            high.append(f"{side} {v:g} mmHg")
        out.append(o)
    if high:
        chart = read_patient(session, ref)
        limit = (
            target_iop
            if target_iop is not None
            else table("specialties")["ophthalmic"]["iop_normal_high"]
        )
        out.append(
            routed_task(
                session,
                ref,
                provider_of(chart, provider),
                f"IOP above {limit:g} mmHg: {', '.join(high)} - for the ophthalmologist today",
                priority="urgent",
            )
        )
    return write_entries(session, out, operation="ophthalmic.workup")


def glaucoma_follow_up(
    session: Session,
    patient: str,
    *,
    medication: str,
    adherence: str,
    va_right: str,
    va_left: str,
    iop_right: float,
    iop_left: float,
    target_iop: float,
    provider: str | None = None,
) -> list[dict[str, Any]]:
    """A glaucoma follow-up: the drops and adherence (MedicationStatement), VA and IOP vs target.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> glaucoma_follow_up(s, ref, medication="latanoprost 0.005% ophthalmic solution, 1 drop each eye at bedtime",
    ...     adherence="sometimes", va_right="20/20", va_left="20/20", iop_right=17, iop_left=18, target_iop=18)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: MedicationStatement: status: expected one of taking, missed doses, stopped ...
    """
    ref = require_identified(session, patient, "MedicationStatement")
    if adherence not in ADHERENCE or not medication:
        raise refuse(
            RULES["ophthalmic.adherence"],
            "MedicationStatement",
            "status",
            "one of " + ", ".join(ADHERENCE),
            adherence,
        )
    exam = eye_workup(
        session,
        ref,
        va_right=va_right,
        va_left=va_left,
        iop_right=iop_right,
        iop_left=iop_left,
        target_iop=target_iop,
        provider=provider,
    )
    st = {
        "resourceType": "MedicationStatement",
        "status": ADHERENCE[adherence],
        "medicationCodeableConcept": {"text": medication},
        "subject": {"reference": ref},
        "dateAsserted": now_text(session),
        "informationSource": {"reference": ref},
        "note": [
            {
                "text": f"Glaucoma follow-up: patient reports {adherence}; target IOP {target_iop:g} mmHg"
            }
        ],
    }
    return [*exam, *write_entries(session, [st], operation="ophthalmic.glaucoma-follow-up")]
