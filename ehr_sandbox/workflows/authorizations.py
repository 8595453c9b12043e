"""Which prior authorisations are real: the stored approvals a claim's number must match.

A claim for a service the plan authorises in advance carries the authorisation number
(``Claim.insurance.preAuthRef``). A number counts only when it is the plan's approval
(``ClaimResponse`` with ``use = preauthorization``, see :mod:`.prior_auth`) for the same
patient and service, and the service date falls in the approval's period.

>>> from ehr_sandbox.sandbox import Sandbox
>>> b = Sandbox.generate(patients=2, seed=1, years=1).login("billing.davis")
>>> pid = b.search("Patient").first()["id"]
>>> approval_for(b, f"Patient/{pid}", "procedure|ECHO", "2026-01-05", "PA-12345678") is None
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import SandboxError

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = ["approval_for"]


def approval_for(
    session: Session, patient: str, service: str, on: str, number: str
) -> dict[str, Any] | None:
    """The stored approval ``number`` for this patient and service, valid on ``on``.

    ``None`` when there is none: a made-up number, another patient's, another service's,
    a denied request, or a date outside the approval's period.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=4, seed=1, years=1).login("billing.davis")
    >>> approval_for(b, "Patient/x", "procedure|ECHO", "2026-01-05", "PA-000") is None
    True
    """
    code = service.split("|", 1)[-1]
    for resp in session.search("ClaimResponse", patient=patient).fetch():
        if resp.get("use") != "preauthorization" or resp.get("preAuthRef") != number:
            continue
        period = resp.get("preAuthPeriod") or {}
        if not (period.get("start", "") <= on <= period.get("end", "")):
            continue
        try:
            request = session.read(resp["request"]["reference"])
        except SandboxError:  # a request the session cannot read does not count
            continue
        codes = {
            c.get("code")
            for it in request.get("item", [])
            for c in (it.get("productOrService") or {}).get("coding", [])
        }
        if code in codes:
            return resp
    return None
