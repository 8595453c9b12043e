"""What a session can learn through every read channel (the privacy tests compare it with
and without hidden records): counts, Bundle totals, ids and their order, ``_sort``, type
history, ``_include``/``_revinclude`` (wildcards) and the Bundle's confidentiality mark,
chained searches through every derivation link, a SQL-on-FHIR view per type, bulk export,
every catalogue report, the ledger, the day sheet, A/R aging, the data-quality report and the
portal inbox."""

from __future__ import annotations

import json
import tempfile
from typing import Any

from ehr_sandbox.errors import SandboxError
from ehr_sandbox.reports import report_names
from ehr_sandbox.session import Session
from ehr_sandbox.workflows import ledger, maintenance, portal


def _safe(f: Any, *args: Any) -> Any:
    try:
        return f(*args)
    except SandboxError as exc:
        return f"{type(exc).__name__}: {exc}"


def _type_channels(s: Session, t: str) -> dict[str, Any]:
    return {
        f"count {t}": _safe(lambda: s.search(t).count()),
        f"total {t}": _safe(lambda: s.search(t).bundle().get("total")),
        f"ids {t}": _safe(lambda: [r["id"] for r in s.search(t).fetch_all()]),
        f"sort {t}": _safe(
            lambda: [r["id"] for r in s.search(t, _sort="-_lastUpdated", _count="3").fetch()]
        ),
        f"history {t}": _safe(lambda: len(s.history(t))),
        f"includes {t}": _safe(lambda: _included(s, t)),
        f"view {t}": _safe(lambda: s.run_view({"resource": t, "select": [_ID_COLUMN]})),
    }


_ID_COLUMN = {"column": [{"name": "id", "path": "id"}]}

CHAINS = [
    ("ClaimResponse", "request.status", "active"),
    ("ClaimResponse", "request.encounter.status", "finished"),
    ("ExplanationOfBenefit", "claim.status", "active"),
    ("Claim", "encounter.status", "finished"),
    ("DocumentReference", "encounter.status", "finished"),
    ("DocumentReference", "relatesto.status", "current"),
    ("Observation", "based-on:ServiceRequest.status", "active,completed"),
    ("DiagnosticReport", "based-on:ServiceRequest.status", "active,completed"),
    ("MedicationAdministration", "request.status", "active,completed"),
    ("Task", "focus:Communication.status", "completed"),
    ("Provenance", "target:Condition.clinical-status", "active"),
    ("Provenance", "target:Claim.status", "active"),
]
"""Chained searches through the links a record inherits labels along (derived.py)."""


def _included(s: Session, t: str) -> dict[str, Any]:
    bundle = s.search(t, _include="*", _revinclude="*").bundle()
    entries = [
        (e["resource"]["resourceType"], e["resource"]["id"], e.get("search", {}).get("mode"))
        for e in bundle.get("entry", [])
    ]
    return {"entries": entries, "meta": bundle.get("meta"), "total": bundle.get("total")}


def _export(s: Session) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as out:
        return s.export(out)


def channels(s: Session, day: str) -> dict[str, Any]:
    """What ``s`` can learn through every read channel, as comparable JSON (errors by type
    and message, so a refusal that differs is a difference too)."""
    out: dict[str, Any] = {}
    for t in s.readable_types():
        out.update(_type_channels(s, t))
    for rtype, chain, value in CHAINS:
        out[f"chain {rtype}?{chain}"] = _safe(
            lambda r, c, v: sorted(x["id"] for x in s.search(r, [(c, v)]).fetch_all()),
            rtype,
            chain,
            value,
        )
    out["export"] = _safe(_export, s)
    for name in report_names():
        out[f"report {name}"] = _safe(lambda n: s.reports.run(n).to_pylist(), name)
    out["ledger"] = _safe(lambda: [t.__dict__ for t in ledger.transactions(s)])
    out["day sheet"] = _safe(ledger.day_sheet, s, day)
    out["aging"] = _safe(ledger.ar_aging, s, day)
    out["data quality"] = _safe(maintenance.data_quality_report, s)
    out["inbox"] = _safe(portal.inbox, s)
    return json.loads(json.dumps(out, default=str))
