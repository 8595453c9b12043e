"""Reports catalogue on small hand-built FHIR fixtures.

Expected values are computed here from the fixture with plain Python, independently of the
views and SQL the reports use."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.reports import Reports, load_report, report_names

REF = date(2026, 1, 5)
MRN = "http://ehr-sandbox.org/fhir/mrn"
LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CVX = "http://hl7.org/fhir/sid/cvx"


def patient(pid: str, birth: str, family: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": MRN, "value": f"MRN{pid}"}],
        "name": [{"use": "official", "family": family, "given": [f"G{pid}"]}],
        "birthDate": birth,
        "gender": "female",
        **extra,
    }


def practitioner(pid: str, username: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": "http://ehr-sandbox.org/fhir/username", "value": username}],
        "name": [{"family": family, "given": ["Dr"], "prefix": ["Dr."]}],
    }


def appointment(aid: str, pid: str, prid: str, start: str, status: str) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": aid,
        "status": status,
        "start": start,
        "end": start,
        "participant": [
            {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
            {"actor": {"reference": f"Practitioner/{prid}"}, "status": "accepted"},
        ],
    }


def condition(
    cid: str, pid: str, icd: str, *, verification: str = "confirmed", status: str = "active"
) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "clinicalStatus": {"coding": [{"code": status}]},
        "verificationStatus": {"coding": [{"code": verification}]},
        "code": {"coding": [{"system": ICD, "code": icd, "display": icd}]},
        "onsetDateTime": "2020-01-01",
    }


def bp(
    oid: str, pid: str, when: str, systolic: int, diastolic: int, status: str = "final"
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "effectiveDateTime": when,
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": systolic, "unit": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": diastolic, "unit": "mm[Hg]"},
            },
        ],
    }


def quantity_obs(
    oid: str, pid: str, when: str, code: str, value: float, unit: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit},
    }


def immunization(
    iid: str, pid: str, cvx: str, when: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "id": iid,
        "status": status,
        "patient": {"reference": f"Patient/{pid}"},
        "vaccineCode": {"coding": [{"system": CVX, "code": cvx}]},
        "occurrenceDateTime": when,
    }


def claim(
    cid: str,
    pid: str,
    created: str,
    lines: list[tuple[str, float, list[int]]],
    diagnoses: list[str],
) -> dict[str, Any]:
    items = [
        {
            "sequence": i + 1,
            "productOrService": {
                "coding": [{"system": "http://ehr-sandbox.org/CodeSystem/procedure", "code": code}]
            },
            "diagnosisSequence": pointers,
            "net": {"value": net, "currency": "USD"},
        }
        for i, (code, net, pointers) in enumerate(lines)
    ]
    return {
        "resourceType": "Claim",
        "id": cid,
        "status": "active",
        "patient": {"reference": f"Patient/{pid}"},
        "created": created,
        "provider": {"reference": "Practitioner/pr1"},
        "diagnosis": [
            {
                "sequence": i + 1,
                "diagnosisCodeableConcept": {"coding": [{"system": ICD, "code": d}]},
            }
            for i, d in enumerate(diagnoses)
        ],
        "item": items,
        "total": {"value": round(sum(n for _, n, _ in lines), 2), "currency": "USD"},
    }


ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
GROUP = "https://x12.org/codes/claim-adjustment-group-codes"
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"


def claim_response(
    rid: str, cid: str, pid: str, created: str, billed: float, paid: float, adjusted: float
) -> dict[str, Any]:
    """The payer's answer to a one-line claim: the line's adjudication (as the ledger reads it:
    submitted, eligible, CO-45 contractual, benefit, and the copay left to the patient) and
    the header payment and adjustment it adds up to."""

    def adj(code: str, value: float, system: str = ADJUDICATION, reason: str = "") -> dict:
        a: dict[str, Any] = {
            "category": {"coding": [{"system": system, "code": code}]},
            "amount": {"value": round(value, 2), "currency": "USD"},
        }
        if reason:
            a["reason"] = {"coding": [{"system": CARC, "code": reason}]}
        return a

    eligible = billed - adjusted
    return {
        "resourceType": "ClaimResponse",
        "id": rid,
        "status": "active",
        "outcome": "complete",
        "request": {"reference": f"Claim/{cid}"},
        "patient": {"reference": f"Patient/{pid}"},
        "created": created,
        "item": [
            {
                "itemSequence": 1,
                "adjudication": [
                    adj("submitted", billed),
                    adj("eligible", eligible),
                    adj("CO", adjusted, GROUP, "45"),
                    adj("copay", eligible - paid, reason="3"),
                    adj("benefit", paid),
                ],
            }
        ],
        "payment": {
            "amount": {"value": paid, "currency": "USD"},
            "adjustment": {"value": adjusted, "currency": "USD"},
        },
    }


def audit(
    recorded: str, username: str, role: str, patient_id: str, ref: str, action: str = "R"
) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "type": {"code": "rest"},
        "subtype": [{"code": "read"}],
        "action": action,
        "recorded": recorded,
        "outcome": "0",
        "purposeOfEvent": [{"coding": [{"code": "TREAT"}]}],
        "agent": [
            {
                "requestor": True,
                "altId": username,
                "role": [{"coding": [{"code": role}]}],
                "who": {"display": username},
            },
            {"requestor": False, "who": {"display": "ehr-sandbox"}},
        ],
        "entity": [
            {"what": {"reference": ref}, "role": {"code": "4"}},
            {"what": {"reference": f"Patient/{patient_id}"}, "role": {"code": "1"}},
        ],
    }


def build_fixture() -> list[dict[str, Any]]:
    res: list[dict[str, Any]] = [
        practitioner("pr1", "dr.patel", "Patel"),
        practitioner("pr2", "dr.nguyen", "Nguyen"),
        patient("p1", "1955-03-02", "Alpha"),
        patient("p2", "1970-07-15", "Bravo"),
        patient("p3", "1990-11-30", "Charlie"),
        patient("p4", "1960-01-20", "Delta"),
        patient("p5", "1950-05-05", "Echo", deceasedBoolean=True),
        # Appointments: the day's list is by local date (offset -05:00).
        appointment("a1", "p1", "pr1", "2026-01-05T09:00:00-05:00", "fulfilled"),
        appointment("a2", "p2", "pr1", "2026-01-05T09:30:00-05:00", "noshow"),
        appointment("a3", "p3", "pr2", "2026-01-05T10:00:00-05:00", "arrived"),
        appointment("a4", "p4", "pr2", "2026-01-05T23:30:00-05:00", "noshow"),  # 04:30Z next day
        appointment(
            "a5", "p1", "pr2", "2026-01-06T00:30:00-05:00", "booked"
        ),  # 05:30Z same UTC day as a4
        appointment("a6", "p2", "pr1", "2025-12-15T11:00:00-05:00", "noshow"),
        appointment("a7", "p3", "pr1", "2025-12-16T11:00:00-05:00", "cancelled"),
        # Problems.
        condition("c1", "p1", "I10"),
        condition("c2", "p2", "I10"),
        condition("c3", "p3", "I11.9"),
        condition("c4", "p2", "E11.9"),
        condition("c5", "p4", "E11.65"),
        condition("c6", "p5", "I10"),
        condition("c7", "p4", "I10", verification="entered-in-error"),
        condition("c8", "p3", "J45.909", status="resolved"),
        # Blood pressures. Period used in the tests: 2025-01-01..2025-12-31.
        bp("bp1", "p1", "2025-03-01T09:00:00-05:00", 120, 78),
        bp(
            "bp2", "p1", "2025-11-20T09:00:00-05:00", 152, 94
        ),  # latest inside the period: uncontrolled
        bp("bp3", "p1", "2026-01-03T09:00:00-05:00", 118, 76),  # after the period: must be ignored
        bp("bp4", "p2", "2025-06-01T09:00:00-05:00", 160, 100),
        bp("bp5", "p2", "2025-12-01T09:00:00-05:00", 130, 80),  # latest inside: controlled
        bp("bp6", "p3", "2024-12-01T09:00:00-05:00", 170, 105),  # before the period only
        bp("bp7", "p1", "2025-12-30T09:00:00-05:00", 110, 70, status="entered-in-error"),
        quantity_obs("hr1", "p1", "2025-11-20T09:00:00-05:00", "8867-4", 72, "/min"),
        quantity_obs("wt1", "p1", "2025-11-20T09:00:00-05:00", "29463-7", 70.5, "kg"),
        quantity_obs("a1c1", "p2", "2025-09-01T09:00:00-05:00", "4548-4", 9.6, "%"),
        quantity_obs("a1c2", "p4", "2025-05-01T09:00:00-05:00", "4548-4", 7.1, "%"),
        quantity_obs(
            "a1c3", "p4", "2026-01-02T09:00:00-05:00", "4548-4", 10.2, "%"
        ),  # after the period
        # Immunizations of p1 (70 years old on the reference date).
        immunization("im1", "p1", "140", "2025-10-01"),
        immunization("im2", "p1", "115", "2010-04-01"),
        immunization("im3", "p1", "216", "2024-04-01", status="entered-in-error"),
        immunization("im4", "p1", "187", "2023-02-01"),
        immunization("im5", "p1", "187", "2023-06-01", status="not-done"),
        # Billing.
        claim(
            "cl1",
            "p1",
            "2026-01-05",
            [("OV-EST-3", 120.0, [1, 2]), ("J1100", 15.5, [2])],
            ["I10", "E78.5"],
        ),
        claim("cl2", "p2", "2025-12-20", [("OV-EST-2", 90.0, [1])], ["I10"]),
        claim("cl3", "p2", "2025-11-01", [("OV-EST-4", 180.0, [1])], ["E11.9"]),
        claim("cl4", "p3", "2025-08-01", [("OV-NEW-3", 150.25, [1])], ["I11.9"]),
        claim("cl5", "p4", "2025-10-10", [("OV-EST-3", 120.0, [1])], ["E11.65"]),
        claim_response("cr1", "cl3", "p2", "2025-12-01", 180.0, 100.0, 30.0),  # copay 50
        claim_response("cr2", "cl4", "p3", "2025-09-15", 150.25, 150.25, 0.0),
        claim_response("cr3", "cl2", "p2", "2026-01-05", 90.0, 50.0, 10.0),  # copay 30
        claim_response("cr4", "cl5", "p4", "2026-01-10", 120.0, 120.0, 0.0),  # after the as-of day
    ]
    return res


AUDIT = [
    audit("2026-01-05T14:00:00Z", "ma.garcia", "medical_assistant", "p1", "Observation/bp2"),
    audit("2026-01-05T15:00:00Z", "dr.patel", "physician", "p1", "Condition/c1"),
    audit("2026-01-05T16:00:00Z", "fd.smith", "front_desk", "p2", "Patient/p2"),
]


class FixtureSource:
    def __init__(self, resources: list[dict[str, Any]], reference_date: date = REF) -> None:
        self._resources = resources
        self.reference_date = reference_date

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self._resources if r["resourceType"] == resource_type]

    def audit_events(self) -> list[dict[str, Any]]:
        return list(AUDIT)


@pytest.fixture(scope="module")
def fixture() -> list[dict[str, Any]]:
    return build_fixture()


@pytest.fixture(scope="module")
def reports(fixture: list[dict[str, Any]]) -> Reports:
    return Reports(FixtureSource(fixture))


def of_type(resources: list[dict[str, Any]], rtype: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == rtype]


def ref_id(ref: str) -> str:
    return ref.split("/")[1]


PERIOD = {"period_start": "2025-01-01", "period_end": "2025-12-31"}


def test_catalog_lists_every_report_with_resolved_defaults(reports: Reports) -> None:
    table = reports.catalog()
    assert type(table).__name__ == "DataFrame"  # a table, like exercises.catalog()
    entries = table.to_dict("records")
    assert [e["name"] for e in entries] == list(report_names())
    required = {
        "day_schedule", "vitals_flowsheet", "problem_list", "medication_list", "allergy_list",
        "immunizations_due", "uncontrolled_hypertension", "diabetes_registry", "bp_control",
        "a1c_poor_control", "no_show_rate", "superbill", "day_sheet", "patient_ledger", "ar_aging", "access_report",
    }  # fmt: skip
    assert required <= set(report_names())
    schedule = next(e for e in entries if e["name"] == "day_schedule")
    assert schedule["params"][0]["default"] == REF.isoformat()
    aging = next(e for e in entries if e["name"] == "bp_control")
    start = next(p for p in aging["params"] if p["name"] == "period_start")
    assert start["default"] < REF.isoformat()


def test_day_schedule_uses_the_local_date_and_flags_no_shows(
    reports: Reports, fixture: list[dict[str, Any]]
) -> None:
    report = reports.run("day_schedule")
    expected = {
        a["id"] for a in of_type(fixture, "Appointment") if a["start"][:10] == REF.isoformat()
    }
    expected_no_shows = {
        a["id"]
        for a in of_type(fixture, "Appointment")
        if a["id"] in expected and a["status"] == "noshow"
    }
    rows = report.to_pylist()
    assert {r["appointment"] for r in rows} == expected
    assert {r["appointment"] for r in rows if r["no_show"]} == expected_no_shows
    assert [r["start"] for r in rows] == sorted(r["start"] for r in rows)
    assert report.columns == load_report("day_schedule").columns
    other_day = reports.run("day_schedule", date=date(2026, 1, 6)).to_pylist()
    assert {r["appointment"] for r in other_day} == {
        a["id"] for a in of_type(fixture, "Appointment") if a["start"][:10] == "2026-01-06"
    }
    assert "$date" in report.sql and report.params == {"date": REF.isoformat()}


def test_vitals_flowsheet_pivots_components_and_skips_entered_in_error(
    reports: Reports, fixture: list[dict[str, Any]]
) -> None:
    rows = reports.run("vitals_flowsheet", patient="Patient/p1").to_pylist()
    panels = [
        o
        for o in of_type(fixture, "Observation")
        if o["subject"]["reference"] == "Patient/p1" and "component" in o and o["status"] == "final"
    ]
    assert len(rows) == len({o["effectiveDateTime"] for o in panels})
    by_time = {r["effective"]: r for r in rows}
    for o in panels:
        row = by_time[o["effectiveDateTime"]]
        assert row["systolic"] == o["component"][0]["valueQuantity"]["value"]
        assert row["diastolic"] == o["component"][1]["valueQuantity"]["value"]
    hr = next(o for o in fixture if o["id"] == "hr1")
    assert by_time[hr["effectiveDateTime"]]["heart_rate"] == hr["valueQuantity"]["value"]


def active_conditions(fixture: list[dict[str, Any]], prefixes: tuple[str, ...]) -> set[str]:
    out = set()
    for c in of_type(fixture, "Condition"):
        code = c["code"]["coding"][0]["code"]
        if (
            code.startswith(prefixes)
            and c["clinicalStatus"]["coding"][0]["code"] == "active"
            and c["verificationStatus"]["coding"][0]["code"] not in ("entered-in-error", "refuted")
        ):
            out.add(ref_id(c["subject"]["reference"]))
    return out


def last_bp_in_period(fixture: list[dict[str, Any]], pid: str) -> tuple[int, int] | None:
    readings = [
        o for o in of_type(fixture, "Observation")
        if o["subject"]["reference"] == f"Patient/{pid}" and "component" in o and o["status"] == "final"
        and PERIOD["period_start"] <= o["effectiveDateTime"][:10] <= PERIOD["period_end"]
    ]  # fmt: skip
    if not readings:
        return None
    last = max(readings, key=lambda o: o["effectiveDateTime"])
    return last["component"][0]["valueQuantity"]["value"], last["component"][1]["valueQuantity"][
        "value"
    ]


def alive_ids(fixture: list[dict[str, Any]]) -> set[str]:
    return {p["id"] for p in of_type(fixture, "Patient") if not p.get("deceasedBoolean")}


def test_bp_control_uses_the_reading_inside_the_period(
    reports: Reports, fixture: list[dict[str, Any]]
) -> None:
    rows = reports.run("bp_control", **PERIOD).to_pylist()
    denominator = active_conditions(
        fixture, ("I10", "I11", "I12", "I13", "I15", "I16")
    ) & alive_ids(fixture)
    assert {r["patient"] for r in rows} == denominator
    expected_controlled = set()
    for pid in denominator:
        last = last_bp_in_period(fixture, pid)
        if last is not None and last[0] < 140 and last[1] < 90:
            expected_controlled.add(pid)
    assert {r["patient"] for r in rows if r["controlled"]} == expected_controlled
    # The latest reading ever of p1 (after the period) is controlled; inside the period it is not.
    assert "p1" not in expected_controlled


def test_uncontrolled_hypertension_lists_high_last_readings(
    reports: Reports, fixture: list[dict[str, Any]]
) -> None:
    rows = reports.run("uncontrolled_hypertension", **PERIOD).to_pylist()
    expected = set()
    for pid in active_conditions(fixture, ("I10", "I11", "I12", "I13", "I15", "I16")):
        last = last_bp_in_period(fixture, pid)
        if last is not None and (last[0] >= 140 or last[1] >= 90):
            expected.add(pid)
    assert {r["patient"] for r in rows} == expected


def test_a1c_poor_control_and_diabetes_registry(
    reports: Reports, fixture: list[dict[str, Any]]
) -> None:
    diabetics = active_conditions(fixture, ("E10", "E11", "E13"))
    a1c_in_period: dict[str, list[dict[str, Any]]] = {}
    for o in of_type(fixture, "Observation"):
        if (
            o["code"]["coding"][0]["code"] == "4548-4"
            and PERIOD["period_start"] <= o["effectiveDateTime"][:10] <= PERIOD["period_end"]
        ):
            a1c_in_period.setdefault(ref_id(o["subject"]["reference"]), []).append(o)
    poor = set()
    for pid in diabetics:
        values = a1c_in_period.get(pid)
        if (
            not values
            or max(values, key=lambda o: o["effectiveDateTime"])["valueQuantity"]["value"] > 9
        ):
            poor.add(pid)
    rows = reports.run("a1c_poor_control", **PERIOD).to_pylist()
    assert {r["patient"] for r in rows} == diabetics
    assert {r["patient"] for r in rows if r["poor_control"]} == poor
    registry = reports.run("diabetes_registry", **PERIOD).to_pylist()
    assert {r["patient"] for r in registry} == diabetics
    for r in registry:
        values = a1c_in_period.get(r["patient"], [])
        expected = (
            max(values, key=lambda o: o["effectiveDateTime"])["valueQuantity"]["value"]
            if values
            else None
        )
        assert r["last_a1c"] == expected


def test_problem_list_excludes_entered_in_error_and_resolved(
    reports: Reports, fixture: list[dict[str, Any]]
) -> None:
    rows = reports.run("problem_list").to_pylist()
    expected = {
        c["id"] for c in of_type(fixture, "Condition")
        if c["clinicalStatus"]["coding"][0]["code"] == "active"
        and c["verificationStatus"]["coding"][0]["code"] != "entered-in-error"
    }  # fmt: skip
    assert {r["condition"] for r in rows} == expected
    one = reports.run("problem_list", patient="p2").to_pylist()
    assert {r["patient"] for r in one} == {"p2"}


def test_immunizations_due_ignores_voided_and_not_done_doses(reports: Reports) -> None:
    rows = reports.run("immunizations_due", patient="p1").to_pylist()
    due = {r["series"]: r for r in rows}
    # im1 (influenza 2025-10-01) is recent: not due. Td 2010 is > 10 years old: booster due.
    assert "Influenza" not in due
    assert due["Td/Tdap"]["reason"] == "booster due"
    # The only pneumococcal dose was entered in error: still never given.
    assert due["Pneumococcal"]["doses_given"] == 0
    # One completed zoster dose; the second was not done.
    assert (
        due["Zoster (RZV)"]["doses_given"] == 1
        and due["Zoster (RZV)"]["reason"] == "series incomplete"
    )
    everyone = reports.run("immunizations_due").to_pylist()
    assert "p5" not in {r["patient"] for r in everyone}  # deceased


def test_no_show_rate_per_provider(reports: Reports, fixture: list[dict[str, Any]]) -> None:
    rows = {
        r["provider"]: r
        for r in reports.run(
            "no_show_rate", period_start="2025-12-01", period_end="2026-01-05"
        ).to_pylist()
    }
    counted = [
        a for a in of_type(fixture, "Appointment")
        if "2025-12-01" <= a["start"][:10] <= "2026-01-05" and a["status"] in ("fulfilled", "arrived", "checked-in", "noshow")
    ]  # fmt: skip
    total = rows["All providers"]
    assert total["appointments"] == len(counted)
    assert total["no_shows"] == sum(a["status"] == "noshow" for a in counted)
    assert total["no_show_rate"] == pytest.approx(
        total["no_shows"] / total["appointments"], abs=1e-4
    )
    assert sum(r["appointments"] for k, r in rows.items() if k != "All providers") == len(counted)


def money(x: float) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def test_ar_aging_buckets_open_balances(reports: Reports, fixture: list[dict[str, Any]]) -> None:
    as_of = REF
    report = reports.run("ar_aging")
    rows = report.to_pylist()
    assert [r["bucket"] for r in rows] == ["0-30", "31-60", "61-90", "91-120", ">120"]
    expected: dict[str, list[Decimal]] = {r["bucket"]: [] for r in rows}
    # the fixture's payers leave the rest of the allowed amount (a copay) to the patient:
    # a claim's balance is with the payer until answered, then the patient's
    answered: dict[str, list[Decimal]] = {r["bucket"]: [] for r in rows}
    for c in of_type(fixture, "Claim"):
        created = date.fromisoformat(c["created"][:10])
        if created > as_of:
            continue
        balance = money(c["total"]["value"])
        with_patient = False
        for r in of_type(fixture, "ClaimResponse"):
            if (
                r["request"]["reference"] == f"Claim/{c['id']}"
                and r["created"] <= as_of.isoformat()
            ):
                balance -= money(r["payment"]["amount"]["value"]) + money(
                    r["payment"]["adjustment"]["value"]
                )
                with_patient = True
        if balance <= 0:
            continue
        age = (as_of - created).days
        bucket = (
            "0-30"
            if age <= 30
            else "31-60"
            if age <= 60
            else "61-90"
            if age <= 90
            else "91-120"
            if age <= 120
            else ">120"
        )
        expected[bucket].append(balance)
        if with_patient:
            answered[bucket].append(balance)
    for r in rows:
        assert r["claims"] == len(expected[r["bucket"]])
        assert r["balance"] == sum(expected[r["bucket"]], Decimal("0.00"))
        assert r["patient"] == sum(answered[r["bucket"]], Decimal("0.00"))
        assert r["insurance"] == r["balance"] - r["patient"]


def test_day_sheet_keeps_adjustments_apart_from_payments(
    reports: Reports, fixture: list[dict[str, Any]]
) -> None:
    rows = reports.run("day_sheet").to_pylist()
    day = REF.isoformat()
    charges = sum(
        (money(c["total"]["value"]) for c in of_type(fixture, "Claim") if c["created"] == day),
        Decimal(0),
    )
    responses = [r for r in of_type(fixture, "ClaimResponse") if r["created"] == day]
    assert sum(r["charges"] for r in rows) == charges
    assert sum(r["payments"] for r in rows) == sum(
        (money(r["payment"]["amount"]["value"]) for r in responses), Decimal(0)
    )
    assert sum(r["adjustments"] for r in rows) == sum(
        (money(r["payment"]["adjustment"]["value"]) for r in responses), Decimal(0)
    )


def test_patient_ledger_running_balance(reports: Reports, fixture: list[dict[str, Any]]) -> None:
    rows = reports.run("patient_ledger", patient="p2").to_pylist()
    claims = [c for c in of_type(fixture, "Claim") if c["patient"]["reference"] == "Patient/p2"]
    ids = {c["id"] for c in claims}
    responses = [
        r for r in of_type(fixture, "ClaimResponse") if ref_id(r["request"]["reference"]) in ids
    ]
    # the ledger posts the payer's payment and its contractual adjustment as two transactions
    paid = [money(r["payment"]["amount"]["value"]) for r in responses]
    adjusted = [money(r["payment"]["adjustment"]["value"]) for r in responses]
    assert len(rows) == len(claims) + sum(1 for v in paid + adjusted if v)
    assert sum(r["payment"] for r in rows) == sum(paid, Decimal(0))
    assert sum(r["adjustment"] for r in rows) == sum(adjusted, Decimal(0))
    final = sum((money(c["total"]["value"]) for c in claims), Decimal(0)) - sum(
        (
            money(r["payment"]["amount"]["value"]) + money(r["payment"]["adjustment"]["value"])
            for r in responses
        ),
        Decimal(0),
    )
    assert rows[-1]["balance"] == final
    assert [r["posted"] for r in rows] == sorted(r["posted"] for r in rows)


def test_superbill_maps_diagnosis_pointers(reports: Reports, fixture: list[dict[str, Any]]) -> None:
    rows = reports.run("superbill", patient="p1", date=REF).to_pylist()
    cl1 = next(c for c in fixture if c["id"] == "cl1")
    assert [r["code"] for r in rows] == [
        i["productOrService"]["coding"][0]["code"] for i in cl1["item"]
    ]
    codes = [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in cl1["diagnosis"]]
    for row, item in zip(rows, cl1["item"], strict=True):
        assert row["diagnoses"] == ", ".join(codes[p - 1] for p in item["diagnosisSequence"])
        assert row["charge"] == money(item["net"]["value"])


def test_access_report_lists_only_that_patient_without_demographics(reports: Reports) -> None:
    report = reports.run("access_report", patient="p1")
    rows = report.to_pylist()
    assert len(rows) == sum(1 for e in AUDIT if e["entity"][1]["what"]["reference"] == "Patient/p1")
    assert {r["username"] for r in rows} == {"ma.garcia", "dr.patel"}
    assert not {"name", "family", "given", "birth_date", "mrn", "address"} & set(report.columns)


def test_medication_and_allergy_lists_filter_statuses() -> None:
    resources = [
        patient("p1", "1980-01-01", "A"),
        {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order", "subject": {"reference": "Patient/p1"},
         "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361", "display": "amlodipine 5 MG"}]}},
        {"resourceType": "MedicationRequest", "id": "m2", "status": "stopped", "intent": "order", "subject": {"reference": "Patient/p1"},
         "medicationCodeableConcept": {"coding": [{"code": "1"}]}},
        {"resourceType": "AllergyIntolerance", "id": "al1", "patient": {"reference": "Patient/p1"},
         "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"coding": [{"display": "Penicillin"}]}},
        {"resourceType": "AllergyIntolerance", "id": "al2", "patient": {"reference": "Patient/p1"},
         "verificationStatus": {"coding": [{"code": "entered-in-error"}]}, "code": {"text": "Latex"}},
    ]  # fmt: skip
    r = Reports(FixtureSource(resources))
    meds = r.run("medication_list", patient="p1").to_pylist()
    assert [m["medication_request"] for m in meds] == ["m1"] and meds[0]["rxnorm"] == "197361"
    allergies = r.run("allergy_list", patient="p1").to_pylist()
    assert [a["substance"] for a in allergies] == ["Penicillin"]


def test_custom_sql_runs_over_view_tables_with_bound_parameters(
    reports: Reports, fixture: list[dict[str, Any]]
) -> None:
    report = reports.sql("SELECT id FROM patient WHERE gender = $g ORDER BY id", g="female")
    assert [r["id"] for r in report.to_pylist()] == sorted(
        p["id"] for p in of_type(fixture, "Patient")
    )
    assert list(report.views) == ["patient"]
    # A value that looks like SQL stays a value: parameters are bound, never formatted in.
    assert reports.sql(
        "SELECT count(*) AS n FROM patient WHERE id = $x", x="p1' OR '1'='1"
    ).to_pylist() == [{"n": 0}]


def test_bad_parameters_and_names_raise_typed_errors(reports: Reports) -> None:
    with pytest.raises(ValidationError, match="nope"):
        reports.run("nope")
    with pytest.raises(ValidationError, match="patient"):
        reports.run("vitals_flowsheet")
    with pytest.raises(ValidationError, match="date"):
        reports.run("day_schedule", date="yesterday")
    with pytest.raises(ValidationError, match="colour"):
        reports.run("day_schedule", colour="red")
    with pytest.raises(ValidationError, match="query"):
        reports.sql("SELECT * FROM no_such_table")


def test_report_outputs_pandas_arrow_html_and_plots(reports: Reports) -> None:
    import matplotlib

    matplotlib.use("Agg")
    flowsheet = reports.run("vitals_flowsheet", patient="p1")
    assert (
        list(flowsheet.to_pandas().columns)
        == flowsheet.columns
        == flowsheet.to_arrow().column_names
    )
    ax = flowsheet.plot()
    assert len(ax.get_lines()) >= 2
    aging = reports.run("ar_aging")
    bars = aging.plot()
    assert len(bars.patches) == 5 * len(aging.plot_spec["y"])
    evil = Reports(FixtureSource([patient("x", "1980-01-01", "<script>alert(1)</script>")]))
    page = evil.sql("SELECT family FROM patient")._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page


def run_all(reports: Reports) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name in report_names():
        needs_patient = any(p.name == "patient" and p.required for p in load_report(name).params)
        params: dict[str, Any] = {"patient": "p1"} if needs_patient else {}
        out[name] = reports.run(name, **params).to_pylist()
    return out


def test_every_report_gives_the_same_rows_on_both_view_engines(
    fixture: list[dict[str, Any]],
) -> None:
    fast = run_all(Reports(FixtureSource(fixture), engine="duckdb"))
    reference = run_all(Reports(FixtureSource(fixture), engine="python"))
    assert fast.keys() == reference.keys()
    for name in fast:
        assert fast[name] == reference[name], name
    assert any(fast.values())


def test_report_refuses_to_run_when_a_needed_type_is_hidden(fixture: list[dict[str, Any]]) -> None:
    from ehr_sandbox.errors import AccessDenied

    class FrontDesk(FixtureSource):
        def can_read(self, resource_type: str) -> bool:
            return resource_type in ("Patient", "Appointment", "Practitioner")

    source = FrontDesk(fixture)
    assert len(Reports(source).run("day_schedule")) > 0
    with pytest.raises(AccessDenied, match="Immunization"):
        Reports(source).run("immunizations_due")


@pytest.mark.parametrize(
    "query",
    [
        "COPY (SELECT 1) TO 'leak.csv'",
        "INSTALL httpfs",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SET enable_external_access = true",
    ],
)
def test_custom_sql_cannot_reach_files_network_or_settings(
    reports: Reports, query: str, tmp_path: Any
) -> None:
    with pytest.raises(ValidationError, match="query"):
        reports.sql(query)


def test_readme_lists_every_report() -> None:
    from importlib import resources

    readme = (
        resources.files("ehr_sandbox.reports").joinpath("README.md").read_text(encoding="utf-8")
    )
    missing = [name for name in report_names() if f"`{name}`" not in readme]
    assert missing == []


def test_plot_prints_no_pandas_warning(reports: Reports) -> None:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    for name in ("bp_control", "no_show_rate"):
        r = reports.run(name, **PERIOD)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any warning fails the test
            ax = r.plot()
        assert ax is not None
