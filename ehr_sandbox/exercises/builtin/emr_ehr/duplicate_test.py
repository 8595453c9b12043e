"""Catalogue item 23, ``emr-ehr/duplicate-test``: an outside lipid panel two weeks old is filed
with its source and not ordered again.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import patient_facts
from ehr_sandbox.exercises.builtin.emr_ehr.common import (
    LAB,
    PHYSICIAN,
    SOURCE_ADVICE,
    _adults,
    _book,
    _created_by_user,
    _outside,
    _source_of,
    _today,
)
from ehr_sandbox.exercises.grading import GradingContext, codes, text_of
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.exchange import OUTSIDE_TAG
from ehr_sandbox.network.organizations import org_url

__all__ = ["DUPLICATE_TEST"]

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


DUPLICATE_TEST = Exercise(
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
