"""Per-patient FHIR Bundles (transaction or collection) and the shared practice bundle.

Transaction bundles give every entry a deterministic ``urn:uuid`` fullUrl and rewrite the
references between entries to those urns (the server assigns ids on POST); references to the
practice (Practitioner, Organization, ...) stay relative because the practice bundle PUTs those
resources with their own ids. Collection bundles keep relative references and use fullUrls
under a fixed base so that the references resolve against them.

>>> p = {"resourceType": "Patient", "id": "p1", "meta": {"security": [CONF_N]}}
>>> o = {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}
>>> b = make_bundle([p, o], "transaction", bundle_id="b1")
>>> b["entry"][1]["resource"]["subject"]["reference"] == b["entry"][0]["fullUrl"]
True
>>> b["entry"][1]["request"]
{'method': 'POST', 'url': 'Observation'}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from synthetic.errors import ArgumentError
from synthetic.ids import urn_uuid

COLLECTION_BASE = "http://ehr-sandbox.org/fhir/"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
CONF_N = {"system": CONFIDENTIALITY, "code": "N", "display": "normal"}
_ORDER = "ULMNRV"
BUNDLE_TYPES = ("transaction", "collection")


def highest_confidentiality(resources: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The highest v3-Confidentiality coding among ``resources`` (N when none is labelled).

    >>> r = {"meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"}]}}
    >>> highest_confidentiality([{}, r])["code"]
    'R'
    """
    best = CONF_N
    for res in resources:
        for s in res.get("meta", {}).get("security", ()):
            if s.get("system") == CONFIDENTIALITY and _ORDER.find(s.get("code", "")) > _ORDER.find(
                best["code"]
            ):
                best = s
    return best


def _rewrite(obj: Any, refs: dict[str, str]) -> Any:
    # Copies on the way down: generated resources share template dicts, never mutate them.
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "reference" and isinstance(v, str):
                out[k] = refs.get(v, v)
            else:
                out[k] = _rewrite(v, refs) if isinstance(v, (dict, list)) else v
        return out
    if isinstance(obj, list):
        return [_rewrite(v, refs) if isinstance(v, (dict, list)) else v for v in obj]
    return obj


def make_bundle(
    resources: list[dict[str, Any]],
    bundle_type: str = "transaction",
    *,
    bundle_id: str,
    method: str = "POST",
) -> dict[str, Any]:
    """Wrap ``resources`` in a Bundle of ``bundle_type``; ``method`` POST or PUT (transactions).

    >>> make_bundle([], "batch", bundle_id="x")
    Traceback (most recent call last):
    ...
    synthetic.errors.ArgumentError: bundle_type: expected one of transaction, collection, got 'batch'
    """
    if bundle_type not in BUNDLE_TYPES:
        raise ArgumentError(
            f"bundle_type: expected one of {', '.join(BUNDLE_TYPES)}, got {bundle_type!r}"
        )
    meta = {
        "tag": [{"system": "http://ehr-sandbox.org/CodeSystem/tags", "code": "synthetic"}],
        "security": [highest_confidentiality(resources)],
    }
    entries: list[dict[str, Any]] = []
    if bundle_type == "collection":
        for r in resources:
            entries.append(
                {"fullUrl": f"{COLLECTION_BASE}{r['resourceType']}/{r['id']}", "resource": r}
            )
    else:
        urns = {
            f"{r['resourceType']}/{r['id']}": urn_uuid(r["resourceType"], r["id"])
            for r in resources
        }
        for r in resources:
            key = f"{r['resourceType']}/{r['id']}"
            if method == "PUT":
                entries.append(
                    {"fullUrl": urns[key], "resource": r, "request": {"method": "PUT", "url": key}}
                )
            else:
                entries.append(
                    {
                        "fullUrl": urns[key],
                        "resource": _rewrite(r, urns),
                        "request": {"method": "POST", "url": r["resourceType"]},
                    }
                )
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": meta,
        "type": bundle_type,
        "entry": entries,
    }
