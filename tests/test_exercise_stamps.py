"""A grade never rests on anything the student could have typed: workflow stamps and payer answers.

Workflow operations tag what they write (``meta.tag``, ``OPERATION_TAG``), but any write can
carry any tag: in-process, and over the classroom server, where the workflows run in the
student's process and write through the same REST calls as a hand-typed PUT. So graders ask
:func:`ehr_sandbox.exercises.evidence.done_by` (the stamp only when the record bears out what
the operation guarantees) and :func:`~ehr_sandbox.exercises.evidence.payer_answered` (a
stored payer answer only when it is what the payer simulator answers). These tests state the
rule for every builtin exercise; the per-exercise forgers run in the trap harness.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from exercise_harness import trap_students
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox import exercises
from ehr_sandbox.exercises import evidence
from ehr_sandbox.session import Session
from ehr_sandbox.workflows import payer
from ehr_sandbox.workflows.base import OPERATION_TAG, operation_of

ROOT = Path(__file__).resolve().parents[1]
ALL_IDS = [row["id"] for row in exercises.catalog()]
FORGER_NAMES = ("tag-by-hand", "fabricated-")


def test_no_exercise_module_reads_the_raw_stamp():
    """Only the evidence module looks at the tag itself; graders go through it."""
    offenders = []
    for path in sorted((ROOT / "ehr_sandbox" / "exercises").rglob("*.py")):
        if path.name == "evidence.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "ehr_sandbox.workflows.base":
                bad = {a.name for a in node.names} & {"operation_of", "OPERATION_TAG"}
                if bad:
                    offenders.append(f"{path.relative_to(ROOT)}: imports {sorted(bad)}")
    assert not offenders, offenders


@settings(max_examples=40, deadline=None)
@given(st.from_regex(r"[a-z]{2,12}\.[a-z][a-z\-]{1,16}", fullmatch=True))
def test_a_stamp_nothing_re_checks_is_never_vouched_for(op):
    """Fail closed: an operation without a verifier earns nothing, whatever it is called."""
    version = {"resourceType": "Claim", "meta": {"tag": [{"system": OPERATION_TAG, "code": op}]}}
    if op in evidence.VERIFIERS:
        return
    assert evidence.stamp(version) == op
    assert evidence.done_by(None, version) is None
    assert op in (evidence.vouched(None, version) or "")


def _consulted(exercise_id: str) -> tuple[int, int]:
    """(stamp checks, payer answers re-derived) while grading the reference solution."""
    ex = exercises.get(exercise_id)
    att = exercises.start(exercise_id, "student-00")
    try:
        ex.solution.apply(att)
        counts = [0, 0]
        real_vouched, real_eligibility = evidence.vouched, payer.eligibility

        def vouched(ctx: Any, version: dict[str, Any]) -> str | None:
            counts[0] += 1
            return real_vouched(ctx, version)

        def eligibility(*args: Any, **kwargs: Any) -> dict[str, Any]:
            counts[1] += 1
            return real_eligibility(*args, **kwargs)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(evidence, "vouched", vouched)
            mp.setattr(payer, "eligibility", eligibility)
            result = att.check()
        assert result.passed, [c.feedback for c in result.criteria if not c.passed]
        return counts[0], counts[1]
    finally:
        att.sandbox.close()


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_an_exercise_graded_on_a_stamp_or_payer_answer_declares_a_forger(exercise_id):
    """Whenever grading consults a workflow stamp or a stored payer answer, the exercise ships a
    wrong solution that forges it (the trap harness then checks it fails for every student)."""
    stamps, answers = _consulted(exercise_id)
    if not (stamps or answers):
        return
    forgers = [
        n for n in exercises.get(exercise_id).wrong_solutions if any(k in n for k in FORGER_NAMES)
    ]
    assert forgers, (
        f"{exercise_id} grades on {stamps} stamp(s) / {answers} payer answer(s) "
        "but declares no forging wrong solution"
    )


# ----------------------------------------------------------------------------- generic forger
def _key(resource: dict[str, Any]) -> tuple[str, str]:
    status = resource.get("status")
    if not isinstance(status, str):
        status = ""
    op_status = (resource.get("operationalStatus") or {}).get("code", "")
    return str(resource.get("resourceType")), f"{status}|{op_status}"


def _stamped(resource: dict[str, Any], op: str) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), {"system": OPERATION_TAG, "code": op}]
    return {**resource, "meta": meta}


def _learning(learned: dict[tuple[str, str], str], real: Any) -> Any:
    """Session.write that records which tag a workflow puts on each (type, status)."""

    def write(self: Session, request: Any) -> dict[str, Any]:
        op = operation_of(request.resource)
        if op is not None:
            learned.setdefault(_key(request.resource), op)
        return real(self, request)

    return write


def _forging(learned: dict[tuple[str, str], str], real: Any) -> Any:
    """Session.write that types the learned tag into every untagged write."""

    def write(self: Session, request: Any) -> dict[str, Any]:
        res = request.resource
        op = learned.get(_key(res)) if isinstance(res, dict) else None
        if op is not None and operation_of(res) is None:
            request = dataclasses.replace(request, resource=_stamped(res, op))
        return real(self, request)

    return write


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_typing_the_workflow_tags_never_rescues_a_wrong_solution(exercise_id):
    """The general forger: each wrong solution again, every plain write now carrying the tag
    the reference solution's workflows put on a record of that type and status. A grader that
    trusted tags would pass some of these; every one must still fail its criterion."""
    ex = exercises.get(exercise_id)
    count = int(os.environ.get("EHR_SANDBOX_FORGE_STUDENTS", 2))
    real_write = Session.write
    for student in trap_students(count):
        att = exercises.start(exercise_id, student)
        try:
            learned: dict[tuple[str, str], str] = {}

            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(Session, "write", _learning(learned, real_write))
                ex.solution.apply(att)
            forge = _forging(learned, real_write)

            escaped = []
            for name, wrong in ex.wrong_solutions.items():
                att.reset()
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(Session, "write", forge)
                    wrong.apply(att)
                result = att.check()
                if result.passed or result.criterion(wrong.fails).passed:
                    escaped.append(name)
            assert not escaped, f"{exercise_id} / {student}: typed tags rescue {escaped}"
        finally:
            att.sandbox.close()
