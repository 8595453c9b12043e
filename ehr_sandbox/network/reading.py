"""Reading one patient's resources of a type through a Session, whatever the type supports.

Some types (MedicationStatement) have no ``patient`` search parameter in the sandbox; for
those the session's policy-filtered ``resources()`` is filtered by subject instead. Either way
the session's policy decides what comes back.

>>> from ehr_sandbox.sandbox import Sandbox
>>> sb = Sandbox.generate(patients=1, seed=1)
>>> pid = next(sb.system_session().resources("Patient"))["id"]
>>> patient_resources(sb.system_session(), "MedicationStatement", pid)
[]
"""

from __future__ import annotations

from typing import Any

from ehr_sandbox.errors import AccessDenied, NotFound
from ehr_sandbox.search.registry import lookup

__all__ = ["patient_resources"]


def patient_resources(session: Any, resource_type: str, patient_id: str) -> list[dict[str, Any]]:
    """The resources of ``resource_type`` about ``patient_id`` that ``session`` may read.

    A type with a ``patient`` search parameter is searched; any other is read through
    ``session.resources`` and filtered on ``subject``/``patient``. A refusal gives ``[]``.

    Parameters
    ----------
    session : Session
    resource_type : str
    patient_id : str

    Returns
    -------
    list of dict

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> pid = sb.grader_session().search("Patient").first()["id"]
    >>> len(patient_resources(sb.login("dr.patel"), "Condition", pid)), patient_resources(sb.login("fd.smith"), "Condition", pid)
    (4, [])
    """
    ref = f"Patient/{patient_id}"
    try:
        if lookup(resource_type, "patient") is not None:
            return list(session.search(resource_type, params={"patient": ref}).fetch())
        return [
            r
            for r in session.resources(resource_type)
            if ref
            in (
                (r.get("subject") or {}).get("reference"),
                (r.get("patient") or {}).get("reference"),
            )
        ]
    except (AccessDenied, NotFound):
        return []
