"""Clinical exercises: an IM injection whose ordered dose is wrong for the child's weight, and
immunizations for a child behind schedule (catch-up, VIS, one contraindication)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.clock import instant
from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.clinical.common import (
    ANOTHER_PROVIDER,
    DOCTOR_REF,
    MA,
    add_patient,
    administered_safely,
    code_of,
    identified_first,
    identify_patient,
    order_drug,
    record_weight,
    skipped_identification,
    standing,
    tamper,
    withdraw_messages,
    written,
)
from ehr_sandbox.exercises.builtin.common import still_standing, then_withdrawn
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import hl7v2, immunizations
from ehr_sandbox.workflows import medication_administration as medadmin
from ehr_sandbox.workflows.base import RuleRefused
from ehr_sandbox.workflows.care import routed_task
from synthetic.systems import UCUM

__all__ = ["CATCH_UP_IMMUNIZATIONS", "IM_INJECTION_DOSE"]


# ============================================================================ IM injection, wrong dose
DOES_NOT_FIT = ["not fit", "doesn't fit", "too high", "too much", "exceeds", "above", "over",
                "higher than", "overdose", "clarify", "not appropriate", "incorrect", "wrong"]  # fmt: skip
"""Ways a query says the ordered dose does not fit the weight (any one will do)."""
FINE_TO_GIVE = ["is correct", "is appropriate", "fits the weight", "dose fits", "ok to give",
                "okay to give", "giving now", "will give", "given"]  # fmt: skip
"""Phrases of a 'query' that reassures instead of asking (the dose is not to be given)."""


def _setup_injection(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = add_patient(
        sandbox, rng, age_days=rng.randint(2 * 365, 8 * 365), gender=rng.choice(["female", "male"])
    )
    kg = round(rng.uniform(11.0, 16.5), 1)
    right = medadmin.expected_dose_mg("ceftriaxone", kg) or 0
    wrong = rng.choice([1000.0, round(right * 2 / 50) * 50 or 1000.0])
    if abs(wrong - right) <= 0.1 * right:
        wrong = 1000.0
    w = record_weight(sandbox, p["ref"], kg)
    mr = order_drug(
        sandbox,
        p["ref"],
        drug_key="ceftriaxone",
        dose_mg=wrong,
        reason="acute otitis media, failed oral therapy",
    )
    facts = {
        "patient_ref": p["ref"],
        "patient_id": p["id"],
        "name": p["name"],
        "dob": p["dob"],
        "mrn": p["mrn"],
        "weight_kg": kg,
        "order_ref": f"MedicationRequest/{mr['id']}",
        "ordered_mg": wrong,
        "weight_ref": f"Observation/{w['id']}",
        "lot": f"CF{rng.randint(1000, 9999)}",
    }
    return Scenario(facts, answer={"right_mg": right}, protect=(facts["weight_ref"],))


def _inj_not_given(ctx: GradingContext) -> Check:
    expected = "no dose given while the ordered dose does not fit the child's weight"
    given = [
        m
        for m in written(ctx, "MedicationAdministration", ctx.facts["patient_id"])
        if m.get("status") in ("completed", "in-progress")
    ]
    if given:
        return Check(
            False,
            f"{len(given)} dose(s) of ceftriaxone recorded as given",
            expected,
            "only the prescriber changes an order; hold the dose",
        )
    return Check(True, "the dose was held", expected)


def _inj_queried(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        "a task to the prescriber, focused on the order, saying the dose does not fit the weight"
    )
    prescriber = ((ctx.read(f["order_ref"]) or {}).get("requester") or {}).get("reference")
    vague = elsewhere = False
    for t in standing(ctx, written(ctx, "Task", f["patient_id"]), f["patient_id"]):
        if (t.get("focus") or {}).get("reference") != f["order_ref"]:
            continue
        if (t.get("owner") or {}).get("reference") != prescriber:
            elsewhere = True
            continue
        said = rubric.check_text(
            str(t.get("description", "")),
            {
                "the child's weight today": [f"{f['weight_kg']:g}"],
                "the dose ordered": [f"{f['ordered_mg']:g}"],
                "that the dose does not fit": DOES_NOT_FIT,
            },
            forbidden={"that the dose is fine to give": FINE_TO_GIVE},
            what="the query",
        )
        if said.passed:
            return Check(True, "the order was queried", expected)
        vague = True
    if vague:
        return Check(
            False,
            "a task on the order that does not say what does not fit, or says the dose is fine",
            expected,
            "the query names the weight and the dose ordered, so the prescriber sees why it "
            "does not fit without opening the chart, and asks rather than reassures",
        )
    if elsewhere:
        return Check(
            False,
            "the query went to someone other than the prescriber",
            expected,
            "only the prescriber who wrote the order can change it: send the query to them",
        )
    return Check(
        False,
        "no query to the prescriber about the dose",
        expected,
        "query the order with the prescriber, naming the weight",
    )


def _inj_reference(att: Any, withdraw: str | None = None) -> None:
    """The reference; ``withdraw``: the query then set to that status (cancelled...)."""
    f = att.facts
    ref = identify_patient(att)
    try:
        medadmin.administer(
            att.session,
            ref,
            f["order_ref"],
            drug_key="ceftriaxone",
            dose_mg=f["ordered_mg"],
            route="IM",
            site="LT",
            lot=f["lot"],
            expiry="2030-12-31",
        )
    except RuleRefused as err:
        medadmin.query_order(
            att.session,
            ref,
            f["order_ref"],
            f"ordered {f['ordered_mg']:g} mg does not fit weight {f['weight_kg']} kg at 50 mg/kg (max 1 g): {err.rule_id}",
        )
    if withdraw:
        withdraw_messages(att, "Task", withdraw, ref)


def _raw_admin(att: Any, dose: float) -> None:
    f = att.facts
    att.session.create(
        {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": {
                "coding": [{"system": medadmin.HCPCS, "code": "J0696"}],
                "text": "ceftriaxone",
            },
            "subject": {"reference": f["patient_ref"]},
            "effectiveDateTime": instant(att.sandbox.clock.peek()),
            "request": {"reference": f["order_ref"]},
            "dosage": {
                "dose": {
                    "value": dose,
                    "unit": "mg",
                    "system": UCUM,
                    "code": "mg",
                }
            },
        }
    )


def _inj_give_as_ordered(att: Any) -> None:
    """Typical mistake: the order says so, so it is given (charted by hand)."""
    _raw_admin(att, att.facts["ordered_mg"])


def _inj_own_dose(att: Any) -> None:
    """Harmful: the MA recalculates and gives a dose nobody ordered."""
    _raw_admin(att, round(att.facts["weight_kg"] * 50))


def _inj_unidentified(att: Any) -> None:
    """Skipped identification: the dose query to the prescriber typed in by hand, nobody
    identified."""
    f = att.facts
    task = routed_task(
        att.session,
        f["patient_ref"],
        DOCTOR_REF,
        f"ordered {f['ordered_mg']:g} mg does not fit weight {f['weight_kg']} kg at 50 mg/kg",
        focus=f["order_ref"],
    )
    att.session.create(task)


def _inj_vague_query(att: Any, *, reassure: bool = False) -> None:
    """The dose held and the order 'queried' with a text that carries the rubric's words but
    says nothing about this child's weight or this order's dose (``reassure``: names both and
    says the dose is correct)."""
    f = att.facts
    ref = identify_patient(att)
    text = "weight in kg noted today, will give"
    if reassure:
        text = f"ordered {f['ordered_mg']:g} mg checked against weight {f['weight_kg']} kg: dose is correct"
    medadmin.query_order(att.session, ref, f["order_ref"], text)


def _inj_query_elsewhere(att: Any) -> None:
    """The query, well worded, sent to a practitioner who did not write the order."""
    f = att.facts
    s = att.session
    ref = identify_patient(att)
    task = routed_task(
        s,
        ref,
        ANOTHER_PROVIDER,
        f"ordered {f['ordered_mg']:g} mg does not fit weight {f['weight_kg']} kg at 50 mg/kg",
        focus=f["order_ref"],
    )
    s.create(task)


def _inj_edit_weight(att: Any) -> None:
    """Answer-key change: the weight is edited so the order 'fits'."""
    _inj_reference(att)
    tamper(att, att.facts["weight_ref"])


IM_INJECTION_DOSE = Exercise(
    id="clinical/im-injection-dose-check",
    title="An IM injection whose ordered dose is wrong for the child's weight",
    topic="clinical",
    topics=("medication-administration",),
    competencies=("I.P.4", "I.P.7", "X.P.3"),
    minutes=15,
    role=MA,
    summary="Check the rights before an IM injection; a dose that does not fit the weight goes back to the prescriber.",
    setup=_setup_injection,
    instructions=(
        "**{name}** (DOB {dob}, MRN {mrn}) weighed **{weight_kg} kg** this morning. The provider ordered "
        "ceftriaxone **{ordered_mg:g} mg IM** (`{order_ref}`); vial lot {lot}, expires 2030-12-31.\n\n"
        "Give it with `workflows.medication_administration.administer` — after checking the rights. If "
        "something does not fit, do what a medical assistant must do instead."
    ),
    criteria=(
        Criterion(
            "wrong dose not given",
            3,
            _inj_not_given,
            "A pediatric dose is checked against the weight before it is given; an MA never gives or changes a dose outside the order (MAERB I.P.4, I.P.7; ISMP).",
        ),
        Criterion(
            "order queried with the prescriber",
            2,
            _inj_queried,
            "The prescriber must clarify an unsafe order; the query is documented (MAERB I.P.4; ISMP).",
        ),
        identified_first(),
    ),
    hints=(
        Hint("`administer` refuses with the rule it broke; `query_order` asks the prescriber."),
    ),
    solution=Solution(_inj_reference),
    wrong_solutions={
        "query-then-cancelled": Solution(
            lambda att: _inj_reference(att, withdraw="cancelled"),
            fails="order queried with the prescriber",
            message="no query to the prescriber about the dose",
            description="the dose query sent to the prescriber, then cancelled (a routing undone at hand-in)",
        ),
        "give-as-ordered": Solution(
            _inj_give_as_ordered, fails="wrong dose not given", message="hold the dose"
        ),
        "own-recalculated-dose": Solution(
            _inj_own_dose,
            fails="wrong dose not given",
            message="only the prescriber changes an order",
        ),
        "edit-the-weight": Solution(
            _inj_edit_weight,
            fails="no collateral damage",
            message="answer key depends on",
        ),
        "skipped-identification": skipped_identification(_inj_unidentified),
        "query-without-the-facts": Solution(
            _inj_vague_query,
            fails="order queried with the prescriber",
            message="the query names the weight and the dose ordered",
            description="a query on the order with 'weight' and 'kg' in it, neither the child's "
            "weight nor the dose ordered",
        ),
        "reassuring-query": Solution(
            lambda att: _inj_vague_query(att, reassure=True),
            fails="order queried with the prescriber",
            message="asks rather than reassures",
            description="a task on the order naming the weight and the dose and saying the dose "
            "is correct",
        ),
        "query-to-another-practitioner": Solution(
            _inj_query_elsewhere,
            fails="order queried with the prescriber",
            message="send the query to them",
            description="the query sent to a practitioner who did not write the order",
        ),
    },
    expects=(Expect("Task", ops=("create",), patients=("patient_id",)),),
)


# ============================================================================ catch-up immunizations
def _setup_catchup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    months = rng.randint(14, 30)
    p = add_patient(
        sandbox,
        rng,
        age_days=months * 30 + rng.randint(0, 20),
        gender=rng.choice(["female", "male"]),
    )
    sys = sandbox.system_session()
    born = sandbox.clock.peek() - timedelta(days=months * 30)
    prior = []
    for cvx, days in (("08", 0), ("20", 62)):
        prior.append(
            sys.create(
                {
                    "resourceType": "Immunization",
                    "status": "completed",
                    "vaccineCode": {"coding": [{"system": immunizations.CVX, "code": cvx}]},
                    "patient": {"reference": p["ref"]},
                    "occurrenceDateTime": instant(born + timedelta(days=days)),
                    "primarySource": True,
                    "lotNumber": f"OLD{rng.randint(100, 999)}",
                }
            )
        )
    facts = {
        "patient_ref": p["ref"],
        "patient_id": p["id"],
        "name": p["name"],
        "dob": p["dob"],
        "mrn": p["mrn"],
        "months": months,
        "vis_hepb": immunizations.vaccine("08")["vis"],
        "vis_mmr": immunizations.vaccine("03")["vis"],
        "vis_dtap": immunizations.vaccine("20")["vis"],
        "lot_hepb": f"HB{rng.randint(1000, 9999)}",
        "lot_mmr": f"MM{rng.randint(1000, 9999)}",
        "prior_refs": [f"Immunization/{i['id']}" for i in prior],
    }
    return Scenario(
        facts, answer={"give": ["08", "03"], "defer": "20"}, protect=tuple(facts["prior_refs"])
    )


def _given(ctx: GradingContext, cvx: str, *, standing_only: bool = False) -> list[dict[str, Any]]:
    """Doses of ``cvx`` recorded as given since setup (``standing_only``: those that still
    stand at hand-in, as they are now; a dose voided or cancelled afterwards gave nothing)."""
    doses = written(ctx, "Immunization", ctx.facts["patient_id"])
    if standing_only:
        doses = still_standing(ctx, doses, current=True)
    return [i for i in doses if code_of(i, "vaccineCode") == cvx and i.get("status") == "completed"]


def _cu_given(ctx: GradingContext) -> Check:
    expected = (
        "each due dose given with its lot (unexpired), site and route that fit the vaccine and "
        "the child's age, MVX and the current VIS edition"
    )
    f = ctx.facts
    for cvx in ctx.answer["give"]:
        key = {"08": "hepb", "03": "mmr"}[cvx]
        documented = [
            i
            for i in _given(ctx, cvx, standing_only=True)
            if i.get("lotNumber") == f[f"lot_{key}"]
            and any(e.get("publicationDate") == f[f"vis_{key}"] for e in i.get("education", []))
            and ((i.get("manufacturer") or {}).get("identifier") or {}).get("value")
            == immunizations.vaccine(cvx)["mvx"]
            and i.get("site")
            and i.get("route")
        ]
        if not documented:
            return Check(
                False,
                f"CVX {cvx}: no complete record (the VIS edition handed out, the vial's lot, "
                "the manufacturer's MVX, site and route)",
                expected,
                "give the VIS before every dose and record its edition, and the lot of the vial "
                "you drew from: a recall finds the child by lot",
            )
        if not any(administered_safely(ctx, i, cvx) for i in documented):
            return Check(
                False,
                f"CVX {cvx}: given by a route the vaccine is not licensed for, at a site that "
                "does not fit the route or the child's age, or from a lot with no expiry or an "
                "expired one",
                expected,
                "check the route on the package insert, the site for the child's age and the "
                "vial's expiry before drawing up the dose",
            )
    return Check(True, "due doses given and documented", expected)


def _cu_deferred(ctx: GradingContext) -> Check:
    cvx = ctx.answer["defer"]
    expected = "the contraindicated vaccine not given, recorded as not done with the medical-precaution reason"
    if _given(ctx, cvx):
        return Check(
            False,
            "the contraindicated vaccine was given",
            expected,
            "a contraindication means the dose is not given",
        )
    deferred = [
        i
        for i in still_standing(
            ctx, written(ctx, "Immunization", ctx.facts["patient_id"]), current=True
        )
        if code_of(i, "vaccineCode") == cvx
        and i.get("status") == "not-done"
        and code_of(i, "statusReason") == "MEDPREC"
    ]
    if not deferred:
        return Check(False, "no deferral recorded", expected, "record the deferral with its reason")
    return Check(True, "deferral recorded", expected)


def _describes_dose(message: str, imm: dict[str, Any]) -> bool:
    r"""True when an HL7 v2 message is the VXU^V04 of this dose: its MSH names the message type
    and carries the dose's id as control id, and an RXA segment gives the dose's CVX in the
    Administered Code (RXA-5) and its lot as the Substance Lot Number (RXA-15), read through
    the one field table of :mod:`ehr_sandbox.workflows.hl7v2`. Text with 'VXU' and the lot
    typed into it is not a report, nor is a lot in another field.

    >>> imm = {"id": "i1", "lotNumber": "HB1234", "vaccineCode": {"coding": [{"code": "08"}]}}
    >>> msh = "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20260105||VXU^V04^VXU_V04|i1|P|2.5.1"
    >>> rxa = "RXA|0|1|20260105|20260105|08^HepB^CVX|0.5|mL^mL^UCUM||00||||||HB1234|20300630"
    >>> _describes_dose(msh + "\n" + rxa, imm)
    True
    >>> _describes_dose(msh + "\n" + rxa.replace("||HB1234", "|HB1234|"), imm)
    False
    >>> _describes_dose("VXU^V04 sent to the registry, lot HB1234", imm)
    False
    """
    msh = [f for f in hl7v2.segments(message, "MSH") if len(f) > 9]
    cvx = code_of(imm, "vaccineCode")
    lot = str(imm.get("lotNumber"))
    return any(f[8].startswith("VXU^V04") and f[9] == imm.get("id") for f in msh) and any(
        hl7v2.field(f, "Administered Code").split("^")[0] == cvx
        and hl7v2.field(f, "Substance Lot Number") == lot
        for f in hl7v2.segments(message, "RXA")
    )


def _cu_registry(ctx: GradingContext) -> Check:
    expected = "a registry report (VXU) for each dose given"
    doses = {
        f"Immunization/{i['id']}": i
        for cvx in ctx.answer["give"]
        for i in _given(ctx, cvx, standing_only=True)
    }
    given = set(doses)
    # a report is the VXU message describing that dose (its lot in the RXA segment), not a
    # message with 'VXU' typed into it
    reported = {
        a.get("reference")
        for c in standing(
            ctx, written(ctx, "Communication", ctx.facts["patient_id"]), ctx.facts["patient_id"]
        )
        for a in c.get("about", [])
        if a.get("reference") in doses
        and _describes_dose(
            " ".join(str(p.get("contentString", "")) for p in c.get("payload", [])),
            doses[a.get("reference")],
        )
    }
    if not given or not given <= reported:
        return Check(
            False,
            f"{len(given - reported)} dose(s) not reported",
            expected,
            "every dose goes to the state registry",
        )
    return Check(True, "reported to the registry", expected)


SCREEN = {k: False for k in immunizations.table("vaccines")["screening"]}


def _cu_give(att: Any, ref: str, *, dtap: bool = False) -> None:
    f = att.facts
    s = att.session
    for cvx, lot, route, site, vis in (
        ("08", f["lot_hepb"], "IM", "LT", f["vis_hepb"]),
        ("03", f["lot_mmr"], "SC", "LA", f["vis_mmr"]),
    ):
        imm = immunizations.give(
            s,
            ref,
            cvx=cvx,
            lot=lot,
            expiry="2030-06-30",
            route=route,
            site=site,
            vis_edition=vis,
            screening=SCREEN,
        )
        immunizations.registry_message(s, f"Immunization/{imm['id']}")


def _cu_reference(att: Any, withdraw: str | None = None) -> None:
    """The reference; ``withdraw``: the registry reports then set to that status."""
    f = att.facts
    ref = identify_patient(att)
    try:
        immunizations.give(
            att.session,
            ref,
            cvx="20",
            lot="DT1",
            expiry="2030-06-30",
            route="IM",
            site="RT",
            vis_edition=f["vis_dtap"],
            screening={**SCREEN, "anaphylaxis": True},
        )
    except RuleRefused:
        immunizations.defer(
            att.session,
            ref,
            "20",
            "MEDPREC",
            "anaphylaxis after the previous DTaP dose: contraindicated; provider informed",
        )
    _cu_give(att, ref)
    if withdraw:
        withdraw_messages(att, "Communication", withdraw, ref)


def _cu_no_vis(att: Any, *, identified: bool = True) -> None:
    """Typical mistake: doses charted by hand without the VIS (and nothing about DTaP);
    ``identified=False``: nobody identified either."""
    f = att.facts
    if identified:
        identify_patient(att)
    for cvx, lot in (("08", f["lot_hepb"]), ("03", f["lot_mmr"])):
        att.session.create({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"coding": [{"system": immunizations.CVX, "code": cvx}]},
                            "patient": {"reference": f["patient_ref"]}, "occurrenceDateTime": instant(att.sandbox.clock.peek()), "primarySource": True, "lotNumber": lot})  # fmt: skip


def _cu_unidentified(att: Any) -> None:
    _cu_no_vis(att, identified=False)


def _cu_give_dtap(att: Any) -> None:
    """Harmful: the DTaP is given anyway, ignoring the reported anaphylaxis."""
    f = att.facts
    ref = identify_patient(att)
    _cu_give(att, ref)
    att.session.create({"resourceType": "Immunization", "status": "completed", "vaccineCode": {"coding": [{"system": immunizations.CVX, "code": "20"}]},
                        "patient": {"reference": ref}, "occurrenceDateTime": instant(att.sandbox.clock.peek()), "primarySource": True, "lotNumber": "DT1"})  # fmt: skip
    _ = f


def _cu_typed(
    att: Any,
    *,
    lot: str | None = None,
    vis: str | None = None,
    hepb_route: str = "IM",
    hepb_site: str = "LT",
    expiry: str = "2030-06-30",
) -> None:
    """DTaP deferred through the workflow; the two due doses typed in by hand with every field
    the grader looks for, then reported. As given they are right; ``lot``/``vis`` (a made-up
    lot, an old VIS edition), ``hepb_route``/``hepb_site`` and ``expiry`` make one thing wrong."""
    f = att.facts
    s = att.session
    ref = identify_patient(att)
    immunizations.defer(
        s, ref, "20", "MEDPREC", "anaphylaxis after the previous DTaP dose: contraindicated"
    )
    for cvx, key, route, site in (("08", "hepb", hepb_route, hepb_site), ("03", "mmr", "SC", "LA")):
        v = immunizations.vaccine(cvx)
        imm = s.create(
            {
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": {"coding": [{"system": immunizations.CVX, "code": cvx}]},
                "patient": {"reference": ref},
                "occurrenceDateTime": instant(att.sandbox.clock.peek()),
                "primarySource": True,
                "lotNumber": lot or f[f"lot_{key}"],
                "expirationDate": expiry,
                "manufacturer": {"identifier": {"system": immunizations.MVX, "value": v["mvx"]}},
                "route": {"coding": [{"system": medadmin.ROUTE, "code": route}]},
                "site": {"coding": [{"system": medadmin.ACT_SITE, "code": site}]},
                "education": [{"documentType": "VIS", "publicationDate": vis or f[f"vis_{key}"]}],
            }
        )
        immunizations.registry_message(s, f"Immunization/{imm['id']}")


def _cu_by_hand_any_lot(att: Any) -> None:
    """Every field present, but a made-up lot and an old VIS edition."""
    _cu_typed(att, lot="LOT1", vis="2001-01-01")


def _cu_typed_report(att: Any, *, with_lot: bool = False) -> None:
    """Doses given and the DTaP deferred through the workflows; the registry 'report' typed in
    by hand as a message saying 'VXU sent' (``with_lot``: 'VXU^V04 sent' and the dose's lot)."""
    f = att.facts
    s = att.session
    ref = identify_patient(att)
    immunizations.defer(
        s, ref, "20", "MEDPREC", "anaphylaxis after the previous DTaP dose: contraindicated"
    )
    for cvx, lot, route, site, vis in (
        ("08", f["lot_hepb"], "IM", "LT", f["vis_hepb"]),
        ("03", f["lot_mmr"], "SC", "LA", f["vis_mmr"]),
    ):
        imm = immunizations.give(
            s, ref, cvx=cvx, lot=lot, expiry="2030-06-30", route=route, site=site,
            vis_edition=vis, screening=SCREEN,
        )  # fmt: skip
        s.create(
            {
                "resourceType": "Communication",
                "status": "completed",
                "subject": {"reference": ref},
                "about": [{"reference": f"Immunization/{imm['id']}"}],
                "payload": [
                    {
                        "contentString": f"VXU^V04 sent to the registry, lot {lot}"
                        if with_lot
                        else "VXU sent to the registry"
                    }
                ],
            }
        )


def _cu_edit_history(att: Any) -> None:
    _cu_reference(att)
    tamper(att, att.facts["prior_refs"][1])


CATCH_UP_IMMUNIZATIONS = Exercise(
    id="clinical/catch-up-immunizations",
    title="Immunizations for a child behind schedule",
    topic="clinical",
    topics=("medication-administration",),
    competencies=("I.P.4", "I.P.7", "X.P.3"),
    minutes=20,
    role=MA,
    summary="Catch-up doses with VIS, lot, site and registry report; one vaccine is contraindicated and deferred.",
    setup=_setup_catchup,
    instructions=(
        "**{name}** (DOB {dob}, MRN {mrn}, {months} months) is behind: the chart shows hepatitis B at birth and "
        "one DTaP at 2 months. The provider orders today: **hepatitis B** (CVX 08, lot {lot_hepb}), **MMR** "
        "(CVX 03, lot {lot_mmr}) and **DTaP** (CVX 20).\n\n"
        "Screening: the parent reports a **severe allergic reaction (anaphylaxis) within an hour of the DTaP dose** "
        "at 2 months; every other screening answer is no. The current VIS editions you hand out: hepatitis B "
        "{vis_hepb}, MMR {vis_mmr}, DTaP {vis_dtap}.\n\n"
        "Use `workflows.immunizations` (`give`, `defer`, `registry_message`)."
    ),
    criteria=(
        Criterion(
            "due doses given and documented",
            3,
            _cu_given,
            "Each dose needs CVX, lot, manufacturer, site, route and the VIS edition and date given (42 U.S.C. 300aa-25/26; MAERB I.P.4).",
        ),
        Criterion(
            "contraindicated dose deferred",
            2,
            _cu_deferred,
            "Anaphylaxis after a previous dose contraindicates that vaccine (ACIP); the deferral and its reason are recorded.",
        ),
        Criterion(
            "reported to the registry",
            1,
            _cu_registry,
            "Doses are reported to the state immunization registry (IIS) so the record follows the child.",
        ),
        identified_first(),
    ),
    hints=(
        Hint("Screening answers go in `screening={...}` for each vaccine."),
        Hint("A refused dose is recorded with `defer(..., 'MEDPREC', why)`.", cost=1),
    ),
    solution=Solution(_cu_reference),
    wrong_solutions={
        "deferral-then-entered-in-error": Solution(
            then_withdrawn(
                _cu_reference, "Immunization", only=lambda i: i.get("status") == "not-done"
            ),
            fails="contraindicated dose deferred",
            message="record the deferral with its reason",
            description="the contraindicated vaccine recorded as not done, then that record "
            "marked entered in error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "doses-then-entered-in-error": Solution(
            then_withdrawn(
                _cu_reference, "Immunization", only=lambda i: i.get("status") == "completed"
            ),
            fails="due doses given and documented",
            message="give the VIS before every dose",
            description="the due doses given, documented and reported, then marked entered in "
            "error (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "registry-report-then-entered-in-error": Solution(
            lambda att: _cu_reference(att, withdraw="entered-in-error"),
            fails="reported to the registry",
            message="not reported",
            description="each dose reported to the registry, then the reports marked entered-in-error (a routing undone at hand-in)",
        ),
        "no-vis": Solution(
            _cu_no_vis, fails="due doses given and documented", message="give the VIS"
        ),
        "dtap-anyway": Solution(
            _cu_give_dtap,
            fails="contraindicated dose deferred",
            message="a contraindication means the dose is not given",
        ),
        "edit-history": Solution(
            _cu_edit_history,
            fails="no collateral damage",
            message="answer key depends on",
        ),
        "skipped-identification": skipped_identification(_cu_unidentified),
        "registry-report-typed": Solution(
            _cu_typed_report,
            fails="reported to the registry",
            message="every dose goes to the state registry",
            description="a message saying 'VXU sent' typed in by hand for each dose",
        ),
        "registry-report-typed-with-lot": Solution(
            lambda att: _cu_typed_report(att, with_lot=True),
            fails="reported to the registry",
            message="every dose goes to the state registry",
            description="a message saying 'VXU^V04 sent' with the dose's lot typed in for each "
            "dose",
        ),
        "made-up-lot-old-vis": Solution(
            _cu_by_hand_any_lot,
            fails="due doses given and documented",
            message="a recall finds the child by lot",
            description="doses typed in by hand with every field present but a made-up lot and "
            "an old VIS edition",
        ),
        "hepatitis-b-subcutaneous": Solution(
            lambda att: _cu_typed(att, hepb_route="SC", hepb_site="LA"),
            fails="due doses given and documented",
            message="check the route on the package insert",
            description="hepatitis B (IM only) typed in as given subcutaneously",
        ),
        "hepatitis-b-in-the-buttock": Solution(
            lambda att: _cu_typed(att, hepb_site="LG"),
            fails="due doses given and documented",
            message="the site for the child's age",
            description="hepatitis B typed in as given IM in the gluteal muscle",
        ),
        "expired-lot": Solution(
            lambda att: _cu_typed(att, expiry="2020-01-31"),
            fails="due doses given and documented",
            message="the vial's expiry",
            description="the due doses typed in from lots that expired years ago",
        ),
    },
    expects=(
        Expect("Immunization", ops=("create",), patients=("patient_id",), at_most=3),
        Expect("Communication", ops=("create",), patients=("patient_id",)),
    ),
)
