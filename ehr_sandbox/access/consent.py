"""FHIR R4 Consent evaluation (privacy directives): may this access happen, per the patient?

Only ``active`` Consents whose period contains "now" count. Each provision may restrict by
actor, action, security label, purpose, class (resource type), code, data period and data
references; nested provisions refine their parent and the deepest matching one decides. Among
several matching provisions or Consents, deny overrides permit. A Consent can only narrow
access (the policy applies it after the role, scopes, relationship and ceiling), so "permit"
here means "no objection", never "allowed although the role says no".

>>> req = ConsentRequest(actor_refs=frozenset({"Practitioner/d1"}), actor_roles=frozenset({"billing"}),
...     actions=READ_ACTIONS, purposes=frozenset({"HPAYMT"}), resource_type="Encounter",
...     resource={"resourceType": "Encounter", "id": "e1"})
>>> c = {"resourceType": "Consent", "id": "c1", "status": "active", "provision": {"type": "permit",
...      "provision": [{"type": "deny", "purpose": [{"code": "HPAYMT"}],
...                     "data": [{"meaning": "related", "reference": {"reference": "Encounter/e1"}}]}]}}
>>> evaluate_consents([c], req)
('deny', 'c1')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ehr_sandbox.access.labels import codings_in
from ehr_sandbox.references import references_in

READ_ACTIONS: frozenset[str] = frozenset({"access", "use", "disclose"})
"""consentaction codes a read, search or history matches."""

ACTION_CODES: dict[str, frozenset[str]] = {
    "read": READ_ACTIONS,
    "vread": READ_ACTIONS,
    "history": READ_ACTIONS,
    "search": READ_ACTIONS,
    "export": READ_ACTIONS,
    "deidentify": READ_ACTIONS,
    "create": frozenset({"collect"}),
    "update": frozenset({"correct"}),
    "delete": frozenset({"correct"}),
    "label": frozenset(),
}
"""Sandbox actions -> http://terminology.hl7.org/CodeSystem/consentaction codes they match."""

# Where a resource keeps the date of what it records (dataPeriod is about clinical time).
_DATE_FIELDS: tuple[tuple[str, ...], ...] = (
    ("effectiveDateTime",),
    ("effectivePeriod", "start"),
    ("effectiveInstant",),
    ("occurrenceDateTime",),
    ("performedDateTime",),
    ("performedPeriod", "start"),
    ("onsetDateTime",),
    ("onsetPeriod", "start"),
    ("recordedDate",),
    ("authoredOn",),
    ("period", "start"),
    ("billablePeriod", "start"),
    ("collection", "collectedDateTime"),
    ("issued",),
    ("date",),
    ("created",),
    ("start",),
    ("sent",),
)
# References that say who wrote the data (for data.meaning = authoredby).
_AUTHOR_KEYS = frozenset(
    {"author", "recorder", "asserter", "requester", "performer", "enterer", "provider"}
)


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """The access a Consent is asked about.

    ``actor_refs`` are the references that identify the user (``Practitioner/x``,
    ``Patient/y``); ``actor_roles`` the job role codes; ``actions`` consentaction codes;
    ``purposes`` purpose-of-use codes (v3-ActReason); ``now`` an ISO date/dateTime (None: periods
    are not checked).

    >>> ConsentRequest(frozenset(), frozenset(), READ_ACTIONS, frozenset(), "Patient", None).now is None
    True
    """

    actor_refs: frozenset[str]
    actor_roles: frozenset[str]
    actions: frozenset[str]
    purposes: frozenset[str]
    resource_type: str
    resource: dict[str, Any] | None
    now: str | None = None
    derived_from: Callable[[], frozenset[str]] | None = None
    """The records ``resource`` is derived from, directly or not (``Type/id``; see
    :mod:`ehr_sandbox.access.derived`), asked only when a provision names data: a Consent
    about a visit covers its claim's response too, not only the records pointing at it."""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _normalize_ref(ref: Any) -> str | None:
    if isinstance(ref, dict):
        ref = ref.get("reference")
    if not isinstance(ref, str) or "/" not in ref:
        return None
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return "/".join(parts[-2:])


def _in_period(when: str, period: Any) -> bool:
    """True when ISO ``when`` lies within the FHIR Period (bounds inclusive, by date prefix)."""
    if not isinstance(period, dict):
        return True
    start, end = period.get("start"), period.get("end")
    # Compare at the precision of the bound so that "2026-01-01" covers that whole day.
    if isinstance(start, str) and start and when[: len(start)] < start[: len(when)]:
        return False
    return not (isinstance(end, str) and end and when[: len(end)] > end[: len(when)])


def consent_is_active(consent: dict[str, Any], now: str | None) -> bool:
    """True for an ``active`` Consent whose ``provision.period`` contains ``now``.

    >>> c = {"status": "active", "provision": {"period": {"start": "2025-01-01", "end": "2025-12-31"}}}
    >>> consent_is_active(c, "2025-06-01"), consent_is_active(c, "2026-01-01"), consent_is_active(c, None)
    (True, False, True)
    >>> consent_is_active({"status": "inactive"}, None)
    False
    """
    if not isinstance(consent, dict) or consent.get("status") != "active":
        return False
    provision = consent.get("provision")
    if now is None or not isinstance(provision, dict):
        return True
    return _in_period(now, provision.get("period"))


def _codes(items: Any) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for item in _as_list(items):
        if not isinstance(item, dict):
            continue
        codings = item.get("coding") if "coding" in item else [item]
        for c in _as_list(codings):
            if isinstance(c, dict) and isinstance(c.get("code"), str):
                system = c.get("system")
                out.append((system if isinstance(system, str) else None, c["code"]))
    return out


def _code_hit(wanted: list[tuple[str | None, str]], have: Iterable[tuple[str | None, str]]) -> bool:
    have_list = list(have)
    for ws, wc in wanted:
        for hs, hc in have_list:
            if wc == hc and (ws is None or hs is None or ws == hs):
                return True
    return False


def _resource_date(resource: dict[str, Any]) -> str | None:
    for path in _DATE_FIELDS:
        node: Any = resource
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            return node
    return None


def _authored_refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _AUTHOR_KEYS:
                out.update(r for r in (_normalize_ref(x) for x in references_in(value)) if r)
                for item in _as_list(value):
                    ref = _normalize_ref(item)
                    if ref:
                        out.add(ref)
            elif isinstance(value, dict | list):
                _authored_refs(value, out)
    elif isinstance(node, list):
        for item in node:
            _authored_refs(item, out)


def _data_matches(data: list[Any], req: ConsentRequest) -> bool:
    res = req.resource
    if not isinstance(res, dict):
        return False
    own = f"{req.resource_type}/{res.get('id')}" if res.get("id") else None
    refs: set[str] | None = None
    authors: set[str] | None = None
    for item in data:
        if not isinstance(item, dict):
            continue
        target = _normalize_ref(item.get("reference"))
        if target is None:
            continue
        meaning = item.get("meaning", "related")
        if meaning in ("instance", "related") and own == target:
            return True
        if meaning in ("related", "dependents"):
            if refs is None:
                refs = {r for r in (_normalize_ref(x) for x in references_in(res)) if r}
                if req.derived_from is not None:
                    refs |= req.derived_from()
            if target in refs:
                return True
        if meaning == "authoredby":
            if authors is None:
                authors = set()
                _authored_refs(res, authors)
            if target in authors:
                return True
    return False


def provision_matches(provision: dict[str, Any], req: ConsentRequest) -> bool:
    """True when every condition the provision states holds for the request.

    >>> req = ConsentRequest(frozenset(), frozenset({"nurse"}), READ_ACTIONS, frozenset({"TREAT"}),
    ...                      "Observation", {"resourceType": "Observation"})
    >>> provision_matches({"class": [{"code": "Observation"}], "actor": [{"role": {"coding": [{"code": "nurse"}]}}]}, req)
    True
    >>> provision_matches({"purpose": [{"code": "HPAYMT"}]}, req)
    False
    """
    actors = _as_list(provision.get("actor"))
    if actors:
        hit = False
        for actor in actors:
            if not isinstance(actor, dict):
                continue
            ref = _normalize_ref(actor.get("reference"))
            if ref is not None and ref in req.actor_refs:
                hit = True
                break
            if any(code in req.actor_roles for _, code in _codes(actor.get("role"))):
                hit = True
                break
        if not hit:
            return False
    actions = _codes(provision.get("action"))
    if actions and not any(code in req.actions for _, code in actions):
        return False
    purposes = _codes(provision.get("purpose"))
    if purposes and not any(code in req.purposes for _, code in purposes):
        return False
    classes = _codes(provision.get("class"))
    if classes and not any(code == req.resource_type for _, code in classes):
        return False
    labels = _codes(provision.get("securityLabel"))
    if labels:
        res = req.resource
        meta = res.get("meta") if isinstance(res, dict) else None
        have = _codes(meta.get("security")) if isinstance(meta, dict) else []
        if not _code_hit(labels, have):
            return False
    codes = _codes(provision.get("code"))
    if codes and not (
        isinstance(req.resource, dict) and _code_hit(codes, codings_in(req.resource))
    ):
        return False
    period = provision.get("dataPeriod")
    if period is not None:
        when = _resource_date(req.resource) if isinstance(req.resource, dict) else None
        if when is None or not _in_period(when, period):
            return False
    data = _as_list(provision.get("data"))
    return not (data and not _data_matches(data, req))


def _evaluate(provision: Any, req: ConsentRequest, inherited: str) -> str | None:
    if not isinstance(provision, dict) or not provision_matches(provision, req):
        return None
    kind = provision.get("type")
    if kind not in ("deny", "permit"):
        kind = inherited
    verdicts = {_evaluate(child, req, kind) for child in _as_list(provision.get("provision"))}
    verdicts.discard(None)
    if verdicts:
        return "deny" if "deny" in verdicts else "permit"
    return kind


def _has_optout(consent: dict[str, Any]) -> bool:
    return any(code == "OPTOUT" for _, code in _codes(consent.get("policyRule")))


def consent_verdict(consent: dict[str, Any], req: ConsentRequest) -> str | None:
    """``"deny"``, ``"permit"`` or None (this Consent says nothing about the request).

    A Consent without provisions whose ``policyRule`` is ``OPTOUT`` denies everything it covers.

    >>> req = ConsentRequest(frozenset(), frozenset(), READ_ACTIONS, frozenset(), "Observation", {})
    >>> consent_verdict({"status": "active", "provision": {"type": "deny"}}, req)
    'deny'
    >>> consent_verdict({"status": "draft", "provision": {"type": "deny"}}, req) is None
    True
    """
    if not consent_is_active(consent, req.now):
        return None
    provision = consent.get("provision")
    if not isinstance(provision, dict):
        return "deny" if _has_optout(consent) else None
    return _evaluate(provision, req, "permit")


def evaluate_consents(
    consents: Iterable[Any], req: ConsentRequest
) -> tuple[str | None, str | None]:
    """Combine several Consents: the first deny wins, else permit if any, else None.

    Returns ``(verdict, consent id)``.

    >>> evaluate_consents([], ConsentRequest(frozenset(), frozenset(), READ_ACTIONS, frozenset(), "Patient", {}))
    (None, None)
    """
    permit: str | None = None
    seen_permit = False
    for consent in consents:
        if not isinstance(consent, dict):
            continue
        verdict = consent_verdict(consent, req)
        if verdict == "deny":
            return "deny", str(consent.get("id", ""))
        if verdict == "permit" and not seen_permit:
            seen_permit, permit = True, str(consent.get("id", ""))
    return ("permit", permit) if seen_permit else (None, None)
