"""The front-office workflows: rules refused with their id, no partial writes, money to the cent.

The exercises built on these workflows are checked by the shared trap harness
(``tests/test_exercise_traps.py``); this module tests the workflows themselves.
"""

from __future__ import annotations

import inspect
import os
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox import exercises
from ehr_sandbox.errors import SandboxError, ValidationError
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.workflows import (
    claims,
    coding,
    eligibility,
    fees,
    ledger,
    maintenance,
    payer,
    payments,
    portal,
    registration,
    scheduling,
    scrubber,
)
from ehr_sandbox.workflows.base import RuleRefused, operation_of
from ehr_sandbox.workflows.coding import ClaimLine
from ehr_sandbox.workflows.registration import InsuranceCard

MODULES = (
    claims,
    coding,
    eligibility,
    fees,
    ledger,
    maintenance,
    payer,
    payments,
    portal,
    registration,
    scheduling,
    scrubber,
)


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    return Sandbox.generate(patients=10, seed=11, years=1)


@pytest.fixture
def sb(clinic: Sandbox) -> Sandbox:
    return clinic.copy()


def _insured(s, payer_id="blueshield"):
    for c in s.search("Coverage").fetch():
        if (
            c["payor"][0]["reference"].endswith(payer_id)
            and c.get("status") == "active"
            and not (c.get("period") or {}).get("end")
        ):
            pid = c["beneficiary"]["reference"]
            if len(eligibility.active_coverages(s, pid)) == 1:
                return pid, c
    pytest.skip(f"no patient with only {payer_id} in this clinic")


def _finished_encounter(s, pid):
    """A new finished visit today (an already billed one would be a duplicate claim)."""
    from ehr_sandbox.exercises.builtin.front_office.common import visit

    enc = visit(
        s.sandbox, pid.split("/")[1], "dr.patel", start="2026-01-01T09:00:00-05:00", conditions=[]
    )
    return s.read(f"Encounter/{enc['encounter']}")


# ----------------------------------------------------------------------------- shape
@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_public_operation_has_a_numpydoc_docstring_with_an_example(module):
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj):
            doc = inspect.getdoc(obj) or ""
            assert ">>>" in doc, f"{module.__name__}.{name} has no example"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_rule_names_its_source(module):
    for rule in getattr(module, "RULES", {}).values():
        assert rule.id.split(".")[0] in module.__name__ or rule.id.startswith("scrub."), rule.id
        assert len(rule.source) > 10 and len(rule.text) > 10


def test_rule_refused_is_a_typed_validation_error_naming_rule_field_and_source():
    err = RuleRefused(
        scheduling.RULES["scheduling.blocked-time"],
        resource="Slot/x",
        path="status",
        expected="a free slot",
        found="busy-unavailable",
    )
    assert isinstance(err, ValidationError) and isinstance(err, SandboxError)
    text = str(err)
    for part in (
        "Slot/x",
        "status",
        "a free slot",
        "busy-unavailable",
        "scheduling.blocked-time",
        err.rule.source,
    ):
        assert part in text


# ----------------------------------------------------------------------------- scheduling
@pytest.mark.parametrize(
    ("template", "per_hour"), [("stream-20", 3), ("wave-hourly", 3), ("modified-wave", 3)]
)
def test_templates_build_the_expected_day_with_lunch_blocked(sb, template, per_hour):
    fd = sb.login("fd.smith")
    slots = scheduling.build_day(fd, "Practitioner/prac-dr.patel", "2026-01-08", template)
    assert len(slots) == 9 * per_hour  # 08:00-17:00
    lunch = [s for s in slots if "T12:" in s["start"]]
    assert lunch and all(
        s["status"] == "busy-unavailable" and s["comment"] == "Lunch" for s in lunch
    )
    assert all(s["status"] == "free" for s in slots if "T12:" not in s["start"])
    assert all(operation_of(s) == "scheduling.build-day" for s in slots)


def test_wednesday_staff_meeting_and_cluster(sb):
    fd = sb.login("fd.smith")
    slots = scheduling.build_day(
        fd, "Practitioner/prac-dr.patel", "2026-01-07", "cluster-well-child"
    )
    assert {s["comment"] for s in slots if s["start"] < "2026-01-07T08:40"} == {"Staff meeting"}
    cluster = [s for s in slots if s.get("comment") == "Well-child cluster"]
    assert len(cluster) == 5  # 14:00-16:00 less 15:40, the day's open-access slot
    pid = fd.search("Patient").first()["id"]
    with pytest.raises(RuleRefused) as e:
        scheduling.book(
            fd,
            f"Patient/{pid}",
            f"Slot/{cluster[0]['id']}",
            appointment_type="ROUTINE",
            reason="cough",
        )
    assert e.value.rule_id == "scheduling.cluster"
    ok = scheduling.book(
        fd,
        f"Patient/{pid}",
        f"Slot/{cluster[0]['id']}",
        appointment_type="CHECKUP",
        reason="well child",
    )
    assert ok["slot"] == [{"reference": f"Slot/{cluster[0]['id']}"}]


def test_refused_booking_leaves_nothing_behind(sb):
    fd = sb.login("fd.smith")
    slots = scheduling.build_day(fd, "Practitioner/prac-dr.patel", "2026-01-08", "stream-20")
    pid = fd.search("Patient").first()["id"]
    before = fd.search("Appointment").count()
    lunch = next(s for s in slots if s["status"] == "busy-unavailable")
    with pytest.raises(RuleRefused) as e:
        scheduling.book(
            fd, f"Patient/{pid}", f"Slot/{lunch['id']}", appointment_type="ROUTINE", reason="x"
        )
    assert e.value.rule_id == "scheduling.blocked-time"
    assert fd.search("Appointment").count() == before
    assert fd.read(f"Slot/{lunch['id']}")["meta"]["versionId"] == "1"


def test_patient_conflict_open_access_and_prep(sb):
    fd = sb.login("fd.smith")
    slots = scheduling.build_day(fd, "Practitioner/prac-dr.patel", "2026-01-08", "wave-hourly")
    pid = fd.search("Patient").first()["id"]
    nine = [s for s in slots if s["start"].endswith("T09:00:00-05:00")]
    scheduling.book(
        fd, f"Patient/{pid}", f"Slot/{nine[0]['id']}", appointment_type="ROUTINE", reason="x"
    )
    with pytest.raises(RuleRefused) as e:
        scheduling.book(
            fd, f"Patient/{pid}", f"Slot/{nine[1]['id']}", appointment_type="ROUTINE", reason="y"
        )
    assert e.value.rule_id == "scheduling.patient-conflict"
    stream = scheduling.build_day(fd, "Practitioner/prac-dr.nguyen", "2026-01-08", "stream-20")
    oa = next(s for s in stream if s.get("comment", "").startswith("Open access"))
    with pytest.raises(RuleRefused) as e:
        scheduling.book(
            fd, f"Patient/{pid}", f"Slot/{oa['id']}", appointment_type="WALKIN", reason="z"
        )
    assert e.value.rule_id == "scheduling.open-access"
    early = next(s for s in stream if s["start"].endswith("T08:20:00-05:00"))
    other = fd.search("Patient").fetch()[1]["id"]
    with pytest.raises(RuleRefused) as e:
        scheduling.book(
            fd,
            f"Patient/{other}",
            f"Slot/{early['id']}",
            appointment_type="ROUTINE",
            reason="labs",
            service="FASTING-LAB",
        )
    assert e.value.rule_id == "scheduling.prep"
    ok = scheduling.book(
        fd,
        f"Patient/{other}",
        f"Slot/{early['id']}",
        appointment_type="ROUTINE",
        reason="labs",
        service="FASTING-LAB",
        patient_instruction="Fast for 10 hours: nothing but water after 22:00.",
    )
    assert (
        "fast" in ok["patientInstruction"].lower()
        and ok["serviceType"][0]["coding"][0]["code"] == "FASTING-LAB"
    )


# ----------------------------------------------------------------------------- registration
@given(
    a=st.dates(date(1960, 1, 1), date(1995, 12, 31)),
    b=st.dates(date(1960, 1, 1), date(1995, 12, 31)),
)
def test_birthday_rule_picks_the_earlier_birthday_whatever_the_age(a, b):
    if (a.month, a.day) == (b.month, b.day):
        return
    ca = InsuranceCard("blueshield", "RBP1", "child", subscriber_birth_date=a.isoformat())
    cb = InsuranceCard("unityhealth", "UHH1", "child", subscriber_birth_date=b.isoformat())
    first = registration.order_of_benefits([ca, cb], patient_age=9)[0]
    assert first is (ca if (a.month, a.day) < (b.month, b.day) else cb)


@given(st.permutations(["medicaid", "blueshield", "unityhealth"]))
def test_medicaid_is_always_the_payer_of_last_resort(order):
    prefix = {"medicaid": "MCD", "blueshield": "RBP", "unityhealth": "UHH"}
    cards = [
        InsuranceCard(
            p,
            prefix[p] + "1",
            "self" if p != "unityhealth" else "spouse",
            subscriber_birth_date="1970-01-01",
        )
        for p in order
    ]
    assert registration.order_of_benefits(cards, patient_age=40)[-1].payer == "medicaid"


def test_mpi_search_refuses_a_probable_duplicate_until_set_aside(sb):
    fd = sb.login("fd.smith")
    p = fd.search("Patient").first()
    cand = {
        "resourceType": "Patient",
        "name": p["name"],
        "birthDate": p["birthDate"],
        "gender": p["gender"],
        "telecom": p.get("telecom", []),
        "address": p.get("address", []),
    }
    before = fd.search("Patient").count()
    with pytest.raises(RuleRefused) as e:
        registration.register_patient(fd, cand)
    assert e.value.rule_id == "registration.mpi-search" and fd.search("Patient").count() == before
    new = registration.register_patient(
        fd,
        cand,
        not_duplicate_of={f"Patient/{p['id']}": "twin brother, different first name on ID"},
    )
    mrns = [i["value"] for i in new["identifier"] if i["system"] == registration.MRN_SYSTEM]
    assert len(mrns) == 1 and mrns[0] not in {i["value"] for i in p["identifier"]}


# ----------------------------------------------------------------------------- claims and money
def _claim(s, pid, cov, lines, dx=("icd10cm|I10",)):
    enc = _finished_encounter(s, pid)
    return coding.build_claim(
        s,
        f"Encounter/{enc['id']}",
        diagnoses=list(dx),
        lines=lines,
        coverage=f"Coverage/{cov['id']}",
    )


def test_cms1500_limits(sb):
    b = sb.login("billing.davis")
    pid, cov = _insured(b)
    enc = _finished_encounter(b, pid)
    thirteen = [
        "icd10cm|" + c
        for c in (
            "I10",
            "E11.9",
            "E78.5",
            "E66.9",
            "J45.909",
            "K21.9",
            "M17.0",
            "E03.9",
            "J30.9",
            "L20.9",
            "R05.9",
            "R51.9",
            "Z23",
        )
    ]
    with pytest.raises(RuleRefused) as e:
        coding.build_claim(
            b,
            f"Encounter/{enc['id']}",
            diagnoses=thirteen,
            lines=[ClaimLine("procedure|OV-EST-3", (1,))],
        )
    assert e.value.rule_id == "coding.max-diagnoses"
    with pytest.raises(RuleRefused) as e:
        coding.build_claim(
            b,
            f"Encounter/{enc['id']}",
            diagnoses=thirteen[:6],
            lines=[ClaimLine("procedure|OV-EST-3", (1, 2, 3, 4, 5))],
        )
    assert e.value.rule_id == "coding.max-pointers"
    with pytest.raises(RuleRefused) as e:
        coding.build_claim(
            b,
            f"Encounter/{enc['id']}",
            diagnoses=["icd10cm|I10"],
            lines=[ClaimLine("procedure|99213", (1,))],
        )
    assert e.value.rule_id == "coding.code-set"


@pytest.mark.parametrize(
    ("dx", "lines", "rule"),
    [
        (["icd10cm|J06.9"], [ClaimLine("procedure|ECG-12", (1,))], "scrub.necessity"),
        (
            ["icd10cm|F32.9", "icd10cm|F33.1"],
            [ClaimLine("procedure|OV-EST-3", (1,))],
            "scrub.excludes1",
        ),
        (
            ["icd10cm|S93.401A"],
            [ClaimLine("procedure|SPLINT-ANKLE", (1,), 1, ("LT",))],
            "scrub.laterality",
        ),
        (["icd10cm|I10"], [ClaimLine("procedure|ECHO", (1,))], "scrub.prior-auth"),
        (
            ["icd10cm|Z00.121", "icd10cm|Z00.01"],
            [ClaimLine("procedure|OV-EST-3", (1,))],
            "scrub.age-sex",
        ),
    ],
)
def test_scrubber_finds_each_planted_error(sb, dx, lines, rule):
    b = sb.login("billing.davis")
    pid, cov = _insured(b)
    c = _claim(b, pid, cov, lines, dx=dx)
    found = {f.rule for f in scrubber.scrub(b, c)}
    assert rule in found
    with pytest.raises(RuleRefused) as e:
        claims.submit(b, c["id"])
    assert e.value.rule_id == "claims.clean" and b.read(f"Claim/{c['id']}")["status"] == "draft"


def test_rule_out_and_trimester_edits_read_the_encounter(sb):
    s = sb.system_session()
    b = sb.login("billing.davis")
    pid, cov = _insured(b)
    enc = _finished_encounter(b, pid)
    for code, status in (("J02.0", "provisional"), ("Z34.01", "confirmed")):
        s.create(
            {
                "resourceType": "Condition",
                "subject": {"reference": pid},
                "encounter": {"reference": f"Encounter/{enc['id']}"},
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": status,
                        }
                    ]
                },
                "code": {"coding": [coding.lookup(f"icd10cm|{code}")], "text": code},
            }
        )
    s.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "subject": {"reference": pid},
            "encounter": {"reference": f"Encounter/{enc['id']}"},
            "code": {
                "coding": [{"system": "http://loinc.org", "code": scrubber.GESTATIONAL_AGE_LOINC}]
            },
            "valueQuantity": {
                "value": 20,
                "unit": "wk",
                "system": "http://unitsofmeasure.org",
                "code": "wk",
            },
            "effectiveDateTime": enc["period"]["start"],
        }
    )
    c = coding.build_claim(
        b,
        f"Encounter/{enc['id']}",
        diagnoses=["icd10cm|J02.0", "icd10cm|Z34.01"],
        lines=[ClaimLine("procedure|OV-EST-3", (1, 2))],
    )
    # billing sees observation values masked (minimum necessary): the edit runs where they are visible
    assert "scrub.uncertain" in {f.rule for f in scrubber.scrub(b, c)}
    assert {"scrub.uncertain", "scrub.trimester"} <= {f.rule for f in scrubber.scrub(s, c)}


def test_adjudication_era_balances_and_ledger_reconciles(sb):
    b = sb.login("billing.davis")
    pid, cov = _insured(b)
    c = claims.submit(
        b,
        _claim(
            b,
            pid,
            cov,
            [ClaimLine("procedure|OV-EST-4", (1,)), ClaimLine("procedure|ECG-12", (1,))],
        )["id"],
    )
    era = payer.adjudicate(b, f"Claim/{c['id']}")
    cr = era["entry"][0]["resource"]
    assert cr["disposition"] == "Paid"
    submitted = sum(Decimal(str(it["adjudication"][0]["amount"]["value"])) for it in cr["item"])
    assert submitted == Decimal(str(c["total"]["value"]))
    before = ledger.balances(b, pid)
    payments.post_era(b, era)
    after = ledger.balances(b, pid)
    contractual = sum(
        Decimal(str(a["amount"]["value"]))
        for it in cr["item"]
        for a in it["adjudication"]
        if a.get("reason", {}).get("coding", [{}])[0].get("code") == "45"
    )
    paid = Decimal(str(cr["payment"]["amount"]["value"]))
    assert before["total"] - after["total"] == contractual + paid
    day = sb.clock.peek().date().isoformat()
    assert ledger.reconcile(b, day)["ok"]


def test_denial_with_carc_and_no_balance_billing(sb):
    b = sb.login("billing.davis")
    pid, cov = _insured(b)
    enc = _finished_encounter(b, pid)
    claim = coding.claim_resource(
        b,
        f"Encounter/{enc['id']}",
        diagnoses=["icd10cm|J06.9"],
        lines=[ClaimLine("procedure|OV-EST-3", (1,)), ClaimLine("procedure|ECG-12", (1,))],
        coverage=f"Coverage/{cov['id']}",
    )
    sent = b.create({**claim, "status": "active"})
    cr, _ = payments.post_era(b, payer.adjudicate(b, f"Claim/{sent['id']}"))
    assert cr["disposition"] == "Paid in part"
    denial = [a for a in cr["item"][1]["adjudication"] if a.get("reason")]
    assert (
        denial[0]["category"]["coding"][0]["code"] == "CO"
        and denial[0]["reason"]["coding"][0]["code"] == "50"
    )
    assert "N115" in cr["processNote"][0]["text"]
    with pytest.raises(RuleRefused) as e:
        payments.bill_denial_to_patient(b, f"Claim/{sent['id']}", line=2, reason="patient asked")
    assert e.value.rule_id == "payments.no-balance-billing"


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amounts=st.lists(
        st.tuples(st.integers(1, 9999), st.sampled_from(["cash", "check", "card"])),
        min_size=1,
        max_size=5,
    )
)
def test_day_sheet_and_deposit_reconcile_to_the_cent_for_any_payments(clinic, amounts):
    sb = clinic.copy()
    fd = sb.login("fd.smith")
    b = sb.login("billing.davis")
    pats = [p["id"] for p in fd.search("Patient").limit(3).fetch()]
    day = sb.clock.peek().date().isoformat()
    before = ledger.day_sheet(b, day)
    for n, (cents, method) in enumerate(amounts):
        payments.desk_payment(
            fd,
            f"Patient/{pats[n % len(pats)]}",
            Decimal(cents) / 100,
            method=method,
            number=str(1000 + n),
        )
    after = ledger.day_sheet(b, day)
    total = sum(Decimal(c) / 100 for c, _ in amounts)
    assert after["proof"]
    assert after["totals"]["receipts"] - before["totals"]["receipts"] == total
    assert before["closing_balance"] - after["closing_balance"] == total
    slip = ledger.deposit_slip(b, day)
    assert slip["total"] == sum((Decimal(c) / 100 for c, m in amounts if m != "card"), Decimal(0))
    assert ledger.ar_aging(b, day)["total"] == after["closing_balance"]
    assert ledger.reconcile(b, day)["ok"]


def test_write_off_needs_someone_elses_approval_and_refund_only_a_credit(sb):
    b = sb.login("billing.davis")
    pid = next(
        p
        for p in {c["patient"]["reference"] for c in b.search("Claim").fetch()}
        if ledger.balances(b, p)["patient"] > 20
    )
    with pytest.raises(RuleRefused) as e:
        payments.write_off(b, pid, "20.00", reason="hardship")
    assert e.value.rule_id == "payments.approval"
    with pytest.raises(RuleRefused) as e:
        payments.write_off(b, pid, "20.00", reason="hardship", approved_by="billing.davis")
    assert e.value.rule_id == "payments.approval"
    wo = payments.write_off(b, pid, "20.00", reason="hardship", approved_by="dr.patel")
    assert wo["detail"][0]["responsible"]["reference"].startswith("PractitionerRole/")
    with pytest.raises(RuleRefused) as e:
        payments.refund(b, pid, "1.00", reason="x")
    assert e.value.rule_id == "payments.credit-only"


def test_fee_schedule_new_year_retires_the_old_and_prices_claims(sb):
    b = sb.login("billing.davis")
    fees.publish_fee_schedule(b, 2026, {"procedure|OV-EST-3": "140.00"}, reason="2026 schedule")
    assert fees.charge("procedure|OV-EST-3", b) == Decimal("140.00")
    new = fees.raise_fees(fees.schedule(b, "practice", 2026), 4)
    assert new["procedure|OV-EST-3"] == Decimal("146.00")
    cid = fees.publish_fee_schedule(b, 2027, new, reason="4% increase")
    old = next(c for c in b.resources("ChargeItemDefinition") if c.get("version") == "2026")
    assert old["status"] == "retired" and cid["replaces"] == [old["url"]]
    with pytest.raises(RuleRefused):
        fees.publish_fee_schedule(b, 2027, new, reason="again")


# ----------------------------------------------------------------------------- eligibility, portal, maintenance
def test_eligibility_then_financial_responsibility(sb):
    fd = sb.login("fd.smith")
    pid, cov = _insured(fd)
    with pytest.raises(RuleRefused) as e:
        eligibility.financial_responsibility(fd, pid)
    assert e.value.rule_id == "eligibility.verified"
    resp = eligibility.check_eligibility(fd, f"Coverage/{cov['id']}")
    assert resp["insurance"][0]["inforce"] is True
    fr = eligibility.financial_responsibility(fd, pid)
    assert fr["copay_due"] == payer.plan("blueshield").copay
    assert fr["deductible_remaining"] <= payer.plan("blueshield").deductible


def test_portal_ma_scope_and_thread(sb):
    ma = sb.login("ma.garcia")
    pid = ma.search("Patient").first()["id"]
    m = portal.send_message(
        sb.login_patient(pid),
        topic="education",
        subject="Diet",
        text="Which foods are low in salt?",
    )
    with pytest.raises(RuleRefused) as e:
        portal.reply(
            ma, f"Communication/{m['id']}", "Your blood pressure readings are normal, keep going."
        )
    assert e.value.rule_id == "portal.ma-scope"
    r = portal.reply(
        ma,
        f"Communication/{m['id']}",
        "Here is the low-salt food sheet; fresh vegetables and fruit are good choices.",
    )
    assert [x["id"] for x in portal.thread(ma, f"Communication/{m['id']}")] == [m["id"], r["id"]]
    assert all(x["message"] != f"Communication/{m['id']}" for x in portal.inbox(ma))


def test_accounts_least_privilege_and_termination(sb):
    adm = sb.login("admin.root")
    with pytest.raises(RuleRefused) as e:
        maintenance.provision_user(
            adm,
            username="fd.ortiz",
            given="Lu",
            family="Ortiz",
            job_title="Receptionist",
            role="billing",
            start="2026-01-05",
        )
    assert e.value.rule_id == "maintenance.least-privilege"
    maintenance.provision_user(
        adm,
        username="fd.ortiz",
        given="Lu",
        family="Ortiz",
        job_title="Receptionist",
        role="front_desk",
        start="2026-01-05",
    )
    with pytest.raises(RuleRefused) as e:
        maintenance.provision_user(
            adm,
            username="fd.ortiz",
            given="Al",
            family="Other",
            job_title="Receptionist",
            role="front_desk",
            start="2026-01-05",
        )
    assert e.value.rule_id == "maintenance.unique-user"
    maintenance.deprovision_user(adm, "fd.ortiz", last_day="2025-12-31", reason="offer withdrawn")
    acct = next(a for a in maintenance.accounts(adm) if a["username"] == "fd.ortiz")
    assert (
        acct["active"] is False and acct["end"] == "2026-01-05"
    )  # ended before it began: end = start


def test_restore_drill_checks_counts_and_chain(tmp_path):
    sb = Sandbox.generate(patients=2, seed=3, years=1)
    manifest = maintenance.backup(sb, tmp_path / "clinic.db")
    ok = maintenance.restore_drill(tmp_path / "clinic.db", manifest, key=sb.master_key, live=sb)
    assert ok["ok"] and ok["chain_ok"]
    bad = {
        **manifest,
        "counts": {**manifest["counts"], "Patient": manifest["counts"]["Patient"] + 1},
    }
    assert not maintenance.restore_drill(tmp_path / "clinic.db", bad, key=sb.master_key)["ok"]


def test_downtime_back_entry_must_fall_inside_the_outage(sb):
    s = sb.system_session()
    pid = s.search("Patient").first()["id"]
    dt = maintenance.Downtime("2025-12-31T09:00:00-05:00", "2025-12-31T12:00:00-05:00", "outage")
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {
            "value": 70,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
    with pytest.raises(RuleRefused) as e:
        maintenance.back_enter(
            s, obs, downtime=dt, event_time="2025-12-31T13:00:00-05:00", form_id="DT-1"
        )
    assert e.value.rule_id == "maintenance.downtime-window"


def test_data_quality_report_finds_a_planted_duplicate_and_missing_insurance(sb):
    s = sb.system_session()
    p = s.search("Patient").first()
    dup = s.create({k: v for k, v in p.items() if k not in ("id", "meta", "identifier")})
    report = maintenance.data_quality_report(s)
    pairs = {frozenset((d["a"], d["b"])) for d in report["duplicates"]}
    assert frozenset((f"Patient/{p['id']}", f"Patient/{dup['id']}")) in pairs
    assert f"Patient/{dup['id']}" in report["missing_insurance"]


# ----------------------------------------------------------------------------- exercises
FRONT_OFFICE_TOPICS = (
    "scheduling",
    "billing",
    "coding",
    "insurance-claims",
    "fee-schedules",
    "patient-portal",
    "ehr-maintenance",
    "patient-access",
)


def test_front_office_exercises_cover_every_required_topic():
    rows = [r for r in exercises.catalog() if r["id"].startswith("front-office/")]
    assert len(rows) >= 14
    covered = {t for r in rows for t in r["topics"]}
    assert set(FRONT_OFFICE_TOPICS) <= covered


def test_demo_flow_runs_and_reconciles():
    from ehr_sandbox.workflows.demo import front_office_flow

    lines = front_office_flow(Sandbox.generate(patients=6, seed=7, years=1))
    assert lines[-1].endswith("reconciles to the cent"), lines


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("EHR_SANDBOX_TRAP_STUDENTS"),
    reason="30-student run: set EHR_SANDBOX_TRAP_STUDENTS=30",
)
def test_front_office_traps_for_many_students():
    from exercise_harness import assert_traps_hold, run_traps, trap_students

    for row in exercises.catalog():
        if row["id"].startswith("front-office/"):
            assert_traps_hold(run_traps(row["id"], trap_students()))


def test_check_in_out_and_waitlist(sb):
    fd = sb.login("fd.smith")
    today = sb.clock.peek().date()
    slots = scheduling.build_day(fd, "Practitioner/prac-dr.okafor", today.isoformat(), "stream-20")
    pats = [p["id"] for p in fd.search("Patient").fetch()]
    late = [
        s
        for s in slots
        if s["status"] == "free"
        and s["start"] > sb.clock.peek().isoformat()
        and s.get("comment") is None
    ]
    appt = None
    for pid in pats:
        try:
            appt = scheduling.book(
                fd,
                f"Patient/{pid}",
                f"Slot/{late[-1]['id']}",
                appointment_type="ROUTINE",
                reason="rash",
            )
            break
        except RuleRefused:
            continue
    assert appt is not None
    with pytest.raises(RuleRefused) as e:
        scheduling.check_out(fd, f"Appointment/{appt['id']}")
    assert e.value.rule_id == "scheduling.check-out"
    scheduling.check_in(fd, f"Appointment/{appt['id']}")
    assert scheduling.check_out(fd, f"Appointment/{appt['id']}")["status"] == "fulfilled"
    wl = scheduling.add_to_waitlist(
        fd,
        appt["participant"][0]["actor"]["reference"],
        "Practitioner/prac-dr.okafor",
        appointment_type="FOLLOWUP",
        reason="sooner visit",
        earliest=today.isoformat(),
        latest=today.isoformat(),
    )
    filled = None
    for opened in reversed(late[:-1]):
        try:
            filled = scheduling.fill_from_waitlist(
                fd, f"Appointment/{wl['id']}", f"Slot/{opened['id']}"
            )
            break
        except RuleRefused as exc:
            assert exc.rule_id == "scheduling.patient-conflict"
    assert filled is not None
    assert (
        filled["id"] == wl["id"]
        and filled["status"] == "booked"
        and fd.read(f"Slot/{opened['id']}")["status"] == "busy"
    )


# ------------------------------------------------------------------------------------------
# Prior authorisation: requested from the plan, and only a real approval clears the claim
# ------------------------------------------------------------------------------------------
def _echo_claim(b, pid, cov, number=None):
    enc = _finished_encounter(b, pid)
    return coding.build_claim(
        b,
        f"Encounter/{enc['id']}",
        diagnoses=["icd10cm|I50.9"],
        lines=[ClaimLine("procedure|ECHO", (1,))],
        coverage=f"Coverage/{cov['id']}",
        prior_auth=number,
    )


def _auth_findings(b, claim) -> list[str]:
    return [f.message for f in scrubber.scrub(b, claim) if f.rule == "scrub.prior-auth"]


def test_prior_auth_request_approves_what_the_diagnoses_support(sb):
    from ehr_sandbox.workflows.prior_auth import request_prior_auth

    b = sb.login("billing.davis")
    pid, cov = _insured(b)
    day = _finished_encounter(b, pid)["period"]["start"][:10]
    ok = request_prior_auth(
        b,
        f"Coverage/{cov['id']}",
        service="procedure|ECHO",
        diagnoses=["icd10cm|I50.9"],
        service_date=day,
    )
    assert ok["disposition"] == "Approved" and ok["use"] == "preauthorization"
    assert ok["preAuthPeriod"]["start"] == day <= ok["preAuthPeriod"]["end"]
    request = b.read(ok["request"]["reference"])
    assert request["use"] == "preauthorization" and request["patient"]["reference"] == pid
    assert _auth_findings(b, _echo_claim(b, pid, cov, ok["preAuthRef"])) == []
    # without a number, the scrubber asks for one
    assert _auth_findings(b, _echo_claim(b, pid, cov)) != []
    no = request_prior_auth(
        b,
        f"Coverage/{cov['id']}",
        service="procedure|ECHO",
        diagnoses=["icd10cm|J02.9"],
        service_date=day,
    )
    assert no["disposition"].startswith("Denied") and "preAuthRef" not in no
    reason = no["item"][0]["adjudication"][0]["reason"]["coding"][0]["code"]
    assert payer.carc(reason)["kind"] == "denial"


def test_only_a_real_approval_for_this_patient_service_and_date_clears_the_claim(sb):
    from ehr_sandbox.workflows.prior_auth import VALID_DAYS, request_prior_auth

    b = sb.login("billing.davis")
    pid, cov = _insured(b)
    day = _finished_encounter(b, pid)["period"]["start"][:10]
    denied = request_prior_auth(
        b,
        f"Coverage/{cov['id']}",
        service="procedure|ECHO",
        diagnoses=["icd10cm|J02.9"],
        service_date=day,
    )
    approved_long_ago = request_prior_auth(
        b,
        f"Coverage/{cov['id']}",
        service="procedure|ECHO",
        diagnoses=["icd10cm|I50.9"],
        service_date=(date.fromisoformat(day).replace(year=2025)).isoformat(),
    )
    assert approved_long_ago["preAuthPeriod"]["end"] < day  # VALID_DAYS ago and more
    assert VALID_DAYS < 365
    other = next(
        c
        for c in b.search("Coverage").fetch()
        if c["beneficiary"]["reference"] != pid
        and "ECHO" in payer.plan(c["payor"][0]["reference"]).prior_auth
        and c.get("status") == "active"
        and not (c.get("period") or {}).get("end")
    )
    someone_elses = request_prior_auth(
        b,
        f"Coverage/{other['id']}",
        service="procedure|ECHO",
        diagnoses=["icd10cm|I50.9"],
        service_date=day,
    )
    assert someone_elses["disposition"] == "Approved"
    forged = [
        "PA-12345678",  # made up
        approved_long_ago["preAuthRef"],  # expired
        denied["disposition"],  # a denial is no number
        someone_elses["preAuthRef"],  # another patient's approval
    ]
    for number in forged:
        assert _auth_findings(b, _echo_claim(b, pid, cov, number)) != [], number


def test_prior_auth_is_refused_for_a_service_the_plan_does_not_list_and_writes_nothing(sb):
    from ehr_sandbox.workflows.prior_auth import request_prior_auth

    b = sb.login("billing.davis")
    pid, cov = _insured(b)
    before = b.search("ClaimResponse").count(), b.search("Claim").count()
    with pytest.raises(RuleRefused) as e:
        request_prior_auth(
            b, f"Coverage/{cov['id']}", service="procedure|OV-EST-3", diagnoses=["icd10cm|I10"]
        )
    assert e.value.rule_id == "prior-auth.listed"
    with pytest.raises(RuleRefused) as e:
        request_prior_auth(b, f"Coverage/{cov['id']}", service="procedure|ECHO", diagnoses=[])
    assert e.value.rule_id == "prior-auth.request"
    assert (b.search("ClaimResponse").count(), b.search("Claim").count()) == before
