"""Rule 3: the relationship between the user and the patient the data belongs to.

A clinician sees the patients they treat or room (the session computes ``ctx.treating``); a
patient sees only themself; roles whose work spans the practice (front desk, billing) are not
limited here but by their role matrix. Data that belongs to no patient (staff directory) is
not subject to this rule, but data of a patient-compartment type that names no patient is
refused: a missing link must never mean "everybody's". A patient sees nothing that names no
patient except shared reference data (practitioners, locations), as a ``patient/`` scope.

>>> from ehr_sandbox.access.context import AccessContext
>>> ctx = AccessContext(username="rn.kim", role="nurse", practitioner_id="n1", patient_id=None,
...                     scopes=None, treating=frozenset({"a"}))
>>> has_relationship(ctx, frozenset({"a"}), "Observation"), has_relationship(ctx, frozenset({"b"}), "Observation")
(True, False)
"""

from __future__ import annotations

from ehr_sandbox.access.compartment import is_reference_data, needs_patient
from ehr_sandbox.access.context import AccessContext


def has_relationship(ctx: AccessContext, patients: frozenset[str], resource_type: str) -> bool:
    """True when the user's relationship covers every patient of the resource.

    >>> from ehr_sandbox.access.context import AccessContext
    >>> me = AccessContext(username="patient/p1", role="patient", practitioner_id=None,
    ...                    patient_id="p1", scopes=None)
    >>> has_relationship(me, frozenset({"p1"}), "Condition"), has_relationship(me, frozenset(), "Condition")
    (True, False)
    >>> has_relationship(me, frozenset(), "Practitioner"), has_relationship(me, frozenset(), "PaymentReconciliation")
    (True, False)
    """
    kind = ctx.role_info.relationship
    if kind in ("any", "bypass"):
        return True
    if not patients:
        # A patient sees their own record and the shared directory, nothing that merely
        # names nobody (the same rule as a patient/ scope); staff roles see practice data.
        if kind == "self":
            return is_reference_data(resource_type)
        return not needs_patient(resource_type)
    if kind == "self":
        return ctx.patient_id is not None and patients == {ctx.patient_id}
    return patients <= ctx.treating


def relationship_refusal(ctx: AccessContext, patients: frozenset[str]) -> str:
    """Why rule 3 refused, in words a student can act on.

    >>> from ehr_sandbox.access.context import AccessContext
    >>> ctx = AccessContext(username="ma.chen", role="medical_assistant", practitioner_id="m",
    ...                     patient_id=None, scopes=None)
    >>> relationship_refusal(ctx, frozenset({"b"}))[:60]
    'ma.chen (medical_assistant) has no care relationship with Pa'
    """
    who = f"{ctx.username} ({ctx.role})"
    if not patients:
        return f"{who}: the resource names no patient, so no relationship can be established"
    names = ", ".join(f"Patient/{p}" for p in sorted(patients))
    if ctx.role_info.relationship == "self":
        return f"{who} may only see their own record, not {names}"
    hint = (
        "; in an emergency, break the glass (session.break_glass(patient, reason))"
        if ctx.role_info.break_glass
        else ""
    )
    return (
        f"{who} has no care relationship with {names}: only patients you treat or who are "
        f"scheduled this week{hint}"
    )
