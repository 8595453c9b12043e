"""The record operations (transaction Bundles, imports, exports, signatures) audit and record
Provenance through the Session's public operation API, which nothing can use to pose as a
RESTful interaction or to name versions it cannot see."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ehr_sandbox.errors import NotFound, ValidationError
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import OPERATION_ACTIONS

PACKAGE = Path(__file__).resolve().parents[1] / "ehr_sandbox"
PRIVATE = {"_audit", "_record_provenance"}


def _private_session_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in PRIVATE
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]


def test_the_scan_sees_a_private_call(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text("session._audit(action='R')\nself._audit(action='R')\n", encoding="utf-8")
    assert _private_session_calls(path) == ["line 1: ._audit"]


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_calls_the_sessions_private_audit_or_provenance(path: Path) -> None:
    assert _private_session_calls(path) == []


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox.generate(patients=3, seed=2, years=1)


@pytest.mark.parametrize("interaction", ["read", "create", "search", "break-glass-start", ""])
def test_an_operation_event_cannot_pose_as_anything_else(sandbox, interaction) -> None:
    before = sandbox.audit.count()
    with pytest.raises(ValidationError, match="interaction"):
        sandbox.login("dr.patel").audit_operation(interaction, "0")
    assert sandbox.audit.count() == before


@pytest.mark.parametrize("interaction", sorted(OPERATION_ACTIONS))
def test_each_operation_is_audited_with_its_action_code(sandbox, interaction) -> None:
    sandbox.login("dr.patel").audit_operation(interaction, "8", detail="x")
    event = sandbox.audit.events()[-1]
    assert event["action"] == OPERATION_ACTIONS[interaction]
    assert event["outcome"] == "8"


def test_provenance_never_names_a_version_the_user_cannot_see(sandbox) -> None:
    s = sandbox.login("ma.garcia")
    system = sandbox.grader_session()
    visible = {p["id"] for p in s.search("Patient").fetch()}
    hidden = [p for p in system.search("Patient").fetch() if p["id"] not in visible]
    assert hidden, "the clinic should have a patient the medical assistant does not treat"
    p = hidden[0]
    ref = f"Patient/{p['id']}/_history/{p['meta']['versionId']}"
    before = system.search("Provenance").count()
    with pytest.raises(NotFound):
        s.record_provenance([ref], "import")
    with pytest.raises(ValidationError, match="activity"):
        s.record_provenance([ref], "correction")
    with pytest.raises(ValidationError, match="targets"):
        s.record_provenance([f"Patient/{p['id']}"], "import")
    assert system.search("Provenance").count() == before
