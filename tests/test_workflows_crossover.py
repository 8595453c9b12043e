"""Crossover: the secondary plan is billed for what the primary left to the patient, adjudicated
as a secondary payer, and the ledger, day sheet, deposit slip and A/R aging agree to the cent."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.errors import AccessDenied, SandboxError
from ehr_sandbox.exercises.builtin.front_office.common import visit
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.workflows import coding, eligibility, fees, ledger, payer, payments, secondary
from ehr_sandbox.workflows.base import RuleRefused, operation_of
from ehr_sandbox.workflows.coding import ClaimLine
from ehr_sandbox.workflows.registration import InsuranceCard, add_insurance, register_patient

GROUP = "https://x12.org/codes/claim-adjustment-group-codes"
CENT = Decimal("0.01")
PAIRS = {
    # primary card, secondary card (the registration workflow sets the order of benefits)
    "medicare+medicaid": (
        InsuranceCard("medicare", "MBI100200300"),
        InsuranceCard("medicaid", "MCD100200300"),
    ),
    "blueshield+unityhealth": (
        InsuranceCard("blueshield", "RBP100200300"),
        InsuranceCard(
            "unityhealth",
            "UHH100200300",
            "spouse",
            group="G-7",
            subscriber_given="Sam",
            subscriber_family="Doe",
            subscriber_birth_date="1970-05-05",
            subscriber_gender="male",
        ),
    ),
}


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    return Sandbox.generate(patients=4, seed=11, years=1)


@pytest.fixture
def sb(clinic: Sandbox) -> Sandbox:
    return clinic.copy()


def _d(value: object) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _reason(adj: dict) -> str | None:
    return (adj.get("reason") or {}).get("coding", [{}])[0].get("code")


def _category(adj: dict) -> str:
    return adj["category"]["coding"][0]["code"]


def _insure(sb: Sandbox, pid: str, pair: str | None) -> None:
    if pair is not None:
        add_insurance(sb.login("fd.smith"), pid, list(PAIRS[pair]))
    else:
        add_insurance(sb.login("fd.smith"), pid, [InsuranceCard("blueshield", "RBP900800700")])


def _sent_claim(sb: Sandbox, pid: str, lines: list[ClaimLine], dx: str = "icd10cm|I10") -> dict:
    """A finished visit today, coded and sent to the patient's primary plan."""
    enc = visit(
        sb, pid.split("/")[1], "dr.patel", start="2026-01-01T09:00:00-05:00", conditions=[]
    )["encounter"]
    b = sb.login("billing.davis")
    draft = coding.claim_resource(b, f"Encounter/{enc}", diagnoses=[dx], lines=lines)
    return b.create({**draft, "status": "active"})


def _new_patient(sb: Sandbox, given: str = "Ada", family: str = "Crossover") -> str:
    """A newly registered patient: no history, so every balance is what the test adds."""
    pat = register_patient(
        sb.login("fd.smith"),
        {
            "resourceType": "Patient",
            "name": [{"family": family, "given": [given]}],
            "birthDate": "1951-03-03" if given == "Ada" else "1944-11-20",
            "gender": "female",
            "telecom": [{"system": "phone", "value": "555-0142" if given == "Ada" else "555-0199"}],
        },
    )
    return f"Patient/{pat['id']}"


def _paid_primary(sb: Sandbox, pair: str | None, lines: list[ClaimLine], dx: str = "icd10cm|I10"):
    pid = _new_patient(sb)
    _insure(sb, pid, pair)
    claim = _sent_claim(sb, pid, lines, dx)
    b = sb.login("billing.davis")
    cr, _ = payments.post_era(b, payer.adjudicate(b, f"Claim/{claim['id']}"))
    return b, pid, claim, cr


def _claim_bucket(b, pid: str, claims_: set[str], bucket: str) -> Decimal:
    return sum(
        (
            t.amount
            for t in ledger.transactions(b, pid)
            if t.claim in claims_ and t.bucket == bucket
        ),
        Decimal(0),
    )


def _nothing_written(sb: Sandbox, action) -> Exception:
    """Run ``action`` expecting a typed error; nothing may be written meanwhile."""
    system = sb.system_session()
    mark = system.change_mark()
    claims_before = system.search("Claim").count()
    with pytest.raises(SandboxError) as err:
        action()
    assert system.changes_since(mark) == []
    assert system.search("Claim").count() == claims_before
    return err.value


# ----------------------------------------------------------------------------- happy paths
def test_medicaid_crossover_pays_the_medicare_cost_sharing_and_everything_reconciles(sb):
    b, pid, primary, cr = _paid_primary(
        sb,
        "medicare+medicaid",
        [ClaimLine("procedure|OV-EST-4", (1,)), ClaimLine("procedure|ECG-12", (1,))],
    )
    day = sb.clock.peek().date().isoformat()
    # what the primary's ERA left to the patient, line by line (deductible, coinsurance, copay)
    owed = {
        it["itemSequence"]: sum(
            (_d(a["amount"]["value"]) for a in it["adjudication"] if _reason(a) in ("1", "2", "3")),
            Decimal(0),
        )
        for it in cr["item"]
    }
    assert sum(owed.values()) > 0
    before = ledger.balances(b, pid)
    sheet_before = ledger.day_sheet(b, day)

    sec = secondary.bill_secondary(b, f"Claim/{primary['id']}", patient=pid)

    assert operation_of(sec) == "secondary.bill" and sec["status"] == "active"
    assert [(i["sequence"], i["focal"]) for i in sec["insurance"]] == [(1, False), (2, True)]
    assert sec["insurance"][0]["coverage"] == primary["insurance"][0]["coverage"]
    assert sec["insurance"][0]["claimResponse"]["reference"] == f"ClaimResponse/{cr['id']}"
    medicaid = b.read(sec["insurance"][1]["coverage"]["reference"])
    assert medicaid["order"] == 2 and medicaid["beneficiary"]["reference"] == pid
    assert sec["insurer"]["reference"] == medicaid["payor"][0]["reference"]
    assert sec["related"][0]["claim"]["reference"] == f"Claim/{primary['id']}"
    assert sec["diagnosis"] == primary["diagnosis"]
    by_seq = {i["sequence"]: i for i in primary["item"]}
    for item in sec["item"]:
        assert item["productOrService"] == by_seq[item["sequence"]]["productOrService"]
        assert _d(item["net"]["value"]) == owed[item["sequence"]]
    assert {i["sequence"] for i in sec["item"]} == {s for s, v in owed.items() if v > 0}
    prov = sb.system_session().provenance(f"Claim/{sec['id']}")
    assert len(prov) == 1 and "crossover" in str(prov[0].get("reason")), prov
    # billing the secondary moves the patient's share back to insurance: no new charge
    moved = ledger.balances(b, pid)
    assert moved["total"] == before["total"]
    assert before["patient"] - moved["patient"] == sum(owed.values())

    era = payer.adjudicate(b, f"Claim/{sec['id']}")
    cr2 = era["entry"][0]["resource"]
    assert cr2["insurer"]["reference"] == medicaid["payor"][0]["reference"]
    for it in cr2["item"]:
        adj = it["adjudication"]
        submitted = next(_d(a["amount"]["value"]) for a in adj if _category(a) == "submitted")
        oa23 = [a for a in adj if _category(a) == "OA" and _reason(a) == "23"]
        charge = _d(by_seq[it["itemSequence"]]["net"]["value"])
        assert submitted == charge
        # the primary's payment and contractual adjustment, stated as OA-23
        assert _d(oa23[0]["amount"]["value"]) == charge - owed[it["itemSequence"]]
    paid2 = _d(cr2["payment"]["amount"]["value"])
    assert paid2 == sum(owed.values())  # the payer of last resort pays the cost sharing in full
    payments.post_era(b, era)

    after = ledger.balances(b, pid)
    assert moved["total"] - after["total"] == paid2
    both = {f"Claim/{primary['id']}", f"Claim/{sec['id']}"}
    assert _claim_bucket(b, pid, both, "patient") == 0
    assert _claim_bucket(b, pid, both, "insurance") == 0
    sheet = ledger.day_sheet(b, day)
    assert sheet["proof"]
    assert sheet["totals"]["receipts"] - sheet_before["totals"]["receipts"] == paid2
    assert ledger.ar_aging(b, day)["total"] == sheet["closing_balance"]
    assert ledger.reconcile(b, day)["ok"]
    # the patient's ledger reads in order: charges, the primary's answer, then the crossover
    rows = ledger.ledger(b, pid)
    assert all(r["balance"] >= 0 for r in rows), rows
    assert rows[-1]["balance"] == after["total"] == 0


@pytest.mark.parametrize("deductible", ["0.00", "50.00", None])
def test_commercial_secondary_applies_its_deductible_then_coinsurance_and_bills_the_patient(
    sb, monkeypatch, deductible
):
    # the secondary plan's own deductible (None: as in payers.toml, more than the balance),
    # then its coinsurance on the rest; both stay with the patient
    if deductible is not None:
        real = payer.plan

        def plan(ref: str) -> payer.Plan:
            p = real(ref)
            return replace(p, deductible=Decimal(deductible)) if p.id == "unityhealth" else p

        monkeypatch.setattr(payer, "plan", plan)
    b, pid, primary, cr = _paid_primary(
        sb, "blueshield+unityhealth", [ClaimLine("procedure|OV-EST-3", (1,))]
    )
    day = sb.clock.peek().date().isoformat()
    sec = secondary.bill_secondary(b, f"Claim/{primary['id']}", patient=pid)
    crossed = _d(sec["total"]["value"])
    unity = payer.plan("Organization/org-payer-unityhealth")
    cov = next(i["coverage"]["reference"] for i in sec["insurance"] if i.get("focal"))
    assert payer.deductible_met(b, cov, 2026) == 0  # a new plan: nothing met yet
    ded = min(unity.deductible, crossed)
    coins = ((crossed - ded) * unity.coinsurance).quantize(CENT)
    share = ded + coins
    assert share > 0
    cr2, _ = payments.post_era(b, payer.adjudicate(b, f"Claim/{sec['id']}"))
    assert _d(cr2["payment"]["amount"]["value"]) == crossed - share
    adjs = [a for it in cr2["item"] for a in it["adjudication"]]
    pr2 = [a for a in adjs if _category(a) == "PR" and _reason(a) == "2"]
    pr1 = [a for a in adjs if _category(a) == "deductible" and _reason(a) == "1"]
    assert sum(_d(a["amount"]["value"]) for a in pr2) == coins
    assert sum(_d(a["amount"]["value"]) for a in pr1) == ded
    assert payer.deductible_met(b, cov, 2026) == ded  # the plan's accumulator moved
    both = {f"Claim/{primary['id']}", f"Claim/{sec['id']}"}
    assert _claim_bucket(b, pid, both, "patient") == share
    # the patient's statement is what is left after both plans
    inv = payments.send_statement(b, pid)
    assert _d(inv["totalNet"]["value"]) == ledger.balances(b, pid)["patient"] == share
    assert any(
        "Claim/" + sec["id"] in li["chargeItemCodeableConcept"]["text"]
        and _d(li["priceComponent"][0]["amount"]["value"]) == share
        for li in inv["lineItem"]
    )
    slip_before = ledger.deposit_slip(b, day)["total"]
    payments.desk_payment(  # the patient mails a check; billing posts it to the claim
        b, pid, share, method="check", number="5150", claim=f"Claim/{sec['id']}"
    )
    assert _claim_bucket(b, pid, both, "patient") == 0
    assert ledger.deposit_slip(b, day)["total"] - slip_before == share
    assert ledger.reconcile(b, day)["ok"]


# ----------------------------------------------------------------------------- refusals
def test_refused_until_the_primary_era_is_posted(sb):
    pid = _new_patient(sb)
    _insure(sb, pid, "medicare+medicaid")
    claim = _sent_claim(sb, pid, [ClaimLine("procedure|OV-EST-3", (1,))])
    b = sb.login("billing.davis")
    err = _nothing_written(
        sb, lambda: secondary.bill_secondary(b, f"Claim/{claim['id']}", patient=pid)
    )
    assert isinstance(err, RuleRefused) and err.rule_id == "secondary.adjudicated"
    assert "ClaimResponse" in str(err)


def test_refused_without_a_secondary_plan(sb):
    b, pid, primary, _ = _paid_primary(sb, None, [ClaimLine("procedure|OV-EST-3", (1,))])
    err = _nothing_written(
        sb, lambda: secondary.bill_secondary(b, f"Claim/{primary['id']}", patient=pid)
    )
    assert isinstance(err, RuleRefused) and err.rule_id == "secondary.coverage"
    assert "order" in err.path


def test_refused_when_nothing_is_left_to_the_patient_or_the_denial_is_shared(sb):
    # the ECG is not medically necessary for a cold: the primary denies it (CO-50)
    b, pid, primary, cr = _paid_primary(
        sb, "medicare+medicaid", [ClaimLine("procedure|ECG-12", (1,))], dx="icd10cm|J06.9"
    )
    assert any(_category(a) == "CO" and _reason(a) == "50" for a in cr["item"][0]["adjudication"])
    ref = f"Claim/{primary['id']}"
    err = _nothing_written(sb, lambda: secondary.bill_secondary(b, ref, patient=pid))
    assert isinstance(err, RuleRefused) and err.rule_id == "secondary.balance"
    err = _nothing_written(sb, lambda: secondary.bill_secondary(b, ref, patient=pid, lines=[1]))
    assert isinstance(err, RuleRefused) and err.rule_id == "secondary.shared-denial"
    assert "CO-50" in str(err)


def test_refused_twice_and_for_a_crossover_claim(sb):
    b, pid, primary, _ = _paid_primary(
        sb, "medicare+medicaid", [ClaimLine("procedure|OV-EST-3", (1,))]
    )
    ref = f"Claim/{primary['id']}"
    sec = secondary.bill_secondary(b, ref, patient=pid)
    err = _nothing_written(sb, lambda: secondary.bill_secondary(b, ref, patient=pid))
    assert isinstance(err, RuleRefused) and err.rule_id == "secondary.duplicate"
    assert sec["id"] in str(err)
    err = _nothing_written(
        sb, lambda: secondary.bill_secondary(b, f"Claim/{sec['id']}", patient=pid)
    )
    assert isinstance(err, RuleRefused) and err.rule_id == "secondary.primary-claim"


def test_refused_for_another_patients_claim(sb):
    b, pid, primary, _ = _paid_primary(
        sb, "medicare+medicaid", [ClaimLine("procedure|OV-EST-3", (1,))]
    )
    other = _new_patient(sb, "Beatrix", "Oduya")
    _insure(sb, other, "medicare+medicaid")
    err = _nothing_written(
        sb, lambda: secondary.bill_secondary(b, f"Claim/{primary['id']}", patient=other)
    )
    assert isinstance(err, RuleRefused) and err.rule_id == "secondary.same-patient"
    assert other in str(err)


@pytest.mark.parametrize("who", ["fd.smith", "dr.patel", "patient"])
def test_a_role_that_may_not_bill_is_refused_and_writes_nothing(sb, who):
    b, pid, primary, _ = _paid_primary(
        sb, "medicare+medicaid", [ClaimLine("procedure|OV-EST-3", (1,))]
    )
    s = sb.login_patient(pid) if who == "patient" else sb.login(who)
    err = _nothing_written(
        sb, lambda: secondary.bill_secondary(s, f"Claim/{primary['id']}", patient=pid)
    )
    assert isinstance(err, AccessDenied), f"{who}: {err!r}"
    # the billing specialist may
    assert secondary.bill_secondary(b, f"Claim/{primary['id']}", patient=pid)["status"] == "active"


def test_the_secondary_payer_refuses_more_than_the_primary_left_to_the_patient(sb):
    b, pid, primary, _ = _paid_primary(
        sb, "medicare+medicaid", [ClaimLine("procedure|OV-EST-3", (1,))]
    )
    sec = secondary.bill_secondary(b, f"Claim/{primary['id']}", patient=pid)
    inflated = {**sec, "item": [dict(sec["item"][0], net={"value": 9999.0, "currency": "USD"})]}
    inflated.pop("meta")
    inflated.pop("id")
    sys = sb.system_session()
    sys.update({**sys.read(f"Claim/{sec['id']}"), "status": "cancelled"})
    padded = sys.create(inflated)
    era = payer.adjudicate(b, f"Claim/{padded['id']}")
    cr = era["entry"][0]["resource"]
    assert cr["payment"]["amount"]["value"] == 0 and cr["disposition"] == "Denied"
    assert any(_reason(a) == "16" for a in cr["item"][0]["adjudication"])
    assert "MA04" in cr["processNote"][0]["text"]
    payments.post_era(b, era)  # a denial balances too
    assert ledger.reconcile(b, sb.clock.peek().date().isoformat())["ok"]


# ----------------------------------------------------------------------------- property
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pair=st.sampled_from(sorted(PAIRS)),
    visit_fee=st.integers(2000, 60000),
    ecg_fee=st.integers(500, 30000),
    units=st.integers(1, 3),
    ticks=st.integers(0, 2),
)
def test_primary_plus_secondary_plus_patient_is_the_allowed_amount(
    clinic, pair, visit_fee, ecg_fee, units, ticks
):
    sb = clinic.copy()
    b = sb.login("billing.davis")
    fees.publish_fee_schedule(
        b,
        2026,
        {
            "procedure|OV-EST-4": Decimal(visit_fee) / 100,
            "procedure|ECG-12": Decimal(ecg_fee) / 100,
        },
        reason="fee review",
    )
    _, pid, primary, cr = _paid_primary(
        sb,
        pair,
        [ClaimLine("procedure|OV-EST-4", (1,)), ClaimLine("procedure|ECG-12", (1,), units)],
    )
    fd = sb.login("fd.smith")
    for cov in eligibility.active_coverages(fd, pid)[:ticks]:  # other work meanwhile: ids
        eligibility.check_eligibility(fd, f"Coverage/{cov['id']}")  # come in any order
    sec = secondary.bill_secondary(b, f"Claim/{primary['id']}", patient=pid)
    cr2, _ = payments.post_era(b, payer.adjudicate(b, f"Claim/{sec['id']}"))
    primary_ref, sec_ref = f"Claim/{primary['id']}", f"Claim/{sec['id']}"
    txns = [t for t in ledger.transactions(b, pid) if t.claim in (primary_ref, sec_ref)]
    charge = sum((t.amount for t in txns if t.kind == "charge"), Decimal(0))
    contractual = -sum((t.amount for t in txns if t.kind == "contractual"), Decimal(0))
    paid1 = -sum(
        (t.amount for t in txns if t.kind == "insurer-payment" and t.claim == primary_ref),
        Decimal(0),
    )
    paid2 = -sum(
        (t.amount for t in txns if t.kind == "insurer-payment" and t.claim == sec_ref), Decimal(0)
    )
    patient = sum((t.amount for t in txns if t.bucket == "patient"), Decimal(0))
    assert charge == _d(primary["total"]["value"])
    assert min(paid1, paid2, patient, contractual) >= 0
    assert paid1 + paid2 + patient == charge - contractual
    allowed = sum(
        _d(a["amount"]["value"])
        for it in cr["item"]
        for a in it["adjudication"]
        if _category(a) == "eligible"
    )
    assert charge - contractual == allowed
    assert paid1 + paid2 <= allowed
    assert paid2 <= _d(sec["total"]["value"])
    assert _d(cr2["payment"]["amount"]["value"]) == paid2
    assert _claim_bucket(b, pid, {primary_ref, sec_ref}, "insurance") == 0
    assert ledger.reconcile(b, sb.clock.peek().date().isoformat())["ok"]
    # the patient's ledger: the primary claim's rows, then the crossover's (none when the
    # secondary paid nothing: its own deductible took the balance); never a credit
    order = [r["claim"] for r in ledger.ledger(b, pid)]
    sec_rows = [i for i, c in enumerate(order) if c == sec_ref]
    assert bool(sec_rows) == (paid2 > 0)
    if sec_rows:
        assert max(i for i, c in enumerate(order) if c == primary_ref) < min(sec_rows)
    assert all(r["balance"] >= 0 for r in ledger.ledger(b, pid))


def test_lines_must_be_claim_lines_and_each_is_crossed_over_once(sb):
    b, pid, primary, _ = _paid_primary(
        sb,
        "medicare+medicaid",
        [ClaimLine("procedure|OV-EST-4", (1,)), ClaimLine("procedure|ECG-12", (1,))],
    )
    ref = f"Claim/{primary['id']}"
    err = _nothing_written(sb, lambda: secondary.bill_secondary(b, ref, patient=pid, lines=[7]))
    assert err.path == "item.sequence" and "7" in str(err)
    sec = secondary.bill_secondary(b, ref, patient=pid, lines=[2, 2])
    assert [i["sequence"] for i in sec["item"]] == [2]
    assert sec["total"] == sec["item"][0]["net"]


def test_generated_crossover_claims_have_the_shape_the_workflow_writes():
    """The generator's crossover claims (synthetic/visit/secondary.py) and bill_secondary agree:
    both plans in order, related to the primary claim, the secondary as insurer, and the lines
    priced at what the primary's answer left to the patient."""
    from synthetic.engine import engine_for

    eng = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    seen = answered = 0
    for i in range(120):
        rec = eng.patient(i)
        crossovers = [c for c in rec.by_type("Claim") if payer.secondary_of(c)]
        if not crossovers:
            continue
        by_id = {f"Claim/{c['id']}": c for c in rec.by_type("Claim")}
        answers = {r["request"]["reference"]: r for r in rec.by_type("ClaimResponse")}
        covs = {f"Coverage/{c['id']}": c for c in rec.by_type("Coverage")}
        for sec in crossovers:
            assert [(i["sequence"], i["focal"]) for i in sec["insurance"]] == [
                (1, False),
                (2, True),
            ]
            rel = sec["related"][0]["relationship"]["coding"][0]
            assert rel["code"] == secondary.RELATIONSHIP
            second = covs[sec["insurance"][1]["coverage"]["reference"]]
            assert second["order"] == 2
            assert sec["insurer"]["reference"] == second["payor"][0]["reference"]
            primary = by_id[payer.secondary_of(sec)]
            owed = secondary.crossover_amounts(
                primary, payer.line_outcomes(answers[f"Claim/{primary['id']}"])
            )
            # the primary's answer named, and each line under the primary's line number at
            # what that answer left to the patient
            answer = answers[f"Claim/{primary['id']}"]
            assert sec["insurance"][0]["claimResponse"]["reference"] == (
                f"ClaimResponse/{answer['id']}"
            )
            assert {i["sequence"]: _d(i["net"]["value"]) for i in sec["item"]} == owed
            # the secondary's answer, as the workflow's payer states it: each line's charge as
            # first billed, what the primary settled as OA-23 (moving no money), the rest
            # eligible and paid; no write-off in the payment
            reply = answers.get(f"Claim/{sec['id']}")
            if reply is not None:
                charges = {i["sequence"]: _d(i["net"]["value"]) for i in primary["item"]}
                for line in reply["item"]:
                    seq = line["itemSequence"]
                    amounts = {
                        (_category(a), _reason(a)): _d(a["amount"]["value"])
                        for a in line["adjudication"]
                    }
                    assert amounts[("submitted", None)] == charges[seq]
                    assert amounts[("OA", "23")] == charges[seq] - owed[seq]
                    assert amounts[("eligible", None)] == amounts[("benefit", None)] == owed[seq]
                assert "adjustment" not in reply["payment"]
                assert _d(reply["payment"]["amount"]["value"]) == sum(owed.values())
                answered += 1
            seen += 1
        if answered >= 3:
            break
    assert seen and answered, "no generated crossover claim answered in 120 patients"


def test_a_secondary_plan_not_in_force_denies_and_the_amount_stays_with_insurance(sb):
    b, pid, primary, _ = _paid_primary(
        sb, "blueshield+unityhealth", [ClaimLine("procedure|OV-EST-3", (1,))]
    )
    sec = secondary.bill_secondary(b, f"Claim/{primary['id']}", patient=pid)
    system = sb.system_session()
    cov = system.read(sec["insurance"][1]["coverage"]["reference"])
    system.update({**cov, "status": "cancelled"})  # the plan was void all along
    cr, _ = payments.post_era(b, payer.adjudicate(b, f"Claim/{sec['id']}"))
    assert cr["disposition"] == "Denied" and cr["payment"]["amount"]["value"] == 0
    reasons = {(_category(a), _reason(a)) for a in cr["item"][0]["adjudication"] if _reason(a)}
    assert ("CO", "27") in reasons and ("OA", "23") in reasons
    crossed = _d(sec["total"]["value"])
    assert _claim_bucket(b, pid, {f"Claim/{sec['id']}"}, "insurance") == crossed
    assert ledger.reconcile(b, sb.clock.peek().date().isoformat())["ok"]
