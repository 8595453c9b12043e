"""The billing reports of the SQL catalogue agree with :mod:`ehr_sandbox.workflows.ledger` to the
cent, on a generated clinic that has every kind of transaction the ledger knows.

``ledger.py`` is the authority (its module docstring states the accounting model). Column
mapping of the reports onto the ledger's transaction kinds:

* day sheet and patient ledger: ``charges``/``charge`` = charge; ``payments``/``payment`` =
  insurer-payment + patient-payment (the ledger's receipts); ``adjustments``/``adjustment`` =
  contractual + write-off; ``refunds``/``refund`` = refund; ``type`` is the ledger's kind. Moves
  between the insurance and the patient balance (patient-share, transfer-to-patient,
  transfer-to-secondary) change no total and are not rows of either report.
* A/R aging: ``insurance``, ``patient`` and ``balance`` per bucket = ``ledger.ar_aging``'s
  insurance, patient and their sum (buckets in the same order; the report names the last
  one ``>120``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.reports import load_report
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import Session
from ehr_sandbox.workflows import ledger, payments
from ehr_sandbox.workflows.payer import GROUP_SYSTEM, secondary_of

MONEY_KINDS = ("charge", "insurer-payment", "patient-payment", "contractual", "write-off", "refund")
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def billing() -> Session:
    """A generated clinic, plus what its history lacks: money not applied to a claim (a
    small-balance write-off, an overpayment at the desk) and a refund of the credit."""
    b = Sandbox.generate(patients=20, seed=5, years=3).login("billing.davis")
    owing = sorted(
        (p for p in {t.patient for t in ledger.transactions(b)}),
        key=lambda p: (-ledger.balances(b, p)["patient"], p),
    )
    small, over = owing[0], owing[1]
    assert ledger.balances(b, small)["patient"] > Decimal("5.00")
    payments.write_off(b, small, "5.00", reason="small balance", bucket="patient")
    total = ledger.balances(b, over)["total"]
    payments.desk_payment(b, over, total + Decimal("20.00"), method="cash")
    payments.refund(b, over, "20.00", reason="overpaid at the desk", number="1001")
    return b


@pytest.fixture(scope="module")
def txns(billing: Session) -> list[ledger.Txn]:
    return ledger.transactions(billing)


@pytest.fixture(scope="module")
def calendar(txns: list[ledger.Txn]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every day of the books (to 150 days past the last posting), and the days with activity."""
    first = date.fromisoformat(txns[0].date)
    last = date.fromisoformat(txns[-1].date) + timedelta(days=150)
    days = tuple((first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1))
    return days, tuple(sorted({t.date for t in txns}))


ALL_DAYS = st.integers(min_value=0, max_value=10**6)


def test_the_clinic_has_every_kind_of_billing_event(
    billing: Session, txns: list[ledger.Txn]
) -> None:
    kinds = {t.kind for t in txns}
    # crossover claims, desk payments, worked denials (write-off, billed to the patient), refunds
    assert {
        "transfer-to-secondary",
        "patient-payment",
        "write-off",
        "transfer-to-patient",
        "refund",
    } <= kinds
    unapplied = {(t.kind, t.bucket) for t in txns if t.claim is None}
    assert {("patient-payment", "patient"), ("write-off", "patient")} <= unapplied
    assert ("write-off", "insurance") in {(t.kind, t.bucket) for t in txns if t.claim}
    claims = list(billing.resources("Claim"))
    assert any(secondary_of(c) for c in claims)
    assert any(c.get("status") == "cancelled" for c in claims)  # replaced by a corrected claim
    denials = [
        a
        for cr in billing.resources("ClaimResponse")
        for it in cr.get("item", [])
        for a in it.get("adjudication", [])
        if any(c.get("system") == GROUP_SYSTEM for c in a["category"]["coding"])
        and (a.get("reason") or {}).get("coding", [{}])[0].get("code") not in ("1", "2", "3", "45")
    ]
    assert denials


@SETTINGS
@given(pick=ALL_DAYS)
def test_day_sheet_totals_agree_with_the_ledger(
    billing: Session, calendar: tuple[tuple[str, ...], tuple[str, ...]], pick: int
) -> None:
    days, active = calendar
    # half the examples on days with activity, the rest on any day of the books
    day = active[pick % len(active)] if pick % 2 else days[pick % len(days)]
    sheet = ledger.day_sheet(billing, day)
    rows = billing.reports.run("day_sheet", date=day).to_pylist()
    got = {
        k: sum((r[k] for r in rows), Decimal("0.00"))
        for k in ("charges", "payments", "adjustments", "refunds")
    }
    want = sheet["totals"]
    assert got == {
        "charges": want["charges"],
        "payments": want["receipts"],
        "adjustments": want["adjustments"],
        "refunds": want["refunds"],
    }, day
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    for t in sheet["rows"]:
        if t["kind"] in MONEY_KINDS:
            by_kind[t["kind"]] += abs(t["amount"])
    report_kind: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        report_kind[r["type"]] += r["charges"] + r["payments"] + r["adjustments"] + r["refunds"]
    assert {k: v for k, v in report_kind.items() if v} == {k: v for k, v in by_kind.items() if v}, (
        day
    )


def test_patient_ledger_running_balance_agrees_with_the_ledger(
    billing: Session, txns: list[ledger.Txn]
) -> None:
    patients = sorted({t.patient for t in txns})
    assert len(patients) >= 10
    for pid in patients:
        book = ledger.ledger(billing, pid)
        rows = billing.reports.run("patient_ledger", patient=pid).to_pylist()
        # rows within a day may be listed in another order: compare the balance at each day's end
        want = {r["date"]: r["balance"] for r in book}
        got = {r["posted"]: r["balance"] for r in rows}
        assert got == want, pid
        assert [r["posted"] for r in rows] == sorted(r["posted"] for r in rows)
        for r in rows:
            assert (
                r["charge"] >= 0 and r["payment"] >= 0 and r["adjustment"] >= 0 and r["refund"] >= 0
            )
        assert rows[-1]["balance"] == ledger.balances(billing, pid)["total"], pid
        running = Decimal("0.00")
        for r in rows:
            running += r["charge"] - r["payment"] - r["adjustment"] + r["refund"]
            assert r["balance"] == running, pid


@SETTINGS
@given(pick=ALL_DAYS)
def test_ar_aging_buckets_agree_with_the_ledger(
    billing: Session, calendar: tuple[tuple[str, ...], tuple[str, ...]], pick: int
) -> None:
    days, _active = calendar
    as_of = days[pick % len(days)]
    want = ledger.ar_aging(billing, as_of)
    rows = billing.reports.run("ar_aging", as_of=as_of).to_pylist()
    assert len(rows) == len(ledger.AGING_BUCKETS)
    for row, (_lo, _hi, label) in zip(rows, ledger.AGING_BUCKETS, strict=True):
        bucket = want["buckets"][label]
        assert (row["insurance"], row["patient"]) == (bucket["insurance"], bucket["patient"]), (
            as_of,
            label,
        )
        assert row["balance"] == bucket["insurance"] + bucket["patient"]
    assert sum((r["balance"] for r in rows), Decimal("0.00")) == want["total"]
    assert want["total"] == ledger.balances(billing, as_of=as_of)["total"]


def test_the_billing_reports_share_one_transaction_block() -> None:
    """The three reports compute the ledger's transactions from one shared SQL block, which
    none of them repeats."""
    from importlib.resources import files

    root = files("ehr_sandbox.reports")
    block = root.joinpath("shared", "ledger_transactions.sql").read_text(encoding="utf-8")
    assert "txn AS (" in block
    for name in ("day_sheet", "patient_ledger", "ar_aging"):
        assert load_report(name).sql.startswith(block.rstrip())
        own = root.joinpath("catalog", name, "report.sql").read_text(encoding="utf-8")
        assert "claims AS (" not in own and "txn AS (" not in own


def test_the_desk_day_agrees_with_the_ledger(billing: Session, txns: list[ledger.Txn]) -> None:
    """The day of the unapplied write-off, overpayment and refund, and the days after it."""
    desk = max(t.date for t in txns if t.kind == "refund")
    first = date.fromisoformat(desk)
    for day in [(first + timedelta(days=i)).isoformat() for i in (0, 1, 31)]:
        sheet = ledger.day_sheet(billing, day)["totals"]
        assert sheet["refunds"] == (Decimal("20.00") if day == desk else 0)
        rows = billing.reports.run("day_sheet", date=day).to_pylist()
        got = {
            k: sum((r[k] for r in rows), Decimal("0.00"))
            for k in ("payments", "adjustments", "refunds")
        }
        assert got == {
            "payments": sheet["receipts"],
            "adjustments": sheet["adjustments"],
            "refunds": sheet["refunds"],
        }
        want = ledger.ar_aging(billing, day)["buckets"]
        aging = billing.reports.run("ar_aging", as_of=day).to_pylist()
        assert [(r["insurance"], r["patient"]) for r in aging] == [
            (v["insurance"], v["patient"]) for v in want.values()
        ]
