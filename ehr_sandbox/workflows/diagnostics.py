"""Diagnostic tests the MA performs: 12-lead ECG, spirometry, vision (Snellen, Ishihara), audiometry.

Each test writes its measurements as ``Observation`` s and a ``DiagnosticReport`` that lists them
(``result``). The MA records; the **provider interprets**: an ECG report stays ``preliminary``
until :func:`interpret_ecg` (physician only) adds the rhythm and the interpretation. Spirometry
computes the FEV1/FVC ratio and the FEV1 % predicted (NHANES III equations,
``data/spirometry.toml``) and needs three acceptable manoeuvres (ATS/ERS 2019).

>>> qtc_bazett(400, 75)
447
>>> round(predicted_fev1("male", 45, 178), 2)
4.09
>>> snellen_fraction("20/40")
0.5
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule, write
from ehr_sandbox.workflows.care import (
    SANDBOX_OBS,
    age_years,
    category,
    coding,
    demo_session,
    identify,
    loinc_concept,
    mrn_of,
    now_text,
    quantity,
    read_patient,
    refuse,
    require_identified,
    today,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from synthetic.systems import SANDBOX_PROCEDURE, V2_0074, V3_OBSERVATION_INTERPRETATION

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "demo_session",
    "identify",
    "interpret_ecg",
    "mrn_of",
    "predicted_fev1",
    "qtc_bazett",
    "record_audiometry",
    "record_ecg",
    "record_spirometry",
    "record_vision",
    "snellen_fraction",
]

PROCEDURE = SANDBOX_PROCEDURE
DR_CATEGORY = V2_0074
INTERP = V3_OBSERVATION_INTERPRETATION
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("diagnostics.ecg-range", "ECG intervals are physiologically possible (ms) and the rate per minute", "AHA/ACCF/HRS ECG standardization (2009)"),
        Rule("diagnostics.interpretation-by-provider", "the rhythm and interpretation of a test are the provider's, not the MA's", "MAERB scope of practice; state medical practice acts"),
        Rule("diagnostics.spirometry", "FEV1 cannot exceed FVC; values in litres within the human range; at least three acceptable manoeuvres", "ATS/ERS standardization of spirometry (2019)"),
        Rule("diagnostics.vision", "Snellen acuity is recorded as 20/denominator for each eye; plates read of the plates shown", "AAO; Ishihara 14-plate instructions"),
        Rule("diagnostics.audiometry", "thresholds in dB HL for each ear at 500, 1000, 2000 and 4000 Hz", "ASHA guidelines for audiologic screening (1997)"),
    )
}  # fmt: skip
AUDIO_FREQS = (500, 1000, 2000, 4000)


def qtc_bazett(qt_ms: float, heart_rate: float) -> int:
    """QTc by Bazett: QT / sqrt(RR in seconds), in ms.

    Examples
    --------
    >>> qtc_bazett(360, 60)
    360
    """
    rr = 60.0 / heart_rate
    return round(qt_ms / math.sqrt(rr))


def predicted_fev1(sex: str, age: float, height_cm: float) -> float | None:
    """NHANES III (Hankinson 1999) predicted FEV1 in litres, for adults; None otherwise.

    Examples
    --------
    >>> predicted_fev1("female", 12, 150) is None
    True
    """
    spec = table("spirometry").get(sex)
    if spec is None or age < (20 if sex == "male" else 18):
        return None
    c = spec["fev1"]
    return c["b0"] + c["b1"] * age + c["b2"] * age * age + c["b3"] * height_cm * height_cm


def _dr(
    patient: str, when: str, code: dict[str, Any], results: list[str], status: str, session: Session
) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": status,
        "category": [coding(DR_CATEGORY, "OTH", "Other")],
        "code": code,
        "subject": {"reference": patient},
        "effectiveDateTime": when,
        "issued": when,
        "performer": [user_ref(session)],
        "result": [{"reference": r} for r in results],
    }


def _obs(patient: str, when: str, code: dict[str, Any], cat: str = "procedure") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": category(cat),
        "code": code,
        "subject": {"reference": patient},
        "effectiveDateTime": when,
    }


def _urn(i: int) -> str:
    return f"urn:uuid:00000000-0000-4000-8000-0000000d{i:04d}"


def record_ecg(
    session: Session,
    patient: str,
    *,
    heart_rate: float,
    pr_ms: float,
    qrs_ms: float,
    qt_ms: float,
    order: str | None = None,
) -> dict[str, Any]:
    """Record a 12-lead ECG's measurements; the report stays preliminary for the provider.

    Returns the DiagnosticReport (its ``result`` is the ECG Observation with HR, PR, QRS, QT and
    QTc (Bazett) components).

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> r = record_ecg(s, ref, heart_rate=72, pr_ms=160, qrs_ms=90, qt_ms=380)
    >>> r["status"], len(r["result"])
    ('preliminary', 1)
    >>> record_ecg(s, ref, heart_rate=72, pr_ms=16, qrs_ms=90, qt_ms=380)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Observation (11524-6): component.PR: expected 60-400 ms (found 16). ...
    """
    ref = require_identified(session, patient, "DiagnosticReport")
    limits = {"HR": (20, 300), "PR": (60, 400), "QRS": (40, 250), "QT": (200, 700)}
    for name, value in (("HR", heart_rate), ("PR", pr_ms), ("QRS", qrs_ms), ("QT", qt_ms)):
        lo, hi = limits[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise refuse(
                RULES["diagnostics.ecg-range"],
                "Observation (11524-6)",
                f"component.{name}",
                f"{lo}-{hi} {'/min' if name == 'HR' else 'ms'}",
                value,
            )
    when = now_text(session)
    obs = _obs(ref, when, loinc_concept("11524-6"))
    obs["component"] = [
        {"code": loinc_concept("8867-4"), "valueQuantity": quantity(heart_rate, "/min")},
        {"code": loinc_concept("8625-6"), "valueQuantity": quantity(pr_ms, "ms")},
        {"code": loinc_concept("8633-0"), "valueQuantity": quantity(qrs_ms, "ms")},
        {"code": loinc_concept("8634-8"), "valueQuantity": quantity(qt_ms, "ms")},
        {
            "code": loinc_concept("8636-3"),
            "valueQuantity": quantity(qtc_bazett(qt_ms, heart_rate), "ms"),
        },
    ]
    obs["performer"] = [user_ref(session)]
    if order:
        obs["basedOn"] = [{"reference": order}]
    report = _dr(ref, when, loinc_concept("11524-6"), [_urn(1)], "preliminary", session)
    if order:
        report["basedOn"] = [{"reference": order}]
    saved = write_entries(
        session, [{"fullUrl": _urn(1), "resource": obs}, report], operation="diagnostics.ecg"
    )
    return saved[1]


def interpret_ecg(
    session: Session, report: str, *, rhythm: str, interpretation: str
) -> dict[str, Any]:
    """The provider's rhythm and interpretation; makes the report final.

    Raises
    ------
    RuleRefused
        ``diagnostics.interpretation-by-provider`` when the user is not a physician.

    Examples
    --------
    >>> interpret_ecg(demo_session(), "DiagnosticReport/x", rhythm="sinus rhythm",
    ...               interpretation="normal ECG")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: DiagnosticReport/x: conclusion: expected an interpretation by the provider (physician) ...
    """
    if session.role != "physician":
        raise refuse(
            RULES["diagnostics.interpretation-by-provider"],
            report,
            "conclusion",
            "an interpretation by the provider (physician)",
            session.role,
        )
    dr = session.read(report)
    rhythm_obs = _obs(dr["subject"]["reference"], now_text(session), loinc_concept("8884-9"))
    rhythm_obs["valueString"] = rhythm
    rhythm_obs["performer"] = [user_ref(session)]
    saved = write(session, rhythm_obs, operation="diagnostics.ecg-rhythm")
    dr["result"] = [*dr.get("result", []), {"reference": f"Observation/{saved['id']}"}]
    dr["status"] = "final"
    dr["conclusion"] = f"{rhythm}. {interpretation}"
    dr["resultsInterpreter"] = [user_ref(session)]
    return write(session, dr, operation="diagnostics.ecg-interpret")


def record_spirometry(
    session: Session,
    patient: str,
    *,
    fev1_l: float,
    fvc_l: float,
    height_cm: float,
    maneuvers: int,
    order: str | None = None,
) -> dict[str, Any]:
    """Record spirometry (best FEV1 and FVC of acceptable manoeuvres); returns the report.

    Writes FEV1 (20150-9), FVC (19868-9), FEV1/FVC (19926-5, %) and for adults FEV1 % predicted
    (20152-5); a ratio below 0.70 is flagged ``L`` (airflow obstruction, for the provider).

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> record_spirometry(s, ref, fev1_l=3.9, fvc_l=3.2, height_cm=170, maneuvers=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Observation (20150-9): valueQuantity.value: expected an FEV1 no larger than the FVC ...
    """
    ref = require_identified(session, patient, "DiagnosticReport")
    rule = RULES["diagnostics.spirometry"]
    if not isinstance(maneuvers, int) or maneuvers < 3:
        raise refuse(
            rule,
            "DiagnosticReport (SPIRO)",
            "maneuvers",
            "at least 3 acceptable manoeuvres",
            maneuvers,
        )
    for code, v in (("20150-9", fev1_l), ("19868-9", fvc_l)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.2 <= v <= 10:
            raise refuse(rule, f"Observation ({code})", "valueQuantity.value", "0.2-10 L", v)
    if fev1_l > fvc_l:
        raise refuse(
            rule,
            "Observation (20150-9)",
            "valueQuantity.value",
            f"an FEV1 no larger than the FVC ({fvc_l} L)",
            fev1_l,
        )
    chart = read_patient(session, ref)
    when = now_text(session)
    ratio = round(100 * fev1_l / fvc_l)
    obs = []
    for code, v, unit in (
        ("20150-9", fev1_l, "L"),
        ("19868-9", fvc_l, "L"),
        ("19926-5", ratio, "%"),
    ):
        o = _obs(ref, when, loinc_concept(code))
        o["valueQuantity"] = quantity(v, unit)
        obs.append(o)
    if ratio < 100 * table("spirometry")["obstruction_ratio"]:
        obs[2]["interpretation"] = [
            {"coding": [{"system": INTERP, "code": "L"}], "text": "below 0.70"}
        ]
    pred = predicted_fev1(chart.get("gender", ""), age_years(chart, today(session)), height_cm)
    if pred:
        o = _obs(ref, when, loinc_concept("20152-5"))
        o["valueQuantity"] = quantity(round(100 * fev1_l / pred), "%")
        o["note"] = [{"text": f"predicted FEV1 {pred:.2f} L (NHANES III, height {height_cm} cm)"}]
        obs.append(o)
    entries: list[dict[str, Any]] = [
        {"fullUrl": _urn(10 + i), "resource": o} for i, o in enumerate(obs)
    ]
    report = _dr(
        ref,
        when,
        coding(PROCEDURE, "SPIRO", "Spirometry, with interpretation"),
        [_urn(10 + i) for i in range(len(obs))],
        "preliminary",
        session,
    )
    report["conclusion"] = f"{maneuvers} acceptable manoeuvres; for the provider's interpretation"
    if order:
        report["basedOn"] = [{"reference": order}]
    entries.append(report)
    return write_entries(session, entries, operation="diagnostics.spirometry")[-1]


def snellen_fraction(text: str) -> float:
    """The decimal acuity of ``"20/x"`` (refused when not a Snellen line).

    Examples
    --------
    >>> snellen_fraction("20/200")
    0.1
    """
    denominators = table("specialties")["ophthalmic"]["snellen_denominators"]
    parts = str(text).split("/")
    try:
        num, den = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        num, den = 0.0, 0.0
    if len(parts) != 2 or num != 20 or den not in denominators:
        raise refuse(
            RULES["diagnostics.vision"], "Observation", "valueString", "20/<Snellen line>", text
        )
    return round(num / den, 3)


def record_vision(
    session: Session,
    patient: str,
    *,
    right: str,
    left: str,
    ishihara_correct: int | None = None,
    ishihara_shown: int = 14,
) -> dict[str, Any]:
    """Uncorrected Snellen acuity each eye (and optionally Ishihara plates); returns the report.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> r = record_vision(s, ref, right="20/20", left="20/40", ishihara_correct=9)
    >>> len(r["result"]), r["status"]
    (3, 'final')
    """
    ref = require_identified(session, patient, "DiagnosticReport")
    snellen_fraction(right), snellen_fraction(left)
    when = now_text(session)
    obs = []
    for code, v in (("98499-7", right), ("98498-9", left)):
        o = _obs(ref, when, loinc_concept(code), "exam")
        o["valueString"] = v
        if snellen_fraction(v) < 0.5:
            o["interpretation"] = [
                {"coding": [{"system": INTERP, "code": "A"}], "text": "refer: worse than 20/40"}
            ]
        obs.append(o)
    if ishihara_correct is not None:
        if not 0 <= ishihara_correct <= ishihara_shown:
            raise refuse(
                RULES["diagnostics.vision"],
                "Observation (color vision)",
                "valueString",
                f"plates read correctly out of {ishihara_shown}",
                ishihara_correct,
            )
        o = _obs(
            ref, when, coding(SANDBOX_OBS, "color-vision", "Color vision (Ishihara plates)"), "exam"
        )
        o["valueString"] = f"{ishihara_correct}/{ishihara_shown} plates read correctly"
        if ishihara_correct < 10:
            o["interpretation"] = [
                {
                    "coding": [{"system": INTERP, "code": "A"}],
                    "text": "possible colour vision deficiency (< 10 of 14)",
                }
            ]
        obs.append(o)
    entries: list[dict[str, Any]] = [
        {"fullUrl": _urn(20 + i), "resource": o} for i, o in enumerate(obs)
    ]
    report = _dr(
        ref,
        when,
        coding(PROCEDURE, "VISION-SCREEN", "Visual acuity screening"),
        [_urn(20 + i) for i in range(len(obs))],
        "final",
        session,
    )
    entries.append(report)
    return write_entries(session, entries, operation="diagnostics.vision")[-1]


def record_audiometry(
    session: Session, patient: str, *, right: dict[int, float], left: dict[int, float]
) -> dict[str, Any]:
    """Pure-tone screening thresholds (dB HL) for each ear; > 25 dB HL at any frequency refers.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> r = record_audiometry(s, ref, right={500: 20, 1000: 20, 2000: 25, 4000: 40},
    ...                       left={500: 15, 1000: 20, 2000: 20, 4000: 20})
    >>> r["conclusion"]
    'refer: right ear above 25 dB HL at 4000 Hz'
    """
    ref = require_identified(session, patient, "DiagnosticReport")
    when = now_text(session)
    obs = []
    refer = []
    for ear, values in (("right", right), ("left", left)):
        if set(values) != set(AUDIO_FREQS) or any(
            not isinstance(v, int | float) or not -10 <= v <= 120 for v in values.values()
        ):
            raise refuse(
                RULES["diagnostics.audiometry"],
                "Observation (audiometry)",
                f"{ear}",
                "thresholds -10..120 dB HL at 500, 1000, 2000, 4000 Hz",
                values,
            )
        o = _obs(
            ref,
            when,
            coding(SANDBOX_OBS, f"audiometry-{ear}", f"Pure tone audiometry, {ear} ear"),
            "exam",
        )
        o["component"] = [
            {"code": {"text": f"{f} Hz"}, "valueQuantity": quantity(values[f], "dB")}
            for f in AUDIO_FREQS
        ]
        bad = [f for f in AUDIO_FREQS if values[f] > 25]
        if bad:
            o["interpretation"] = [{"coding": [{"system": INTERP, "code": "A"}]}]
            refer.append(f"{ear} ear above 25 dB HL at {', '.join(f'{b} Hz' for b in bad)}")
        obs.append(o)
    entries: list[dict[str, Any]] = [
        {"fullUrl": _urn(30 + i), "resource": o} for i, o in enumerate(obs)
    ]
    report = _dr(
        ref,
        when,
        coding(PROCEDURE, "AUDIOMETRY", "Pure tone audiometry screening, air conduction"),
        [_urn(30 + i) for i in range(len(obs))],
        "final",
        session,
    )
    report["conclusion"] = ("refer: " + "; ".join(refer)) if refer else "pass at 25 dB HL"
    entries.append(report)
    return write_entries(session, entries, operation="diagnostics.audiometry")[-1]
