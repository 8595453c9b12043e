"""The rule: a student's script runs unchanged against a classroom server.

Every public member (method, property or attribute set in ``__init__``) of the local
``Session`` is on ``RemoteSession``, of the local exercise ``Attempt`` on ``RemoteAttempt``,
of ``Reports`` (``session.reports``) on ``RemoteReports`` and of ``Report`` on
``RemoteReport`` -- except the members listed below, each with the reason it stays local.
A new public member of a local class fails this test until the remote side offers it or it
is listed here with its reason.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from ehr_sandbox.exercises.attempt import Attempt
from ehr_sandbox.remote import RemoteAttempt, RemoteSession
from ehr_sandbox.reports import Report, Reports
from ehr_sandbox.reports.remote import RemoteReport, RemoteReports
from ehr_sandbox.session import Session

TRUSTED = "the trusted side itself (store, keys, the whole audit trail); the server holds it"

SESSION_LOCAL_ONLY: dict[str, str] = {
    "sandbox": TRUSTED,
    "context": "the policy engine's AccessContext: the server's Session evaluates it",
    "chart": "the chart display reads the session's AccessContext (what the policy hides "
    "and why); not served over HTTP yet",
    "interactive": "whether the policy treats the caller as a person or a system client: "
    "the server decides it from the token, a client cannot choose it",
    "write": "the Session's internal door (a WriteRequest carries activity and label flags only "
    "its own methods set); remotely create/update and the $ operations go through it",
    "atomic": "a store transaction cannot span HTTP requests; a remote session sends one "
    "transaction Bundle instead (is_remote tells workflows)",
    "audit_operation": "record operations (transaction, import, export, sign) audit "
    "themselves on the server; a client must not pose as one",
    "record_provenance": "the Provenance of record operations, recorded by the server's "
    "Session when it runs them; a client must not pose as one",
    "report_view": "the reports engine's hook into the store's cache of flattened rows; "
    "remote reports run on the server (reports)",
    "change_mark": "the whole record's history mark, for graders and the privacy officer "
    "in-process; not served over HTTP",
    "changes_since": "the whole record's history, for graders and the privacy officer "
    "in-process; not served over HTTP",
    "export": "writes files into a folder of the machine the sandbox runs on; a server's "
    "clients use its FHIR Bulk Data $export",
    "import_": "reads files of the machine the sandbox runs on; a server's clients send "
    "transaction Bundles",
    "deidentify": "writes a research export into a folder of the machine the sandbox runs "
    "on; not served over HTTP",
}

ATTEMPT_LOCAL_ONLY: dict[str, str] = {
    "sandbox": TRUSTED,
    "variant": "its seed rebuilds the variant's clinic and setup, and so the answer key: "
    "a remote student must not have it",
    "grade": "runs the criteria with the answer key; the server grades (check, submit)",
    "create": "makes an attempt from an exercise, a variant and a sandbox: the server's side",
    "from_sandbox": "reopens an attempt from its sandbox file: the server's side",
    "save": "writes the attempt's sandbox to a file; the server keeps it",
    "path": "the attempt's sandbox file on the machine that holds it (the server)",
    "hints_used": "kept in the course on the server; not served by the course API yet",
    "hint_cost": "kept in the course on the server; not served by the course API yet "
    "(hint() says a hint's cost before it is taken)",
    "results": "kept in the course on the server; not served by the course API yet",
    "attempts_used": "kept in the course on the server; not served by the course API yet",
}

REPORTS_LOCAL_ONLY: dict[str, str] = {
    "engine": "which local engine flattens the views; remote reports run on the server's",
}

REPORT_LOCAL_ONLY: dict[str, str] = {}

PARAMETERS_LOCAL_ONLY: dict[tuple[str, str, str], str] = {
    ("Attempt", "reset", "into"): "a copy of the attempt's start state (a sandbox): the "
    "server passes it to its own attempt",
    ("Session", "resources", "research"): "narrows the rows to a research export's, which "
    "deidentify (local-only) makes",
    ("Session", "resources", "export"): "decides each row as a bulk export's, which export() "
    "makes; over the network the server's $export runs that export() itself",
}


def public_members(cls: type) -> set[str]:
    """Public names of a class: its attributes, methods and properties, and every attribute
    its ``__init__`` (or an ancestor's) sets on ``self``."""
    names = {n for n in dir(cls) if not n.startswith("_")}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or not inspect.isfunction(init):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        for node in ast.walk(tree):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            for t in targets:
                if (
                    isinstance(t, ast.Attribute)
                    and isinstance(t.value, ast.Name)
                    and t.value.id == "self"
                    and not t.attr.startswith("_")
                ):
                    names.add(t.attr)
    return names


PAIRS = [
    (Session, RemoteSession, SESSION_LOCAL_ONLY),
    (Attempt, RemoteAttempt, ATTEMPT_LOCAL_ONLY),
    (Reports, RemoteReports, REPORTS_LOCAL_ONLY),
    (Report, RemoteReport, REPORT_LOCAL_ONLY),
]


@pytest.mark.parametrize(
    ("local", "remote", "local_only"), PAIRS, ids=[p[0].__name__ for p in PAIRS]
)
def test_every_public_member_of_the_local_class_is_offered_remotely(local, remote, local_only):
    missing = sorted(public_members(local) - public_members(remote) - set(local_only))
    assert missing == [], (
        f"{remote.__name__} lacks {missing} of {local.__name__}: offer them remotely or list "
        "them as local-only with the reason"
    )


@pytest.mark.parametrize(
    ("local", "remote", "local_only"), PAIRS, ids=[p[0].__name__ for p in PAIRS]
)
def test_every_local_only_member_exists_locally_is_absent_remotely_and_has_a_reason(
    local, remote, local_only
):
    members = public_members(local)
    stale = sorted(n for n in local_only if n not in members)
    assert stale == [], f"{stale} are listed local-only but {local.__name__} has no such member"
    offered = sorted(n for n in local_only if n in public_members(remote))
    assert offered == [], f"{offered} are listed local-only but {remote.__name__} offers them"
    for name, reason in local_only.items():
        assert isinstance(reason, str) and len(reason.split()) >= 5, name


@pytest.mark.parametrize(
    ("local", "remote", "local_only"), PAIRS, ids=[p[0].__name__ for p in PAIRS]
)
def test_shared_methods_take_the_local_parameters(local, remote, local_only):
    """A method on both sides accepts at least the parameters of the local one (same names,
    so keyword calls written for the local class work remotely)."""
    shared = sorted(public_members(local) & public_members(remote))
    lacking: list[str] = []
    for name in shared:
        here, there = (
            inspect.getattr_static(local, name, None),
            inspect.getattr_static(remote, name, None),
        )
        if not (inspect.isfunction(here) and inspect.isfunction(there)):
            continue
        wanted = set(inspect.signature(here).parameters) - {"self"}
        offered = inspect.signature(there).parameters
        if any(p.kind is p.VAR_KEYWORD for p in offered.values()):
            continue
        lacking += [
            f"{name}({p})"
            for p in sorted(wanted - set(offered))
            if (local.__name__, name, p) not in PARAMETERS_LOCAL_ONLY
        ]
    assert lacking == [], f"{remote.__name__} lacks the local parameters {lacking}"


def test_the_member_finder_sees_methods_properties_and_init_attributes():
    class Demo:
        def __init__(self) -> None:
            self.seen = 1
            self._hidden = 2

        @property
        def prop(self) -> int:
            return 3

        def method(self) -> None:
            return None

    assert public_members(Demo) == {"seen", "prop", "method"}
