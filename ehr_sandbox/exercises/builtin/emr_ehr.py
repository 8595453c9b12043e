"""Catalogue section "EMR vs EHR": exercises 21-26 of EXERCISES.md.

The attempt's sandbox is the student's own organization. What the *other* organizations
hold arrives the way the exchange delivers it (see :mod:`ehr_sandbox.network.exchange`):
resources that keep their source in ``meta.source``, listed in ``att.facts["outside"]``.
Graders check that outside data is filed *with* its source and never silently retyped as
local data, that orders are not duplicated, that allergies are coded, that only true
duplicates are linked, and (26) that the student measured both modes with the scenario.

>>> from ehr_sandbox.exercises import get
>>> get("emr-ehr/missing-allergy").role
'dr.patel'
>>> sorted(get("emr-ehr/patient-matching").wrong_solutions)
['name-dob-merge']
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import patient_facts, ref_id
from ehr_sandbox.exercises.grading import GradingContext, codes, text_of
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register
from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.exchange import OUTSIDE_TAG
from ehr_sandbox.network.organizations import ORGANIZATION_SPECS, org_url

__all__ = [
    "BENEFITS_AND_DRAWBACKS",
    "DUPLICATE_TEST",
    "MEDICATION_RECONCILIATION",
    "MISSING_ALLERGY",
    "PATIENT_MATCHING",
    "REFERRAL_LOOP",
    "REPORT_KEY",
    "receive_consult_note",
    "scenario_for",
]

MA, PHYSICIAN, FRONT_DESK = "ma.garcia", "dr.patel", "fd.smith"
_NAMES = {s.key: s.name for s in ORGANIZATION_SPECS}
HOSPITAL, LAB, CARDIOLOGY = (_NAMES["hospital"], _NAMES["lab"], _NAMES["cardiology"])
REPORT_KEY = "emr-ehr-report"
"""Where exercise 26 expects the student's measured report (``att.sandbox.state[REPORT_KEY]``)."""
SOURCE_ADVICE = "keep the outside source (meta.source / informationSource); never retype outside data as your own"


# ------------------------------------------------------------------------------------------
# shared helpers
# ------------------------------------------------------------------------------------------
def _today(sandbox: Any) -> str:
    return sandbox.reference_date.isoformat()


def _adults(sandbox: Any) -> list[dict[str, Any]]:
    s = sandbox.system_session()
    year = sandbox.reference_date.year
    found = [
        p
        for p in s.resources("Patient")
        if not p.get("deceasedDateTime")
        and not p.get("deceasedBoolean")
        and len(p.get("birthDate", "")) == 10
        and year - int(p["birthDate"][:4]) >= 25
    ]
    return sorted(found, key=lambda p: p["id"])


def _book(sandbox: Any, patient_id: str, username: str = PHYSICIAN) -> None:
    """Book the patient with ``username`` today: the care relationship every role here needs."""
    who = f"Practitioner/{sandbox.user(username).practitioner_id}"
    day = _today(sandbox)
    sandbox.system_session().create(
        fb.appointment(
            f"Patient/{patient_id}",
            who,
            f"{day}T09:00:00-05:00",
            f"{day}T09:20:00-05:00",
            "Follow-up visit",
        )
    )


def _outside(resource: dict[str, Any], org_key: str, rid: str) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    out["id"] = rid
    out["meta"] = {"source": org_url(org_key), "tag": [OUTSIDE_TAG], "versionId": "1"}
    return out


def _source_of(res: dict[str, Any]) -> str:
    return str((res.get("meta") or {}).get("source", ""))


def _names_source(res: dict[str, Any], url: str, name: str) -> bool:
    said = " ".join(
        [
            text_of(res.get("informationSource") or {}),
            text_of(res.get("asserter") or {}),
            text_of(res.get("note") or []),
            str((res.get("informationSource") or {}).get("display", "")),
            str((res.get("asserter") or {}).get("display", "")),
        ]
    )
    return _source_of(res) == url or name in said


def _created_by_user(ctx: GradingContext, res: dict[str, Any]) -> bool:
    ref = f"{res['resourceType']}/{res['id']}"
    return any(ctx.by_user(p) for p in ctx.provenance_of_version(ref, "1"))


def _meds(ctx: GradingContext, patient_id: str, rxnorm: str) -> list[dict[str, Any]]:
    ref = f"Patient/{patient_id}"
    found = [m for m in ctx.search("MedicationRequest", patient=ref)]
    found += [
        m
        for m in ctx.all("MedicationStatement")
        if (m.get("subject") or {}).get("reference") == ref
    ]
    return [
        m
        for m in found
        if rxnorm in codes(m.get("medicationCodeableConcept")) and m.get("status") == "active"
    ]


# ------------------------------------------------------------------------------------------
# 21. Medication reconciliation with sources
# ------------------------------------------------------------------------------------------
def _setup_medrec(sandbox: Any, variant: Any) -> dict[str, Any]:
    patient = variant.pick(_adults(sandbox), salt="patient")
    pid = patient["id"]
    _book(sandbox, pid)
    dr = f"Practitioner/{sandbox.user(PHYSICIAN).practitioner_id}"
    s = sandbox.system_session()
    local = s.create(fb.medication_request(f"Patient/{pid}", dr, _today(sandbox), "atorvastatin"))
    ed_day = (sandbox.reference_date - timedelta(days=variant.rng().randint(5, 20))).isoformat()
    outside = [
        _outside(
            fb.medication_request("Patient/ext-1", "Practitioner/ext-dr", ed_day, "atorvastatin"),
            "hospital",
            "ext-mr-1",
        ),
        _outside(
            fb.medication_request("Patient/ext-1", "Practitioner/ext-dr", ed_day, "aspirin"),
            "hospital",
            "ext-mr-2",
        ),
    ]
    return {
        **patient_facts(patient, "patient"),
        "local_statin_id": local["id"],
        "outside": outside,
        "source_url": org_url("hospital"),
        "source_name": HOSPITAL,
        "ed_day": ed_day,
    }


def _medrec_new(ctx: GradingContext) -> Check:
    f = ctx.facts
    found = [
        m for m in _meds(ctx, f["patient_id"], fb.MEDS["aspirin"][0]) if _created_by_user(ctx, m)
    ]
    expected = "aspirin 81 MG (started at the ED) on the local medication list, entered by you"
    if not found:
        return Check(
            False,
            "no active aspirin entry on the local list",
            expected,
            "reconcile every outside medication",
        )
    return Check(True, f"{found[0]['resourceType']}/{found[0]['id']}", expected)


def _medrec_source(ctx: GradingContext) -> Check:
    f = ctx.facts
    found = _meds(ctx, f["patient_id"], fb.MEDS["aspirin"][0])
    expected = (
        f"the aspirin entry names its source ({f['source_name']}, meta.source {f['source_url']})"
    )
    if not found:
        return Check(False, "no aspirin entry to check", expected, SOURCE_ADVICE)
    good = [m for m in found if _names_source(m, f["source_url"], f["source_name"])]
    if not good:
        return Check(
            False, "the aspirin entry looks like a local entry (no source)", expected, SOURCE_ADVICE
        )
    return Check(True, f"source kept on {good[0]['resourceType']}/{good[0]['id']}", expected)


def _medrec_no_dup(ctx: GradingContext) -> Check:
    f = ctx.facts
    statins = _meds(ctx, f["patient_id"], fb.MEDS["atorvastatin"][0])
    expected = "exactly one active atorvastatin entry (it was already on the list)"
    ok = len(statins) == 1
    return Check(
        ok,
        f"{len(statins)} active atorvastatin entries",
        expected,
        "" if ok else "no duplicates: a drug already on the list is confirmed, not added again",
    )


def _medrec_entry(att: Any, key: str, *, with_source: bool) -> None:
    f = att.facts
    res = fb.medication_statement(
        f"Patient/{f['patient_id']}",
        key,
        _today(att.sandbox),
        source=f["source_name"] if with_source else None,
    )
    if with_source:
        res["meta"] = {"source": f["source_url"], "tag": [OUTSIDE_TAG]}
    att.session.create(res, reason="medication reconciliation with the shared record")


def _medrec_solution(att: Any) -> None:
    _medrec_entry(att, "aspirin", with_source=True)


def _medrec_retype(att: Any) -> None:
    _medrec_entry(att, "aspirin", with_source=False)


def _medrec_add_all(att: Any) -> None:
    _medrec_entry(att, "aspirin", with_source=True)
    _medrec_entry(att, "atorvastatin", with_source=True)


MEDICATION_RECONCILIATION = register(
    Exercise(
        id="emr-ehr/medication-reconciliation",
        title="Silo vs shared record: reconcile an outside medication list",
        topic="emr-ehr",
        competencies=("I.P.4", "VI.P.6", "X.P.3"),
        minutes=15,
        role=MA,
        patients=8,
        summary="Reconcile the ED's medication list into the local list, with its source and without duplicates.",
        setup=_setup_medrec,
        instructions=(
            "**{patient_name}** (DOB {patient_dob}, MRN {patient_mrn}) is here today. Through the exchange, the shared "
            "record shows the medications **{source_name}** recorded on {ed_day} (`att.facts['outside']`, each with "
            "`meta.source` = `{source_url}`).\n\nReconcile them with the local medication list: add what is new, keeping "
            "where it came from; do not add what is already on the list."
        ),
        criteria=(
            Criterion(
                "outside medication reconciled",
                2,
                _medrec_new,
                "An incomplete medication list causes interactions and duplicate therapy (MAERB I.P.4).",
            ),
            Criterion(
                "source kept",
                2,
                _medrec_source,
                "Outside data must stay attributable to its source; it is never silently mixed with local data (documentation standards, X.P.3).",
            ),
            Criterion(
                "no duplicates",
                2,
                _medrec_no_dup,
                "A drug listed twice looks like two prescriptions and invites double dosing (MAERB I.P.4).",
            ),
        ),
        hints=(
            Hint("Compare RxNorm codes: `m['medicationCodeableConcept']['coding'][0]['code']`."),
            Hint(
                "A MedicationStatement with `informationSource` and `meta.source` keeps the source.",
                cost=1,
            ),
        ),
        solution=Solution(
            _medrec_solution, description="add aspirin as a MedicationStatement naming the ED"
        ),
        wrong_solutions={
            "retype-local": Solution(
                _medrec_retype,
                fails="source kept",
                message="keep the outside source",
                description="retype the outside drug as a local entry",
            ),
            "add-everything": Solution(
                _medrec_add_all,
                fails="no duplicates",
                message="no duplicates",
                description="add every outside drug, including the statin already listed",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 22. Referral loop
# ------------------------------------------------------------------------------------------
def _setup_referral(sandbox: Any, variant: Any) -> dict[str, Any]:
    patient = variant.pick(_adults(sandbox), salt="patient")
    _book(sandbox, patient["id"])
    reason = variant.pick(
        ["Chest tightness on exertion", "Palpitations for two weeks", "Murmur heard at the visit"],
        salt="reason",
    )
    return {**patient_facts(patient, "patient"), "reason": reason, "performer": CARDIOLOGY}


def receive_consult_note(att: Any) -> str:
    """The cardiology consult note arrives (scanned from the fax); returns its DocumentReference id."""
    f = att.facts
    text = f"Consult note from {CARDIOLOGY}: evaluated for {f['reason'].lower()}; stress test normal. Back to primary care."
    note = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [
                {"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}
            ],
            "text": "Consult note",
        },
        "subject": {"reference": f"Patient/{f['patient_id']}"},
        "date": f"{_today(att.sandbox)}T15:00:00-05:00",
        "author": [{"display": CARDIOLOGY}],
        "description": "Cardiology consult note (received by fax)",
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "title": "Consult note",
                    "data": __import__("base64").b64encode(text.encode()).decode(),
                }
            }
        ],
    }
    return att.sandbox.system_session().create(note, reason="received by fax")["id"]


def _referrals(ctx: GradingContext) -> list[dict[str, Any]]:
    ref = f"Patient/{ctx.facts['patient_id']}"
    return [
        sr
        for sr in ctx.search("ServiceRequest", patient=ref)
        if "referral" in text_of(sr.get("code") or {}).lower() and _created_by_user(ctx, sr)
    ]


def _ref_complete(ctx: GradingContext) -> Check:
    expected = (
        f"a referral ServiceRequest by you with requester, performer ({CARDIOLOGY}) and a reason"
    )
    found = _referrals(ctx)
    if not found:
        return Check(
            False,
            "no referral ServiceRequest (code text 'Referral ...') by you",
            expected,
            "place the referral",
        )
    sr = found[0]
    missing = [
        name
        for name, ok in (
            ("requester", (sr.get("requester") or {}).get("reference") == ctx.practitioner_ref),
            (
                "performer",
                CARDIOLOGY in text_of(sr.get("performer") or [])
                or any(CARDIOLOGY in str(p.get("display", "")) for p in sr.get("performer", [])),
            ),
            ("reason", bool(sr.get("reasonCode") or sr.get("reasonReference"))),
        )
        if not ok
    ]
    if missing:
        return Check(
            False,
            f"ServiceRequest/{sr['id']} lacks {', '.join(missing)}",
            expected,
            "a referral says who asks whom and why",
        )
    return Check(True, f"ServiceRequest/{sr['id']}", expected)


def _ref_supporting(ctx: GradingContext) -> Check:
    expected = (
        "supportingInfo pointing at this patient's relevant data (a result, a problem, a note)"
    )
    found = _referrals(ctx)
    infos = [i for sr in found for i in sr.get("supportingInfo", [])]
    if not infos:
        return Check(
            False,
            "no supporting information on the referral",
            expected,
            "send supporting information: the specialist must not start from zero",
        )
    return Check(True, f"{len(infos)} supporting reference(s)", expected)


def _ref_closed(ctx: GradingContext) -> Check:
    expected = "the referral completed and the consult note linked to it (context.related)"
    found = _referrals(ctx)
    if not found:
        return Check(False, "no referral", expected, "close the loop when the note arrives")
    sr = found[0]
    notes = [
        d
        for d in ctx.search("DocumentReference", patient=f"Patient/{ctx.facts['patient_id']}")
        if any(
            (r.get("reference") == f"ServiceRequest/{sr['id']}")
            for r in (d.get("context") or {}).get("related", [])
        )
    ]
    if sr.get("status") != "completed" or not notes:
        return Check(
            False,
            f"status {sr.get('status')!r}, {len(notes)} linked note(s)",
            expected,
            "close the loop: link the consult note and complete the referral",
        )
    return Check(
        True,
        f"ServiceRequest/{sr['id']} completed; DocumentReference/{notes[0]['id']} linked",
        expected,
    )


def _referral_flow(att: Any, *, supporting: bool) -> None:
    f, s = att.facts, att.session
    pid = f"Patient/{f['patient_id']}"
    info = []
    if supporting:
        obs = (
            s.search("Observation", patient=pid).first()
            or s.search("Condition", patient=pid).first()
        )
        info = [f"{obs['resourceType']}/{obs['id']}"] if obs else []
        if not info:
            enc = s.search("Encounter", patient=pid).first()
            info = [f"Encounter/{enc['id']}"]
    sr = s.create(
        fb.referral(
            pid,
            f"Practitioner/{att.user.practitioner_id}",
            _today(att.sandbox),
            f["performer"],
            f["reason"],
            supporting=info or None,
        )
    )
    note_id = receive_consult_note(att)
    note = s.read("DocumentReference", note_id)
    note["context"] = {"related": [{"reference": f"ServiceRequest/{sr['id']}"}]}
    s.update(note, reason="consult note received for this referral")
    sr = s.read("ServiceRequest", sr["id"])
    sr["status"] = "completed"
    s.update(sr, reason="consult note received; referral loop closed")


REFERRAL_LOOP = register(
    Exercise(
        id="emr-ehr/referral-loop",
        title="Referral: send it complete and close the loop",
        topic="emr-ehr",
        competencies=("V.P.10", "V.P.11", "X.P.3"),
        minutes=15,
        role=PHYSICIAN,
        patients=8,
        summary="ServiceRequest with requester, performer, reason and supporting info; closed when the consult note arrives.",
        setup=_setup_referral,
        instructions=(
            "Refer **{patient_name}** (DOB {patient_dob}) to **{performer}** for: *{reason}*.\n\n"
            "1. Create the referral (`ServiceRequest`, code text 'Referral to cardiology') with requester, performer, reason "
            "and supporting information.\n2. When the consult note arrives (`emr_ehr.receive_consult_note(att)`), link it to "
            "the referral (`DocumentReference.context.related`) and complete the referral."
        ),
        criteria=(
            Criterion(
                "referral complete",
                2,
                _ref_complete,
                "A referral must say who refers, to whom and why (MAERB V.P.10).",
            ),
            Criterion(
                "supporting information",
                2,
                _ref_supporting,
                "Without the data behind the question the specialist repeats tests or guesses (MAERB V.P.11).",
            ),
            Criterion(
                "loop closed",
                2,
                _ref_closed,
                "Open referral loops are a known patient-safety gap: every referral is tracked until the answer is back (X.P.3).",
            ),
        ),
        hints=(
            Hint(
                "`from ehr_sandbox.network.fhir_builders import referral` builds the ServiceRequest."
            ),
        ),
        solution=Solution(
            lambda att: _referral_flow(att, supporting=True),
            description="complete referral, then close it",
        ),
        wrong_solutions={
            "no-supporting-info": Solution(
                lambda att: _referral_flow(att, supporting=False),
                fails="supporting information",
                message="send supporting information",
                description="a referral with no supporting information",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 23. Duplicate test
# ------------------------------------------------------------------------------------------
_LIPID_CODES = {fb.LIPID_PANEL[0], *fb.LIPID_CODES}


def _setup_duplicate(sandbox: Any, variant: Any) -> dict[str, Any]:
    patient = variant.pick(_adults(sandbox), salt="patient")
    _book(sandbox, patient["id"])
    rng = variant.rng()
    values = (rng.randint(180, 250), rng.randint(100, 260), rng.randint(35, 60))
    drawn = (sandbox.reference_date - timedelta(days=14)).isoformat()
    outside = [
        _outside(o, "lab", f"ext-obs-{n}")
        for n, o in enumerate(fb.lipid_panel("Patient/ext-1", f"{drawn}T08:00:00-05:00", values))
    ]
    return {
        **patient_facts(patient, "patient"),
        "outside": outside,
        "drawn": drawn,
        "lab": LAB,
        "source_url": org_url("lab"),
        "cholesterol": values[0],
    }


def _dup_no_order(ctx: GradingContext) -> Check:
    ref = f"Patient/{ctx.facts['patient_id']}"
    orders = [
        sr
        for sr in ctx.search("ServiceRequest", patient=ref)
        if codes(sr.get("code")) & _LIPID_CODES and _created_by_user(ctx, sr)
    ]
    undocumented = [
        sr for sr in orders if not (text_of(sr.get("note") or []) or sr.get("reasonCode"))
    ]
    expected = "no new lipid panel order (or one with a documented reason to repeat it)"
    if undocumented:
        return Check(
            False,
            f"ServiceRequest/{undocumented[0]['id']} orders the lipid panel again",
            expected,
            f"the panel was done two weeks ago at {LAB}: do not order it again without a reason",
        )
    return Check(
        True,
        f"{len(orders)} new lipid order(s), each with a reason" if orders else "no new lipid order",
        expected,
    )


def _dup_filed(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"Patient/{f['patient_id']}"
    found = [
        o
        for o in ctx.search("Observation", patient=ref, code="http://loinc.org|2093-3")
        if _source_of(o) == f["source_url"]
        and (o.get("valueQuantity") or {}).get("value") == f["cholesterol"]
    ]
    expected = f"the outside cholesterol {f['cholesterol']} mg/dL in the chart with meta.source {f['source_url']}"
    if not found:
        return Check(
            False, "the outside result is not in the chart with its source", expected, SOURCE_ADVICE
        )
    return Check(True, f"Observation/{found[0]['id']}", expected)


def _file_outside_results(att: Any) -> None:
    for o in att.facts["outside"]:
        res = {k: copy.deepcopy(v) for k, v in o.items() if k not in ("id", "meta")}
        res["subject"] = {"reference": f"Patient/{att.facts['patient_id']}"}
        res["meta"] = {"source": att.facts["source_url"], "tag": [OUTSIDE_TAG]}
        att.session.create(res, reason=f"outside result from {LAB} reviewed")


def _dup_order_again(att: Any) -> None:
    _file_outside_results(att)
    pid = f"Patient/{att.facts['patient_id']}"
    att.session.create(
        fb.service_request(
            pid,
            f"Practitioner/{att.user.practitioner_id}",
            _today(att.sandbox),
            fb.LIPID_PANEL,
            performer=LAB,
        )
    )


DUPLICATE_TEST = register(
    Exercise(
        id="emr-ehr/duplicate-test",
        title="Duplicate test: an outside lipid panel two weeks old",
        topic="emr-ehr",
        competencies=("VI.P.6", "V.P.11", "X.P.3"),
        minutes=10,
        role=PHYSICIAN,
        patients=8,
        summary="The shared record has a lipid panel from two weeks ago: file it with its source; do not order it again.",
        setup=_setup_duplicate,
        instructions=(
            "**{patient_name}** (DOB {patient_dob}) needs lipids for today's decision. The shared record shows a lipid panel "
            "drawn on {drawn} at **{lab}** (`att.facts['outside']`, total cholesterol {cholesterol} mg/dL).\n\n"
            "File the outside results in the chart keeping their source, and decide whether a new order is needed."
        ),
        criteria=(
            Criterion(
                "no duplicate order",
                2,
                _dup_no_order,
                "Repeating a recent test costs the patient a needle stick and money and adds nothing (Choosing Wisely).",
            ),
            Criterion(
                "outside result filed with source",
                2,
                _dup_filed,
                "Outside results stay attributable to the lab that produced them (documentation standards).",
            ),
        ),
        hints=(
            Hint(
                "Copy each outside Observation, point `subject` at the local patient, keep `meta.source`."
            ),
        ),
        solution=Solution(
            _file_outside_results,
            description="file the outside results with their source; no order",
        ),
        wrong_solutions={
            "order-again": Solution(
                _dup_order_again,
                fails="no duplicate order",
                message="do not order it again",
                description="order the lipid panel again",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 24. Missing allergy
# ------------------------------------------------------------------------------------------
def _setup_allergy(sandbox: Any, variant: Any) -> dict[str, Any]:
    candidates = [
        p
        for p in _adults(sandbox)
        if not any(
            fb.PENICILLIN[0] in codes(a.get("code"))
            for a in sandbox.system_session()
            .search("AllergyIntolerance", patient=f"Patient/{p['id']}")
            .fetch()
        )
    ]
    patient = variant.pick(candidates, salt="patient")
    _book(sandbox, patient["id"])
    dr = f"Practitioner/{sandbox.user(PHYSICIAN).practitioner_id}"
    order = sandbox.system_session().create(
        fb.medication_request(
            f"Patient/{patient['id']}", dr, _today(sandbox), "amoxicillin", status="draft"
        )
    )
    ed_day = (sandbox.reference_date - timedelta(days=variant.rng().randint(10, 40))).isoformat()
    outside = [_outside(fb.allergy("Patient/ext-1", ed_day, None), "hospital", "ext-alg-1")]
    return {
        **patient_facts(patient, "patient"),
        "order_id": order["id"],
        "outside": outside,
        "ed_day": ed_day,
        "source_url": org_url("hospital"),
        "source_name": HOSPITAL,
    }


def _penicillin_allergies(ctx: GradingContext) -> list[dict[str, Any]]:
    ref = f"Patient/{ctx.facts['patient_id']}"
    return [
        a
        for a in ctx.search("AllergyIntolerance", patient=ref)
        if fb.PENICILLIN[0] in codes(a.get("code")) and "active" in codes(a.get("clinicalStatus"))
    ]


def _alg_coded(ctx: GradingContext) -> Check:
    found = _penicillin_allergies(ctx)
    expected = "an active, coded penicillin AllergyIntolerance on the patient"
    if not found:
        return Check(
            False,
            "no coded penicillin allergy (only free text, or nothing)",
            expected,
            "an allergy only in free text is invisible to allergy checking: record it as an AllergyIntolerance",
        )
    return Check(True, f"AllergyIntolerance/{found[0]['id']}", expected)


def _alg_source(ctx: GradingContext) -> Check:
    f = ctx.facts
    found = _penicillin_allergies(ctx)
    expected = f"the allergy names its source ({f['source_name']})"
    good = [a for a in found if _names_source(a, f["source_url"], f["source_name"])]
    if not good:
        return Check(False, "no penicillin allergy naming its source", expected, SOURCE_ADVICE)
    return Check(True, f"AllergyIntolerance/{good[0]['id']} from {f['source_name']}", expected)


def _alg_held(ctx: GradingContext) -> Check:
    order = ctx.read(f"MedicationRequest/{ctx.facts['order_id']}") or {}
    ok = order.get("status") in ("on-hold", "cancelled", "stopped")
    return Check(
        ok,
        f"the amoxicillin order is {order.get('status')!r}",
        "the amoxicillin order on hold (or cancelled)",
        "" if ok else "hold the order that conflicts with the allergy",
    )


def _hold(att: Any) -> None:
    s = att.session
    order = s.read("MedicationRequest", att.facts["order_id"])
    order["status"] = "on-hold"
    s.update(order, reason="penicillin allergy reported by the ED: held for the prescriber")


def _alg_solution(att: Any) -> None:
    f = att.facts
    res = {k: copy.deepcopy(v) for k, v in f["outside"][0].items() if k not in ("id", "meta")}
    res["patient"] = {"reference": f"Patient/{f['patient_id']}"}
    res["asserter"] = {"display": f["source_name"]}
    res["meta"] = {"source": f["source_url"], "tag": [OUTSIDE_TAG]}
    att.session.create(res, reason="allergy from the shared record, confirmed with the patient")
    _hold(att)


def _alg_free_text(att: Any) -> None:
    s = att.session
    order = s.read("MedicationRequest", att.facts["order_id"])
    order["status"] = "on-hold"
    order["note"] = [{"text": "Pt allergic to PCN per ED"}]
    s.update(order, reason="allergy")


MISSING_ALLERGY = register(
    Exercise(
        id="emr-ehr/missing-allergy",
        title="Missing allergy: penicillin in the shared record, amoxicillin pending",
        topic="emr-ehr",
        competencies=("I.P.4", "X.P.3", "VI.P.6"),
        minutes=10,
        role=PHYSICIAN,
        patients=8,
        summary="Record the ED's penicillin allergy (coded, with its source) and hold the pending amoxicillin.",
        setup=_setup_allergy,
        instructions=(
            "An amoxicillin order is pending for **{patient_name}** (DOB {patient_dob}): `MedicationRequest/{order_id}`. "
            "The shared record shows a **penicillin allergy** recorded on {ed_day} by **{source_name}** "
            "(`att.facts['outside']`), unknown to your chart.\n\nRecord the allergy and deal with the order."
        ),
        criteria=(
            Criterion(
                "allergy coded",
                2,
                _alg_coded,
                "Only coded allergies drive drug-allergy checking (MAERB I.P.4).",
            ),
            Criterion(
                "allergy source kept",
                1,
                _alg_source,
                "Who reported an allergy matters when it is questioned later (documentation standards).",
            ),
            Criterion(
                "order held",
                2,
                _alg_held,
                "A drug the patient is allergic to must not be given (rights of medication administration).",
            ),
        ),
        hints=(
            Hint(
                "Copy the outside AllergyIntolerance, point `patient` at your patient, keep `meta.source`."
            ),
        ),
        solution=Solution(_alg_solution, description="coded allergy with source; order on hold"),
        wrong_solutions={
            "free-text": Solution(
                _alg_free_text,
                fails="allergy coded",
                message="only in free text",
                description="mention the allergy in a note on the order",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 25. Patient matching
# ------------------------------------------------------------------------------------------
def _setup_matching(sandbox: Any, variant: Any) -> dict[str, Any]:
    from ehr_sandbox.network.journey import birth_date_typo
    from ehr_sandbox.network.matching import score_pair

    s = sandbox.system_session()
    adults = [p for p in _adults(sandbox) if birth_date_typo(p["birthDate"])]
    original = variant.pick(adults, salt="patient")
    dup = {
        k: copy.deepcopy(v)
        for k, v in original.items()
        if k not in ("id", "meta", "text", "generalPractitioner")
    }
    dup["birthDate"] = birth_date_typo(original["birthDate"])
    dup["identifier"] = [
        {"system": "http://ehr-sandbox.org/fhir/mrn", "value": f"MRN9{variant.seed % 10**6:06d}"}
    ]
    dup = s.create(dup, reason="registered at the front desk")
    twin_base = {
        k: copy.deepcopy(v)
        for k, v in variant.pick(adults, salt="twins").items()
        if k not in ("id", "meta", "text", "generalPractitioner", "extension")
    }
    twins = []
    for n, (given, gender) in enumerate((("Jordan", "female"), ("Jamie", "male"))):
        t = copy.deepcopy(twin_base)
        t["name"] = [{"use": "official", "family": "Okoro", "given": [given]}]
        t["gender"], t["birthDate"] = gender, "2003-07-21"
        t["identifier"] = [
            {
                "system": "http://ehr-sandbox.org/fhir/mrn",
                "value": f"MRN8{n}{variant.seed % 10**5:05d}",
            }
        ]
        twins.append(s.create(t, reason="registered at the front desk"))
    pair = score_pair(original, dup)
    twin_score = score_pair(twins[0], twins[1])
    return {
        **patient_facts(original, "original"),
        **patient_facts(dup, "dup"),
        "twin_a": twins[0]["id"],
        "twin_b": twins[1]["id"],
        "dup_score": round(pair.total, 1),
        "twin_score": round(twin_score.total, 1),
        "dup_explanation": pair.explanation,
        "twin_explanation": twin_score.explanation,
    }


def _links_between(ctx: GradingContext, a: str, b: str) -> list[str]:
    out = []
    for x, y in ((a, b), (b, a)):
        p = ctx.read(f"Patient/{x}") or {}
        out += [lk.get("type", "") for lk in p.get("link", []) if ref_id(lk.get("other")) == y]
    return out


def _match_dup(ctx: GradingContext) -> Check:
    f = ctx.facts
    found = _links_between(ctx, f["original_id"], f["dup_id"])
    expected = f"Patient/{f['dup_id']} linked to Patient/{f['original_id']} (Patient.link replaced-by / replaces)"
    ok = bool(found)
    return Check(
        ok,
        f"links: {found or 'none'}",
        expected,
        ""
        if ok
        else "a transposed birth date is still the same person: look at every field, not only DOB",
    )


def _match_twins(ctx: GradingContext) -> Check:
    f = ctx.facts
    found = _links_between(ctx, f["twin_a"], f["twin_b"])
    expected = "the twins left as two people (no Patient.link between them)"
    ok = not found
    return Check(
        ok,
        f"links between the twins: {found or 'none'}",
        expected,
        "" if ok else "never merge on name + DOB alone: twins share both",
    )


def _link(att: Any, keep: str, dup: str) -> None:
    s = att.session
    d = s.read("Patient", dup)
    d["link"] = [{"other": {"reference": f"Patient/{keep}"}, "type": "replaced-by"}]
    s.update(
        d,
        reason="duplicate registration: same person (birth date typed with day and month swapped)",
    )
    k = s.read("Patient", keep)
    k["link"] = [*k.get("link", []), {"other": {"reference": f"Patient/{dup}"}, "type": "replaces"}]
    s.update(k, reason="duplicate registration linked")


def _match_solution(att: Any) -> None:
    _link(att, att.facts["original_id"], att.facts["dup_id"])


def _match_name_dob(att: Any) -> None:
    s = att.session
    everyone = sorted(s.search("Patient").fetch(), key=lambda p: p["id"])
    seen: dict[tuple[str, str], str] = {}
    for p in everyone:
        key = ((p.get("name") or [{}])[0].get("family", ""), p.get("birthDate", ""))
        if key in seen:
            _link(att, seen[key], p["id"])
        else:
            seen[key] = p["id"]


PATIENT_MATCHING = register(
    Exercise(
        id="emr-ehr/patient-matching",
        title="Patient matching: a transposed birth date and a pair of twins",
        topic="emr-ehr",
        competencies=("VI.P.7", "VI.P.4", "X.P.3"),
        minutes=15,
        role=FRONT_DESK,
        patients=8,
        summary="Link only true duplicates (Patient.link); keep twins apart.",
        setup=_setup_matching,
        instructions=(
            "The data-quality report flags two pairs:\n\n1. **{original_name}** (DOB {original_dob}, `Patient/{original_id}`) "
            "and **{dup_name}** (DOB {dup_dob}, `Patient/{dup_id}`): match score {dup_score}.\n"
            "2. `Patient/{twin_a}` and `Patient/{twin_b}` (same family name, birth date, address and phone): score {twin_score}."
            "\n\nThe explanations are in `att.facts['dup_explanation']` and `att.facts['twin_explanation']`. Link only records "
            "that are the same person (`Patient.link`: the duplicate `replaced-by` the original)."
        ),
        criteria=(
            Criterion(
                "true duplicate linked",
                2,
                _match_dup,
                "Two charts for one person split allergies and results between them (MAERB VI.P.7).",
            ),
            Criterion(
                "twins kept apart",
                3,
                _match_twins,
                "A false merge puts one person's data in another's chart: worse than a missed match (patient safety).",
            ),
        ),
        hints=(Hint("Read the explanation: which fields agree, which disagree, and why."),),
        solution=Solution(_match_solution, description="link the transposed-DOB duplicate only"),
        wrong_solutions={
            "name-dob-merge": Solution(
                _match_name_dob,
                fails="twins kept apart",
                message="name + DOB alone",
                description="link every pair with the same family name and birth date",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 26. Benefits and drawbacks
# ------------------------------------------------------------------------------------------
_SCENARIOS: dict[tuple[int, int, int], Any] = {}
_REPORTED = ("duplicate_tests", "allergies_missed", "conflicts_caught", "rekey_errors")
_PRIVACY = ("people_with_access", "organizations_with_access")


def scenario_for(seed: int, patients: int, people: int) -> Any:
    """The :class:`~ehr_sandbox.network.Scenario` of these arguments (cached: runs are deterministic)."""
    from ehr_sandbox.network import Scenario

    key = (seed, patients, people)
    if key not in _SCENARIOS:
        _SCENARIOS[key] = Scenario(seed=seed, patients=patients, people=people)
    return _SCENARIOS[key]


def _setup_benefits(sandbox: Any, variant: Any) -> dict[str, Any]:
    return {
        "scenario_seed": variant.seed % 10_000,
        "patients": 12,
        "people": 3,
        "report_key": REPORT_KEY,
    }


def _measured(ctx: GradingContext) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    f = ctx.facts
    sc = scenario_for(f["scenario_seed"], f["patients"], f["people"])
    truth = {
        "emr": sc.run("emr").metrics,
        "ehr": sc.run("ehr").metrics,
        "ehr_hospital_down": sc.run("ehr", down="hospital").metrics,
    }
    report = ctx.sandbox.state.get(REPORT_KEY) or {}
    return report, truth


def _compare(
    report: dict[str, Any],
    truth: dict[str, dict[str, float]],
    runs: tuple[str, ...],
    metrics: tuple[str, ...],
) -> list[str]:
    wrong = []
    for run in runs:
        for m in metrics:
            got = (report.get(run) or {}).get(m)
            if not isinstance(got, int | float) or abs(float(got) - truth[run][m]) > 1e-6:
                wrong.append(f"{run}.{m}={got!r}")
    return wrong


def _ben_benefits(ctx: GradingContext) -> Check:
    report, truth = _measured(ctx)
    wrong = _compare(report, truth, ("emr", "ehr"), _REPORTED)
    expected = "for emr and ehr: " + ", ".join(_REPORTED) + " as the scenario measured them"
    if wrong:
        return Check(
            False,
            "missing or different: " + ", ".join(wrong[:4]),
            expected,
            "report what you measured, not what you remember",
        )
    return Check(True, "benefits reported as measured", expected)


def _ben_privacy(ctx: GradingContext) -> Check:
    report, truth = _measured(ctx)
    wrong = _compare(report, truth, ("emr", "ehr"), _PRIVACY)
    expected = "people_with_access and organizations_with_access for both modes"
    if wrong:
        return Check(
            False,
            "missing or different: " + ", ".join(wrong[:4]),
            expected,
            "sharing has a privacy cost: report who could see the record",
        )
    return Check(True, "privacy cost reported", expected)


def _ben_downtime(ctx: GradingContext) -> Check:
    report, truth = _measured(ctx)
    wrong = _compare(
        report, truth, ("ehr_hospital_down",), ("conflicts_caught", "allergies_missed")
    )
    expected = "ehr_hospital_down: conflicts_caught and allergies_missed"
    if wrong:
        return Check(
            False,
            "missing or different: " + ", ".join(wrong),
            expected,
            "measure the drawback too: one organization down",
        )
    return Check(True, "downtime effect reported", expected)


def _ben_report(att: Any, *, privacy: bool) -> None:
    f = att.facts
    sc = scenario_for(f["scenario_seed"], f["patients"], f["people"])
    keep = _REPORTED + (_PRIVACY if privacy else ())
    report = {
        run: {m: metrics[m] for m in keep}
        for run, metrics in (
            ("emr", sc.run("emr").metrics),
            ("ehr", sc.run("ehr").metrics),
            ("ehr_hospital_down", sc.run("ehr", down="hospital").metrics),
        )
    }
    att.sandbox.state[REPORT_KEY] = report


BENEFITS_AND_DRAWBACKS = register(
    Exercise(
        id="emr-ehr/benefits-and-drawbacks",
        title="Benefits and drawbacks: the same journey as EMR and as EHR",
        topic="emr-ehr",
        competencies=("VI.P.6", "X.P.2", "V.P.11"),
        minutes=30,
        role=PHYSICIAN,
        patients=2,
        summary="Run the scenario in both modes (and with the hospital down) and report the measured differences, privacy cost included.",
        setup=_setup_benefits,
        instructions=(
            "Run the scenario:\n\n```python\nfrom ehr_sandbox.network import Scenario\n"
            "sc = Scenario(seed={scenario_seed}, patients={patients}, people={people})\nsc.compare()\n```\n\n"
            "Then report what you measured in `att.sandbox.state['{report_key}']` as a dict with keys `emr`, `ehr` and "
            "`ehr_hospital_down`, each a dict of metric -> value: duplicate_tests, allergies_missed, conflicts_caught, "
            "rekey_errors, people_with_access, organizations_with_access."
        ),
        criteria=(
            Criterion(
                "benefits measured",
                2,
                _ben_benefits,
                "Claims about EHRs should rest on measurement, not on a list (VI.P.6).",
            ),
            Criterion(
                "privacy cost measured",
                2,
                _ben_privacy,
                "Every person who can see a record is a disclosure risk: sharing widens access (HIPAA minimum necessary, X.P.2).",
            ),
            Criterion(
                "downtime measured",
                1,
                _ben_downtime,
                "A shared record is only as available as the systems behind it (contingency planning, 164.308(a)(7)).",
            ),
        ),
        hints=(Hint("`sc.run('ehr', down='hospital').metrics` gives the downtime run."),),
        solution=Solution(
            lambda att: _ben_report(att, privacy=True), description="report every measured metric"
        ),
        wrong_solutions={
            "benefits-only": Solution(
                lambda att: _ben_report(att, privacy=False),
                fails="privacy cost measured",
                message="who could see the record",
                description="report only the benefits",
            ),
        },
    )
)
