"""The FHIR ``transaction-response`` Bundle for an applied plan."""

from __future__ import annotations

from typing import Any

from ehr_sandbox.bundles.plan import PlannedWrite


def transaction_response(plan: list[PlannedWrite], results: list[dict[str, Any]]) -> dict[str, Any]:
    """A FHIR ``transaction-response`` Bundle for an applied plan.

    >>> w = PlannedWrite(0, "create", {"resourceType": "Patient", "id": "a"})
    >>> transaction_response([w], [{"resourceType": "Patient", "id": "a", "meta": {"versionId": "1"}}])["entry"][0]["response"]
    {'status': '201 Created', 'location': 'Patient/a/_history/1', 'etag': 'W/"1"'}
    """
    entries = []
    for w, r in zip(plan, results, strict=True):
        vid = (r.get("meta") or {}).get("versionId", "1")
        status = {"create": "201 Created", "update": "200 OK"}.get(w.action, "200 OK")
        entries.append(
            {
                "response": {
                    "status": status,
                    "location": f"{w.ref}/_history/{vid}",
                    "etag": f'W/"{vid}"',
                }
            }
        )
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
