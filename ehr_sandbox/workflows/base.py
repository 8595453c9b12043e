"""What every workflow operation shares: rules with sources, typed refusals, one way to write.

A workflow operation is something a user does through a :class:`~ehr_sandbox.session.Session`
(book an appointment, post an ERA, reply to a portal message). It validates its input, writes
through the Session (which validates the resource, checks access, records Provenance and audits)
and, when a business rule forbids what was asked, raises :class:`RuleRefused` naming the rule
and its source. Nothing here touches the store.

>>> r = Rule("demo.no-zero", "an amount must be positive", "sandbox policy")
>>> err = RuleRefused(r, resource="Claim", path="total", expected="an amount > 0", found=0)
>>> print(err)
Claim: total: expected an amount > 0 (found 0). Refused by rule demo.no-zero: an amount must be positive [sandbox policy]
>>> isinstance(err, ValidationError), err.rule_id
(True, 'demo.no-zero')
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from ehr_sandbox.clock import instant
from ehr_sandbox.errors import ValidationError
from synthetic.systems import SANDBOX_WORKFLOW_OPERATION

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "OPERATION_TAG",
    "Rule",
    "RuleRefused",
    "id_of",
    "money",
    "now",
    "now_text",
    "operation_of",
    "ref",
    "ref_of",
    "today",
    "urn",
    "write",
    "write_all",
]

_REMOTE_URNS = itertools.count()
"""Numbers the ``urn:uuid`` of a remote session's transaction entries (see :func:`urn`)."""

OPERATION_TAG = SANDBOX_WORKFLOW_OPERATION
"""``meta.tag`` system naming the workflow operation that wrote a resource version."""


@dataclass(frozen=True)
class Rule:
    """A business rule as content: a stable id, one sentence, and where it comes from.

    >>> Rule("scheduling.blocked", "no booking in blocked time", "practice policy").id
    'scheduling.blocked'
    """

    id: str
    text: str
    source: str


class RuleRefused(ValidationError):
    """An operation was refused by a business rule (names the rule, the field and its source).

    Parameters
    ----------
    rule : Rule
        The rule that refused the operation.
    resource : str
        The resource (``Appointment`` or ``Appointment/123``) concerned.
    path : str
        The field the rule looked at.
    expected : str
        What would have been accepted.
    found : object, optional
        What was found instead.

    Examples
    --------
    >>> RuleRefused(Rule("x.y", "t", "s"), resource="Slot", path="status",
    ...             expected="free").rule.source
    's'
    """

    def __init__(
        self,
        rule: Rule,
        *,
        resource: str,
        path: str,
        expected: str,
        found: object = None,
    ) -> None:
        self.rule = rule
        self.rule_id = rule.id
        self.source = rule.source
        super().__init__(
            resource,
            path,
            expected,
            found=found,
            why=f"Refused by rule {rule.id}: {rule.text} [{rule.source}]",
        )


def ref(rtype: str, rid: str) -> str:
    """``"Type/id"``.

    >>> ref("Patient", "p1")
    'Patient/p1'
    """
    return f"{rtype}/{rid}"


def ref_of(resource: dict[str, Any]) -> str:
    """The relative reference of a stored resource.

    >>> ref_of({"resourceType": "Slot", "id": "s1"})
    'Slot/s1'
    """
    return f"{resource['resourceType']}/{resource['id']}"


def id_of(reference: str | dict[str, Any]) -> str:
    """The id inside ``"Type/id"``, a ``{"reference": ...}`` or a resource.

    >>> id_of("Patient/p1"), id_of({"reference": "Slot/s2"}), id_of({"resourceType": "X", "id": "i"})
    ('p1', 's2', 'i')
    """
    if isinstance(reference, dict):
        if "reference" in reference:
            reference = str(reference["reference"])
        else:
            return str(reference.get("id"))
    if "/" not in reference:
        return reference
    return reference.split("/")[1]


def now(session: Session) -> datetime:
    """The sandbox instant (deterministic clock; the wall clock is never read).

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> now(Sandbox.empty(reference_date="2026-01-05").system_session()).date().isoformat()
    '2026-01-05'
    """
    return session.now()


def now_text(session: Session) -> str:
    """:func:`now` as FHIR instant text.

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> now_text(Sandbox.empty(reference_date="2026-01-05").system_session())
    '2026-01-05T08:00:00+00:00'
    """
    return instant(now(session))


def today(session: Session) -> date:
    """The sandbox's current date.

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> today(Sandbox.empty(reference_date="2026-01-05").system_session()).isoformat()
    '2026-01-05'
    """
    return now(session).date()


def money(value: Any) -> Decimal:
    """An amount in dollars, to the cent (half up); accepts numbers, strings and FHIR Money.

    >>> money(10.005), money("3.1"), money({"value": 7, "currency": "USD"})
    (Decimal('10.01'), Decimal('3.10'), Decimal('7.00'))
    """
    if isinstance(value, dict):
        value = value.get("value", 0)
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def urn(session: Session, *parts: str) -> str:
    """A fresh ``urn:uuid:`` for a resource created in a transaction (deterministic: derived
    from the parts and the sandbox clock, which moves on at every call).

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.empty().system_session()
    >>> a, b = urn(s, "Schedule"), urn(s, "Schedule")
    >>> a.startswith("urn:uuid:"), a != b
    (True, True)
    """
    import uuid

    if getattr(session, "is_remote", False):
        # the server's clock is not moved by asking; a count keeps the urns apart (they
        # are replaced by the server's ids and never stored)
        stamp = f"{session.now().isoformat()}#{next(_REMOTE_URNS)}"
    else:
        stamp = session.sandbox.clock.now().isoformat()
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join((*parts, stamp))))


def _tagged(resource: dict[str, Any], operation: str) -> dict[str, Any]:
    res = copy.deepcopy(resource)
    meta = res.setdefault("meta", {})
    tags = [t for t in meta.get("tag", []) if t.get("system") != OPERATION_TAG]
    tags.append({"system": OPERATION_TAG, "code": operation})
    meta["tag"] = tags
    return res


def operation_of(resource: dict[str, Any]) -> str | None:
    """The workflow operation that wrote this version (from ``meta.tag``), or None.

    >>> operation_of({"meta": {"tag": [{"system": OPERATION_TAG, "code": "scheduling.book"}]}})
    'scheduling.book'
    """
    for tag in (resource.get("meta") or {}).get("tag", []):
        if tag.get("system") == OPERATION_TAG:
            return tag.get("code")
    return None


def write(
    session: Session,
    resource: dict[str, Any],
    *,
    operation: str,
    reason: str | None = None,
) -> dict[str, Any]:
    """Create (no ``id``) or update (with ``id`` and ``meta.versionId``) one resource.

    The Session validates, checks access, records the Provenance (with ``reason``) and audits;
    the version is tagged with the workflow ``operation``.

    Parameters
    ----------
    session : Session
        The acting user's session.
    resource : dict
        FHIR resource to write.
    operation : str
        ``"<module>.<operation>"`` recorded in ``meta.tag``.
    reason : str, optional
        Why (kept in the Provenance).

    Returns
    -------
    dict
        The stored resource as the session sees it.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).system_session()
    >>> org = write(s, {"resourceType": "Organization", "name": "Payer X"}, operation="demo.op")
    >>> operation_of(org)
    'demo.op'
    """
    res = _tagged(resource, operation)
    if res.get("id") and (res.get("meta") or {}).get("versionId"):
        return session.update(res, reason=reason)
    return session.create(res, reason=reason)


def write_all(
    session: Session,
    entries: list[dict[str, Any]],
    *,
    operation: str,
) -> list[dict[str, Any]]:
    """Write several resources all or nothing (``session.atomic()``), in order.

    Each entry is a resource (update when it has ``id`` and ``meta.versionId``, else create) or
    ``{"fullUrl": "urn:uuid:...", "resource": {...}}`` so later entries can reference it (the
    ``urn:uuid`` is replaced by the created resource's reference). Each write goes through the
    Session (validation, access, Provenance, audit); ids are assigned as for ``session.create``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).system_session()
    >>> out = write_all(s, [{"fullUrl": "urn:uuid:0f3c1a9e-0000-4000-8000-000000000001",
    ...     "resource": {"resourceType": "Organization", "name": "A"}},
    ...     {"resourceType": "Location", "name": "Room 1",
    ...      "managingOrganization": {"reference": "urn:uuid:0f3c1a9e-0000-4000-8000-000000000001"}}],
    ...     operation="demo.op")
    >>> out[1]["managingOrganization"]["reference"] == "Organization/" + out[0]["id"]
    True
    """
    plan: list[tuple[str | None, dict[str, Any]]] = []
    for item in entries:
        if "resource" in item and "resourceType" not in item:
            plan.append((item.get("fullUrl"), _tagged(item["resource"], operation)))
        else:
            plan.append((None, _tagged(item, operation)))
    resolved: dict[str, str] = {}

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: swap(v) for k, v in node.items()}
            ref = out.get("reference")
            if isinstance(ref, str) and ref in resolved:
                out["reference"] = resolved[ref]
            return out
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    if getattr(session, "is_remote", False):
        return _write_all_remote(session, plan)
    saved: list[dict[str, Any]] = []
    with session.atomic():
        for full_url, res in plan:
            res = swap(res)
            if res.get("id") and (res.get("meta") or {}).get("versionId"):
                out = session.update(res)
            else:
                res.pop("id", None)
                out = session.create(res)
            if full_url:
                resolved[full_url] = f"{out['resourceType']}/{out['id']}"
            saved.append(out)
    return saved


def _write_all_remote(
    session: Session, plan: list[tuple[str | None, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """:func:`write_all` on a remote session: one transaction Bundle (all or nothing on the
    server, ``urn:uuid`` references resolved there), then each written version read back."""
    entries = []
    for full_url, res in plan:
        rtype = res["resourceType"]
        vid = (res.get("meta") or {}).get("versionId")
        if res.get("id") and vid:
            request = {"method": "PUT", "url": f"{rtype}/{res['id']}", "ifMatch": f'W/"{vid}"'}
        else:
            res = {k: v for k, v in res.items() if k != "id"}
            request = {"method": "POST", "url": rtype}
        entries.append(
            {**({"fullUrl": full_url} if full_url else {}), "resource": res, "request": request}
        )
    reply = session.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    saved = []
    for entry in reply.get("entry", []):
        rtype, rid, _, vid = entry["response"]["location"].split("/")[:4]
        saved.append(session.vread(rtype, rid, vid))
    return saved
