"""A HIPAA Safe Harbor research export, run as a Session.

Who may run it is the policy's decision (action ``deidentify``); what leaves is what
:mod:`ehr_sandbox.deid` keeps. The surrogate map stays inside the sandbox (access-controlled),
never in the export.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ehr_sandbox.errors import AccessDenied

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

EXPORT_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationAdministration",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "ServiceRequest",
    "Specimen",
    "DocumentReference",
    "Claim",
    "Coverage",
)
"""Resource types a research export carries (practice staff and audit data never leave)."""


def deidentified_export(session: Session, out_dir: str) -> dict[str, int]:
    """De-identify what the session's role may export for research; write Bulk NDJSON.

    Every record passes the policy (the role's ceiling and excluded labels, the relationship,
    the patients' research Consents) and HIPAA Safe Harbor de-identification; the map from
    surrogates back to the originals is sealed inside the sandbox. :meth:`Session.deidentify`
    calls this.

    Parameters
    ----------
    session : Session
        A role that may make research exports.
    out_dir : str
        The folder to write.

    Returns
    -------
    dict
        Resources written, by type.

    Raises
    ------
    AccessDenied
        The role may not make research exports (audited).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> counts = deidentified_export(sb.system_session(), str(out))
    >>> counts["Patient"], "MRN00000001" in (out / "Patient.ndjson").read_text()
    (1, False)
    >>> deidentified_export(sb.login("fd.smith"), str(out))
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.AccessDenied: front_desk may not deidentify (Patient): that needs one of instructor, privacy_officer
    """
    from ehr_sandbox.bundles import export_ndjson
    from ehr_sandbox.deid import deidentify

    decision = session.sandbox.policy.can_type(session.context, "deidentify", "Patient")
    if not decision.allowed:
        session.audit_operation("deidentify", "4", query="$deidentify")
        raise AccessDenied(decision.reason or f"{session.user.role} may not make a research export")
    # Per record through the policy: the role's ceiling and excluded labels, the relationship,
    # and every patient's research Consents (purpose HRESCH). Audited per patient as it goes.
    resources = [r for rtype in EXPORT_TYPES for r in session.resources(rtype, research=True)]
    result = deidentify(resources, reference_date=session.sandbox.reference_date)
    by_type: dict[str, list[dict]] = {}
    for r in result.resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    export_ndjson(by_type, out)
    session.sandbox.private.set("deid_surrogates", result.surrogate_map)
    session.audit_operation("deidentify", "0", query="$deidentify")
    return {k: len(v) for k, v in sorted(by_type.items())}
