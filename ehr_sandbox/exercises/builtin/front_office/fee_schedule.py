"""Catalogue item 40: updating the fee schedule for a new year (and a payer's allowed amounts).

The partners approved a percentage increase of the practice's fees for next year, rounded to
the dollar; the payer's new contract lists its allowed amounts. The practice fee schedule is
published for the new year (last year's is retired, never rewritten) and the payer's allowed
amounts are a separate schedule: the contracted amount is never the practice's fee.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ehr_sandbox.exercises.builtin.front_office.common import BILLING, check, op_of, written
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import fees
from ehr_sandbox.workflows.base import money, write
from synthetic.content.loader import load_content
from synthetic.systems import SANDBOX_FEE_DEFINITION_BASE

__all__ = ["FEE_SCHEDULE"]

CONTRACT = "contracted amounts are the payer's allowed amounts, not the practice's fees: every payer is billed the same fee"
PUBLISH = "publish with fees.publish_fee_schedule: it retires last year's schedule in the same step"
RAISE = "raise last year's fee of each service by the approved percentage and round to the dollar"


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    b = sandbox.login(BILLING)
    year = sandbox.reference_date.year
    all_fees = {k: money(f.price) for k, f in load_content().fees.items() if f.price >= 10}
    codes = sorted(rng.sample(sorted(all_fees), 6))
    current = {k: all_fees[k] + money(rng.randint(0, 4)) for k in codes}
    fees.publish_fee_schedule(
        b, year, {k: str(v) for k, v in current.items()}, reason=f"{year} fee schedule"
    )
    pct = rng.choice([3, 4, 5, 6])
    new = fees.raise_fees(current, pct)
    ratio = Decimal(str(rng.choice([0.62, 0.68, 0.72])))
    contract = {k: str(money(v * ratio)) for k, v in new.items()}
    cid = next(c for c in b.resources("ChargeItemDefinition") if c.get("version") == str(year))
    return Scenario(
        facts={
            "year": year,
            "next_year": year + 1,
            "percent": pct,
            "codes": codes,
            "contract": contract,
            "contract_lines": "\n".join(f"- `{k}`: ${v}" for k, v in contract.items()),
            "current_schedule": cid["id"],
        },
        answer={"new": {k: str(v) for k, v in new.items()}},
    )


def _stored(ctx: GradingContext, ident: str) -> dict[str, Any] | None:
    for v in written(ctx, "ChargeItemDefinition"):
        if any(i.get("value") == ident for i in v.get("identifier", [])):
            return ctx.read(f"ChargeItemDefinition/{v['id']}")
    return None


def _amounts(cid: dict[str, Any]) -> dict[str, str]:
    out = {}
    for g in cid.get("propertyGroup", []):
        for pc in g.get("priceComponent", []):
            c = pc["code"]["coding"][0]
            out[fees.code_key(c["system"], c["code"])] = str(money(pc["amount"]))
    return out


def _new_fees(ctx: GradingContext) -> Any:
    f, a = ctx.facts, ctx.answer
    expected = f"the {f['next_year']} practice schedule: last year's fees raised by the approved percentage, to the dollar"
    cid = _stored(ctx, f"practice-{f['next_year']}")
    if cid is None:
        return check(False, f"no practice schedule for {f['next_year']}", expected, RAISE)
    got = _amounts(cid)
    if got == {k: str(money(v)) for k, v in f["contract"].items()}:
        return check(False, "the practice fees equal the contracted amounts", expected, CONTRACT)
    if got != a["new"] or cid.get("effectivePeriod", {}).get("start") != f"{f['next_year']}-01-01":
        return check(False, f"fees {got}", expected, RAISE)
    if op_of(ctx, cid) != "fees.publish":
        return check(False, "published by hand", expected, PUBLISH)
    return check(True, "new fees published", expected)


def _kept(ctx: GradingContext) -> Any:
    f = ctx.facts
    ref = f"ChargeItemDefinition/{f['current_schedule']}"
    expected = "last year's schedule retired with its amounts unchanged"
    hist = ctx.history(ref)
    first = _amounts(hist[-1]) if hist else {}
    for v in ctx.versions_since_setup(ref):
        if _amounts(v) != first:
            return check(
                False,
                f"{ref} version {v['meta']['versionId']} has other amounts",
                expected,
                "past claims were billed at last year's fees: retire that schedule, never rewrite it",
            )
    cur = ctx.read(ref) or {}
    if cur.get("status") != "retired":
        return check(
            False,
            f"{ref} is {cur.get('status')}",
            expected,
            "retire last year's schedule when the new one starts",
        )
    return check(True, "retired unchanged", expected)


def _contract(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = f"the payer's {f['next_year']} allowed amounts as a schedule of their own"
    cid = _stored(ctx, f"blueshield-{f['next_year']}")
    if cid is None or _amounts(cid) != {k: str(money(v)) for k, v in f["contract"].items()}:
        return check(
            False,
            f"allowed amounts {cid and _amounts(cid)}",
            expected,
            "enter the contract's allowed amounts for that payer",
        )
    if (
        cid.get("status") != "active"
        or (cid.get("effectivePeriod") or {}).get("start") != f"{f['next_year']}-01-01"
        or op_of(ctx, cid) != "fees.publish"
    ):
        return check(
            False,
            f"the allowed amounts stored {cid.get('status')}, effective "
            f"{(cid.get('effectivePeriod') or {}).get('start')}, "
            f"{'published' if op_of(ctx, cid) == 'fees.publish' else 'typed in by hand'}",
            expected,
            "publish the contract (fees.publish_fee_schedule with the payer as owner): in "
            "force from the first day of the year it covers, or claims are priced against "
            "nothing",
        )
    return check(True, "allowed amounts entered", expected)


def _only_asked(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "no fee schedule other than the two asked for"
    wanted = {f"practice-{f['next_year']}", f"blueshield-{f['next_year']}", f"practice-{f['year']}"}
    extra = sorted(
        {
            i.get("value")
            for v in written(ctx, "ChargeItemDefinition")
            for i in v.get("identifier", [])
        }
        - wanted
    )
    if extra:
        return check(
            False,
            f"also published {extra}",
            expected,
            "change only the schedules you were asked to change; another payer's amounts come from its contract",
        )
    return check(True, "only the two schedules", expected)


def _current(att: Any) -> dict[str, Decimal]:
    return {
        k: v
        for k, v in fees.schedule(att.session, "practice", att.facts["year"]).items()
        if k in att.facts["codes"]
    }


def _solution(
    att: Any,
    *,
    round_to: str = "1.00",
    practice: dict[str, Any] | None = None,
    extra: bool = False,
    contract_status: str = "",
) -> None:
    """The reference (wrong solutions: ``round_to``, ``practice`` fees, an ``extra`` payer's
    schedule, or the contract typed in by hand with ``contract_status``)."""
    s, f = att.session, att.facts
    new = practice or fees.raise_fees(_current(att), f["percent"], round_to=round_to)
    fees.publish_fee_schedule(
        s,
        f["next_year"],
        {k: str(v) for k, v in new.items()},
        reason=f"{f['percent']}% increase approved by the partners",
    )
    if contract_status:
        _contract_typed_in(att, contract_status)
    else:
        fees.publish_fee_schedule(
            s, f["next_year"], dict(f["contract"]), owner="blueshield", reason="new contract"
        )
    if extra:
        fees.publish_fee_schedule(
            s, f["next_year"], dict(f["contract"]), owner="medicare", reason="assumed the same"
        )


def _cid(year: int, owner: str, title: str, amounts: dict[str, Any], status: str) -> dict[str, Any]:
    """A fee schedule as the fees workflow stores it (wrong solutions type it in by hand)."""
    return {
        "resourceType": "ChargeItemDefinition",
        "url": f"{SANDBOX_FEE_DEFINITION_BASE}{owner}-{year}",
        "identifier": [{"system": fees.FEE_SCHEDULE_SYSTEM, "value": f"{owner}-{year}"}],
        "version": str(year),
        "title": title,
        "status": status,
        "effectivePeriod": {"start": f"{year}-01-01", "end": f"{year}-12-31"},
        "propertyGroup": [
            {
                "priceComponent": [
                    {
                        "type": "base",
                        "code": {"coding": [fees.coding_for(k)]},
                        "amount": {"value": float(v), "currency": "USD"},
                    }
                ]
            }
            for k, v in sorted(amounts.items())
        ],
    }


def _contract_typed_in(att: Any, status: str) -> None:
    """The payer's allowed amounts typed in by hand, right amounts, with ``status``."""
    f = att.facts
    att.session.create(
        _cid(f["next_year"], "blueshield", "Blue Shield allowed amounts", f["contract"], status)
    )


def _tagged_by_hand(att: Any) -> None:
    """The new practice schedule written by hand, right amounts and the fees.publish tag typed
    in; last year's schedule is left active."""
    s, f = att.session, att.facts
    year = f["next_year"]
    new = fees.raise_fees(_current(att), f["percent"])
    write(
        s,
        {
            **_cid(year, "practice", f"Practice fee schedule {year}", new, "active"),
            "description": f"{f['percent']}% increase approved by the partners",
        },
        operation="fees.publish",
    )
    fees.publish_fee_schedule(
        s, year, dict(f["contract"]), owner="blueshield", reason="new contract"
    )


def _rewrote(att: Any) -> None:
    s, f = att.session, att.facts
    cid = s.read(f"ChargeItemDefinition/{f['current_schedule']}")
    new = fees.raise_fees(_current(att), f["percent"])
    for g in cid["propertyGroup"]:
        for pc in g["priceComponent"]:
            c = pc["code"]["coding"][0]
            pc["amount"]["value"] = float(new[fees.code_key(c["system"], c["code"])])
    s.update(cid)
    _solution(att)


FEE_SCHEDULE = Exercise(
    id="front-office/fee-schedule",
    # the EHR refuses the repeat (the fee schedule version exists); the task's schedules are the only ones
    skip_traps=("done-twice", "one-more-record", "changed-another-record"),
    title="Updating the fee schedule for a new year",
    topic="front-office",
    topics=("fee-schedules", "billing"),
    competencies=("VII.P.1", "VIII.P.4"),
    minutes=15,
    role=BILLING,
    summary="Publish next year's fees (approved % to the dollar), retire last year's, enter the payer's allowed amounts separately.",
    setup=_setup,
    instructions=(
        "The partners approved a **{percent}%** increase of the practice fees for **{next_year}**, "
        "rounded to the dollar, for these services: {codes} (the {year} schedule is "
        "`ChargeItemDefinition/{current_schedule}`).\n\nThe new Riverton Blue PPO contract "
        "(payer id `blueshield`) lists its {next_year} allowed amounts:\n\n{contract_lines}\n\n"
        "Publish the {next_year} fee schedule and the payer's allowed amounts."
    ),
    criteria=(
        Criterion(
            "new year's fees",
            3,
            _new_fees,
            "One fee per service for every payer, set by the practice (catalogue 40; MAERB VII.P.1).",
        ),
        Criterion(
            "last year's schedule kept",
            2,
            _kept,
            "Claims already billed refer to last year's fees; history is retired, never rewritten (documentation standards).",
        ),
        Criterion(
            "payer's allowed amounts",
            2,
            _contract,
            "Contracted allowed amounts drive the contractual adjustment on each payment (payer contracts).",
        ),
        Criterion(
            "only the schedules asked",
            1,
            _only_asked,
            "A fee schedule change affects every claim: make only the approved changes (practice financial policy).",
        ),
    ),
    expects=(Expect("ChargeItemDefinition", ops=("create", "update")),),
    hints=(
        Hint(
            "`fees.raise_fees(fees.schedule(session, 'practice', year), percent)` then `fees.publish_fee_schedule(...)`; `owner='blueshield'` for allowed amounts."
        ),
    ),
    solution=Solution(
        _solution, description="raise_fees + publish (practice), publish (blueshield)"
    ),
    wrong_solutions={
        "contract-typed-in-draft": Solution(
            lambda att: _solution(att, contract_status="draft"),
            fails="payer's allowed amounts",
            message="in force from the first day of the year",
            description="the contract's amounts typed in by hand as a draft schedule (full "
            "marks before)",
        ),
        "publish-tag-by-hand": Solution(
            _tagged_by_hand,
            fails="new year's fees",
            message="retires last year's schedule",
            description="wrote the new schedule by hand with the fees.publish tag typed in, last year's left active",
        ),
        "contract-as-fee": Solution(
            lambda att: _solution(att, practice=dict(att.facts["contract"])),
            fails="new year's fees",
            message="not the practice's fees",
            description="published the contracted amounts as the practice fees",
        ),
        "not-rounded": Solution(
            lambda att: _solution(att, round_to="0.01"),
            fails="new year's fees",
            message="round to the dollar",
            description="raised by the percentage without rounding",
        ),
        "extra-payer": Solution(
            lambda att: _solution(att, extra=True),
            fails="only the schedules asked",
            message="change only the schedules",
            description="also published Medicare amounts",
        ),
        "rewrote-last-year": Solution(
            _rewrote,
            fails="last year's schedule kept",
            message="never rewrite it",
            description="overwrote last year's schedule with the new fees",
        ),
    },
)
