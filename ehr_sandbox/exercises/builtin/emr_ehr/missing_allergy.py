"""Catalogue item 24, ``emr-ehr/missing-allergy``: the ED's penicillin allergy is recorded coded
and with its source, and the pending amoxicillin order is held.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import patient_facts
from ehr_sandbox.exercises.builtin.emr_ehr.common import (
    HOSPITAL,
    PHYSICIAN,
    SOURCE_ADVICE,
    _adults,
    _book,
    _names_source,
    _outside,
    _today,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.exchange import OUTSIDE_TAG
from ehr_sandbox.network.organizations import org_url

__all__ = ["MISSING_ALLERGY"]


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


MISSING_ALLERGY = Exercise(
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
