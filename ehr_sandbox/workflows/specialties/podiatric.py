"""Podiatric: the diabetic foot exam (monofilament, pedal pulses) and routine foot care rules.

:func:`diabetic_foot_exam` records the 5.07 (10-g) Semmes-Weinstein monofilament at five sites
per foot and the dorsalis pedis and posterior tibial pulses of each foot; loss of protective
sensation (absent at two or more sites on a foot, CMS NCD 70.2.1) or an absent pulse is
flagged and routed to the provider, and the exam is a ``Procedure`` (FOOT-EXAM-DM).
:func:`routine_foot_care` applies Medicare's routine foot care exclusion: nail and callus care
is covered only with a qualifying systemic condition and class findings, and the finding
decides the HCPCS modifier (Q7 one class A; Q8 two class B; Q9 one class B and two class C).

>>> lops([True, True, False, True, False]), lops([True, True, True, True, False])
(True, False)
>>> foot_care_modifier(["absent-posterior-tibial-pulse", "absent-dorsalis-pedis-pulse"])
'Q8'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule
from ehr_sandbox.workflows.care import (
    SANDBOX_OBS,
    category,
    coding,
    demo_session,
    identify,
    mrn_of,
    now_text,
    provider_of,
    read_patient,
    refuse,
    require_identified,
    routed_task,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from ehr_sandbox.workflows.specialties.common import modifier
from synthetic.systems import ICD10CM, SANDBOX_PROCEDURE, V3_OBSERVATION_INTERPRETATION

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "demo_session",
    "diabetic_foot_exam",
    "foot_care_modifier",
    "identify",
    "lops",
    "mrn_of",
    "routine_foot_care",
]

PROCEDURE = SANDBOX_PROCEDURE
INTERP = V3_OBSERVATION_INTERPRETATION
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("podiatric.monofilament", "the monofilament is tested at five sites on each foot", "CMS NCD 70.2.1; ADA Standards of Care 2025"),
        Rule("podiatric.pulses", "dorsalis pedis and posterior tibial pulses are graded on each foot", "ADA Standards of Care 2025"),
        Rule("podiatric.routine-care", "routine foot care is covered only with a qualifying systemic condition and class findings (else it is the patient's cost, with an ABN)", "Medicare Benefit Policy Manual ch. 15 s. 290"),
    )
}  # fmt: skip
SYSTEMIC = ("E10", "E11", "I70.2", "I73.9", "E08", "E13")
"""ICD-10-CM prefixes of systemic conditions that can qualify (diabetes, PAD...)."""


def lops(sites_felt: list[bool]) -> bool:
    """Loss of protective sensation on one foot: not felt at 2 or more of the 5 sites.

    Examples
    --------
    >>> lops([False, False, True, True, True])
    True
    """
    spec = table("specialties")["podiatric"]
    return sum(1 for s in sites_felt if not s) >= spec["lops_absent_sites"]


def foot_care_modifier(findings: list[str]) -> str | None:
    """Q7 / Q8 / Q9 from the class findings documented (None when none qualifies).

    Examples
    --------
    >>> foot_care_modifier(["nontraumatic-amputation"]), foot_care_modifier(["edema"])
    ('Q7', None)
    """
    spec = table("specialties")["podiatric"]
    a = sum(f in spec["class_a"] for f in findings)
    b = sum(f in spec["class_b"] for f in findings)
    c = sum(f in spec["class_c"] for f in findings)
    if a >= 1:
        return "Q7"
    if b >= 2:
        return "Q8"
    if b >= 1 and c >= 2:
        return "Q9"
    return None


def diabetic_foot_exam(
    session: Session,
    patient: str,
    *,
    monofilament_right: list[bool],
    monofilament_left: list[bool],
    pulses: dict[str, str],
    skin: str,
    provider: str | None = None,
) -> list[dict[str, Any]]:
    """Record the diabetic foot exam; LOPS or an absent pulse routes a Task to the provider.

    Parameters
    ----------
    monofilament_right, monofilament_left : list of bool
        Felt (True) at each of the five sites.
    pulses : dict
        ``"right dorsalis-pedis"``, ``"right posterior-tibial"``, ``"left ..."`` -> grade
        (``absent``, ``diminished``, ``normal``, ``bounding``).
    skin : str
        Inspection (skin, nails, deformity, ulcers).

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> out = diabetic_foot_exam(s, ref, monofilament_right=[True] * 5, monofilament_left=[True, False, False, True, True],
    ...     pulses={"right dorsalis-pedis": "normal", "right posterior-tibial": "normal",
    ...             "left dorsalis-pedis": "diminished", "left posterior-tibial": "normal"},
    ...     skin="dry skin, no ulcers")
    >>> [r["resourceType"] for r in out]
    ['Observation', 'Observation', 'Observation', 'Procedure', 'Task']
    """
    ref = require_identified(session, patient, "Observation")
    spec = table("specialties")["podiatric"]
    n = spec["monofilament_sites"]
    for side, sites in (("right", monofilament_right), ("left", monofilament_left)):
        if (
            not isinstance(sites, list | tuple)
            or len(sites) != n
            or any(not isinstance(x, bool) for x in sites)
        ):
            raise refuse(
                RULES["podiatric.monofilament"],
                "Observation (monofilament)",
                side,
                f"{n} sites, felt True/False",
                sites,
            )
    keys = [f"{side} {p}" for side in ("right", "left") for p in spec["pulses"]]
    if set(pulses) != set(keys) or any(g not in spec["pulse_grades"] for g in pulses.values()):
        raise refuse(
            RULES["podiatric.pulses"],
            "Observation (pedal pulses)",
            "component",
            "a grade (" + ", ".join(spec["pulse_grades"]) + ") for " + ", ".join(keys),
            pulses,
        )
    when = now_text(session)
    out: list[dict[str, Any]] = []
    alerts = []
    for side, sites in (("right", monofilament_right), ("left", monofilament_left)):
        o: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": category("exam"),
            "code": coding(
                SANDBOX_OBS, f"monofilament-{side}", f"Monofilament (10 g) sensation, {side} foot"
            ),
            "subject": {"reference": ref},
            "effectiveDateTime": when,
            "performer": [user_ref(session)],
            "valueString": f"{sum(sites)}/{n} sites felt",
        }
        if lops(list(sites)):
            o["interpretation"] = [
                {
                    "coding": [{"system": INTERP, "code": "A"}],
                    "text": "loss of protective sensation",
                }
            ]
            alerts.append(f"LOPS {side} foot ({sum(sites)}/{n})")
        out.append(o)
    po: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": category("exam"),
        "code": coding(SANDBOX_OBS, "pedal-pulses", "Pedal pulses"),
        "subject": {"reference": ref},
        "effectiveDateTime": when,
        "performer": [user_ref(session)],
        "component": [{"code": {"text": k}, "valueString": pulses[k]} for k in keys],
    }
    absent = [k for k in keys if pulses[k] == "absent"]
    if absent:
        po["interpretation"] = [
            {"coding": [{"system": INTERP, "code": "A"}], "text": "absent pulse"}
        ]
        alerts.append("absent " + ", ".join(absent))
    elif any(pulses[k] == "diminished" for k in keys):
        alerts.append("diminished " + ", ".join(k for k in keys if pulses[k] == "diminished"))
    out.append(po)
    out.append(
        {
            "resourceType": "Procedure",
            "status": "completed",
            "code": coding(
                PROCEDURE,
                "FOOT-EXAM-DM",
                "Diabetic foot examination, with monofilament sensation test",
            ),
            "subject": {"reference": ref},
            "performedDateTime": when,
            "recorder": user_ref(session),
            "note": [{"text": f"Inspection: {skin}"}],
        }
    )
    if alerts:
        chart = read_patient(session, ref)
        out.append(
            routed_task(
                session,
                ref,
                provider_of(chart, provider),
                "Diabetic foot exam: " + "; ".join(alerts),
                priority="routine",
            )
        )
    return write_entries(session, out, operation="podiatric.foot-exam")


def routine_foot_care(
    session: Session,
    patient: str,
    *,
    service: str,
    systemic_condition: str,
    findings: list[str],
) -> dict[str, Any]:
    """Record routine foot care with its Medicare modifier; refused when it does not qualify.

    Parameters
    ----------
    service : str
        ``NAIL-DEBRIDE``, ``CALLUS-PARE`` or ``ROUTINE-FOOT-CARE`` (sandbox procedure codes).
    systemic_condition : str
        The ICD-10-CM code of the qualifying systemic condition (diabetes E08-E13, PAD I70.2-/I73.9).
    findings : list of str
        Class findings documented (``data/specialties.toml`` ``[podiatric]``).

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> routine_foot_care(s, ref, service="NAIL-DEBRIDE", systemic_condition="E11.42", findings=["edema"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Procedure: extension (modifier): expected class findings that qualify (Q7, Q8 or Q9) ...
    """
    ref = require_identified(session, patient, "Procedure")
    rule = RULES["podiatric.routine-care"]
    if not any(str(systemic_condition).startswith(p) for p in SYSTEMIC):
        raise refuse(
            rule,
            "Procedure",
            "reasonCode",
            "a qualifying systemic condition (diabetes, PAD)",
            systemic_condition,
        )
    mod = foot_care_modifier(findings)
    if mod is None:
        raise refuse(
            rule,
            "Procedure",
            "extension (modifier)",
            "class findings that qualify (Q7, Q8 or Q9)",
            findings,
        )
    displays = {"NAIL-DEBRIDE": "Debridement of nails, 1 to 5", "CALLUS-PARE": "Paring of corn or callus, single lesion", "ROUTINE-FOOT-CARE": "Routine foot care (nails, corns and calluses)"}  # fmt: skip
    if service not in displays:
        raise refuse(rule, "Procedure", "code", "one of " + ", ".join(displays), service)
    proc = {
        "resourceType": "Procedure",
        "extension": [modifier(mod)],
        "status": "completed",
        "code": coding(PROCEDURE, service, displays[service]),
        "subject": {"reference": ref},
        "performedDateTime": now_text(session),
        "recorder": user_ref(session),
        "reasonCode": [coding(ICD10CM, systemic_condition)],
        "note": [{"text": "Class findings: " + ", ".join(findings)}],
    }
    return write_entries(session, [proc], operation="podiatric.routine-care")[0]
