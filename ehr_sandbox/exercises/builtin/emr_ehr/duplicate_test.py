"""Catalogue item 23, ``emr-ehr/duplicate-test``: an outside lipid panel two weeks old is filed
with its source and not ordered again.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import parse_instant, patient_facts, rewrite_answer_key
from ehr_sandbox.exercises.builtin.emr_ehr.common import (
    LAB,
    PHYSICIAN,
    SOURCE_ADVICE,
    adult_patients,
    book_visit,
    created_by_user,
    outside_copy,
    source_url_of,
    today_iso,
)
from ehr_sandbox.exercises.grading import GradingContext, codes, text_of
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution
from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.exchange import OUTSIDE_TAG
from ehr_sandbox.network.organizations import org_url

__all__ = ["DUPLICATE_TEST"]

_LIPID_CODES = {fb.LIPID_PANEL[0], *fb.LIPID_CODES}

REPEAT_GROUNDS = [
    "non-fasting",
    "non fasting",
    "not fasting",
    "nonfasting",
    "hemolyzed",
    "hemolysed",
    "hemolysis",
    "lipemic",
    "clotted",
    "lab error",
    "new statin",
    "started a statin",
    "statin started",
    "started statin",
    "statin dose",
    "dose change",
    "dose changed",
    "dose increased",
]
"""Clinical grounds that can justify repeating a recent test: the prior specimen cannot be
used (not fasting, hemolyzed, a lab error) or the treatment changed since it was drawn. Words
such as "confirm", "verify" or "started" alone give no ground: repeating a valid result to
confirm it is the duplicate test."""


def _repeat_reason(ctx: GradingContext, sr: dict[str, Any]) -> Check:
    """The order's reason refers to the prior result and gives a clinical ground to repeat
    it (one of :data:`REPEAT_GROUNDS`)."""
    text = " ".join([text_of(sr.get("note") or []), text_of(sr.get("reasonCode") or [])])
    return rubric.check_text(
        text,
        {
            "the prior result (the outside panel)": [
                "outside",
                "prior",
                "previous",
                "recent",
                ctx.facts["lab"],
                ctx.facts["drawn"],
                "two weeks",
                "2 weeks",
            ],
            "a clinical ground to repeat it": REPEAT_GROUNDS,
        },
        what="the reason to repeat",
    )


def _setup_duplicate(sandbox: Any, variant: Any) -> dict[str, Any]:
    patient = variant.pick(adult_patients(sandbox), salt="patient")
    book_visit(sandbox, patient["id"])
    rng = variant.rng()
    values = (rng.randint(180, 250), rng.randint(100, 260), rng.randint(35, 60))
    drawn = (sandbox.reference_date - timedelta(days=14)).isoformat()
    outside = [
        outside_copy(o, "lab", f"ext-obs-{n}")
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


_LIPID_WORDS = ("lipid", "cholesterol", "triglycerid", "hdl", "ldl")


def _is_lipid_order(sr: dict[str, Any]) -> bool:
    """A lipid order by its code or, for a text-only order, by what its code text names."""
    said = text_of(sr.get("code") or {}).lower()
    return bool(codes(sr.get("code")) & _LIPID_CODES) or any(w in said for w in _LIPID_WORDS)


def _dup_no_order(ctx: GradingContext) -> Check:
    ref = f"Patient/{ctx.facts['patient_id']}"
    orders = [
        sr
        for sr in ctx.search("ServiceRequest", patient=ref)
        if _is_lipid_order(sr) and created_by_user(ctx, sr)
    ]
    undocumented = [sr for sr in orders if not _repeat_reason(ctx, sr).passed]
    expected = "no new lipid panel order (or one with a documented reason to repeat it)"
    if undocumented:
        return Check(
            False,
            f"ServiceRequest/{undocumented[0]['id']} orders the lipid panel again "
            f"({_repeat_reason(ctx, undocumented[0]).found})",
            expected,
            f"the panel was done two weeks ago at {LAB}: do not order it again without a reason",
        )
    return Check(
        True,
        f"{len(orders)} new lipid order(s), each with a reason" if orders else "no new lipid order",
        expected,
    )


def _filed_as(local: dict[str, Any], outside: dict[str, Any], url: str) -> bool:
    """True when ``local`` is ``outside`` filed faithfully: same test, status, value and draw
    time, the lab as its source."""
    drawn = [parse_instant(r.get("effectiveDateTime")) for r in (local, outside)]
    return (
        source_url_of(local) == url
        and local.get("status") == outside.get("status")
        and codes(local.get("code")) == codes(outside.get("code"))
        and (local.get("valueQuantity") or {}).get("value")
        == (outside.get("valueQuantity") or {}).get("value")
        and None not in drawn
        and drawn[0] == drawn[1]
    )


def _dup_filed(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"Patient/{f['patient_id']}"
    local = ctx.search("Observation", patient=ref)
    missing = [
        text_of(o.get("code") or {})
        for o in f["outside"]
        if not any(_filed_as(x, o, f["source_url"]) for x in local)
    ]
    expected = (
        f"each outside result of the panel in the chart as reported (test, status, value, draw time) "
        f"with meta.source {f['source_url']}"
    )
    if missing:
        return Check(
            False,
            f"not in the chart as the lab reported it, with its source: {'; '.join(missing)}",
            expected,
            f"{SOURCE_ADVICE}; file every result of the panel, with the value and draw time the lab reported",
        )
    return Check(True, f"{len(f['outside'])} outside results filed with their source", expected)


def _outside_copy(
    att: Any, outside: dict[str, Any], patient_id: str | None = None
) -> dict[str, Any]:
    """An outside result as filed in the chart of ``patient_id`` (the variant's patient), with
    the lab as its source."""
    res = {k: copy.deepcopy(v) for k, v in outside.items() if k not in ("id", "meta")}
    res["subject"] = {"reference": f"Patient/{patient_id or att.facts['patient_id']}"}
    res["meta"] = {"source": att.facts["source_url"], "tag": [OUTSIDE_TAG]}
    return res


def file_outside_results(att: Any) -> None:
    for o in att.facts["outside"]:
        att.session.create(_outside_copy(att, o), reason=f"outside result from {LAB} reviewed")


def _lipid_order(att: Any, reason: str = "") -> dict[str, Any]:
    """A lipid panel ordered today by the student, to the outside lab."""
    return fb.service_request(
        f"Patient/{att.facts['patient_id']}",
        f"Practitioner/{att.user.practitioner_id}",
        today_iso(att.sandbox),
        fb.LIPID_PANEL,
        performer=LAB,
        reason=reason,
    )


def _dup_order_again(att: Any) -> None:
    file_outside_results(att)
    att.session.create(_lipid_order(att))


def _dup_order_with_any_note(att: Any) -> None:
    file_outside_results(att)
    order = _lipid_order(att)
    order["note"] = [{"text": "Patient asked for labs today, ordering the usual panel."}]
    att.session.create(order)


REPEAT_REASON = (
    "Outside lipid panel drawn {drawn} was non-fasting; repeat fasting before the statin decision"
)


def _dup_repeat_with_reason(att: Any, reason: str = REPEAT_REASON) -> None:
    """Also correct: file the outside results and repeat the panel with a documented clinical
    reason that refers to the prior result (``reason``, a template of the facts, replaces
    it in the wrong solutions)."""
    file_outside_results(att)
    att.session.create(_lipid_order(att, reason.format(**att.facts)))


def _dup_retyped(att: Any) -> None:
    """Typical mistake: retype the outside values as local results (no source)."""
    for o in att.facts["outside"]:
        res = {k: copy.deepcopy(v) for k, v in o.items() if k not in ("id", "meta")}
        res["subject"] = {"reference": f"Patient/{att.facts['patient_id']}"}
        att.session.create(res)


def _dup_text_order(att: Any) -> None:
    """Files the results, then orders the panel again by its name only (no code)."""
    file_outside_results(att)
    order = _lipid_order(att)
    order["code"] = {"text": "Lipid panel"}
    att.session.create(order)


def _dup_file_some(att: Any, *, only_first: bool = False, dated_today: bool = False) -> None:
    """Partial or unfaithful filing: the first result only, or every result dated today."""
    for o in att.facts["outside"][: 1 if only_first else None]:
        res = _outside_copy(att, o)
        if dated_today:
            res["effectiveDateTime"] = f"{today_iso(att.sandbox)}T09:00:00-05:00"
        att.session.create(res, reason=f"outside result from {LAB} reviewed")


def _dup_filed_cancelled(att: Any) -> None:
    """Every outside result filed with its source, but with the status 'cancelled'."""
    for o in att.facts["outside"]:
        res = _outside_copy(att, o)
        res["status"] = "cancelled"
        att.session.create(res, reason=f"outside result from {LAB} reviewed")


def _dup_other_patient_too(att: Any) -> None:
    """Harm: files the outside results on another patient as well."""
    file_outside_results(att)
    s = att.session
    other = next(p["id"] for p in s.search("Patient").fetch() if p["id"] != att.facts["patient_id"])
    s.create(
        _outside_copy(att, att.facts["outside"][0], other),
        reason=f"outside result from {LAB} reviewed",
    )


def _dup_answer_key(att: Any) -> None:
    """Answer-key change: move the outside draw date a year back, then reorder 'as too old'."""
    f = rewrite_answer_key(att, drawn="2024-01-01")
    file_outside_results(att)
    reason = f"Outside lipid panel from {f['drawn']} is too old to use for today's decision"
    att.session.create(_lipid_order(att, reason))


DUPLICATE_TEST = Exercise(
    id="emr-ehr/duplicate-test",
    title="Duplicate test: an outside lipid panel two weeks old",
    topic="emr-ehr",
    topics=("emr-vs-ehr", "diagnostic-tests"),
    competencies=("VI.P.6", "V.P.11", "X.P.3"),
    minutes=10,
    role=PHYSICIAN,
    patients=8,
    summary="The shared record has a lipid panel from two weeks ago: file it with its source; do not order it again.",
    setup=_setup_duplicate,
    instructions=(
        "**{patient_name}** (DOB {patient_dob}) needs lipids for today's decision. The shared record shows a lipid panel "
        "drawn on {drawn} at **{lab}** (`att.facts['outside']`, total cholesterol {cholesterol} mg/dL).\n\n"
        "File the outside results in the chart keeping their source, and decide whether a new order is needed "
        "(a repeat order needs a documented clinical reason that refers to the prior result). Change nothing else."
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
    expects=(
        Expect("Observation", ops=("create",), patients=("patient_id",), at_most=6),
        Expect("ServiceRequest", ops=("create",), patients=("patient_id",), at_most=1),
    ),
    solution=Solution(
        file_outside_results,
        description="file the outside results with their source; no order",
    ),
    alternatives=(
        Solution(
            _dup_repeat_with_reason,
            description="file the outside results; repeat the panel with a clinical reason citing the prior result",
        ),
    ),
    wrong_solutions={
        "order-again": Solution(
            _dup_order_again,
            fails="no duplicate order",
            message="do not order it again",
            description="order the lipid panel again",
        ),
        "order-with-any-note": Solution(
            _dup_order_with_any_note,
            fails="no duplicate order",
            message="do not order it again",
            description="order it again with a note that gives no clinical reason",
        ),
        "retyped-as-local": Solution(
            _dup_retyped,
            fails="outside result filed with source",
            message="keep the outside source",
            description="retype the outside values as local results",
        ),
        "repeat-to-confirm": Solution(
            lambda att: _dup_repeat_with_reason(
                att, "Outside lipid panel drawn {drawn}: repeat to confirm and verify the values"
            ),
            fails="no duplicate order",
            message="a clinical ground to repeat it",
            description="repeat the panel 'to confirm' the prior result (no clinical ground)",
        ),
        "order-by-name": Solution(
            _dup_text_order,
            fails="no duplicate order",
            message="do not order it again",
            description="order the panel again by its name only, with no code",
        ),
        "cholesterol-only": Solution(
            lambda att: _dup_file_some(att, only_first=True),
            fails="outside result filed with source",
            message="file every result of the panel",
            description="file only the total cholesterol the instructions name",
        ),
        "dated-today": Solution(
            lambda att: _dup_file_some(att, dated_today=True),
            fails="outside result filed with source",
            message="draw time the lab reported",
            description="file the outside results with today's date instead of the draw time",
        ),
        "filed-cancelled": Solution(
            _dup_filed_cancelled,
            fails="outside result filed with source",
            message="file every result of the panel",
            description="file the outside results with the status 'cancelled'",
        ),
        "other-patient-too": Solution(
            _dup_other_patient_too,
            fails="no collateral damage",
            message="unexpected change",
            description="file the outside result on another patient too",
        ),
        "answer-key": Solution(
            _dup_answer_key,
            fails="no duplicate order",
            message="do not order it again",
            description="move the draw date back in the facts and reorder as 'too old'",
        ),
    },
)
