"""Access control in one place: roles, SMART v2 scopes, relationship, security labels,
Consent, break-the-glass and minimum-necessary masking (docs/privacy.md). Pure: no store access.

>>> from ehr_sandbox.access import parse_scopes, ROLES
>>> parse_scopes("user/Patient.rs").allows("user", "Patient", "s"), "physician" in ROLES
(True, True)
"""

from __future__ import annotations

from ehr_sandbox.access.breakglass import BTG_PURPOSE, btg_lifts, can_break_glass
from ehr_sandbox.access.compartment import needs_patient, patient_of, patients_of
from ehr_sandbox.access.consent import (
    ConsentRequest,
    consent_is_active,
    consent_verdict,
    evaluate_consents,
)
from ehr_sandbox.access.context import AccessContext, Decision
from ehr_sandbox.access.labels import (
    ACT_CODE,
    CONFIDENTIALITY,
    CONFIDENTIALITY_RANK,
    SANDBOX_RULES,
    LabelRule,
    assign_labels,
    confidentiality_of,
    highest_confidentiality,
    sensitivities_of,
)
from ehr_sandbox.access.masking import mask
from ehr_sandbox.access.policy import ACTIONS, ALLOWED, Policy
from ehr_sandbox.access.roles import ROLE_MATRIX, ROLES, Role, refusal, roles_allowing
from ehr_sandbox.access.scopes import NON_DATA_SCOPES, Scope, ScopeSet, parse_scopes
from ehr_sandbox.references import reference_id

__all__ = [
    "ACTIONS",
    "ACT_CODE",
    "ALLOWED",
    "BTG_PURPOSE",
    "CONFIDENTIALITY",
    "CONFIDENTIALITY_RANK",
    "SANDBOX_RULES",
    "NON_DATA_SCOPES",
    "ROLES",
    "ROLE_MATRIX",
    "AccessContext",
    "ConsentRequest",
    "Decision",
    "LabelRule",
    "Policy",
    "Role",
    "Scope",
    "ScopeSet",
    "assign_labels",
    "btg_lifts",
    "can_break_glass",
    "confidentiality_of",
    "consent_is_active",
    "consent_verdict",
    "evaluate_consents",
    "highest_confidentiality",
    "mask",
    "needs_patient",
    "parse_scopes",
    "patient_of",
    "patients_of",
    "reference_id",
    "refusal",
    "roles_allowing",
    "sensitivities_of",
]
