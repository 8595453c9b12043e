"""OB-GYN: the routine prenatal visit with gestational age, trimester codes and the Tdap window.

:func:`prenatal_visit` computes the gestational age from the last menstrual period (Naegele:
EDD = LMP + 280 days), records fundal height (11881-0), fetal heart rate (55283-6), urine
protein (20454-5) and glucose (25428-4) and the gestational age (49051-6), checks that the
diagnosis codes chosen match the trimester and week (ICD-10-CM Z34.0-/Z34.8- supervision of
normal first/other pregnancy by trimester; Z3A.xx weeks), flags an FHR outside 110-160, a
fundal height more than 2 cm from the weeks (20-36 weeks), and proteinuria or glycosuria, and
routes those — and a Tdap not yet given in the 27-36 week window — to the provider.

>>> gestational_age("2025-06-19", "2026-01-01")
(28, 0)
>>> trimester(13), trimester(14), trimester(28)
(1, 2, 3)
>>> expected_codes(28, first_pregnancy=True)
('Z34.03', 'Z3A.28')
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule
from ehr_sandbox.workflows.care import (
    category,
    coding,
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
    today,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from synthetic.systems import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    ICD10CM,
    V3_OBSERVATION_INTERPRETATION,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "demo_session",
    "expected_codes",
    "gestational_age",
    "identify",
    "mrn_of",
    "prenatal_visit",
    "tdap_window",
    "trimester",
]

ICD10 = ICD10CM
INTERP = V3_OBSERVATION_INTERPRETATION
URINE = ("negative", "trace", "1+", "2+", "3+", "4+")
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("obgyn.dates", "the LMP is a past date within 45 weeks", "ACOG Committee Opinion 700 (methods for estimating the due date)"),
        Rule("obgyn.trimester-code", "the supervision code matches the trimester and Z3A the completed weeks", "ICD-10-CM Official Guidelines I.C.15 (2026)"),
        Rule("obgyn.measurements", "fundal height in cm, FHR per minute, urine protein and glucose as dipstick grades", "ACOG/AAP Guidelines for Perinatal Care (8th ed.)"),
    )
}  # fmt: skip


def gestational_age(lmp: str, on: str | date) -> tuple[int, int]:
    """Completed weeks and days since the LMP.

    Examples
    --------
    >>> gestational_age("2025-10-01", "2025-12-10")
    (10, 0)
    """
    day = on if isinstance(on, date) else date.fromisoformat(str(on)[:10])
    days = (day - date.fromisoformat(str(lmp)[:10])).days
    return days // 7, days % 7


def trimester(weeks: int) -> int:
    """ICD-10-CM trimester from completed weeks (1st < 14, 2nd 14 to < 28, 3rd >= 28).

    Examples
    --------
    >>> trimester(27)
    2
    """
    return 1 if weeks < 14 else 2 if weeks < 28 else 3


def expected_codes(weeks: int, *, first_pregnancy: bool) -> tuple[str, str]:
    """(supervision code, weeks-of-gestation code) for a routine visit.

    Examples
    --------
    >>> expected_codes(7, first_pregnancy=False)
    ('Z34.81', 'Z3A.01')
    """
    spec = table("specialties")["obgyn"]
    sup = spec["supervision_first" if first_pregnancy else "supervision_other"][
        str(trimester(weeks))
    ]
    if weeks < 8:
        wk = "Z3A.01"
    elif weeks > 42:
        wk = "Z3A.49"
    else:
        wk = f"Z3A.{weeks:02d}"
    return sup, wk


def tdap_window(weeks: int) -> str:
    """Where the visit falls against the Tdap window (27-36 weeks).

    Examples
    --------
    >>> tdap_window(20), tdap_window(30), tdap_window(38)
    ('before', 'in', 'after')
    """
    lo, hi = table("specialties")["obgyn"]["tdap_window_weeks"]
    return "before" if weeks < lo else "in" if weeks <= hi else "after"


def _tdap_this_pregnancy(session: Session, ref: str, lmp: str) -> bool:
    for imm in session.search("Immunization", patient=ref).fetch():
        if imm.get("status") != "completed":
            continue
        codes = (imm.get("vaccineCode") or {}).get("coding", [])
        given = str(imm.get("occurrenceDateTime", ""))[:10]
        if any(c.get("code") == "115" for c in codes) and given >= str(lmp)[:10]:
            return True
    return False


def prenatal_visit(
    session: Session,
    patient: str,
    *,
    lmp: str,
    fundal_height_cm: float,
    fetal_heart_rate: float,
    urine_protein: str,
    urine_glucose: str,
    supervision_code: str,
    weeks_code: str,
    first_pregnancy: bool,
    provider: str | None = None,
) -> list[dict[str, Any]]:
    """Record a routine prenatal visit; returns everything written (Observations, Conditions, Task).

    Raises
    ------
    RuleRefused
        ``obgyn.trimester-code`` when the codes do not match the gestational age;
        ``obgyn.dates``; ``obgyn.measurements``; ``care.two-identifiers``.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> prenatal_visit(s, ref, lmp="2025-06-18", fundal_height_cm=28, fetal_heart_rate=140,
    ...     urine_protein="negative", urine_glucose="negative", supervision_code="Z34.02",
    ...     weeks_code="Z3A.28", first_pregnancy=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Condition: code: expected the supervision code for trimester 3 of a first pregnancy ...
    """
    ref = require_identified(session, patient, "Observation")
    on = today(session)
    try:
        weeks, days = gestational_age(lmp, on)
    except ValueError:
        weeks, days = -1, 0
    if not 0 <= weeks <= 45:
        raise refuse(
            RULES["obgyn.dates"], "Observation (49051-6)", "lmp", "a past LMP within 45 weeks", lmp
        )
    want_sup, want_wk = expected_codes(weeks, first_pregnancy=first_pregnancy)
    if supervision_code != want_sup:
        raise refuse(
            RULES["obgyn.trimester-code"],
            "Condition",
            "code",
            f"the supervision code for trimester {trimester(weeks)} of a "
            f"{'first' if first_pregnancy else 'later'} pregnancy",
            supervision_code,
        )
    if weeks_code != want_wk:
        raise refuse(
            RULES["obgyn.trimester-code"],
            "Condition",
            "code",
            "the Z3A code of the completed weeks",
            weeks_code,
        )
    spec = table("specialties")["obgyn"]
    for name, v, lo, hi in (
        ("fundal height", fundal_height_cm, 5, 50),
        ("fetal heart rate", fetal_heart_rate, 50, 240),
    ):
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise refuse(RULES["obgyn.measurements"], "Observation", name, f"{lo}-{hi}", v)
    for name, v in (("urine protein", urine_protein), ("urine glucose", urine_glucose)):
        if v not in URINE:
            raise refuse(
                RULES["obgyn.measurements"], "Observation", name, "one of " + ", ".join(URINE), v
            )
    when = now_text(session)
    alerts = []

    def obs(code: str, **value: Any) -> dict[str, Any]:
        o = {
            "resourceType": "Observation",
            "status": "final",
            "category": category("exam"),
            "code": loinc_concept(code),
            "subject": {"reference": ref},
            "effectiveDateTime": when,
            "performer": [user_ref(session)],
        }
        o.update(value)
        return o

    ga = obs(
        "49051-6",
        valueQuantity=quantity(weeks, "wk"),
        note=[{"text": f"{weeks} weeks {days} days by LMP {lmp}"}],
    )
    fh = obs("11881-0", valueQuantity=quantity(fundal_height_cm, "cm"))
    if (
        spec["fundal_from_weeks"] <= weeks <= spec["fundal_to_weeks"]
        and abs(fundal_height_cm - weeks) > spec["fundal_tolerance_cm"]
    ):
        fh["interpretation"] = [{"coding": [{"system": INTERP, "code": "A"}]}]
        alerts.append(f"fundal height {fundal_height_cm:g} cm at {weeks} weeks")
    fhr = obs("55283-6", valueQuantity=quantity(fetal_heart_rate, "/min"))
    lo, hi = spec["fhr_normal"]
    if not lo <= fetal_heart_rate <= hi:
        fhr["interpretation"] = [
            {"coding": [{"system": INTERP, "code": "H" if fetal_heart_rate > hi else "L"}]}
        ]
        alerts.append(f"FHR {fetal_heart_rate:g}/min")
    up = obs("20454-5", valueString=urine_protein)
    ug = obs("25428-4", valueString=urine_glucose)
    for o, v, name in ((up, urine_protein, "proteinuria"), (ug, urine_glucose, "glycosuria")):
        if v not in ("negative", "trace"):
            o["interpretation"] = [{"coding": [{"system": INTERP, "code": "A"}]}]
            alerts.append(f"{name} {v}")
    for o in (up, ug):
        o["category"] = category("laboratory")
    from synthetic.content import load_content

    conds = []
    for code in (supervision_code, weeks_code):
        conds.append(
            {
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
                "code": coding(ICD10, code, load_content().codes["icd10cm"].display(code)),
                "subject": {"reference": ref},
                "recordedDate": when,
                "recorder": user_ref(session),
            }
        )
    window = tdap_window(weeks)
    if window == "in" and not _tdap_this_pregnancy(session, ref, lmp):
        alerts.append(f"Tdap due this pregnancy (27-36 weeks; now {weeks} weeks)")
    out: list[dict[str, Any]] = [ga, fh, fhr, up, ug, *conds]
    if alerts:
        chart = read_patient(session, ref)
        out.append(
            routed_task(
                session,
                ref,
                provider_of(chart, provider),
                f"Prenatal visit at {weeks}w{days}d: " + "; ".join(alerts),
            )
        )
    return write_entries(session, out, operation="obgyn.prenatal-visit")
