"""Rule 6: break-the-glass (emergency access) — who may use it and what it lifts.

Break-the-glass lifts rules 3-5 (relationship, confidentiality ceiling up to R, Consent) for
one patient, for a physician or nurse, while the session keeps it active. It never lifts the
role matrix or the scopes, never very-restricted (V) data, never psychotherapy notes
(PSYTHPN), never a role's excluded labels, and never a bulk export (the policy asks
:func:`btg_lifts` only for in-session access: an export file outlives the override).

>>> can_break_glass("nurse"), can_break_glass("medical_assistant")
(True, False)
"""

from __future__ import annotations

from ehr_sandbox.access.context import AccessContext
from ehr_sandbox.access.roles import ROLES

BTG_PURPOSE = "BTG"
"""v3-ActReason purpose of use carried by every access under break-the-glass."""

DICOM_SECURITY_ALERT = "110113"
"""DICOM audit event ID "Security Alert" (the AuditEvent type of a break-the-glass start/stop)."""
DICOM_EMERGENCY_OVERRIDE_STARTED = "110127"
"""DICOM audit event type code "Emergency Override Started"."""

NOT_LIFTED_CONFIDENTIALITY = frozenset({"V"})
NOT_LIFTED_SENSITIVITY = frozenset({"PSYTHPN"})


def can_break_glass(role: str) -> bool:
    """True for the roles allowed to break the glass (physician, nurse).

    >>> can_break_glass("physician"), can_break_glass("billing"), can_break_glass("nobody")
    (True, False, False)
    """
    info = ROLES.get(role)
    return bool(info and info.break_glass)


def btg_lifts(
    ctx: AccessContext, patients: frozenset[str], confidentiality: str, sensitivity: frozenset[str]
) -> bool:
    """True when an active break-the-glass covers this data.

    >>> from ehr_sandbox.access.context import AccessContext
    >>> ctx = AccessContext(username="dr.okafor", role="physician", practitioner_id="d",
    ...                     patient_id=None, scopes=None, btg=frozenset({"p9"}))
    >>> btg_lifts(ctx, frozenset({"p9"}), "R", frozenset()), btg_lifts(ctx, frozenset({"p9"}), "V", frozenset())
    (True, False)
    >>> btg_lifts(ctx, frozenset({"p9"}), "R", frozenset({"PSYTHPN"}))
    False
    """
    return (
        ctx.role_info.break_glass
        and bool(patients)
        and patients <= ctx.btg
        and confidentiality not in NOT_LIFTED_CONFIDENTIALITY
        and not (sensitivity & NOT_LIFTED_SENSITIVITY)
    )
