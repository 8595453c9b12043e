"""The payer simulator: eligibility answers and claim adjudication, as a payer would send them.

Nothing here writes: the simulator *answers* (a CoverageEligibilityResponse, or an ERA as a
``ClaimResponse`` plus a ``PaymentReconciliation`` in a collection Bundle) and the practice's
workflows record what it answered. Plans come from ``synthetic/content/data/practice.toml``
(copay, contracted ratio, member-id prefix) and ``data/payers.toml`` (deductible, coinsurance,
timely filing, referral and prior-authorisation lists). Denials carry CARC group/reason codes
and RARC remarks from the public X12 lists (``carc.csv``, ``rarc.csv`` in the shared content,
``synthetic/content/data/``: the generator reads them too).

A claim to a patient's secondary plan (a crossover, see :mod:`ehr_sandbox.workflows.secondary`)
is adjudicated as a secondary payer: it pays toward what the primary's ERA left to the patient
(``data/crossover.toml``), states the primary's part as OA-23, and never pays past the primary's
allowed amount.

>>> plan("Organization/org-payer-unityhealth").referral_required
True
>>> carc("45")["group"], carc("50")["kind"]
('CO', 'denial')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import SandboxError, ValidationError
from ehr_sandbox.workflows.base import money, now
from ehr_sandbox.workflows.coding import claim_codes
from ehr_sandbox.workflows.content import csv_rows, table
from ehr_sandbox.workflows.fees import allowed
from ehr_sandbox.workflows.scrubber import Finding, scrub
from synthetic.content.loader import load_content
from synthetic.systems import (
    ADJUDICATION,
    BENEFIT_NETWORK,
    BENEFIT_TERM,
    BENEFIT_TYPE,
    BENEFIT_UNIT,
    CARC,
    CARC_GROUP,
    EFT_TRACE,
    EX_BENEFIT_CATEGORY,
    EX_PAYMENT_TYPE,
    PAYMENT_TYPE,
    RARC,
    SANDBOX_BENEFIT_TYPE,
    SANDBOX_LEDGER_KIND,
    SANDBOX_PAYMENT_METHOD,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "ADJUDICATION",
    "CARC_SYSTEM",
    "CROSSOVER",
    "GROUP_SYSTEM",
    "LEDGER_KIND",
    "PAYMENT_METHOD",
    "RARC_SYSTEM",
    "LineOutcome",
    "Plan",
    "adjudicate",
    "carc",
    "is_insurance",
    "eligibility",
    "line_outcomes",
    "plan",
    "secondary_of",
]

CARC_SYSTEM = CARC
RARC_SYSTEM = RARC
GROUP_SYSTEM = CARC_GROUP
LEDGER_KIND = SANDBOX_LEDGER_KIND
PAYMENT_METHOD = SANDBOX_PAYMENT_METHOD
CROSSOVER = table("crossover")
"""Crossover rules (``data/crossover.toml``): reasons crossed over, the prior-payer CARC, shared denials."""
_NOT_DENIAL = ("1", "2", "3", "45", CROSSOVER["prior_payer_reason"])

# scrubber rule -> (CARC, RARC) the payer denies with
_DENIAL_FOR = {
    "scrub.necessity": ("50", "N115"),
    "scrub.uncertain": ("11", "M76"),
    "scrub.trimester": ("16", "M81"),
    "scrub.excludes1": ("16", "M76"),
    "scrub.cms1500": ("16", "M76"),
    "scrub.code-set": ("16", "M51"),
    "scrub.age-sex": ("6", "M76"),
    "scrub.prior-auth": ("197", "N54"),
    "scrub.laterality": ("16", "M76"),
}


@dataclass(frozen=True)
class Plan:
    """A payer's plan rules.

    >>> plan("medicare").deductible
    Decimal('257.00')
    """

    id: str
    name: str
    copay: Decimal
    allowed_ratio: float
    deductible: Decimal
    coinsurance: Decimal
    timely_filing_days: int
    referral_required: bool
    prior_auth: tuple[str, ...]
    prefix: str
    last_resort: bool

    @property
    def org_ref(self) -> str:
        """``Organization/org-payer-<id>``.

        Examples
        --------
        >>> plan("medicare").org_ref
        'Organization/org-payer-medicare'
        >>> plan(plan("medicaid").org_ref).id  # plan() takes the reference back
        'medicaid'
        """
        return f"Organization/org-payer-{self.id}"


def plan(payer: str) -> Plan:
    """The plan of a payer id or ``Organization/org-payer-<id>`` reference.

    Examples
    --------
    >>> plan("blueshield").copay, plan("blueshield").prefix
    (Decimal('30.00'), 'RBP')
    """
    pid = payer.split("/")[-1].removeprefix("org-payer-")
    rules = table("payers")["payer"].get(pid)
    base = next((p for p in load_content().practice.payers if p.id == pid), None)
    if rules is None or base is None:
        raise ValidationError(
            "Coverage",
            "payor",
            "a payer of the practice (medicare, medicaid, blueshield, unityhealth)",
            found=payer,
        )
    return Plan(
        id=pid,
        name=base.name,
        copay=money(base.copay),
        allowed_ratio=float(base.allowed_ratio),
        deductible=money(rules["deductible"]),
        coinsurance=Decimal(str(rules["coinsurance"])),
        timely_filing_days=int(rules["timely_filing_days"]),
        referral_required=bool(rules["referral_required"]),
        prior_auth=tuple(rules["prior_auth"]),
        prefix=str(base.identifier_prefix or ""),
        last_resort=bool(rules["last_resort"]),
    )


def is_insurance(coverage: dict[str, Any]) -> bool:
    """True when a Coverage is a plan of one of the practice's payers (not self-pay).

    >>> is_insurance({"payor": [{"reference": "Organization/org-payer-medicare"}]})
    True
    >>> is_insurance({"payor": [{"reference": "Patient/p1"}]}), is_insurance({"payor": [{"reference": "Organization/org-payer-selfpay"}]})
    (False, False)
    """
    ref = ((coverage.get("payor") or [{}])[0] or {}).get("reference", "")
    return (
        ref.startswith("Organization/org-payer-") and ref.split("-")[-1] in table("payers")["payer"]
    )


def carc(code: str) -> dict[str, str]:
    """A Claim Adjustment Reason Code row (code, group, kind, description).

    Examples
    --------
    >>> carc("197")["description"]
    'Precertification / authorization absent'
    """
    for row in csv_rows("carc"):
        if row["code"] == code:
            return row
    raise ValidationError(
        "ClaimResponse", "adjudication.reason", "a CARC code of carc.csv", found=code
    )


def rarc(code: str) -> dict[str, str]:
    """A Remittance Advice Remark Code row.

    >>> rarc("N115")["code"]
    'N115'
    """
    for row in csv_rows("rarc"):
        if row["code"] == code:
            return row
    raise ValidationError("ClaimResponse", "processNote", "a RARC code of rarc.csv", found=code)


def _member_ok(coverage: dict[str, Any], p: Plan) -> bool:
    member = str(coverage.get("subscriberId") or "")
    return bool(member) and member.startswith(p.prefix) and member[len(p.prefix) :].isdigit()


def _in_force(coverage: dict[str, Any], day: date) -> bool:
    period = coverage.get("period") or {}
    iso = day.isoformat()
    return (
        coverage.get("status") == "active"
        and period.get("start", iso) <= iso
        and (period.get("end") or iso) >= iso
    )


def deductible_met(session: Session, coverage_ref: str, year: int) -> Decimal:
    """Deductible the member has met this plan year (from the payer's own adjudications).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=2, seed=1, years=1).login("billing.davis")
    >>> deductible_met(b, "Coverage/none", 2026)
    Decimal('0.00')
    """
    total = Decimal(0)
    claims = {}
    for cr in session.resources("ClaimResponse"):
        if cr.get("status") != "active" or not str(cr.get("created", "")).startswith(str(year)):
            continue
        req = (cr.get("request") or {}).get("reference")
        if req not in claims:
            try:
                claims[req] = session.read(req)
            except Exception:  # noqa: BLE001 - a response to a claim we cannot see counts nothing
                claims[req] = None
        cl = claims[req]
        if cl is None or not any(  # the plan the claim was sent to, not one it only names
            i.get("focal") and i.get("coverage", {}).get("reference") == coverage_ref
            for i in cl.get("insurance", [])
        ):
            continue
        for item in cr.get("item", []):
            for adj in item.get("adjudication", []):
                if any(
                    c.get("code") == "deductible" for c in adj.get("category", {}).get("coding", [])
                ):
                    total += Decimal(str(adj["amount"]["value"]))
    return money(total)


def eligibility(
    session: Session, coverage: dict[str, Any], *, service_date: date, request_ref: str
) -> dict[str, Any]:
    """The payer's CoverageEligibilityResponse (not stored) to an eligibility request.

    In force when the coverage is active on the date and the member id has the plan's
    prefix; benefits give the office-visit copay, the deductible and what is met, coinsurance.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=3, seed=1, years=1).login("fd.smith")
    >>> cov = next(c for c in fd.search("Coverage").fetch() if "selfpay" not in c["payor"][0]["reference"])
    >>> r = eligibility(fd, cov, service_date=date(2026, 1, 5), request_ref="urn:uuid:x")
    >>> r["insurance"][0]["inforce"], r["outcome"]
    (True, 'complete')
    """
    p = plan(coverage["payor"][0]["reference"])
    inforce = _in_force(coverage, service_date) and _member_ok(coverage, p)
    met = deductible_met(session, f"Coverage/{coverage['id']}", service_date.year)
    resp: dict[str, Any] = {
        "resourceType": "CoverageEligibilityResponse",
        "status": "active",
        "purpose": ["benefits", "validation"],
        "patient": coverage["beneficiary"],
        "servicedDate": service_date.isoformat(),
        "created": now(session).date().isoformat(),
        "request": {"reference": request_ref},
        "outcome": "complete",
        "disposition": "Coverage in force"
        if inforce
        else "Member not found or coverage not in force on the date of service",
        "insurer": {"reference": p.org_ref},
        "insurance": [
            {
                "coverage": {"reference": f"Coverage/{coverage['id']}"},
                "inforce": inforce,
            }
        ],
    }
    if inforce:

        def money_json(v: Decimal) -> dict[str, Any]:
            return {"value": float(v), "currency": "USD"}

        resp["insurance"][0]["item"] = [
            {
                "category": {
                    "coding": [
                        {
                            "system": EX_BENEFIT_CATEGORY,
                            "code": "30",
                            "display": "Health Benefit Plan Coverage",
                        }
                    ]
                },
                "network": {
                    "coding": [
                        {
                            "system": BENEFIT_NETWORK,
                            "code": "in",
                        }
                    ]
                },
                "unit": {
                    "coding": [
                        {
                            "system": BENEFIT_UNIT,
                            "code": "individual",
                        }
                    ]
                },
                "term": {
                    "coding": [
                        {
                            "system": BENEFIT_TERM,
                            "code": "annual",
                        }
                    ]
                },
                "benefit": [
                    {
                        "type": {"coding": [{"system": BENEFIT_TYPE, "code": "copay"}]},
                        "allowedMoney": money_json(p.copay),
                    },
                    {
                        "type": {"coding": [{"system": BENEFIT_TYPE, "code": "deductible"}]},
                        "allowedMoney": money_json(p.deductible),
                        "usedMoney": money_json(min(met, p.deductible)),
                    },
                    {
                        "type": {
                            "coding": [
                                {
                                    "system": SANDBOX_BENEFIT_TYPE,
                                    "code": "coinsurance",
                                }
                            ]
                        },
                        "allowedString": f"{int(p.coinsurance * 100)}%",
                    },
                ],
                "authorizationRequired": bool(p.prior_auth),
                "authorizationSupporting": [{"text": ", ".join(p.prior_auth)}]
                if p.prior_auth
                else [],
            }
        ]
        if not resp["insurance"][0]["item"][0]["authorizationSupporting"]:
            del resp["insurance"][0]["item"][0]["authorizationSupporting"]
    return resp


def _adj(
    code: str, amount: Decimal, *, system: str = ADJUDICATION, reason: tuple[str, str] | None = None
) -> dict[str, Any]:
    a: dict[str, Any] = {
        "category": {"coding": [{"system": system, "code": code}]},
        "amount": {"value": float(money(amount)), "currency": "USD"},
    }
    if reason:
        a["reason"] = {
            "coding": [
                {
                    "system": CARC_SYSTEM,
                    "code": reason[0],
                    "display": carc(reason[0])["description"],
                }
            ]
        }
    return a


def _trace(claim: dict[str, Any], salt: str = "") -> str:
    return "EFT" + hashlib.sha256((claim["id"] + salt).encode()).hexdigest()[:10].upper()


def secondary_of(claim: dict[str, Any]) -> str | None:
    """For a claim to a secondary plan (its focal insurance is not the first), the primary
    claim it follows (``related``), else None.

    >>> secondary_of({"insurance": [{"sequence": 1, "focal": True}]}) is None
    True
    >>> secondary_of({"id": "c2", "insurance": [{"sequence": 1, "focal": False}, {"sequence": 2, "focal": True}],
    ...               "related": [{"claim": {"reference": "Claim/c1"}}]})
    'Claim/c1'
    """
    focal = next((i for i in claim.get("insurance", []) if i.get("focal")), None)
    if focal is None or int(focal.get("sequence", 1)) == 1:
        return None
    for rel in claim.get("related", []):
        ref = (rel.get("claim") or {}).get("reference")
        if ref:
            return str(ref)
    return f"Claim/{claim.get('id')}"


@dataclass(frozen=True)
class LineOutcome:
    """What a payer's ERA says about one claim line (amounts to the cent).

    ``responsibility`` is what the patient owes on the line (copay + deductible + coinsurance),
    what a secondary plan is billed for; ``denial`` is the (group, CARC) of a line denial.

    >>> LineOutcome(1, Decimal("100.00"), Decimal("80.00"), Decimal("64.00"), Decimal("0.00"),
    ...             Decimal("0.00"), Decimal("16.00"), None).responsibility
    Decimal('16.00')
    """

    sequence: int
    submitted: Decimal
    allowed: Decimal
    paid: Decimal
    copay: Decimal
    deductible: Decimal
    coinsurance: Decimal
    denial: tuple[str, str] | None

    @property
    def responsibility(self) -> Decimal:
        """Copay + deductible + coinsurance (what the patient owes on the line).

        Examples
        --------
        >>> LineOutcome(1, Decimal("100.00"), Decimal("80.00"), Decimal("40.00"), Decimal("10.00"),
        ...             Decimal("25.00"), Decimal("5.00"), None).responsibility
        Decimal('40.00')
        """
        return money(self.copay + self.deductible + self.coinsurance)


def line_outcomes(claim_response: dict[str, Any]) -> dict[int, LineOutcome]:
    """Each line of a ClaimResponse (an ERA) by ``itemSequence``: charge, allowed, paid, the
    patient's copay/deductible/coinsurance, and the denial if any. Reads this simulator's ERAs
    and generated ones alike (copay and deductible as categories or PR-3/PR-1, coinsurance PR-2).

    Examples
    --------
    >>> cr = {"item": [{"itemSequence": 1, "adjudication": [
    ...     _adj("submitted", Decimal(120)), _adj("eligible", Decimal(90)),
    ...     _adj("CO", Decimal(30), system=GROUP_SYSTEM, reason=("45", "")),
    ...     _adj("deductible", Decimal(40), reason=("1", "")),
    ...     _adj("PR", Decimal(10), system=GROUP_SYSTEM, reason=("2", "")), _adj("benefit", Decimal(40))]}]}
    >>> o = line_outcomes(cr)[1]
    >>> o.allowed, o.paid, o.responsibility, o.denial
    (Decimal('90.00'), Decimal('40.00'), Decimal('50.00'), None)
    """
    out: dict[int, LineOutcome] = {}
    for item in claim_response.get("item", []):
        by: dict[str, Decimal] = {}
        denial: tuple[str, str] | None = None
        coins = Decimal(0)
        for adj in item.get("adjudication", []):
            amt = money((adj.get("amount") or {}).get("value", 0))
            codes = {
                c.get("system"): c.get("code")
                for c in (adj.get("category") or {}).get("coding", [])
            }
            reason = next(
                (c.get("code") for c in (adj.get("reason") or {}).get("coding", [])), None
            )
            if GROUP_SYSTEM in codes:
                if reason == "2":
                    coins += amt
                elif reason not in _NOT_DENIAL and denial is None:
                    denial = (str(codes[GROUP_SYSTEM]), str(reason))
            else:
                cat = str(codes.get(ADJUDICATION) or next(iter(codes.values()), ""))
                by[cat] = by.get(cat, Decimal(0)) + amt
        seq = int(item["itemSequence"])
        out[seq] = LineOutcome(
            seq,
            money(by.get("submitted", 0)),
            money(by.get("eligible", 0)),
            money(by.get("benefit", 0)),
            money(by.get("copay", 0)),
            money(by.get("deductible", 0)),
            money(coins),
            denial,
        )
    return out


def _duplicate(session: Session, claim: dict[str, Any]) -> bool:
    _, lines = claim_codes(claim)
    services = {ln["service"] for ln in lines}
    day = (claim.get("billablePeriod") or {}).get("start")
    for other in session.search("Claim", patient=claim["patient"]["reference"]).fetch():
        if other["id"] == claim["id"] or other.get("status") not in ("active",):
            continue
        if secondary_of(other) is not None:
            continue  # a crossover to the secondary plan bills the same services, not twice
        if any(
            r.get("claim", {}).get("reference") == f"Claim/{other['id']}"
            for r in claim.get("related", [])
        ):
            continue
        if (other.get("billablePeriod") or {}).get("start") != day:
            continue
        if not session.search("ClaimResponse", request=f"Claim/{other['id']}").count():
            continue
        if services & {ln["service"] for ln in claim_codes(other)[1]}:
            return True
    return False


def adjudicate(session: Session, claim_ref: str) -> dict[str, Any]:
    """Adjudicate a submitted claim: the ERA as a collection Bundle (ClaimResponse +
    PaymentReconciliation), not stored; post it with :func:`ehr_sandbox.workflows.payments.post_era`.

    Whole-claim denials: coverage not in force (CARC 27), timely filing (29), exact duplicate
    (18). Line denials from the payer's edits (medical necessity 50/N115, diagnosis 11/16 with
    RARC, age/sex 6/7, prior authorisation 197/N54). Paid lines: the allowed amount from the
    payer's schedule, CO-45 contractual adjustment for the rest of the charge, and the
    patient's share as PR-1 deductible, PR-3 copay (once per claim, on the first visit line)
    and PR-2 coinsurance.

    A claim to the patient's secondary plan (focal insurance sequence 2, ``related`` to the
    primary claim, whose ``claimResponse`` it names) is adjudicated as a secondary payer: each
    line's charge as first billed, the primary's part (its payment and contractual adjustment)
    as OA-23, and the amount crossed over as eligible when the primary's ERA left it to the
    patient; the payer of last resort (Medicaid) pays it in full, another plan less what is
    left of its own deductible (PR-1) and its coinsurance (PR-2). Denials: not in force (27/N30), no primary ERA or more than it left to
    the patient (16/MA04), a line the primary denied for a shared reason (the same CARC),
    timely filing from the primary's ERA (29), duplicate crossover (18).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.workflows.coding import build_claim, ClaimLine
    >>> from ehr_sandbox.workflows.claims import submit
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> enc = next(e for e in b.search("Encounter").fetch() if any("selfpay" not in c["payor"][0]["reference"] for c in b.search("Coverage", patient=e["subject"]["reference"]).fetch()))
    >>> c = submit(b, build_claim(b, f"Encounter/{enc['id']}", diagnoses=["icd10cm|I10"],
    ...            lines=[{"service": "procedure|OV-EST-3", "pointers": [1]}])["id"])
    >>> era = adjudicate(b, f"Claim/{c['id']}")
    >>> [e["resource"]["resourceType"] for e in era["entry"]]
    ['ClaimResponse', 'PaymentReconciliation']
    """
    claim = session.read(claim_ref)
    if claim.get("status") != "active":
        raise ValidationError(
            claim_ref, "status", "a submitted (active) claim", found=claim.get("status")
        )
    if secondary_of(claim) is not None:
        return _adjudicate_secondary(session, claim, claim_ref)
    cov_ref = next(i["coverage"]["reference"] for i in claim["insurance"] if i.get("focal"))
    coverage = session.read(cov_ref)
    p = plan(claim["insurer"]["reference"])
    day = date.fromisoformat(claim["billablePeriod"]["start"])
    received = now(session).date()
    whole: tuple[str, str] | None = None
    if not _in_force(coverage, day) or not _member_ok(coverage, p):
        whole = ("27", "N30")
    elif (received - day).days > p.timely_filing_days:
        whole = ("29", "")
    elif _duplicate(session, claim):
        whole = ("18", "")
    findings = [f for f in scrub(session, claim) if f.rule in _DENIAL_FOR]
    by_line: dict[int, Finding] = {}
    claim_level = [f for f in findings if f.line == 0]
    for f in findings:
        if f.line and f.line not in by_line:
            by_line[f.line] = f
    met = deductible_met(session, cov_ref, day.year)
    remaining_deductible = max(Decimal(0), p.deductible - met)
    copay_left = p.copay
    items = []
    notes: list[dict[str, Any]] = []
    totals = {"submitted": Decimal(0), "eligible": Decimal(0), "benefit": Decimal(0)}
    _, lines = claim_codes(claim)
    for item, line in zip(claim["item"], lines, strict=True):
        seq = item["sequence"]
        charge = money(item["net"]["value"])
        totals["submitted"] += charge
        adjs = [_adj("submitted", charge)]
        denial = whole
        if denial is None and seq in by_line:
            denial = _DENIAL_FOR[by_line[seq].rule]
        if denial is None and claim_level:
            denial = _DENIAL_FOR[claim_level[0].rule]
        if denial is not None:
            code, remark = denial
            group = "PR" if code == "50" and "GA" in line["modifiers"] else carc(code)["group"]
            adjs += [
                _adj("eligible", Decimal(0)),
                _adj(group, charge, system=GROUP_SYSTEM, reason=(code, remark)),
                _adj("benefit", Decimal(0)),
            ]
            entry: dict[str, Any] = {"itemSequence": seq, "adjudication": adjs}
            if remark:
                n = len(notes) + 1
                notes.append(
                    {
                        "number": n,
                        "type": "display",
                        "text": f"{remark}: {rarc(remark)['description']}",
                    }
                )
                entry["noteNumber"] = [n]
            items.append(entry)
            continue
        allowed_amt = min(
            charge,
            money(allowed(line["service"], p.id, session, day) * int(item["quantity"]["value"])),
        )
        contractual = charge - allowed_amt
        left = allowed_amt
        copay = Decimal(0)
        if copay_left > 0 and line["service"].split("|", 1)[1].startswith(
            ("OV-", "WELL-", "PRENATAL", "EYE-EXAM")
        ):
            copay = min(copay_left, left)
            copay_left -= copay
            left -= copay
        ded = min(remaining_deductible, left)
        remaining_deductible -= ded
        left -= ded
        coins = money(left * p.coinsurance)
        benefit = left - coins
        totals["eligible"] += allowed_amt
        totals["benefit"] += benefit
        adjs += [_adj("eligible", allowed_amt)]
        if contractual:
            adjs.append(_adj("CO", contractual, system=GROUP_SYSTEM, reason=("45", "")))
        if copay:
            adjs.append(_adj("copay", copay, reason=("3", "")))
        if ded:
            adjs.append(_adj("deductible", ded, reason=("1", "")))
        if coins:
            adjs.append(_adj("PR", coins, system=GROUP_SYSTEM, reason=("2", "")))
        adjs.append(_adj("benefit", benefit))
        items.append({"itemSequence": seq, "adjudication": adjs})
    disposition = _disposition(items)
    return _era(claim, claim_ref, items, totals, notes, disposition, received)


def _prior_response(session: Session, claim: dict[str, Any]) -> dict[str, Any] | None:
    """The primary's answer a crossover claim names (``insurance[sequence 1].claimResponse``),
    when it is an active answer to the primary claim the crossover is ``related`` to."""
    prior = next((i for i in claim.get("insurance", []) if not i.get("focal")), None)
    ref = ((prior or {}).get("claimResponse") or {}).get("reference")
    if not ref:
        return None
    try:
        cr = session.read(ref)
    except SandboxError:
        return None
    if cr.get("status") != "active" or (cr.get("request") or {}).get("reference") != secondary_of(
        claim
    ):
        return None
    return cr


def _duplicate_crossover(session: Session, claim: dict[str, Any]) -> bool:
    primary = secondary_of(claim)
    for other in session.search("Claim", patient=claim["patient"]["reference"]).fetch():
        if (
            other["id"] != claim["id"]
            and other.get("status") == "active"
            and secondary_of(other) == primary
            and other.get("insurer") == claim.get("insurer")
            and session.search("ClaimResponse", request=f"Claim/{other['id']}").count()
        ):
            return True
    return False


def _adjudicate_secondary(
    session: Session, claim: dict[str, Any], claim_ref: str
) -> dict[str, Any]:
    """Adjudicate a crossover claim as the secondary payer (see :func:`adjudicate`)."""
    cov_ref = next(i["coverage"]["reference"] for i in claim["insurance"] if i.get("focal"))
    coverage = session.read(cov_ref)
    p = plan(claim["insurer"]["reference"])
    day = date.fromisoformat(claim["billablePeriod"]["start"])
    received = now(session).date()
    prior = _prior_response(session, claim)
    outcomes = line_outcomes(prior) if prior is not None else {}
    whole: tuple[str, str] | None = None
    if not _in_force(coverage, day) or not _member_ok(coverage, p):
        whole = ("27", "N30")
    elif prior is None:
        whole = ("16", "MA04")
    elif (received - date.fromisoformat(str(prior["created"])[:10])).days > p.timely_filing_days:
        whole = ("29", "")
    elif _duplicate_crossover(session, claim):
        whole = ("18", "")
    items: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    totals = {"submitted": Decimal(0), "eligible": Decimal(0), "benefit": Decimal(0)}
    # a secondary plan that is not the payer of last resort applies its own deductible first
    remaining_deductible = (
        Decimal(0)
        if p.last_resort
        else max(Decimal(0), p.deductible - deductible_met(session, cov_ref, day.year))
    )
    for item in claim["item"]:
        seq = item["sequence"]
        billed = money(item["net"]["value"])
        line = outcomes.get(int(seq))
        # the line's charge as first billed; what the primary settled of it is OA-23
        charge = max(billed, line.submitted) if line is not None else billed
        totals["submitted"] += charge
        adjs = [_adj("submitted", charge)]
        if charge > billed:
            adjs.append(
                _adj(
                    "OA",
                    charge - billed,
                    system=GROUP_SYSTEM,
                    reason=(CROSSOVER["prior_payer_reason"], ""),
                )
            )
        denial = whole
        if (
            denial is None
            and line is not None
            and line.denial is not None
            and line.denial[1] in CROSSOVER["shared_denials"]
        ):
            denial = (line.denial[1], "")  # the secondary applies the primary's denial
        if denial is None and (
            line is None or line.denial is not None or billed > line.responsibility
        ):
            denial = ("16", "MA04")  # not what the primary's ERA left to the patient
        if denial is not None:
            code, remark = denial
            adjs += [
                _adj("eligible", Decimal(0)),
                _adj(carc(code)["group"], billed, system=GROUP_SYSTEM, reason=(code, remark)),
                _adj("benefit", Decimal(0)),
            ]
            entry: dict[str, Any] = {"itemSequence": seq, "adjudication": adjs}
            if remark:
                notes.append(
                    {
                        "number": len(notes) + 1,
                        "type": "display",
                        "text": f"{remark}: {rarc(remark)['description']}",
                    }
                )
                entry["noteNumber"] = [len(notes)]
            items.append(entry)
            continue
        # the payer of last resort (Medicaid) pays the primary's cost sharing in full; another
        # secondary plan pays it less its own deductible and coinsurance, left to the patient
        ded = min(remaining_deductible, billed)
        remaining_deductible -= ded
        coins = Decimal(0) if p.last_resort else money((billed - ded) * p.coinsurance)
        benefit = billed - ded - coins
        totals["eligible"] += billed
        totals["benefit"] += benefit
        adjs.append(_adj("eligible", billed))
        if ded:
            adjs.append(_adj("deductible", ded, reason=("1", "")))
        if coins:
            adjs.append(_adj("PR", coins, system=GROUP_SYSTEM, reason=("2", "")))
        adjs.append(_adj("benefit", benefit))
        items.append({"itemSequence": seq, "adjudication": adjs})
    return _era(claim, claim_ref, items, totals, notes, _disposition(items), received)


def _reason(adj: dict[str, Any]) -> str | None:
    return adj.get("reason", {}).get("coding", [{}])[0].get("code")


def _disposition(items: list[dict[str, Any]]) -> str:
    """Denied (every line has a CO/OA denial), Paid in part (some denial) or Paid."""
    if all(
        any(
            a["category"]["coding"][0]["code"] in ("CO", "OA") and _reason(a) not in _NOT_DENIAL
            for a in it["adjudication"]
        )
        for it in items
    ):
        return "Denied"
    if any(_reason(a) not in (None, *_NOT_DENIAL) for it in items for a in it["adjudication"]):
        return "Paid in part"
    return "Paid"


def _era(
    claim: dict[str, Any],
    claim_ref: str,
    items: list[dict[str, Any]],
    totals: dict[str, Decimal],
    notes: list[dict[str, Any]],
    disposition: str,
    received: date,
) -> dict[str, Any]:
    """The ERA Bundle (ClaimResponse + PaymentReconciliation) for adjudicated lines."""
    paid = money(totals["benefit"])
    cr_url = (
        "urn:uuid:"
        + hashlib.sha256(("cr" + claim["id"]).encode()).hexdigest()[:8]
        + "-0000-4000-8000-000000000000"
    )
    cr: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "status": "active",
        "type": claim["type"],
        "use": "claim",
        "patient": claim["patient"],
        "created": received.isoformat(),
        "insurer": claim["insurer"],
        "requestor": claim["provider"],
        "request": {"reference": claim_ref},
        "outcome": "complete",
        "disposition": disposition,
        "item": items,
        "total": [
            {
                "category": {"coding": [{"system": ADJUDICATION, "code": k}]},
                "amount": {"value": float(money(v)), "currency": "USD"},
            }
            for k, v in totals.items()
        ],
        "payment": {
            "type": {
                "coding": [
                    {
                        "system": EX_PAYMENT_TYPE,
                        "code": "complete",
                    }
                ]
            },
            "date": received.isoformat(),
            "amount": {"value": float(paid), "currency": "USD"},
            "identifier": {
                "system": EFT_TRACE,
                "value": _trace(claim),
            },
        },
    }
    if notes:
        cr["processNote"] = notes
    pr = {
        "resourceType": "PaymentReconciliation",
        "status": "active",
        "created": received.isoformat(),
        "paymentIssuer": claim["insurer"],
        "paymentDate": received.isoformat(),
        "paymentAmount": {"value": float(paid), "currency": "USD"},
        "paymentIdentifier": {
            "type": {"coding": [{"system": PAYMENT_METHOD, "code": "eft"}]},
            "system": EFT_TRACE,
            "value": _trace(claim),
        },
        "outcome": "complete",
        "disposition": f"ERA for {claim_ref}",
        "detail": [
            {
                "type": {
                    "coding": [
                        {"system": PAYMENT_TYPE, "code": "payment"},
                        {"system": LEDGER_KIND, "code": "insurer-payment"},
                    ]
                },
                "request": {"reference": claim_ref},
                "response": {"reference": cr_url},
                "date": received.isoformat(),
                "amount": {"value": float(paid), "currency": "USD"},
            }
        ],
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": cr_url, "resource": cr}, {"resource": pr}],
    }
