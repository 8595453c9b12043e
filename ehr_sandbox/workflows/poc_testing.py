"""CLIA-waived point-of-care tests with a quality-control log; critical values escalated.

A test kit (or meter cartridge lot) is a ``Device`` with its lot number and expiry
(:func:`register_kit`). Each day of testing, external controls are run and logged
(:func:`run_qc`, against the control ranges of the content): a completed ``Task`` focused on the device, one ``output`` per control level
and ``businessStatus`` pass/fail (an Observation would have to name a patient under the
sandbox's access policy; a QC log belongs to no patient). :func:`run_test` refuses a patient test when the kit is
expired or today's latest QC for the kit failed or was not run; the result is an
``Observation`` with the device, based on the order; a critical value is flagged (``HH``/``LL``)
and escalated to the provider at once (an urgent ``Communication``), and a positive qualitative
result is routed to the provider as a ``Task``.

>>> poc_test("glucose")["loinc"], poc_test("glucose")["critical_high"]
('41653-7', 400)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule, RuleRefused, write
from ehr_sandbox.workflows.care import (
    SANDBOX_OBS,
    SNOMED,
    category,
    coding,
    demo_session,
    identify,
    loinc_concept,
    mrn_of,
    now,
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
from synthetic.systems import COMMUNICATION_CATEGORY, V3_OBSERVATION_INTERPRETATION

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "PocResult",
    "controls",
    "demo_session",
    "identify",
    "mrn_of",
    "qc_problem",
    "qc_status",
    "register_kit",
    "run_qc",
    "run_test",
    "poc_test",
]

INTERP = V3_OBSERVATION_INTERPRETATION
QUALITATIVE = {"positive": ("10828004", "Positive"), "negative": ("260385009", "Negative")}
_CLIA = "CMS CLIA 42 CFR 493.15 (follow manufacturer's instructions incl. QC); CDC Ready? Set? Test! (2022)"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("poc.test", "only the CLIA-waived tests the clinic holds a certificate for", _CLIA),
        Rule("poc.kit", "a kit is registered with its lot and expiry; an expired kit is not used", _CLIA),
        Rule("poc.qc-result", "QC records every control level with its result", _CLIA),
        Rule("poc.qc-required", "no patient test unless today's QC for this kit passed", _CLIA),
        Rule("poc.plausible", "a result is within the method's reportable range and its type", _CLIA),
    )
}  # fmt: skip


def poc_test(test_id: str) -> dict[str, Any]:
    """The POC test ``test_id`` (``glucose``, ``a1c``, ``inr``, ``hemoglobin``, ``rapid-strep``,
    ``urine-hcg``, ``urine-dipstick``) from the shared content table ``poc_tests.toml``.

    Examples
    --------
    >>> poc_test("rapid-strep")["kind"]
    'qualitative'
    """
    for t in table("poc_tests")["test"]:
        if t["id"] == test_id:
            return t
    raise refuse(
        RULES["poc.test"],
        "Observation",
        "code",
        "one of " + ", ".join(t["id"] for t in table("poc_tests")["test"]),
        test_id,
    )


def _test_of_kit(kit: dict[str, Any]) -> dict[str, Any]:
    return poc_test(((kit.get("type") or {}).get("coding") or [{}])[0].get("code", ""))


def register_kit(
    session: Session, test_id: str, *, lot: str, expiry: str, name: str
) -> dict[str, Any]:
    """A test kit / cartridge lot as a ``Device`` (lot number, expiry).

    Examples
    --------
    >>> k = register_kit(demo_session(), "glucose", lot="G2026A", expiry="2027-03-31", name="Glucose meter strips")
    >>> k["lotNumber"], k["expirationDate"], k["type"]["coding"][0]["code"]
    ('G2026A', '2027-03-31', 'glucose')
    """
    t = poc_test(test_id)
    if not lot or not expiry:
        raise refuse(RULES["poc.kit"], "Device", "lotNumber", "the lot and expiry", lot)
    device = {
        "resourceType": "Device",
        "status": "active",
        "type": {
            "coding": [{"system": SANDBOX_OBS, "code": test_id, "display": t["display"]}],
            "text": t["display"],
        },
        "deviceName": [{"name": name, "type": "user-friendly-name"}],
        "lotNumber": str(lot),
        "expirationDate": str(expiry)[:10],
        "note": [{"text": "CLIA-waived point-of-care test kit"}],
    }
    return write(session, device, operation="poc.register-kit")


def controls(test_id: str) -> dict[str, Any]:
    """The external control levels of a test and the result each must give, from content
    (the shared content table ``poc_tests.toml``, the control lot inserts): level -> ``(low, high)`` for a
    quantitative control, or the expected reading (``"positive"``, ``"pass"``...).

    Examples
    --------
    >>> controls("glucose")
    {'level 1': (38, 62), 'level 2': (260, 350)}
    >>> controls("rapid-strep")
    {'positive': 'positive', 'negative': 'negative'}
    """
    out: dict[str, Any] = {}
    for level, want in poc_test(test_id)["controls"].items():
        out[level] = tuple(want) if isinstance(want, list) else want
    return out


def _expected_text(want: Any) -> str:
    return f"{want[0]}-{want[1]}" if isinstance(want, tuple) else str(want)


def _control_ok(want: Any, out: dict[str, Any]) -> bool:
    if isinstance(want, tuple):
        value = (out.get("valueQuantity") or {}).get("value")
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and want[0] <= value <= want[1]
        )
    return out.get("valueString") == want


def _control_output(level: str, want: Any, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = (
        {"valueQuantity": {"value": value}}
        if isinstance(want, tuple)
        else {"valueString": str(value)}
    )
    verdict = "in range" if _control_ok(want, result) else "OUT OF RANGE"
    return {
        "type": {"text": f"control {level} (expected {_expected_text(want)}): {verdict}"},
        **result,
    }


_CONTROL_TEXT = re.compile(
    r"^control (?P<level>.+) \(expected (?P<want>.+)\): (?P<verdict>in range|OUT OF RANGE)$"
)


def qc_problem(kit: dict[str, Any], entry: dict[str, Any]) -> str | None:
    """None when ``entry`` is a QC log entry for ``kit`` as :func:`run_qc` writes it and its
    pass/fail follows from its control results against the content's control ranges; else
    what is wrong. The one rule behind :func:`qc_status` (and the graders' check of a
    ``poc.qc`` stamp): a typed ``"pass"`` proves nothing.

    Examples
    --------
    >>> kit = {"resourceType": "Device", "id": "k", "type": {"coding": [{"code": "glucose"}]}}
    >>> entry = {"resourceType": "Task", "status": "completed", "focus": {"reference": "Device/k"},
    ...          "code": coding(SANDBOX_OBS, "poc-qc"), "businessStatus": {"text": "pass"},
    ...          "output": [_control_output("level 1", (38, 62), 45),
    ...                     _control_output("level 2", (260, 350), 300),
    ...                     {"type": {"text": "QC passed"}, "valueBoolean": True}]}
    >>> qc_problem(kit, entry) is None
    True
    >>> entry["output"][1] = _control_output("level 2", (260, 999), 400)  # a wider range typed
    >>> qc_problem(kit, entry)
    "control level 2: expected '260-350' from the control insert, found '260-999'"
    """
    if entry.get("resourceType") != "Task" or entry.get("status") != "completed":
        return "not a completed QC log entry"
    if "poc-qc" not in {c.get("code") for c in (entry.get("code") or {}).get("coding", [])}:
        return "not coded as a QC log entry (poc-qc)"
    if (entry.get("focus") or {}).get("reference") != f"Device/{kit.get('id')}":
        return "not focused on the kit"
    try:
        want = controls(((kit.get("type") or {}).get("coding") or [{}])[0].get("code", ""))
    except RuleRefused:
        return "the kit is not a test the clinic runs"
    seen: dict[str, bool] = {}
    summary = None
    for out in entry.get("output", []):
        text = str((out.get("type") or {}).get("text", ""))
        if text == "QC passed":
            summary = out.get("valueBoolean")
            continue
        m = _CONTROL_TEXT.match(text)
        if m is None:
            return f"an output that is not a control result: {text!r}"
        level = m.group("level")
        if level not in want or level in seen:
            return f"control {level!r}: not a control level of this test, or listed twice"
        if m.group("want") != _expected_text(want[level]):
            return (
                f"control {level}: expected {_expected_text(want[level])!r} from the control "
                f"insert, found {m.group('want')!r}"
            )
        seen[level] = _control_ok(want[level], out)
        if (m.group("verdict") == "in range") != seen[level]:
            return f"control {level}: marked {m.group('verdict')!r} against its result"
    if set(seen) != set(want):
        return "not every control level was run: " + ", ".join(sorted(set(want) - set(seen)))
    passed = all(seen.values())
    status = (entry.get("businessStatus") or {}).get("text")
    if summary is not passed or status != ("pass" if passed else "fail"):
        return f"logged as {status} while the controls {'passed' if passed else 'failed'}"
    return None


def run_qc(session: Session, kit: str, results: dict[str, Any]) -> dict[str, Any]:
    """Log today's external QC for a kit: each control level's result against the range on its
    control insert (content, :func:`controls`; never the caller's).

    Parameters
    ----------
    kit : str
        ``Device/<id>`` from :func:`register_kit`.
    results : dict
        Level name -> result (a number for quantitative tests; ``"positive"``/``"negative"``).

    Returns
    -------
    dict
        The QC log entry (a Task); ``businessStatus.text`` is ``"pass"`` when every level is
        within its expected value.

    Examples
    --------
    >>> s = demo_session()
    >>> k = register_kit(s, "glucose", lot="G1", expiry="2027-01-31", name="strips")
    >>> qc = run_qc(s, f"Device/{k['id']}", {"level 1": 45, "level 2": 290})
    >>> qc["businessStatus"]["text"], qc_status(s, f"Device/{k['id']}")
    ('pass', 'pass')
    """
    device = session.read(kit)
    if str(device.get("expirationDate", ""))[:10] < today(session).isoformat():
        raise refuse(
            RULES["poc.kit"],
            kit,
            "expirationDate",
            "an unexpired kit",
            device.get("expirationDate"),
        )
    t = _test_of_kit(device)
    expected = controls(t["id"])
    if not isinstance(results, dict) or set(results) != set(expected):
        raise refuse(
            RULES["poc.qc-result"],
            "Task (QC)",
            "output",
            "a result for every control level: " + ", ".join(sorted(expected)),
            sorted(results) if isinstance(results, dict) else results,
        )
    outputs = [_control_output(level, expected[level], results[level]) for level in sorted(results)]
    passed = all(o["type"]["text"].endswith(": in range") for o in outputs)
    outputs.append({"type": {"text": "QC passed"}, "valueBoolean": passed})
    when = now_text(session)
    qc = {
        "resourceType": "Task",
        "status": "completed",
        "intent": "order",
        "businessStatus": {"text": "pass" if passed else "fail"},
        "code": coding(SANDBOX_OBS, "poc-qc", f"External quality control: {t['display']}"),
        "description": f"QC {t['display']}: kit lot {device.get('lotNumber')} "
        f"exp {device.get('expirationDate')}",
        "focus": {"reference": kit},
        "authoredOn": when,
        "executionPeriod": {"start": when, "end": when},
        "requester": user_ref(session),
        "owner": user_ref(session),
        "output": outputs,
    }
    return write(session, qc, operation="poc.qc")


def _written(entry: dict[str, Any]) -> datetime | None:
    stamp = (entry.get("meta") or {}).get("lastUpdated")
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None


def qc_status(session: Session, kit: str) -> str:
    """``"pass"``, ``"fail"`` or ``"missing"``: the latest QC the EHR wrote today for the kit.

    Only entries that :func:`qc_problem` accepts count (a Task typed with ``"pass"`` and no
    controls, or with a wider range than the insert's, is not QC), and "today" and "latest"
    are the EHR's write time, not the typed ``authoredOn``.

    Examples
    --------
    >>> s = demo_session()
    >>> k = register_kit(s, "inr", lot="I1", expiry="2027-01-31", name="INR strips")
    >>> qc_status(s, f"Device/{k['id']}")
    'missing'
    """
    device = session.read(kit)
    clock_now = now(session)
    latest: tuple[datetime, dict[str, Any]] | None = None
    for o in session.search("Task", code=f"{SANDBOX_OBS}|poc-qc", focus=kit).fetch():
        written = _written(o)
        if written is None or qc_problem(device, o) is not None:
            continue
        if written.astimezone(clock_now.tzinfo).date() != clock_now.date():
            continue
        if latest is None or written >= latest[0]:
            latest = (written, o)
    if latest is None:
        return "missing"
    return "pass" if (latest[1].get("businessStatus") or {}).get("text") == "pass" else "fail"


@dataclass
class PocResult:
    """The result Observation and, when escalated, the Communication or Task to the provider.

    Parameters
    ----------
    observation : dict
        The point-of-care test's result.
    escalation : dict, optional
        The Communication (critical) or Task (abnormal) to the provider.
    critical : bool, default False
        Whether the value is critical.

    Examples
    --------
    >>> r = PocResult({"resourceType": "Observation"}, {"resourceType": "Communication"}, critical=True)
    >>> r.critical, r.escalation["resourceType"]
    (True, 'Communication')
    """

    observation: dict[str, Any]
    escalation: dict[str, Any] | None = None
    critical: bool = False


def run_test(
    session: Session,
    patient: str,
    kit: str,
    value: Any,
    *,
    order: str | None = None,
    encounter: str | None = None,
    provider: str | None = None,
) -> PocResult:
    """Run a patient test on a kit whose QC passed today; escalate critical or positive results.

    Parameters
    ----------
    value : float, str or dict
        A number (quantitative), ``"positive"``/``"negative"`` (qualitative) or, for the urine
        dipstick, ``{loinc: value}`` for its components.
    order : str, optional
        ``ServiceRequest/<id>`` the test was ordered by.

    Raises
    ------
    RuleRefused
        ``poc.qc-required`` (today's QC failed or missing), ``poc.kit`` (expired),
        ``poc.plausible``, ``care.two-identifiers``.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> k = register_kit(s, "hemoglobin", lot="H1", expiry="2027-01-31", name="Hb cuvettes")
    >>> run_test(s, ref, f"Device/{k['id']}", 13.1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Observation (718-7): device: expected a kit whose QC passed today ...
    """
    ref = require_identified(session, patient, "Observation")
    device = session.read(kit)
    t = _test_of_kit(device)
    label = f"Observation ({t['loinc']})"
    if str(device.get("expirationDate", ""))[:10] < today(session).isoformat():
        raise refuse(
            RULES["poc.kit"], label, "device", "an unexpired kit", device.get("expirationDate")
        )
    status = qc_status(session, kit)
    if status != "pass":
        raise refuse(
            RULES["poc.qc-required"],
            label,
            "device",
            "a kit whose QC passed today (run and log the controls first)",
            f"QC {status}",
        )
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": category("laboratory"),
        "code": loinc_concept(t["loinc"]),
        "subject": {"reference": ref},
        "effectiveDateTime": now_text(session),
        "performer": [user_ref(session)],
        "device": {"reference": kit},
        "method": {"text": "CLIA-waived point-of-care test"},
    }
    if order:
        obs["basedOn"] = [{"reference": order}]
    if encounter:
        obs["encounter"] = {"reference": encounter}
    critical = positive = False
    flag = None
    if t["kind"] == "quantitative":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not t["low"] <= value <= t["high"]
        ):
            raise refuse(
                RULES["poc.plausible"],
                label,
                "valueQuantity.value",
                f"a number within the reportable range {t['low']}-{t['high']} {t['unit']}",
                value,
            )
        obs["valueQuantity"] = quantity(value, t["unit"])
        if "critical_high" in t and value > t["critical_high"]:
            flag = "HH"
        elif "critical_low" in t and value < t["critical_low"]:
            flag = "LL"
        critical = flag is not None
    elif t["kind"] == "qualitative":
        if value not in QUALITATIVE:
            raise refuse(
                RULES["poc.plausible"], label, "valueCodeableConcept", "positive or negative", value
            )
        code, disp = QUALITATIVE[value]
        obs["valueCodeableConcept"] = coding(SNOMED, code, disp)
        positive = value == "positive"
        flag = "POS" if positive else "NEG"
    else:
        comps = t["components"]
        if not isinstance(value, dict) or set(value) != set(comps):
            raise refuse(
                RULES["poc.plausible"],
                label,
                "component",
                "a value for each pad: " + ", ".join(comps),
                sorted(value) if isinstance(value, dict) else value,
            )
        out = []
        for code in comps:
            v = value[code]
            comp: dict[str, Any] = {"code": loinc_concept(code)}
            if isinstance(v, int | float) and not isinstance(v, bool):
                comp["valueQuantity"] = quantity(v, "1" if code == "5811-5" else "[pH]")
            else:
                comp["valueString"] = str(v)
            out.append(comp)
        obs["component"] = out
    if flag:
        obs["interpretation"] = [{"coding": [{"system": INTERP, "code": flag}]}]
    chart = read_patient(session, ref)
    escalation = None
    if critical:
        escalation = {
            "resourceType": "Communication",
            "status": "completed",
            "priority": "stat",
            "category": [
                {
                    "coding": [
                        {
                            "system": COMMUNICATION_CATEGORY,
                            "code": "alert",
                        }
                    ]
                }
            ],
            "subject": {"reference": ref},
            "sent": now_text(session),
            "sender": user_ref(session),
            "recipient": [{"reference": provider_of(chart, provider)}],
            "about": [{"reference": "urn:uuid:00000000-0000-4000-8000-00000000c001"}],
            "payload": [
                {
                    "contentString": f"CRITICAL {t['display']}: {value} {t.get('unit', '')} ({flag}) - provider notified at once"
                }
            ],
        }
    elif positive:
        escalation = routed_task(
            session,
            ref,
            provider_of(chart, provider),
            f"Positive {t['display']}: for the provider's review and order",
            focus="urn:uuid:00000000-0000-4000-8000-00000000c001",
            priority="urgent",
        )
    entries: list[dict[str, Any]] = [
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000c001", "resource": obs}
    ]
    if escalation:
        entries.append(escalation)
    saved = write_entries(session, entries, operation="poc.test")
    return PocResult(saved[0], saved[1] if escalation else None, critical)
