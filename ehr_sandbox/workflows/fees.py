"""Fee schedules: the practice's charges and each payer's allowed amounts, by year.

A fee schedule is a ``ChargeItemDefinition`` with an ``effectivePeriod`` (one calendar year)
and one ``propertyGroup`` per service (``priceComponent`` base amount). The practice schedule
has identifier ``practice-<year>``; a payer's contracted (allowed) amounts ``<payer>-<year>``.
Where no schedule is stored, the practice fees come from the generator's content
(``synthetic/content/data/fees.toml``) and a payer's allowed amount is its contracted ratio of
the charge (``practice.toml``). Codes are the sandbox procedure system or HCPCS Level II: never
CPT.

>>> from ehr_sandbox.sandbox import Sandbox
>>> b = Sandbox.generate(patients=1, seed=1, years=1).login("billing.davis")
>>> charge("procedure|OV-EST-3", b), allowed("procedure|OV-EST-3", "blueshield", b)
(Decimal('135.00'), Decimal('97.20'))
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.workflows.base import Rule, RuleRefused, money, today, write_all
from synthetic.content.loader import load_content
from synthetic.systems import FEE_SCHEDULE, HCPCS, SANDBOX_FEE_DEFINITION_BASE, SANDBOX_PROCEDURE

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "FEE_SCHEDULE_SYSTEM",
    "RULES",
    "SYSTEMS",
    "allowed",
    "charge",
    "check_key",
    "code_key",
    "coding_for",
    "publish_fee_schedule",
    "raise_fees",
    "schedule",
]

FEE_SCHEDULE_SYSTEM = FEE_SCHEDULE
SYSTEMS = {
    "procedure": SANDBOX_PROCEDURE,
    "hcpcs": HCPCS,
}
_SRC = "CMS HCPCS Level II (public); AMA CPT is licensed and not used; practice billing policy"
RULES = {
    r.id: r
    for r in (
        Rule(
            "fees.code-system",
            "fees are set for sandbox procedure codes or HCPCS Level II codes only (no CPT)",
            _SRC,
        ),
        Rule("fees.positive", "every fee is a positive amount in dollars and cents", _SRC),
        Rule(
            "fees.one-charge",
            "the practice bills one fee per service to every payer; contracted amounts are allowed amounts, not fees",
            _SRC,
        ),
        Rule(
            "fees.new-year",
            "a new schedule starts on 1 January and the previous one ends the day before; no gap, no overlap",
            _SRC,
        ),
    )
}
_CPT_LIKE = re.compile(r"^\d{4}[0-9FTU]$")


def code_key(system: str, code: str) -> str:
    """``"procedure|OV-EST-3"`` from a FHIR system URL (or key) and a code.

    Examples
    --------
    >>> code_key("http://ehr-sandbox.org/CodeSystem/procedure", "OV-EST-3")
    'procedure|OV-EST-3'
    """
    for key, url in SYSTEMS.items():
        if system in (key, url):
            return f"{key}|{code}"
    raise RuleRefused(
        RULES["fees.code-system"],
        resource="ChargeItemDefinition",
        path="code.system",
        expected="the sandbox procedure system or HCPCS Level II",
        found=system,
    )


def coding_for(key: str) -> dict[str, Any]:
    """A FHIR Coding for a code key, with the code set's display.

    Examples
    --------
    >>> coding_for("hcpcs|J1885")["system"]
    'https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets'
    """
    check_key(key)
    system_key, code = key.split("|", 1)
    codes = load_content().codes[system_key]
    return {"system": SYSTEMS[system_key], "code": code, "display": codes.display(code)}


def check_key(key: str) -> None:
    """Refuse a fee key that is not a sandbox procedure or HCPCS Level II code of its code set.

    Examples
    --------
    >>> check_key("procedure|VENIP") is None
    True
    >>> check_key("lab|GLU")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: ChargeItemDefinition: code: expected a sandbox procedure or HCPCS Level II code (found 'lab|GLU'). Refused by rule fees.code-system: ...
    """
    if not isinstance(key, str) or "|" not in key:
        raise ValidationError(
            "ChargeItemDefinition", "code", "a key 'procedure|CODE' or 'hcpcs|CODE'", found=key
        )
    system_key, code = key.split("|", 1)
    if system_key not in SYSTEMS or _CPT_LIKE.match(code):
        raise RuleRefused(
            RULES["fees.code-system"],
            resource="ChargeItemDefinition",
            path="code",
            expected="a sandbox procedure or HCPCS Level II code",
            found=key,
        )
    if code not in load_content().codes[system_key].codes:
        raise ValidationError(
            "ChargeItemDefinition", "code", f"a code of the {system_key} code set", found=code
        )


def _stored(session: Session, ident: str) -> dict[str, Any] | None:
    for cid in session.resources("ChargeItemDefinition"):
        for i in cid.get("identifier", []):
            if (
                i.get("system") == FEE_SCHEDULE_SYSTEM
                and i.get("value") == ident
                and cid.get("status") in ("active", "retired")
            ):
                return cid
    return None


def schedule(
    session: Session, owner: str = "practice", year: int | None = None
) -> dict[str, Decimal]:
    """The fee schedule of ``owner`` (``practice`` or a payer id) for ``year``: code key -> amount.

    Parameters
    ----------
    session : Session
        Any session that may read financial resources.
    owner : str
        ``"practice"`` (charges) or a payer id (allowed amounts).
    year : int, optional
        Defaults to the current sandbox year.

    Returns
    -------
    dict
        ``{"procedure|OV-EST-3": Decimal("135.00"), ...}``

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=1, seed=1, years=1).login("billing.davis")
    >>> schedule(b)["procedure|VENIP"]
    Decimal('18.00')
    """
    year = year or today(session).year
    stored = _stored(session, f"{owner}-{year}")
    if stored is not None:
        out = {}
        for group in stored.get("propertyGroup", []):
            for pc in group.get("priceComponent", []):
                c = (pc.get("code") or {}).get("coding", [{}])[0]
                out[code_key(c["system"], c["code"])] = money(pc["amount"])
        return out
    base = {k: money(f.price) for k, f in load_content().fees.items()}
    if owner == "practice":
        return base
    prev = _stored(session, f"practice-{year}")
    if prev is not None:
        base = schedule(session, "practice", year)
    ratio = _payer(owner).allowed_ratio
    return {k: money(v * Decimal(str(ratio))) for k, v in base.items()}


def _payer(payer_id: str) -> Any:
    for p in load_content().practice.payers:
        if p.id == payer_id:
            return p
    raise ValidationError(
        "Organization",
        "id",
        "a payer id (medicare, medicaid, blueshield, unityhealth, selfpay)",
        found=payer_id,
    )


def charge(key: str, session: Session, on: date | None = None) -> Decimal:
    """The practice's fee for a service on a date.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> charge("procedure|ECG-12", Sandbox.generate(patients=1, seed=1, years=1).login("billing.davis"))
    Decimal('60.00')
    """
    fees = schedule(session, "practice", (on or today(session)).year)
    if key not in fees:
        raise ValidationError(
            "Claim", "item.productOrService", "a service on the practice fee schedule", found=key
        )
    return fees[key]


def allowed(key: str, payer_id: str, session: Session, on: date | None = None) -> Decimal:
    """A payer's allowed (contracted) amount for a service on a date.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> allowed("procedure|ECG-12", "medicare", Sandbox.generate(patients=1, seed=1, years=1).login("billing.davis"))
    Decimal('33.00')
    """
    year = (on or today(session)).year
    fees = schedule(session, payer_id, year)
    if key in fees:
        return fees[key]
    return money(charge(key, session, on) * Decimal(str(_payer(payer_id).allowed_ratio)))


def publish_fee_schedule(
    session: Session,
    year: int,
    fees: dict[str, Any],
    *,
    owner: str = "practice",
    reason: str,
) -> dict[str, Any]:
    """Publish a year's fee schedule; the previous year's stored schedule is retired (ends
    31 December), all in one transaction.

    Parameters
    ----------
    session : Session
        The billing specialist's session.
    year : int
        The calendar year the schedule is effective.
    fees : dict
        Code key (``procedure|CODE`` / ``hcpcs|CODE``) -> amount.
    owner : str
        ``practice`` or a payer id (allowed amounts from the contract).
    reason : str
        Why (e.g. "2027 fee review approved by the partners").

    Returns
    -------
    dict
        The new ChargeItemDefinition.

    Raises
    ------
    RuleRefused
        A CPT-like or unknown code system, a non-positive amount, a year already published.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=1, seed=1, years=1).login("billing.davis")
    >>> cid = publish_fee_schedule(b, 2027, {"procedure|VENIP": "19.00"}, reason="annual review")
    >>> cid["effectivePeriod"], schedule(b, "practice", 2027)["procedure|VENIP"]
    ({'start': '2027-01-01', 'end': '2027-12-31'}, Decimal('19.00'))
    >>> publish_fee_schedule(b, 2027, {"procedure|99213": "90"}, reason="x")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: ChargeItemDefinition: code: expected a sandbox procedure or HCPCS Level II code (found 'procedure|99213'). Refused by rule fees.code-system: ...
    """
    if not reason or not str(reason).strip():
        raise ValidationError("ChargeItemDefinition", "reason", "why the schedule changes")
    if owner != "practice":
        _payer(owner)
    if not fees:
        raise ValidationError("ChargeItemDefinition", "propertyGroup", "at least one fee")
    groups = []
    for key in sorted(fees):
        check_key(key)
        try:
            amount = money(fees[key])
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise RuleRefused(
                RULES["fees.positive"],
                resource="ChargeItemDefinition",
                path=f"fee[{key}]",
                expected="an amount like '135.00'",
                found=fees[key],
            ) from exc
        if amount <= 0:
            raise RuleRefused(
                RULES["fees.positive"],
                resource="ChargeItemDefinition",
                path=f"fee[{key}]",
                expected="an amount > 0",
                found=str(amount),
            )
        groups.append(
            {
                "priceComponent": [
                    {
                        "type": "base",
                        "code": {"coding": [coding_for(key)]},
                        "amount": {"value": float(amount), "currency": "USD"},
                    }
                ]
            }
        )
    if _stored(session, f"{owner}-{year}") is not None:
        raise RuleRefused(
            RULES["fees.new-year"],
            resource="ChargeItemDefinition",
            path="effectivePeriod",
            expected=f"a year with no published {owner} schedule",
            found=year,
        )
    ident = f"{owner}-{year}"
    new = {
        "resourceType": "ChargeItemDefinition",
        "url": f"{SANDBOX_FEE_DEFINITION_BASE}{ident}",
        "identifier": [{"system": FEE_SCHEDULE_SYSTEM, "value": ident}],
        "version": str(year),
        "title": f"{'Practice fee schedule' if owner == 'practice' else 'Allowed amounts: ' + owner} {year}",
        "status": "active",
        "date": today(session).isoformat(),
        "description": str(reason).strip(),
        "effectivePeriod": {"start": f"{year}-01-01", "end": f"{year}-12-31"},
        "propertyGroup": groups,
    }
    writes: list[dict[str, Any]] = [new]
    prev = _stored(session, f"{owner}-{year - 1}")
    if prev is not None and prev.get("status") == "active":
        new["replaces"] = [prev["url"]]
        writes.append({**prev, "status": "retired"})
    return write_all(session, writes, operation="fees.publish")[0]


def raise_fees(
    current: dict[str, Decimal], percent: Decimal | float | str, *, round_to: str = "1.00"
) -> dict[str, Decimal]:
    """A new year's fees: each fee raised by ``percent`` and rounded (to the dollar by default).

    Examples
    --------
    >>> raise_fees({"procedure|VENIP": Decimal("18.00")}, 3)
    {'procedure|VENIP': Decimal('19.00')}
    >>> raise_fees({"procedure|VENIP": Decimal("18.00")}, "3", round_to="0.01")
    {'procedure|VENIP': Decimal('18.54')}
    """
    from decimal import ROUND_HALF_UP

    factor = Decimal(1) + Decimal(str(percent)) / Decimal(100)
    step = Decimal(round_to)
    return {
        k: money((Decimal(v) * factor / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)
        for k, v in current.items()
    }
