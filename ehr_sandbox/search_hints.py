"""Hints for searches that would silently find nothing: an identifier (MRN) given where a
resource id belongs, e.g. ``Observation?patient=MRN00000001``.

Only patients the session may see are looked up, so a hint never reveals a record the user
could not find by searching for it.

>>> from ehr_sandbox.sandbox import Sandbox
>>> s = Sandbox.generate(patients=1, seed=1).login("dr.patel")
>>> try:
...     s.search("Observation", patient="MRN00000001")
... except Exception as err:
...     print(type(err).__name__, "MRN00000001" in str(err))
SearchError True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import SearchError

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = ["identifier_hint"]

_PATIENT_ID_PARAMS = {"patient", "subject:Patient", "patient:Patient"}


def identifier_hint(session: Session, resource_type: str, params: list[tuple[str, Any]]) -> None:
    """Raise :class:`SearchError` when a patient-id parameter holds a visible patient's identifier
    instead of its id (the search would otherwise return nothing).

    Only patients the session may see are looked up, so the hint never reveals a record.

    Parameters
    ----------
    session : Session
        The searching session.
    resource_type : str
        The type searched.
    params : list of (str, object)
        The search parameters.

    Raises
    ------
    SearchError
        A ``patient``/``subject:Patient`` value is the identifier (MRN) of a patient the
        session may see; the message gives the id to use.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
    >>> p = s.search("Patient").first()
    >>> mrn = p["identifier"][0]["value"]
    >>> identifier_hint(s, "Observation", [("patient", p["id"])])  # an id: nothing to say
    >>> try:
    ...     identifier_hint(s, "Observation", [("patient", mrn)])
    ... except SearchError as e:
    ...     print(e.path, p["id"] in str(e))
    patient True
    """
    for name, value in params:
        if name not in _PATIENT_ID_PARAMS and not (resource_type == "Patient" and name == "_id"):
            continue
        if not isinstance(value, str) or not value or any(ch in value for ch in "/,|"):
            continue
        if session.exists(f"Patient/{value}"):
            continue
        found = session.search("Patient", identifier=value).fetch()
        if not found:
            continue
        pid = found[0]["id"]
        by_mrn = "identifier" if resource_type == "Patient" else "patient.identifier"
        raise SearchError(
            resource_type,
            name,
            f"a Patient id, but {value!r} is an identifier (MRN) of Patient/{pid}: search "
            f"{name}={pid}, or {by_mrn}={value} to search by MRN",
            found=value,
        )
