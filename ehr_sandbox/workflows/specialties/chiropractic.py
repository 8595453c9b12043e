"""Chiropractic: spinal regions, subluxation (PART) documentation, active vs maintenance (AT).

Medicare covers chiropractic manipulative treatment (CMT) of a subluxation only as **active /
corrective** treatment: the subluxation is documented by physical exam with two of the four
PART elements — Pain/tenderness, Asymmetry/misalignment, Range-of-motion abnormality,
Tissue/tone changes — one of which must be A or R; the primary diagnosis is the segmental
dysfunction of the region treated (ICD-10-CM M99.0-); a treatment plan with measurable goals
is on file; and the claim line carries the HCPCS **AT** modifier. Maintenance therapy is not
covered: no AT, and GA when an ABN was signed. :func:`visit` records all of it: the PART
Observation, the primary-diagnosis Conditions and the CMT Procedure (sandbox code by number of
regions) with its modifier.

>>> cmt_code(["cervical", "lumbar"]), cmt_code(["cervical", "thoracic", "lumbar"])
('CMT-SPINE-1-2', 'CMT-SPINE-3-4')
>>> part_ok({"pain": True, "range-of-motion": True}), part_ok({"pain": True, "tissue-tone": True})
(True, False)
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
    refuse,
    require_identified,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from ehr_sandbox.workflows.specialties.common import modifier
from synthetic.systems import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    ICD10CM,
    SANDBOX_PROCEDURE,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = ["RULES", "cmt_code", "demo_session", "identify", "mrn_of", "part_ok", "visit"]

PROCEDURE = SANDBOX_PROCEDURE
ICD10 = ICD10CM
_MBPM = "Medicare Benefit Policy Manual ch. 15 s. 240.1.2-240.1.3; HCPCS Level II modifiers"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("chiropractic.regions", "each region treated is a spinal region (cervical, thoracic, lumbar, sacral, pelvic)", _MBPM),
        Rule("chiropractic.diagnosis", "the primary diagnosis is the segmental dysfunction (M99.0-) of a region treated", _MBPM),
        Rule("chiropractic.part", "subluxation by exam needs two PART elements, one of them asymmetry or range of motion", _MBPM),
        Rule("chiropractic.active", "active/corrective treatment (AT) needs a treatment plan with measurable goals; maintenance is billed without AT", _MBPM),
    )
}  # fmt: skip
CMT = {
    "CMT-SPINE-1-2": "Chiropractic manipulative treatment, spinal, 1-2 regions",
    "CMT-SPINE-3-4": "Chiropractic manipulative treatment, spinal, 3-4 regions",
    "CMT-SPINE-5": "Chiropractic manipulative treatment, spinal, 5 regions",
}


def cmt_code(regions: list[str]) -> str:
    """The sandbox CMT code for the number of spinal regions treated.

    Examples
    --------
    >>> cmt_code(["cervical", "thoracic", "lumbar", "sacral", "pelvic"])
    'CMT-SPINE-5'
    """
    n = len(set(regions))
    return "CMT-SPINE-1-2" if n <= 2 else "CMT-SPINE-3-4" if n <= 4 else "CMT-SPINE-5"


def part_ok(findings: dict[str, Any]) -> bool:
    """Two or more PART elements present, including asymmetry or range of motion.

    Examples
    --------
    >>> part_ok({"asymmetry": "L4 rotated right", "pain": "tender L4-5"})
    True
    """
    spec = table("specialties")["chiropractic"]
    present = {k for k, v in findings.items() if k in spec["part"] and v}
    return len(present) >= 2 and bool(present & set(spec["part_required"]))


def visit(
    session: Session,
    patient: str,
    *,
    regions: list[str],
    primary_dx: str,
    part: dict[str, Any],
    treatment: str,
    plan_goals: str | None = None,
    abn_on_file: bool = False,
) -> list[dict[str, Any]]:
    """Document a chiropractic visit for Medicare; returns the written resources.

    Parameters
    ----------
    regions : list of str
        Spinal regions manipulated.
    primary_dx : str
        ICD-10-CM M99.0- code of a treated region (the subluxation).
    part : dict
        PART element -> finding text (or True); elements: pain, asymmetry, range-of-motion, tissue-tone.
    treatment : str
        ``"active"`` (corrective: AT modifier) or ``"maintenance"`` (no AT; GA with an ABN).
    plan_goals : str, optional
        The treatment plan's measurable goals (required for active treatment).

    Raises
    ------
    RuleRefused
        ``chiropractic.*`` or ``care.two-identifiers``.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> out = visit(s, ref, regions=["lumbar"], primary_dx="M99.03",
    ...     part={"pain": "tender L4-L5, 6/10", "range-of-motion": "flexion limited to 45 degrees"},
    ...     treatment="active", plan_goals="reduce pain to 2/10 and restore flexion to 80 degrees in 6 weeks")
    >>> [r["resourceType"] for r in out], out[-1]["extension"][0]["valueCoding"]["code"]
    (['Observation', 'Condition', 'Procedure'], 'AT')
    """
    ref = require_identified(session, patient, "Procedure")
    spec = table("specialties")["chiropractic"]
    if not regions or any(r not in spec["regions"] for r in regions):
        raise refuse(
            RULES["chiropractic.regions"],
            "Procedure",
            "bodySite",
            "regions among " + ", ".join(spec["regions"]),
            regions,
        )
    treated_codes = {spec["regions"][r] for r in regions}
    if primary_dx not in treated_codes:
        raise refuse(
            RULES["chiropractic.diagnosis"],
            "Condition",
            "code",
            "the M99.0- code of a region treated (" + ", ".join(sorted(treated_codes)) + ")",
            primary_dx,
        )
    if not part_ok(part):
        raise refuse(
            RULES["chiropractic.part"],
            "Observation (PART)",
            "component",
            "two PART elements incl. asymmetry or range of motion",
            sorted(k for k, v in part.items() if v),
        )
    if treatment not in ("active", "maintenance"):
        raise refuse(
            RULES["chiropractic.active"],
            "Procedure",
            "extension (modifier)",
            "active or maintenance",
            treatment,
        )
    if treatment == "active" and not (plan_goals and len(plan_goals.split()) >= 5):
        raise refuse(
            RULES["chiropractic.active"],
            "Procedure",
            "extension (modifier)",
            "a treatment plan with measurable goals for AT",
            plan_goals,
        )
    when = now_text(session)
    part_obs = {
        "resourceType": "Observation",
        "status": "final",
        "category": category("exam"),
        "code": coding(SANDBOX_OBS, "subluxation-part", "Subluxation by physical exam (PART)"),
        "subject": {"reference": ref},
        "effectiveDateTime": when,
        "performer": [user_ref(session)],
        "component": [
            {"code": {"text": k}, "valueString": str(v) if not isinstance(v, bool) else "present"}
            for k, v in part.items()
            if v and k in spec["part"]
        ],
    }
    from synthetic.content import load_content

    cond = {
        "resourceType": "Condition",
        "clinicalStatus": coding(CONDITION_CLINICAL, "active"),
        "verificationStatus": coding(CONDITION_VER_STATUS, "confirmed"),
        "category": [
            coding(
                CONDITION_CATEGORY,
                "encounter-diagnosis",
                "Encounter Diagnosis",
            )
        ],
        "code": coding(ICD10, primary_dx, load_content().codes["icd10cm"].display(primary_dx)),
        "subject": {"reference": ref},
        "recordedDate": when,
        "recorder": user_ref(session),
        "evidence": [{"detail": [{"reference": "urn:uuid:00000000-0000-4000-8000-0000000c0001"}]}],
    }
    code = cmt_code(regions)
    mods = ["AT"] if treatment == "active" else (["GA"] if abn_on_file else [])
    proc = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": coding(PROCEDURE, code, CMT[code]),
        "subject": {"reference": ref},
        "performedDateTime": when,
        "recorder": user_ref(session),
        "bodySite": [{"text": f"{r} spine"} for r in regions],
        "reasonReference": [{"reference": "urn:uuid:00000000-0000-4000-8000-0000000c0002"}],
        "note": [
            {
                "text": f"{treatment} treatment"
                + (f"; plan goals: {plan_goals}" if plan_goals else "")
            }
        ],
    }
    if mods:
        proc["extension"] = [modifier(m) for m in mods]
    return write_entries(
        session,
        [
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000c0001", "resource": part_obs},
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000c0002", "resource": cond},
            proc,
        ],
        operation="chiropractic.visit",
    )
