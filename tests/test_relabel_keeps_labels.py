"""Relabelling never drops a sensitivity label by omission: a privacy officer who changes a
record's confidentiality without naming its sensitivity codes keeps them (42 CFR Part 2,
HIV, psychotherapy protection stays); removing them takes an explicit empty list."""

from __future__ import annotations

import pytest

from ehr_sandbox.sandbox import Sandbox

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _codes(resource: dict, system: str | None = None) -> list[str]:
    return [
        s["code"]
        for s in resource.get("meta", {}).get("security", [])
        if system is None or s.get("system") == system
    ]


@pytest.mark.parametrize("labels", [["SUD"], ["ETHUD", "SUD"], ["HIV"], ["PSY"]])
def test_a_relabel_that_names_no_sensitivity_keeps_the_records(labels: list[str]) -> None:
    sb = Sandbox.generate(patients=1, seed=1, years=1)
    po = sb.login("po.wilson")
    ref = "Condition/" + sb.grader_session().search("Condition").first()["id"]
    po.relabel(ref, "R", reason="restricted by law", sensitivity=labels)
    readable_before = {
        u.username: _readable(sb, u.username, ref) for u in sb.users if u.role != "patient"
    }
    for level in ("V", "R"):
        kept = po.relabel(ref, level, reason="confidentiality reviewed")
        assert _codes(kept, ACT) == labels
        assert _codes(kept)[0] == level
    # who may read it is decided by the same labels as before (the level is back at R)
    assert {
        u.username: _readable(sb, u.username, ref) for u in sb.users if u.role != "patient"
    } == readable_before
    assert (
        _codes(po.relabel(ref, "R", reason="labels removed on review", sensitivity=[]), ACT) == []
    )


def _readable(sb: Sandbox, username: str, ref: str) -> bool:
    from ehr_sandbox.errors import SandboxError

    try:
        sb.login(username).read(ref)
    except SandboxError:
        return False
    return True
