"""Catalogue item 21, ``emr-ehr/medication-reconciliation``: the ED's medication list is
reconciled into the local list, with its source and without duplicates.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import (
    in_another_code_system,
    patient_facts,
    rewrite_answer_key,
)
from ehr_sandbox.exercises.builtin.emr_ehr.common import (
    HOSPITAL,
    MA,
    PHYSICIAN,
    SOURCE_ADVICE,
    adult_patients,
    book_visit,
    created_by_user,
    names_source,
    outside_copy,
    session_today,
    today_iso,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution
from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.exchange import OUTSIDE_TAG
from ehr_sandbox.network.organizations import org_url
from ehr_sandbox.workflows.intake import classes_of
from synthetic.systems import NDC, RXNORM

__all__ = ["MEDICATION_RECONCILIATION"]


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


def _on_a_statin(sandbox: Any) -> set[str]:
    """Patients with an active statin (any product of the class) on their list already: the
    local statin order the setup writes would then be duplicate therapy before the student
    starts, and the reference solution could not reach "exactly one"."""
    s = sandbox.system_session()
    found: set[str] = set()
    for kind in ("MedicationRequest", "MedicationStatement"):
        for m in s.resources(kind):
            if m.get("status") == "active" and any(
                "statin" in classes_of(c) for c in codes(m.get("medicationCodeableConcept"))
            ):
                found.add(str((m.get("subject") or {}).get("reference", "")).rpartition("/")[2])
    return found


def _setup_medrec(sandbox: Any, variant: Any) -> dict[str, Any]:
    on_statin = _on_a_statin(sandbox)
    candidates = [p for p in adult_patients(sandbox) if p["id"] not in on_statin]
    patient = variant.pick(candidates, salt="patient")
    pid = patient["id"]
    book_visit(sandbox, pid)
    dr = f"Practitioner/{sandbox.user(PHYSICIAN).practitioner_id}"
    s = sandbox.system_session()
    local = s.create(
        fb.medication_request(f"Patient/{pid}", dr, today_iso(sandbox), "atorvastatin")
    )
    ed_day = (sandbox.reference_date - timedelta(days=variant.rng().randint(5, 20))).isoformat()
    outside = [
        outside_copy(
            fb.medication_request("Patient/ext-1", "Practitioner/ext-dr", ed_day, "atorvastatin"),
            "hospital",
            "ext-mr-1",
        ),
        outside_copy(
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
        m for m in _meds(ctx, f["patient_id"], fb.MEDS["aspirin"][0]) if created_by_user(ctx, m)
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
    good = [m for m in found if names_source(m, f["source_url"], f["source_name"])]
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
        session_today(att.session),
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


def _medrec_replace_local(att: Any) -> None:
    """Harm: stop the local statin (the prescriber's order; the MA may not, so under the
    physician's login) and add the ED's list instead."""
    f = att.facts
    doctor = att.sandbox.login(PHYSICIAN)
    statin = doctor.read("MedicationRequest", f["local_statin_id"])
    statin["status"] = "stopped"
    doctor.update(statin)
    _medrec_add_all(att)


def _medrec_other_patient(att: Any) -> None:
    """Harm: the right entry, plus the same entry on another patient's list."""
    f, s = att.facts, att.session
    _medrec_solution(att)
    other = next(p["id"] for p in s.search("Patient").fetch() if p["id"] != f["patient_id"])
    res = fb.medication_statement(
        f"Patient/{other}", "aspirin", session_today(s), source=f["source_name"]
    )
    res["meta"] = {"source": f["source_url"], "tag": [OUTSIDE_TAG]}
    s.create(res, reason="medication reconciliation with the shared record")


def _medrec_answer_key(att: Any) -> None:
    """Answer-key change: drop the new drug from the outside list in the facts; add nothing."""
    forged = rewrite_answer_key(
        att, outside=[m for m in att.facts["outside"] if "aspirin" not in str(m).lower()]
    )
    for med in forged["outside"]:  # everything 'outside' is already on the list: nothing to add
        assert med


MEDICATION_RECONCILIATION = Exercise(
    id="emr-ehr/medication-reconciliation",
    title="Silo vs shared record: reconcile an outside medication list",
    topic="emr-ehr",
    topics=("emr-vs-ehr", "medical-history", "medication-administration"),
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
        "where it came from; do not add what is already on the list, and change nothing else (the "
        "local orders are the prescriber's)."
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
    expects=(Expect("MedicationStatement", ops=("create",), patients=("patient_id",), at_most=1),),
    solution=Solution(
        _medrec_solution, description="add aspirin as a MedicationStatement naming the ED"
    ),
    wrong_solutions={
        "rxnorm-filed-as-ndc": Solution(
            in_another_code_system(_medrec_solution, {RXNORM: NDC}),
            fails="outside medication reconciled",
            message="reconcile every outside medication",
            description="the right drug numbers filed under the NDC code system",
        ),
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
        "replace-local-order": Solution(
            _medrec_replace_local,
            fails="no collateral damage",
            message="work done under dr.patel's login",
            description="stop the local statin order (under the physician's login) and add the ED's list",
        ),
        "other-patient-too": Solution(
            _medrec_other_patient,
            fails="no collateral damage",
            message="unexpected change",
            description="the right entry, plus the same entry on another patient",
        ),
        "answer-key": Solution(
            _medrec_answer_key,
            fails="outside medication reconciled",
            message="reconcile every outside medication",
            description="drop the new drug from the outside list in the facts",
        ),
    },
)
