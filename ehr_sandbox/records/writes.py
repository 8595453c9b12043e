"""The one typed write request the Session's write pipeline takes.

Every write to patient data (create, update, correction, amendment, label change, import,
transaction entry) is a :class:`WriteRequest` passed to :meth:`Session.write
<ehr_sandbox.session.Session.write>`; there is no other way to write.

>>> req = WriteRequest("create", {"resourceType": "Patient"}, activity="create")
>>> req.action, req.keep_id, req.provenance
('create', False, True)
>>> WriteRequest("delete", {}, activity="create")
Traceback (most recent call last):
...
ehr_sandbox.errors.ValidationError: write: action: expected create or update (found 'delete')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.provenance import ACTIVITIES

WRITE_ACTIONS = frozenset({"create", "update"})
"""What a write does (the sandbox never deletes: see entered-in-error)."""


@dataclass(frozen=True)
class WriteRequest:
    """One write through the session's pipeline.

    Parameters
    ----------
    action
        ``create`` or ``update``.
    resource
        The FHIR resource (not modified; the pipeline works on a copy).
    activity
        The Provenance activity (``create``, ``update``, ``correct``, ``label``, ...).
    reason
        Why (required for corrections, amendments, labels and other legal-record changes).
    occurred
        When the event happened, for a late entry.
    label_change
        The write changes ``meta.security`` only (privacy officer).
    keep_id
        A create keeps the resource's id (imports and planned transaction entries only).
    strict
        Validate strictly (imports of outside data relax code-system checks).
    provenance
        Record a Provenance for this write (imports record one for the whole file).
    planned
        References written in the same transaction, which count as existing.
    override_reason
        Why a drug-allergy alert is overridden (medication orders and administrations only);
        without it a conflicting medication raises ``AllergyConflict``.

    Examples
    --------
    >>> WriteRequest("update", {"resourceType": "Patient", "id": "a"}, activity="label",
    ...              reason="42 CFR Part 2", label_change=True).label_change
    True
    """

    action: str
    resource: dict[str, Any]
    activity: str
    reason: str | None = None
    occurred: str | None = None
    label_change: bool = False
    keep_id: bool = False
    strict: bool = True
    provenance: bool = True
    planned: frozenset[str] = field(default_factory=frozenset)
    override_reason: str | None = None

    def __post_init__(self) -> None:
        if self.action not in WRITE_ACTIONS:
            raise ValidationError("write", "action", "create or update", found=self.action)
        if self.activity not in ACTIVITIES:
            raise ValidationError(
                "write", "activity", "one of " + ", ".join(sorted(ACTIVITIES)), found=self.activity
            )
        if self.label_change and self.action != "update":
            raise ValidationError("write", "label_change", "an update", found=self.action)
