"""Catalogue item 24, ``emr-ehr/missing-allergy``: the ED's penicillin allergy is recorded coded
and with its source, and the pending amoxicillin order is held.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import (
    changed_fields,
    patient_facts,
    ref_id,
    rewrite_answer_key,
)
from ehr_sandbox.exercises.builtin.emr_ehr.common import (
    HOSPITAL,
    PHYSICIAN,
    SOURCE_ADVICE,
    adult_patients,
    book_visit,
    names_source,
    outside_copy,
    today_iso,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution
from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.exchange import OUTSIDE_TAG
from ehr_sandbox.network.organizations import org_url
from synthetic.systems import ALLERGY_VERIFICATION, RXNORM

__all__ = ["MISSING_ALLERGY"]


def _setup_allergy(sandbox: Any, variant: Any) -> dict[str, Any]:
    candidates = [
        p
        for p in adult_patients(sandbox)
        if not any(
            fb.PENICILLIN[0] in codes(a.get("code"))
            for a in sandbox.system_session()
            .search("AllergyIntolerance", patient=f"Patient/{p['id']}")
            .fetch()
        )
    ]
    patient = variant.pick(candidates, salt="patient")
    book_visit(sandbox, patient["id"])
    dr = f"Practitioner/{sandbox.user(PHYSICIAN).practitioner_id}"
    order = sandbox.system_session().create(
        fb.medication_request(
            f"Patient/{patient['id']}", dr, today_iso(sandbox), "amoxicillin", status="draft"
        )
    )
    ed_day = (sandbox.reference_date - timedelta(days=variant.rng().randint(10, 40))).isoformat()
    outside = [outside_copy(fb.allergy("Patient/ext-1", ed_day, None), "hospital", "ext-alg-1")]
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
        if fb.PENICILLIN[0] in codes(a.get("code"))
        and "active" in codes(a.get("clinicalStatus"))
        # refuted (or voided) says the patient is NOT allergic: the opposite of the ED's record
        and not codes(a.get("verificationStatus")) & {"refuted", "entered-in-error"}
    ]


def _alg_coded(ctx: GradingContext) -> Check:
    found = _penicillin_allergies(ctx)
    expected = "an active, coded penicillin AllergyIntolerance on the patient"
    ref = f"Patient/{ctx.facts['patient_id']}"
    denied = [
        a
        for a in ctx.search("AllergyIntolerance", patient=ref)
        if fb.PENICILLIN[0] in codes(a.get("code"))
        and codes(a.get("verificationStatus")) & {"refuted", "entered-in-error"}
    ]
    if not found and denied:
        return Check(
            False,
            f"AllergyIntolerance/{denied[0]['id']} is recorded as refuted or entered-in-error",
            expected,
            "record the allergy as the ED confirmed it: a refuted allergy tells every later "
            "check that the patient is not allergic",
        )
    if not found:
        return Check(
            False,
            "no coded penicillin allergy (only free text, or nothing)",
            expected,
            "an allergy only in free text is invisible to allergy checking: record it as an AllergyIntolerance",
        )
    outside = ctx.facts["outside"][0]
    faithful = [a for a in found if _as_reported(a, outside)]
    if faithful and not any(_keeps_date(a, outside) for a in faithful):
        return Check(
            False,
            f"AllergyIntolerance/{faithful[0]['id']} gives neither its recorded date nor its "
            "onset as the day the ED recorded it",
            expected + ", with the date the ED recorded it",
            "reconcile the allergy as the outside record has it: keep the day it was recorded "
            "there (recordedDate, or the onset), so a later reader knows when it was found",
        )
    faithful = [a for a in faithful if _keeps_date(a, outside)]
    if not faithful:
        return Check(
            False,
            f"AllergyIntolerance/{found[0]['id']} states a criticality "
            f"{found[0].get('criticality')!r} or verification "
            f"{sorted(codes(found[0].get('verificationStatus')))} the ED did not record",
            expected + ", with the ED's criticality and verification",
            "record the allergy as the ED recorded it: a high-criticality, confirmed allergy "
            "recorded as low or unconfirmed misleads every later prescriber",
        )
    return Check(True, f"AllergyIntolerance/{faithful[0]['id']}", expected)


def _as_reported(allergy: dict[str, Any], outside: dict[str, Any]) -> bool:
    """True when ``allergy`` keeps the outside record's criticality and verification status.

    >>> ed = {"criticality": "high", "verificationStatus": {"coding": [{"code": "confirmed"}]}}
    >>> _as_reported(dict(ed), ed), _as_reported({**ed, "criticality": "low"}, ed)
    (True, False)
    >>> _as_reported({"criticality": "high"}, ed)
    False
    """
    return allergy.get("criticality") == outside.get("criticality") and codes(
        allergy.get("verificationStatus")
    ) == codes(outside.get("verificationStatus"))


def _keeps_date(allergy: dict[str, Any], outside: dict[str, Any]) -> bool:
    """True when ``allergy`` keeps the day the outside record was recorded, as its own
    recordedDate or as the onset (of the allergy or of a reaction).

    >>> ed = {"recordedDate": "2025-12-01"}
    >>> _keeps_date({"recordedDate": "2025-12-01T10:00:00+00:00"}, ed)
    True
    >>> _keeps_date({"recordedDate": "2026-01-01", "reaction": [{"onset": "2025-12-01"}]}, ed)
    True
    >>> _keeps_date({"recordedDate": "2025-12-08"}, ed), _keeps_date({}, {})
    (False, False)
    """
    day = str(outside.get("recordedDate") or "")[:10]
    dates = [
        allergy.get("recordedDate"),
        allergy.get("onsetDateTime"),
        (allergy.get("onsetPeriod") or {}).get("start"),
        *((r or {}).get("onset") for r in allergy.get("reaction", []) or []),
    ]
    return bool(day) and any(str(d or "")[:10] == day for d in dates)


def _another_day(day: str) -> str:
    """A week after ``day`` (another day an ED could have recorded it).

    >>> _another_day("2025-12-01")
    '2025-12-08'
    """
    from datetime import date

    return (date.fromisoformat(day[:10]) + timedelta(days=7)).isoformat()


def _alg_source(ctx: GradingContext) -> Check:
    f = ctx.facts
    found = _penicillin_allergies(ctx)
    expected = f"the allergy names its source ({f['source_name']})"
    good = [a for a in found if names_source(a, f["source_url"], f["source_name"])]
    if not good:
        return Check(False, "no penicillin allergy naming its source", expected, SOURCE_ADVICE)
    return Check(True, f"AllergyIntolerance/{good[0]['id']} from {f['source_name']}", expected)


def _alg_held(ctx: GradingContext) -> Check:
    ref = f"MedicationRequest/{ctx.facts['order_id']}"
    order = ctx.read(ref) or {}
    expected = "the amoxicillin order on hold (or cancelled), as the prescriber wrote it"
    ok = order.get("status") in ("on-hold", "cancelled", "stopped")
    if not ok:
        return Check(
            False,
            f"the amoxicillin order is {order.get('status')!r}",
            expected,
            "hold the order that conflicts with the allergy",
        )
    # holding changes the status (and may say why); the drug, dose and prescriber stay: the
    # order is the prescriber's to change
    setup = (ctx.history(ref) or [order])[-1]
    edited = changed_fields(setup, order, ignore=("meta", "text", "status", "statusReason", "note"))
    if edited:
        return Check(
            False,
            f"the amoxicillin order is {order.get('status')!r}, and its {', '.join(edited)} changed",
            expected,
            "hold the order that conflicts with the allergy, and change nothing else on it: "
            "the drug and dose are the prescriber's decision",
        )
    return Check(True, f"the amoxicillin order is {order.get('status')!r}", expected)


CLASS_ADVICE = (
    "a penicillin allergy rules out every penicillin and calls for care with cephalosporins: "
    "never override the allergy alert to switch within the class; leave the choice to the prescriber's documented decision"
)


def _alg_no_class_drug(ctx: GradingContext) -> Check:
    """No other drug of the allergy's class (or a cross-reactive one) ordered, and no override."""
    from ehr_sandbox.records.allergy_check import conflicts

    f = ctx.facts
    expected = "no penicillin or cross-reactive drug ordered for the patient, and no allergy alert overridden"
    overrides = [
        e
        for e in ctx.events("allergy-override")
        if (e.get("detail") or {}) and f["patient_id"] in str(e)
    ]
    if overrides:
        d = overrides[0]["detail"]
        return Check(
            False,
            f"the allergy alert was overridden to order {d.get('drug')} ({d.get('class')})",
            expected,
            CLASS_ADVICE,
        )
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": "shared-record",
        "code": {"coding": [{"code": fb.PENICILLIN[0], "display": fb.PENICILLIN[1]}]},
        "clinicalStatus": {"coding": [{"code": "active"}]},
    }
    for v in ctx.versions_since_setup():
        if v.get("resourceType") not in ("MedicationRequest", "MedicationAdministration"):
            continue
        if ref_id(v.get("subject")) != f["patient_id"] or v.get("id") == f["order_id"]:
            continue
        if v.get("status") in ("cancelled", "entered-in-error", "stopped", "not-done"):
            continue
        hit = conflicts(v, [allergy])
        if hit:
            return Check(
                False,
                f"{v['resourceType']}/{v['id']} orders {hit[0].drug} ({hit[0].drug_class})",
                expected,
                CLASS_ADVICE,
            )
    return Check(True, "no drug of the allergy's class ordered", expected)


def _hold(att: Any) -> None:
    s = att.session
    order = s.read("MedicationRequest", att.facts["order_id"])
    order["status"] = "on-hold"
    s.update(order, reason="penicillin allergy reported by the ED: held for the prescriber")


def _alg_solution(att: Any) -> None:
    _record_allergy(att)
    _hold(att)


def _alg_free_text(att: Any) -> None:
    s = att.session
    order = s.read("MedicationRequest", att.facts["order_id"])
    order["status"] = "on-hold"
    order["note"] = [{"text": "Pt allergic to PCN per ED"}]
    s.update(order, reason="allergy")


def _record_allergy(att: Any, patient_id: str | None = None, **changes: Any) -> None:
    """The ED's allergy recorded with its source on ``patient_id`` (the variant's patient),
    with ``changes`` to its fields in a wrong solution."""
    f = att.facts
    res = {k: copy.deepcopy(v) for k, v in f["outside"][0].items() if k not in ("id", "meta")}
    res.update(changes)
    res["patient"] = {"reference": f"Patient/{patient_id or f['patient_id']}"}
    res["asserter"] = {"display": f["source_name"]}
    res["meta"] = {"source": f["source_url"], "tag": [OUTSIDE_TAG]}
    att.session.create(res, reason="allergy from the shared record, confirmed with the patient")


def _alg_switch(att: Any, rxnorm: str, display: str) -> None:
    """Harm: cancel the amoxicillin and override the alert to order another drug of the class."""
    f, s = att.facts, att.session
    _record_allergy(att)
    order = s.read("MedicationRequest", f["order_id"])
    order["status"] = "cancelled"
    s.update(order, reason="allergy: switching antibiotic")
    new = fb.medication_request(
        f"Patient/{f['patient_id']}",
        f"Practitioner/{att.user.practitioner_id}",
        today_iso(att.sandbox),
        "amoxicillin",
    )
    new["medicationCodeableConcept"] = {
        "coding": [
            {
                "system": RXNORM,
                "code": rxnorm,
                "display": display,
            }
        ],
        "text": display,
    }
    s.create(new, override_reason="patient needs an antibiotic before the procedure")


def _alg_refuted(att: Any) -> None:
    """The allergy copied with its verification status 'refuted' (the patient is not
    allergic after all, says the record), and the order held."""
    f = att.facts
    res = {k: copy.deepcopy(v) for k, v in f["outside"][0].items() if k not in ("id", "meta")}
    res["patient"] = {"reference": f"Patient/{f['patient_id']}"}
    res["asserter"] = {"display": f["source_name"]}
    res["meta"] = {"source": f["source_url"], "tag": [OUTSIDE_TAG]}
    res["verificationStatus"] = {
        "coding": [
            {
                "system": ALLERGY_VERIFICATION,
                "code": "refuted",
            }
        ]
    }
    att.session.create(res, reason="allergy from the shared record")
    _hold(att)


def _alg_hold_and_edit(att: Any) -> None:
    """The allergy recorded; the order held, with its drug and dose rewritten in the same
    update (the prescriber's order changed by whoever held it)."""
    f, s = att.facts, att.session
    _record_allergy(att)
    order = s.read("MedicationRequest", f["order_id"])
    order["status"] = "on-hold"
    order["dosageInstruction"] = [{"text": "Take two capsules three times a day"}]
    s.update(order, reason="penicillin allergy reported by the ED: held for the prescriber")


def _alg_wrong_patient(att: Any) -> None:
    """Typical mistake: the allergy filed on another patient's chart; the order held."""
    s = att.session
    other = next(p["id"] for p in s.search("Patient").fetch() if p["id"] != att.facts["patient_id"])
    _record_allergy(att, other)
    _hold(att)


def _alg_answer_key(att: Any) -> None:
    """Answer-key change: empty the outside allergy list in the facts; only hold the order."""
    rewrite_answer_key(att, outside=[])
    _hold(att)


MISSING_ALLERGY = Exercise(
    id="emr-ehr/missing-allergy",
    title="Missing allergy: penicillin in the shared record, amoxicillin pending",
    topic="emr-ehr",
    topics=("emr-vs-ehr", "medical-history", "medication-administration"),
    competencies=("I.P.4", "X.P.3", "VI.P.6"),
    minutes=10,
    role=PHYSICIAN,
    patients=8,
    summary="Record the ED's penicillin allergy (coded, with its source) and hold the pending amoxicillin.",
    setup=_setup_allergy,
    instructions=(
        "An amoxicillin order is pending for **{patient_name}** (DOB {patient_dob}): `MedicationRequest/{order_id}`. "
        "The shared record shows a **penicillin allergy** recorded on {ed_day} by **{source_name}** "
        "(`att.facts['outside']`), unknown to your chart.\n\nRecord the allergy as the ED recorded it (coded, its criticality and verification, the "
        "day it was recorded, with its source) and hold "
        "the order for the prescriber's decision. Do not order another antibiotic yourself, and change nothing else."
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
        Criterion(
            "no drug of the allergy's class",
            2,
            _alg_no_class_drug,
            "Penicillins cross-react with each other and (rarely) with cephalosporins; an allergy alert is overridden only on a documented clinical decision, never to work around it (AAAAI/ACAAI 2022; MAERB I.P.4).",
        ),
    ),
    hints=(
        Hint(
            "Copy the outside AllergyIntolerance, point `patient` at your patient, keep `meta.source`."
        ),
    ),
    expects=(
        Expect("AllergyIntolerance", ops=("create",), patients=("patient_id",), at_most=1),
        Expect("MedicationRequest", ops=("update",), patients=("patient_id",), at_most=1),
    ),
    solution=Solution(_alg_solution, description="coded allergy with source; order on hold"),
    wrong_solutions={
        "criticality-lowered": Solution(
            lambda att: (_record_allergy(att, criticality="low"), _hold(att)),
            fails="allergy coded",
            message="criticality",
            description="the ED's high-criticality allergy recorded as low criticality",
        ),
        "recorded-on-another-day": Solution(
            lambda att: (
                _record_allergy(
                    att, recordedDate=_another_day(att.facts["outside"][0]["recordedDate"])
                ),
                _hold(att),
            ),
            fails="allergy coded",
            message="keep the day it was recorded",
            description="the ED's allergy reconciled with another recorded date (another "
            "student's outside record: it scored full marks before)",
        ),
        "free-text": Solution(
            _alg_free_text,
            fails="allergy coded",
            message="only in free text",
            description="mention the allergy in a note on the order",
        ),
        "recorded-refuted": Solution(
            _alg_refuted,
            fails="allergy coded",
            message="a refuted allergy tells every later check",
            description="copy the allergy with verification status 'refuted', hold the order",
        ),
        "hold-and-edit": Solution(
            _alg_hold_and_edit,
            fails="order held",
            message="change nothing else on it",
            description="hold the order and rewrite its dose in the same update",
        ),
        "switch-within-class": Solution(
            lambda att: _alg_switch(
                att, "562251", "amoxicillin 250 MG / clavulanate 125 MG Oral Tablet"
            ),
            fails="no drug of the allergy's class",
            message="never override the allergy alert",
            description="cancel the amoxicillin and override the alert to order amoxicillin-clavulanate",
        ),
        "switch-to-cephalosporin": Solution(
            lambda att: _alg_switch(att, "309097", "cefuroxime 250 MG Oral Tablet"),
            fails="no drug of the allergy's class",
            message="never override the allergy alert",
            description="cancel the amoxicillin and override the alert to order cefuroxime",
        ),
        "allergy-on-wrong-patient": Solution(
            _alg_wrong_patient,
            fails="allergy coded",
            message="record it as an AllergyIntolerance",
            description="file the allergy on another patient's chart",
        ),
        "answer-key": Solution(
            _alg_answer_key,
            fails="allergy coded",
            message="record it as an AllergyIntolerance",
            description="empty the outside allergy list in the facts; only hold the order",
        ),
    },
)
