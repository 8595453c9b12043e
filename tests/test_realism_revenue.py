"""Front-office realism of generated billing: eligibility, denials, ERAs, payments, statements.

The shares are checked on the shared 1,000-patient sample against the content
(``rules.toml [remittance]``); the ledger is checked through ``ehr_sandbox.workflows.ledger``
over a small generated Sandbox, against balances derived here from the raw resources.
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from realism_sample import default_sample

from synthetic.clinical_rules import compile_rules
from synthetic.content import load_content
from synthetic.fhir import validate
from synthetic.visit.remittance import CARC_SYSTEM, GROUP_SYSTEM, LEDGER_KIND

pytestmark = [pytest.mark.realism, pytest.mark.slow]

SHARED_DATA = Path(__file__).resolve().parents[1] / "synthetic" / "content" / "data"
"""Where the X12 code lists live (shared by the generator and the payer simulator)."""


def _rates() -> Any:
    return compile_rules(load_content()).remittance


def _within(observed: int, n: int, p: float, z: float = 4.0) -> bool:
    return abs(observed / n - p) <= z * math.sqrt(p * (1 - p) / n)


def _reason(cr: dict[str, Any]) -> tuple[str, str] | None:
    for it in cr.get("item", []):
        for a in it["adjudication"]:
            cat = a["category"]["coding"][0]
            if cat["system"] == GROUP_SYSTEM:
                code = a["reason"]["coding"][0]["code"]
                if code != "45":
                    return cat["code"], code
    return None


def _responses() -> list[tuple[Any, dict[str, Any]]]:
    return [(rec, cr) for rec in default_sample() for cr in rec.by_type("ClaimResponse")]


def test_every_adjustment_reason_reads_as_the_workflows_carc_table() -> None:
    """One text per CARC code: what the generator writes (denials, the contractual CO-45, a
    crossover's OA-23) reads as the payer simulator's table (the usual group and its
    paraphrased description), so generated and simulated ERAs say the same thing."""
    carc = {r[0]: r for r in csv.reader(_lines(SHARED_DATA / "carc.csv"))}
    seen: set[str] = set()
    for _, cr in _responses():
        for it in cr.get("item", []):
            for a in it["adjudication"]:
                coding = (a.get("reason") or {}).get("coding", [{}])[0]
                if coding.get("system") != CARC_SYSTEM:
                    continue
                code = coding["code"]
                group = a["category"]["coding"][0]["code"]
                assert code in carc, code
                assert (group, coding.get("display")) == (carc[code][1], carc[code][3]), code
                seen.add(code)
    assert {"45", "23"} <= seen  # contractual adjustments and crossover answers are in the sample


def test_denial_share_and_reasons_follow_the_content() -> None:
    rates = _rates()
    reasons = {d.carc: d for d in rates.denial}
    carc = {r[0]: r for r in csv.reader(_lines(SHARED_DATA / "carc.csv"))}
    rarc = {r[0] for r in csv.reader(_lines(SHARED_DATA / "rarc.csv"))}
    responses = _responses()
    denied = [(cr, _reason(cr)) for _, cr in responses if cr["disposition"] == "Denied"]
    assert 0.05 <= rates.denial_rate <= 0.10
    assert len(responses) > 5000
    assert 0.05 <= len(denied) / len(responses) <= 0.10
    assert _within(len(denied), len(responses), rates.denial_rate)
    by_code: Counter[str] = Counter()
    for cr, reason in denied:
        assert reason is not None
        group, code = reason
        assert code in reasons and group == reasons[code].group
        assert code in carc and carc[code][1] == group  # the public list's usual group
        notes = [n["text"].split(":")[0] for n in cr.get("processNote", [])]
        assert notes == ([reasons[code].rarc] if reasons[code].rarc else [])
        assert all(n in rarc for n in notes)
        assert cr["payment"]["amount"]["value"] == 0
        by_code[code] += 1
    # the reason mix: content shares, without "coverage terminated" (27) after a verified plan
    c = rates.eligibility_check_share
    total = sum(d.share for d in reasons.values())
    total_checked = sum(d.share for d in reasons.values() if d.carc != "27")
    for code, d in reasons.items():
        p = (1 - c) * d.share / total + (c * d.share / total_checked if code != "27" else 0.0)
        assert _within(by_code[code], len(denied), p), (code, by_code[code], p)


def _related(claim: dict[str, Any]) -> str | None:
    """How a claim relates to an earlier one: prior (corrected), associated (secondary)."""
    for rel in claim.get("related", []):
        return str(rel["relationship"]["coding"][0]["code"])
    return None


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]


def test_every_era_balances_as_posting_requires() -> None:
    """Per line: submitted = eligible + group adjustments (but PR-2); eligible = share + paid.

    And the ERA's payment equals the ClaimResponse's payment.
    """
    bad = []
    eras = 0
    for rec, cr in _responses():
        by: dict[str, Decimal] = defaultdict(Decimal)
        for it in cr["item"]:
            line: dict[str, Decimal] = defaultdict(Decimal)
            for a in it["adjudication"]:
                cat = a["category"]["coding"][0]
                amt = Decimal(str(a["amount"]["value"]))
                key = "groups" if cat["system"] == GROUP_SYSTEM else cat["code"]
                line[key] += amt
            if line["submitted"] != line["eligible"] + line["groups"]:
                bad.append((cr["id"], "submitted"))
            if line["eligible"] != line["copay"] + line["deductible"] + line["benefit"]:
                bad.append((cr["id"], "eligible"))
            by["benefit"] += line["benefit"]
        assert Decimal(str(cr["payment"]["amount"]["value"])) == by["benefit"]
        era = [
            p
            for p in rec.by_type("PaymentReconciliation")
            if any(
                d.get("response", {}).get("reference") == f"ClaimResponse/{cr['id']}"
                for d in p["detail"]
            )
        ]
        eras += len(era)
        if len(era) != 1 or Decimal(str(era[0]["paymentAmount"]["value"])) != by["benefit"]:
            bad.append((cr["id"], "era"))
    assert eras > 5000
    assert bad == []


def test_eligibility_checked_before_visits_and_no_coverage_denial_after_a_check() -> None:
    rates = _rates()
    insured_visits = checked = 0
    coverage_denials_after_check = 0
    for rec in default_sample():
        resp = {r["request"]["reference"] for r in rec.by_type("CoverageEligibilityResponse")}
        reqs = rec.by_type("CoverageEligibilityRequest")
        assert {f"CoverageEligibilityRequest/{r['id']}" for r in reqs} == resp
        checked_days = {r["servicedDate"] for r in reqs}
        checked += len(reqs)
        for claim in rec.by_type("Claim"):
            if "insurer" in claim and "related" not in claim:  # a corrected claim: same visit
                insured_visits += 1
        for cr in rec.by_type("ClaimResponse"):
            claim = next(
                c for c in rec.by_type("Claim") if f"Claim/{c['id']}" == cr["request"]["reference"]
            )
            reason = _reason(cr)
            if reason and reason[1] == "27" and claim["created"] in checked_days:
                coverage_denials_after_check += 1
    assert insured_visits > 5000
    assert _within(checked, insured_visits, rates.eligibility_check_share)
    assert coverage_denials_after_check == 0


def test_desk_copays_statements_and_variable_payer_lag() -> None:
    rates = _rates()
    copay_due = desk = statements = owed_after_era = 0
    lags: dict[str, set[int]] = defaultdict(set)
    from datetime import date

    for rec in default_sample():
        payments = rec.by_type("PaymentReconciliation")
        desk_days = Counter(
            p["detail"][0]["request"]["reference"]
            for p in payments
            if p["disposition"] == "Patient payment at the desk"
        )
        for p in payments:
            kind = next(
                c["code"] for c in p["detail"][0]["type"]["coding"] if c["system"] == LEDGER_KIND
            )
            assert kind in (
                "insurer-payment",
                "patient-payment",
                "write-off",
                "transfer-to-patient",
            )
        claims = {f"Claim/{c['id']}": c for c in rec.by_type("Claim")}
        transfers = [
            p
            for p in payments
            if p["disposition"].startswith(("Denied amount billed", "Self-pay visit"))
        ]
        for t in transfers:  # a denial billed to the patient, a self-pay visit: the patient's
            ref = t["detail"][0]["request"]["reference"]
            paid_desk = sum(
                p["paymentAmount"]["value"]
                for p in payments
                if p["detail"][0]["request"]["reference"] == ref
                and p["disposition"] == "Patient payment at the desk"
            )
            owed_after_era += round(t["paymentAmount"]["value"] - paid_desk, 2) > 0
        for cr in rec.by_type("ClaimResponse"):
            ref = cr["request"]["reference"]
            claim = claims[ref]
            if "related" in claim:  # a corrected claim: the desk took the copay on the original
                ref = claim["related"][0]["claim"]["reference"]
            lag = (date.fromisoformat(cr["created"]) - date.fromisoformat(claim["created"])).days
            lags[cr["insurer"]["reference"]].add(lag)
            first = cr["item"][0]["adjudication"]
            copay = sum(
                a["amount"]["value"] for a in first if a["category"]["coding"][0]["code"] == "copay"
            )
            if copay > 0:
                copay_due += 1
                desk += desk_days[ref] > 0
            share = sum(
                a["amount"]["value"]
                for it in cr["item"]
                for a in it["adjudication"]
                if a["category"]["coding"][0]["code"] in ("copay", "deductible")
            )
            paid_desk = sum(
                p["paymentAmount"]["value"]
                for p in payments
                if p["detail"][0]["request"]["reference"] == ref
                and p["disposition"] == "Patient payment at the desk"
            )
            owed_after_era += round(share - paid_desk, 2) > 0
        statements += len(rec.by_type("Invoice"))
        for inv in rec.by_type("Invoice"):
            assert inv["totalNet"]["value"] > 0
    assert copay_due > 2000
    assert _within(desk, copay_due, rates.copay_at_desk)
    # a statement for most balances left after the payer paid (not those still too recent)
    assert 0.5 * owed_after_era < statements <= owed_after_era
    assert all(len(v) > 5 for v in lags.values())  # payers pay after a variable number of days


def test_generated_ledger_reconciles_to_the_cent() -> None:
    from ehr_sandbox.sandbox import Sandbox
    from ehr_sandbox.workflows import ledger

    sb = Sandbox.generate(patients=60, seed=8, years=1)
    b = sb.login("billing.davis")
    claims = {c["id"]: c for c in b.resources("Claim")}
    responses = {
        cr["request"]["reference"].split("/")[-1]: cr for cr in b.resources("ClaimResponse")
    }
    payments = list(b.resources("PaymentReconciliation"))
    assert responses and any("paymentIssuer" not in p for p in payments)  # patients paid too
    # expected balances per patient, derived from the raw resources
    expect: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {"insurance": Decimal(0), "patient": Decimal(0)}
    )
    for cid, c in claims.items():
        pat = c["patient"]["reference"]
        if c["status"] == "cancelled":  # replaced by a corrected claim: its charge is gone
            continue
        charge = sum((Decimal(str(i["net"]["value"])) for i in c["item"]), Decimal(0))
        cr = responses.get(cid)
        if _related(c) == "associated":  # to the secondary plan: the patient's share moves
            expect[pat]["patient"] -= charge
            if cr is None:
                expect[pat]["insurance"] += charge
            continue
        if cr is None or cr["disposition"] == "Denied":
            expect[pat]["insurance"] += charge
            continue
        for it in cr["item"]:
            for a in it["adjudication"]:
                if a["category"]["coding"][0]["code"] in ("copay", "deductible"):
                    expect[pat]["patient"] += Decimal(str(a["amount"]["value"]))
    for p in payments:
        d = p["detail"][0]
        kind = next(c["code"] for c in d["type"]["coding"] if c["system"] == LEDGER_KIND)
        if kind == "insurer-payment":
            continue
        pat = claims[d["request"]["reference"].split("/")[-1]]["patient"]["reference"]
        amount = Decimal(str(d["amount"]["value"]))
        if kind == "patient-payment":  # also on a claim since replaced: the money came in
            expect[pat]["patient"] -= amount
        elif kind == "write-off":  # a denial the practice absorbs, approved
            assert d["responsible"]["reference"].startswith("PractitionerRole/")
            expect[pat]["insurance"] -= amount
        else:  # a denial billed to the patient
            assert kind == "transfer-to-patient"
            expect[pat]["insurance"] -= amount
            expect[pat]["patient"] += amount
    worked = [c for c in claims.values() if c["status"] == "cancelled"]
    assert worked, "the sample has a corrected claim (a worked denial)"
    assert len(expect) > 10
    for pat, want in expect.items():
        got = ledger.balances(b, pat)
        assert (got["insurance"], got["patient"]) == (want["insurance"], want["patient"]), pat
    # ledger, day sheet, deposit slip and A/R aging agree on a day with cash at the desk
    cash_days = sorted(
        p["paymentDate"]
        for p in payments
        if "paymentIdentifier" in p  # adjustments (write-offs, transfers) move no money
        and p["paymentIdentifier"]["type"]["coding"][0]["code"] == "cash"
    )
    era_days = sorted(p["paymentDate"] for p in payments if "paymentIssuer" in p)
    assert cash_days and era_days
    adjust_days = sorted(p["paymentDate"] for p in payments if "paymentIdentifier" not in p)
    corrected_days = sorted(c["created"] for c in claims.values() if _related(c) == "prior")
    crossover_days = sorted(c["created"] for c in claims.values() if _related(c) == "associated")
    assert corrected_days and crossover_days
    for day in (
        cash_days[-1],
        era_days[-1],
        corrected_days[-1],
        crossover_days[-1],
        *adjust_days[-2:],
    ):
        r = ledger.reconcile(b, day)
        assert r["ok"], r
    assert ledger.reconcile(b, cash_days[-1])["deposit_total"] > 0
    denied = [cr for cr in responses.values() if cr["disposition"] == "Denied"]
    for cr in denied:  # a denial stays on the insurance balance until it is worked
        assert any(
            a["category"]["coding"][0]["system"] == GROUP_SYSTEM
            and a["reason"]["coding"][0]["system"] == CARC_SYSTEM
            for it in cr["item"]
            for a in it["adjudication"]
        )


def test_denials_are_worked_by_reason_as_the_content_says() -> None:
    """A corrected claim replaces a correctable denial and is paid; a denial that cannot be
    billed is written off with a physician's approval; one for ended coverage is billed to the
    patient. Each denial is worked once, within the content's days, or is still open."""
    import tomllib

    import synthetic

    root = Path(synthetic.__file__).resolve().parent
    policy = tomllib.loads((root / "content" / "data" / "denial_work.toml").read_text("utf-8"))
    action = policy["action"]
    lo, hi = policy["work_after_days"]
    from datetime import date

    from realism_sample import REF, practice

    roles = {
        f"PractitionerRole/{r['id']}": r["code"][0]["coding"][0]["code"]
        for r in practice()
        if r["resourceType"] == "PractitionerRole"
    }
    seen: Counter[str] = Counter()
    bad: list[str] = []
    for rec in default_sample():
        claims = {f"Claim/{c['id']}": c for c in rec.by_type("Claim")}
        answers = {cr["request"]["reference"]: cr for cr in rec.by_type("ClaimResponse")}
        adjustments = defaultdict(list)
        for p in rec.by_type("PaymentReconciliation"):
            if "paymentIdentifier" not in p:
                adjustments[p["detail"][0]["request"]["reference"]].append(p)
        successors = defaultdict(list)
        for c in claims.values():
            for rel in c.get("related", []):
                successors[rel["claim"]["reference"]].append(c)
        for ref, cr in answers.items():
            if cr["disposition"] != "Denied":
                if _related(claims[ref]) == "prior":
                    seen["corrected-paid"] += 1
                continue
            if "related" in claims[ref]:
                bad.append(f"{ref}: a corrected or secondary claim denied")
            reason = _reason(cr)
            assert reason is not None
            want = action.get(reason[1])
            denied = date.fromisoformat(cr["created"])
            done = [("correct", date.fromisoformat(c["created"])) for c in successors[ref]]
            for p in adjustments[ref]:
                kind = p["detail"][0]["type"]["coding"][1]["code"]
                what = "write-off" if kind == "write-off" else "bill-patient"
                done.append((what, date.fromisoformat(p["paymentDate"])))
                total = claims[ref]["total"]["value"]
                if p["paymentAmount"]["value"] != total:
                    bad.append(f"{p['id']}: {p['paymentAmount']['value']} != charge {total}")
                if (
                    what == "write-off"
                    and roles.get(p["detail"][0].get("responsible", {}).get("reference"))
                    != "physician"
                ):
                    bad.append(f"{p['id']}: write-off without a physician-owner's approval")
            if not done:
                seen["open"] += 1
                end = date.fromisoformat(rec.patient.get("deceasedDateTime", str(REF))[:10])
                if (end - denied).days > hi + 1:  # the record ends (death, today) before
                    bad.append(f"{ref}: denied {denied} and never worked")
                continue
            if len(done) != 1:
                bad.append(f"{ref}: worked {len(done)} times")
                continue
            what, when = done[0]
            seen[what] += 1
            if what != want or not lo <= (when - denied).days <= hi:
                bad.append(f"{ref}: {reason} worked as {what} after {(when - denied).days} days")
            if what == "correct" and claims[ref]["status"] != "cancelled":
                bad.append(f"{ref}: replaced but still active")
    assert bad == [], bad[:10]
    assert seen["correct"] > 50 and seen["write-off"] > 30 and seen["bill-patient"] > 10, seen
    # most corrected claims have been paid by now (some still wait for the payer)
    assert seen["corrected-paid"] > 0.8 * seen["correct"], seen


def test_self_pay_visits_are_billed_to_the_patient_and_mostly_paid_at_the_desk() -> None:
    import tomllib

    import synthetic

    root = Path(synthetic.__file__).resolve().parent
    share = tomllib.loads((root / "content" / "data" / "self_pay.toml").read_text("utf-8"))[
        "paid_at_desk"
    ]
    visits = at_desk = 0
    bad: list[str] = []
    for rec in default_sample():
        answered = {cr["request"]["reference"] for cr in rec.by_type("ClaimResponse")}
        by_claim: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in rec.by_type("PaymentReconciliation"):
            by_claim[p["detail"][0]["request"]["reference"]].append(p)
        for c in rec.by_type("Claim"):
            if "insurer" in c:
                continue
            ref = f"Claim/{c['id']}"
            visits += 1
            if ref in answered:
                bad.append(f"{ref}: a self-pay claim sent to a payer")
            moved = [p for p in by_claim[ref] if p["disposition"].startswith("Self-pay visit")]
            if len(moved) != 1 or moved[0]["paymentAmount"]["value"] != c["total"]["value"]:
                bad.append(f"{ref}: charges not moved to the patient once, in full")
                continue
            if moved[0]["paymentDate"] != c["created"]:
                bad.append(f"{ref}: moved on {moved[0]['paymentDate']}, visit {c['created']}")
            desk = [
                p
                for p in by_claim[ref]
                if p["disposition"] == "Patient payment at the desk"
                and p["paymentDate"] == c["created"]
            ]
            if desk:
                at_desk += 1
                if desk[0]["paymentAmount"]["value"] != c["total"]["value"]:
                    bad.append(f"{ref}: paid {desk[0]['paymentAmount']['value']} at the desk")
    assert bad == [], bad[:10]
    assert visits > 200
    assert _within(at_desk, visits, share), (at_desk, visits)


def test_some_medicare_patients_have_medicaid_second_and_it_pays_their_cost_sharing() -> None:
    import tomllib

    import synthetic

    root = Path(synthetic.__file__).resolve().parent
    pairs = tomllib.loads((root / "content" / "data" / "secondary.toml").read_text("utf-8"))
    pair = pairs["pair"][0]
    payers = {p.id: p.name for p in load_content().practice.payers}
    primaries = seconds = crossovers = 0
    bad: list[str] = []
    for rec in default_sample():
        covs = rec.by_type("Coverage")
        for c in covs:
            if c["payor"][0]["display"] != payers[pair["primary"]]:
                continue
            primaries += 1
            same = [
                s
                for s in covs
                if s.get("order") == 2
                and s["period"] == c["period"]
                and s["payor"][0]["display"] == payers[pair["secondary"]]
            ]
            if same:
                seconds += 1
                if c.get("order") != 1 or same[0]["status"] != c["status"] or len(same) > 1:
                    bad.append(f"{c['id']}: order of benefits {c.get('order')}")
            elif "order" in c:
                bad.append(f"{c['id']}: an order without a second plan")
        for s in covs:
            if s.get("order") == 2:
                bad.extend(f"{s['id']}: {e}" for e in validate(s))
        # visits are billed to the primary plan, never to the secondary
        second_ids = {f"Coverage/{s['id']}" for s in covs if s.get("order") == 2}
        for cl in rec.by_type("Claim"):
            if cl["insurance"][0]["coverage"]["reference"] in second_ids:
                bad.append(f"{cl['id']}: billed to the secondary plan")
        # what the primary left to the patient is billed to the secondary (crossover)
        answers = {cr["request"]["reference"]: cr for cr in rec.by_type("ClaimResponse")}
        claims = {f"Claim/{c['id']}": c for c in rec.by_type("Claim")}
        for ref, cl in claims.items():
            if _related(cl) != "associated":
                continue
            crossovers += 1
            primary = claims[cl["related"][0]["claim"]["reference"]]
            focal = next(i for i in cl["insurance"] if i["focal"])
            if focal["sequence"] != 2 or focal["coverage"]["reference"] not in second_ids:
                bad.append(f"{ref}: not focal on the secondary plan")
            shares = answers[f"Claim/{primary['id']}"]
            owed = sum(
                Decimal(str(a["amount"]["value"]))
                for it in shares["item"]
                for a in it["adjudication"]
                if a["category"]["coding"][0]["code"] in ("copay", "deductible")
            )
            if Decimal(str(cl["total"]["value"])) != owed:
                bad.append(f"{ref}: bills {cl['total']['value']}, the patient's share was {owed}")
            if ref in answers and answers[ref]["disposition"] != "Paid":
                bad.append(f"{ref}: the secondary did not pay")
            if any(
                p["detail"][0]["request"]["reference"] == f"Claim/{primary['id']}"
                for p in rec.by_type("PaymentReconciliation")
                if p["disposition"] == "Statement payment"
            ):
                bad.append(f"{ref}: a dual-eligible patient billed for cost sharing")
    assert bad == [], bad[:10]
    assert primaries > 100 and crossovers > 50
    assert _within(seconds, primaries, pair["share"]), (seconds, primaries)
