"""Catalogue item 6, ``records/registration-update``: a new address and insurer are recorded by
end-dating the old ones, keeping the coverage order right and creating no duplicate Patient.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import (
    patient_facts,
    ref_id,
    rewrite_answer_key,
    sandbox_now,
    shown_as_referenced,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.records.common import (
    change_documented,
    last_change,
)
from ehr_sandbox.exercises.grading import GradingContext, codes, provenance_reason
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution
from synthetic.systems import MRN, SUBSCRIBER_RELATIONSHIP

__all__ = [
    "COVERAGE_ADVICE",
    "DUPLICATE_ADVICE",
    "EXACT_ADVICE",
    "FRONT_DESK",
    "REGISTRATION_UPDATE",
]

FRONT_DESK = "fd.smith"

_STREETS = (
    "Maple Avenue",
    "Cedar Lane",
    "Harbor Road",
    "Willow Court",
    "Summit Street",
    "Orchard Way",
)
EXACT_ADVICE = (
    "enter the new details exactly as given (street, city, state, ZIP, member id, effective date)"
)
DUPLICATE_ADVICE = "update the existing registration; never create a duplicate patient"
REASON_ADVICE = "a registration change says why it was made, in words the next reader understands"
COVERAGE_ADVICE = (
    "add the new insurer as primary (order 1) and end-date the Coverage it replaces; "
    "never overwrite or delete a Coverage"
)


def _payers(sandbox: Any) -> list[dict[str, Any]]:
    orgs = sandbox.system_session().search("Organization").fetch()
    payers = [o for o in orgs if "pay" in codes(o.get("type", []))]
    return sorted(payers, key=lambda o: o["id"])


def _active_coverages(session: Any, patient_id: str) -> list[dict[str, Any]]:
    found = session.search("Coverage", beneficiary=f"Patient/{patient_id}").fetch()
    return [
        c for c in found if c.get("status") == "active" and not (c.get("period") or {}).get("end")
    ]


def _setup_registration(sandbox: Any, variant: Any) -> dict[str, Any]:
    desk = sandbox.login(FRONT_DESK)
    patients = visible_patients(sandbox, FRONT_DESK)
    payers = _payers(sandbox)
    if len(payers) < 2:
        from ehr_sandbox.errors import ExerciseError

        raise ExerciseError(
            f"setup: the sandbox has {len(payers)} payer Organization(s); the exercise needs 2"
        )
    insured = [p for p in patients if _active_coverages(desk, p["id"])]
    patient = variant.pick(insured or patients, salt="patient")
    current = _active_coverages(desk, patient["id"])
    if current:
        old = sorted(current, key=lambda c: (int(c.get("order", 1)), c["id"]))[0]
    else:
        payer = variant.pick(payers, salt="old-payer")
        old = desk.create(
            {
                "resourceType": "Coverage",
                "status": "active",
                "order": 1,
                "beneficiary": {"reference": f"Patient/{patient['id']}"},
                "payor": [
                    {"reference": f"Organization/{payer['id']}", "display": payer.get("name", "")}
                ],
                "subscriberId": f"OLD{variant.seed % 1000000:06d}",
                "period": {"start": str(patient.get("birthDate", "2000-01-01"))},
            }
        )
    old_payer_id = ref_id((old.get("payor") or [{}])[0])
    others = [p for p in payers if p["id"] != old_payer_id]
    born = int(str(patient.get("birthDate", "1970"))[:4])
    if sandbox.reference_date.year - born < 65:
        # A new employer's plan, not Medicare, for a working-age patient.
        others = [p for p in others if "medicare" not in str(p.get("name", "")).lower()] or others
    new_payer = variant.pick(others, salt="new-payer")
    secondary: dict[str, Any] | None = None
    spare = [p for p in payers if p["id"] not in (old_payer_id, new_payer["id"])]
    has_secondary = any(int(c.get("order", 1) or 1) == 2 for c in current)
    if spare and not has_secondary and variant.pick([True, False], salt="secondary"):
        sec_payer = variant.pick(spare, salt="secondary-payer")
        secondary = desk.create(
            {
                "resourceType": "Coverage",
                "status": "active",
                "order": 2,
                "beneficiary": {"reference": f"Patient/{patient['id']}"},
                "payor": [
                    {
                        "reference": f"Organization/{sec_payer['id']}",
                        "display": sec_payer.get("name", ""),
                    }
                ],
                "subscriberId": f"SEC{variant.seed % 1000000:06d}",
                "period": {"start": f"{sandbox.reference_date.year - 1}-01-01"},
            }
        )
    rng = variant.rng()
    home = next(
        (
            a
            for a in patient.get("address", [])
            if a.get("use", "home") == "home" and not (a.get("period") or {}).get("end")
        ),
        {},
    )
    line = f"{rng.randint(12, 9800)} {rng.choice(_STREETS)}"
    # the change took effect on a day before today, so the effective date has to be entered
    effective = (sandbox_now(sandbox) - timedelta(days=rng.randint(2, 20))).date().isoformat()
    old_zip = str(home.get("postalCode", "62701"))
    new_zip = (
        f"{(int(old_zip[:5]) + rng.randint(3, 40)) % 100000:05d}"
        if old_zip[:5].isdigit()
        else "62704"
    )
    return {
        **patient_facts(patient, "patient"),
        "family": (patient.get("name") or [{}])[0].get("family", ""),
        "old_line": (home.get("line") or [""])[0],
        "new_line": line,
        "new_city": home.get("city", "Springfield"),
        "new_state": home.get("state", "IL"),
        "new_zip": new_zip,
        "old_coverage_id": old["id"],
        "old_payer": (old.get("payor") or [{}])[0].get("display") or old_payer_id,
        "new_payer_id": new_payer["id"],
        "new_payer": new_payer.get("name", new_payer["id"]),
        "member_id": f"M{rng.randint(10**7, 10**8 - 1)}",
        "effective": effective,
        "secondary_id": secondary["id"] if secondary else "",
        "secondary_payer": (secondary["payor"][0].get("display") or "") if secondary else "",
        "secondary_line": (
            f"\n- their secondary plan, **{secondary['payor'][0].get('display')}** "
            f"(`Coverage/{secondary['id']}`), stays as it is."
            if secondary
            else ""
        ),
    }


def _reg_single_patient(ctx: GradingContext) -> Check:
    f = ctx.facts
    same = [
        p
        for p in ctx.all("Patient")
        if p.get("birthDate") == f["patient_dob"]
        and (p.get("name") or [{}])[0].get("family") == f["family"]
        and p.get("active", True) is not False
    ]
    expected = f"exactly one Patient record for {f['patient_name']} ({f['patient_dob']})"
    if len(same) != 1:
        return Check(
            False,
            f"{len(same)} Patient records for {f['patient_name']} ({f['patient_dob']})",
            expected,
            DUPLICATE_ADVICE,
        )
    if str(same[0].get("meta", {}).get("versionId", "1")) == "1":
        return Check(False, "the registration has not been updated yet", expected, DUPLICATE_ADVICE)
    return Check(True, f"one record, Patient/{same[0]['id']}", expected)


def _reg_address(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"current home address '{f['new_line']}' from {f['effective']}, the old one kept with an end date"
    patient = ctx.read(f"Patient/{f['patient_id']}") or {}
    addrs = patient.get("address", []) or []
    current = [
        a
        for a in addrs
        if f["new_line"] in (a.get("line") or [])
        and not (a.get("period") or {}).get("end")
        and a.get("use", "home") == "home"
    ]
    if not current:
        return Check(
            False,
            f"the registration shows {[(a.get('line') or [''])[0] for a in addrs]}",
            expected,
            "update the address on the existing record",
        )
    exact = [
        a
        for a in current
        if (a.get("line") or [""])[0] == f["new_line"]
        and a.get("city") == f["new_city"]
        and a.get("state") == f["new_state"]
        and str(a.get("postalCode", ""))[:5] == f["new_zip"]
        and (a.get("period") or {}).get("start") == f["effective"]
    ]
    if not exact:
        a = current[0]
        return Check(
            False,
            f"the new address reads {(a.get('line') or [''])[0]}, {a.get('city')}, {a.get('state')} "
            f"{a.get('postalCode')}, from {(a.get('period') or {}).get('start')}",
            expected,
            EXACT_ADVICE,
        )
    if f["old_line"]:
        old = [a for a in addrs if f["old_line"] in (a.get("line") or [])]
        if not old:
            return Check(
                False,
                "the old address was overwritten",
                expected,
                "end-date the old address instead of overwriting it",
            )
        if not any((a.get("period") or {}).get("end") for a in old):
            return Check(
                False, "the old address is still current", expected, "end-date the old address"
            )
        if not any((a.get("period") or {}).get("end") == f["effective"] for a in old):
            return Check(
                False,
                f"the old address ends {[(a.get('period') or {}).get('end') for a in old]}",
                expected,
                EXACT_ADVICE,
            )
    return Check(True, f"home address '{f['new_line']}', old address end-dated", expected)


def _reg_coverage(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"{f['new_payer']} as the active primary Coverage (order 1) with the member id and effective "
        f"date given, {f['old_payer']} kept and end-dated on the effective date"
        + (f", {f['secondary_payer']} still secondary (order 2)" if f["secondary_id"] else "")
    )
    covs = [c for c in ctx.all("Coverage") if ref_id(c.get("beneficiary")) == f["patient_id"]]
    by_id = {c["id"]: c for c in covs}
    old = by_id.get(f["old_coverage_id"])
    if old is None:
        return Check(False, "the old Coverage is gone", expected, COVERAGE_ADVICE)
    if ref_id((old.get("payor") or [{}])[0]) == f["new_payer_id"]:
        return Check(
            False,
            "the old Coverage was overwritten with the new insurer",
            expected,
            COVERAGE_ADVICE,
        )
    if not (old.get("period") or {}).get("end") and old.get("status") == "active":
        return Check(
            False,
            f"the old Coverage ({f['old_payer']}) is still active with no end date",
            expected,
            COVERAGE_ADVICE,
        )
    active = [
        c for c in covs if c.get("status") == "active" and not (c.get("period") or {}).get("end")
    ]
    primary = [c for c in active if int(c.get("order", 0) or 0) == 1]
    desc = [(ref_id((c.get("payor") or [{}])[0]), c.get("order")) for c in active]
    if len(primary) != 1 or ref_id((primary[0].get("payor") or [{}])[0]) != f["new_payer_id"]:
        return Check(False, f"active coverages (payer, order): {desc}", expected, COVERAGE_ADVICE)
    new = primary[0]
    if not shown_as_referenced(ctx, (new.get("payor") or [{}])[0]):
        return Check(
            False,
            "the new Coverage's payer is shown under another insurer's name",
            expected,
            "the payer's name shown is the insurer the Coverage points to: a card shown as one "
            "plan and billed to another sends claims astray",
        )
    if (
        new.get("subscriberId") != f["member_id"]
        or (new.get("period") or {}).get("start") != f["effective"]
        or (old.get("period") or {}).get("end") != f["effective"]
    ):
        return Check(
            False,
            f"the new Coverage has member id {new.get('subscriberId')!r} from "
            f"{(new.get('period') or {}).get('start')}; the old one ends {(old.get('period') or {}).get('end')}",
            expected,
            EXACT_ADVICE,
        )
    if f["secondary_id"]:
        sec = by_id.get(f["secondary_id"])
        if sec is None or sec not in active or int(sec.get("order", 0) or 0) != 2:
            return Check(
                False,
                f"the secondary plan was changed; active coverages (payer, order): {desc}",
                expected,
                COVERAGE_ADVICE,
            )
    return Check(
        True,
        f"Coverage/{primary[0]['id']} primary with {f['new_payer']}; old one end-dated",
        expected,
    )


def _reg_documented(ctx: GradingContext) -> Check:
    ref = f"Patient/{ctx.facts['patient_id']}"
    patient, prov = last_change(ctx, ref)
    if patient is None or int(patient.get("meta", {}).get("versionId", "1")) < 2:
        return Check(
            False,
            f"{ref} was not updated",
            "a registration update with a reason",
            "use session.update_address(...)",
        )
    chk = change_documented(
        ctx,
        prov,
        "registration-update",
        f"the update of {ref}",
        "session.update_address(patient, address, reason=...)",
    )
    if not chk.passed:
        return chk
    why = rubric.check_text(
        provenance_reason(prov or {}),
        {
            "why the address changed (the patient moved)": [
                "moved",
                "move",
                "moving",
                "relocated",
                "new address",
                "new home",
                "change of address",
                "address change",
                "address changed",
            ]
        },
        what="the reason for the address change",
    )
    if not why.passed:
        return Check(False, why.found, chk.expected, f"{REASON_ADVICE}; {why.advice}")
    return chk


def _reg_address_value(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "line": [f["new_line"]],
        "city": f["new_city"],
        "state": f["new_state"],
        "postalCode": f["new_zip"],
        "country": "US",
    }


def _reg_coverage_value(f: dict[str, Any], shown: str | None = None) -> dict[str, Any]:
    """The new Coverage's fields; ``shown``: the payer's display (the new payer's name unless
    given)."""
    return {
        "payor": [
            {"reference": f"Organization/{f['new_payer_id']}", "display": shown or f["new_payer"]}
        ],
        "subscriberId": f["member_id"],
        "relationship": {
            "coding": [
                {
                    "system": SUBSCRIBER_RELATIONSHIP,
                    "code": "self",
                }
            ]
        },
    }


def _reg_solution(att: Any, *, shown: str | None = None) -> None:
    """The reference (``shown``: the new payer displayed under that name instead)."""
    f, s = att.facts, att.session
    ref = f"Patient/{f['patient_id']}"
    s.update_address(
        ref,
        _reg_address_value(f),
        reason="Patient moved; new address given at check-in",
        effective=f["effective"],
    )
    s.update_coverage(
        ref,
        _reg_coverage_value(f, shown),
        reason="New insurer from new employer; card scanned",
        order=1,
        effective=f["effective"],
    )


def _reg_wrong_order(att: Any) -> None:
    f, s = att.facts, att.session
    ref = f"Patient/{f['patient_id']}"
    s.update_address(ref, _reg_address_value(f), reason="Patient moved", effective=f["effective"])
    s.update_coverage(
        ref, _reg_coverage_value(f), reason="New insurer", order=2, effective=f["effective"]
    )


def _reg_duplicate(att: Any) -> None:
    f, s = att.facts, att.session
    p = s.read("Patient", f["patient_id"])
    dup = {k: v for k, v in p.items() if k not in ("id", "meta", "text")}
    dup["address"] = [{**_reg_address_value(f), "use": "home"}]
    dup["identifier"] = [i for i in dup.get("identifier", []) if i.get("system") != MRN]
    new = s.create(dup)
    s.update_coverage(
        f"Patient/{new['id']}",
        _reg_coverage_value(f),
        reason="new patient registration",
        order=1,
        effective=f["effective"],
    )


def _reg_no_effective(att: Any) -> None:
    """Typical mistake: leave out the effective date (the change is dated today)."""
    f, s = att.facts, att.session
    ref = f"Patient/{f['patient_id']}"
    s.update_address(ref, _reg_address_value(f), reason="Patient moved; new address given")
    s.update_coverage(ref, _reg_coverage_value(f), reason="New insurer; card scanned", order=1)


def _reg_member_typo(att: Any) -> None:
    """Typical mistake: two digits of the member id swapped."""
    f = dict(att.facts)
    mid = f["member_id"]
    f["member_id"] = mid[:-2] + mid[-1] + mid[-2] if mid[-1] != mid[-2] else mid[:-1] + "0"
    s = att.session
    ref = f"Patient/{f['patient_id']}"
    s.update_address(ref, _reg_address_value(f), reason="Patient moved", effective=f["effective"])
    s.update_coverage(
        ref, _reg_coverage_value(f), reason="New insurer", order=1, effective=f["effective"]
    )


def _reg_meaningless_reason(att: Any) -> None:
    """The right details, each change with the reason 'x'."""
    f, s = att.facts, att.session
    ref = f"Patient/{f['patient_id']}"
    s.update_address(ref, _reg_address_value(f), reason="x", effective=f["effective"])
    s.update_coverage(ref, _reg_coverage_value(f), reason="x", order=1, effective=f["effective"])


def _reg_household_too(att: Any) -> None:
    """Harm: also moves another patient with the same family name (or any other patient)."""
    f, s = att.facts, att.session
    _reg_solution(att)
    others = [p for p in s.search("Patient").fetch() if p["id"] != f["patient_id"]]
    same = [p for p in others if (p.get("name") or [{}])[0].get("family") == f["family"]]
    other = (same or others)[0]
    s.update_address(
        f"Patient/{other['id']}",
        _reg_address_value(f),
        reason="Household moved together",
        effective=f["effective"],
    )


def _reg_answer_key(att: Any) -> None:
    """Answer-key change: rewrite the member id in the facts to what was keyed."""
    f = rewrite_answer_key(att, member_id="M00000000")
    s = att.session
    ref = f"Patient/{f['patient_id']}"
    s.update_address(ref, _reg_address_value(f), reason="Patient moved", effective=f["effective"])
    s.update_coverage(
        ref, _reg_coverage_value(f), reason="New insurer", order=1, effective=f["effective"]
    )


REGISTRATION_UPDATE = Exercise(
    id="records/registration-update",
    title="Registration update: new address and insurer",
    topic="records",
    topics=("editing-records", "patient-intake", "insurance-claims"),
    competencies=("VI.P.7", "VIII.P.1", "VII.P.3"),
    minutes=15,
    role=FRONT_DESK,
    summary="New address and insurer: end-date the old ones, keep primary/secondary order right, no duplicate Patient.",
    setup=_setup_registration,
    instructions=(
        "**{patient_name}** (DOB {patient_dob}, MRN {patient_mrn}) checks in and tells you that from "
        "**{effective}**:\n\n- they live at **{new_line}, {new_city}, {new_state} {new_zip}** "
        "(old address: {old_line});\n- their insurance is now **{new_payer}** (member id **{member_id}**) "
        "as their primary plan, replacing {old_payer} (`Coverage/{old_coverage_id}`);{secondary_line}\n\n"
        "Update the registration with exactly these details and effective date, each change with its "
        "reason. Change nothing else."
    ),
    criteria=(
        Criterion(
            "one patient record",
            2,
            _reg_single_patient,
            "One person, one record: duplicates split the chart and put patients at risk (MAERB VI.P.7).",
        ),
        Criterion(
            "address updated, old one end-dated",
            2,
            _reg_address,
            "Demographics are kept current and their history kept (MAERB VI.P.7; documentation standards).",
        ),
        Criterion(
            "insurance updated in order",
            2,
            _reg_coverage,
            "Claims go to the right payer only when coverages and their order are right (MAERB VIII.P.1, VII.P.3).",
        ),
        Criterion(
            "documented as registration update",
            1,
            _reg_documented,
            "Changes to a registration record who made them and why (HIPAA 164.312(b)).",
        ),
    ),
    hints=(
        Hint("Search first: `att.session.find_patient(name=..., birthdate=...)`."),
        Hint(
            "`update_address(...)` and `update_coverage(..., order=1, effective=...)` end-date what they replace.",
            cost=1,
        ),
    ),
    expects=(
        Expect("Patient", ops=("registration-update",), patients=("patient_id",), at_most=1),
        Expect("Coverage", ops=("registration-update",), patients=("patient_id",), at_most=2),
    ),
    solution=Solution(
        _reg_solution, description="update_address and update_coverage on the existing Patient"
    ),
    wrong_solutions={
        "payer-shown-as-another": Solution(
            lambda att: _reg_solution(att, shown=att.facts["old_payer"]),
            fails="insurance updated in order",
            message="shown under another insurer's name",
            description="the new Coverage points to the new payer but shows the old payer's name "
            "(another student's payer name scored full marks before)",
        ),
        "meaningless-reason": Solution(
            _reg_meaningless_reason,
            fails="documented as registration update",
            message="a registration change says why it was made",
            description="the right details, each change with the reason 'x'",
        ),
        "duplicate-patient": Solution(
            _reg_duplicate,
            fails="one patient record",
            message=DUPLICATE_ADVICE,
            description="register the patient again with the new details",
        ),
        "wrong-order": Solution(
            _reg_wrong_order,
            fails="insurance updated in order",
            message="primary (order 1)",
            description="add the new insurer as secondary and leave the old plan active",
        ),
        "no-effective-date": Solution(
            _reg_no_effective,
            fails="address updated, old one end-dated",
            message="exactly as given",
            description="update address and insurer without the effective date",
        ),
        "member-id-typo": Solution(
            _reg_member_typo,
            fails="insurance updated in order",
            message="exactly as given",
            description="two digits of the member id swapped",
        ),
        "household-too": Solution(
            _reg_household_too,
            fails="no collateral damage",
            message="unexpected change",
            description="also move another patient to the new address",
        ),
        "answer-key": Solution(
            _reg_answer_key,
            fails="insurance updated in order",
            message="exactly as given",
            description="rewrite the member id in the facts",
        ),
    },
)
