"""User accounts of a sandbox: the practice's staff, the system account and patient logins.

Staff accounts come from the generated practice: each Practitioner carries its username as an
identifier and its PractitionerRole carries the role (see ``docs/contracts.md``).

>>> u = User("ma.garcia", "medical_assistant", "Maria Garcia", "prac-1")
>>> u.is_staff, u.ref
(True, 'Practitioner/prac-1')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ehr_sandbox.access.roles import STAFF_ORDER
from synthetic.systems import SANDBOX_ROLE, USERNAME

USERNAME_SYSTEM = USERNAME
ROLE_SYSTEM = SANDBOX_ROLE

STAFF_ROLES = STAFF_ORDER
"""Roles a staff account may hold (docs/privacy.md); ``patient`` and ``system`` are not staff."""

SYSTEM_USERNAME = "system"
"""The sandbox's own account: generation, import and grading. Not available to ``login``."""


@dataclass(frozen=True)
class User:
    """One account: who they are, their role, and the FHIR resource that stands for them.

    >>> User("system", "system", "Sandbox system").is_staff
    False
    """

    username: str
    role: str
    display: str
    practitioner_id: str | None = None
    patient_id: str | None = None

    @property
    def is_staff(self) -> bool:
        """True for the practice's staff (not patients, not the system account).

        Examples
        --------
        >>> User("rn.kim", "nurse", "Grace Kim", "p2").is_staff, User("patient/x", "patient", "X", None, "x").is_staff
        (True, False)
        """
        return self.role in STAFF_ROLES

    @property
    def ref(self) -> str | None:
        """A FHIR reference to the person (Practitioner or Patient), if any.

        Returns
        -------
        str or None
            ``Practitioner/<id>`` for staff, ``Patient/<id>`` for a patient login, None for the
            system account.

        Examples
        --------
        >>> User("patient/p9", "patient", "Jo Doe", None, "p9").ref
        'Patient/p9'
        >>> User("system", "system", "Sandbox system").ref is None
        True
        """
        if self.practitioner_id:
            return f"Practitioner/{self.practitioner_id}"
        if self.patient_id:
            return f"Patient/{self.patient_id}"
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (persisted in the sandbox).

        >>> User("a", "admin", "A").to_json()["role"]
        'admin'
        """
        return asdict(self)


def _human_name(practitioner: dict[str, Any]) -> str:
    names = practitioner.get("name") or [{}]
    n = names[0]
    if n.get("text"):
        return str(n["text"])
    parts = [*n.get("prefix", []), *n.get("given", []), n.get("family", "")]
    return " ".join(p for p in parts if p).strip() or practitioner.get("id", "")


def staff_from_practice(resources: Iterable[dict[str, Any]]) -> list[User]:
    """Build the staff accounts from practice resources (Practitioner + PractitionerRole).

    >>> prac = {"resourceType": "Practitioner", "id": "p1", "name": [{"given": ["Ann"], "family": "Lee"}],
    ...         "identifier": [{"system": USERNAME_SYSTEM, "value": "instructor.lee"}]}
    >>> role = {"resourceType": "PractitionerRole", "id": "r1", "practitioner": {"reference": "Practitioner/p1"},
    ...         "code": [{"coding": [{"system": ROLE_SYSTEM, "code": "instructor"}]}]}
    >>> [(u.username, u.role) for u in staff_from_practice([prac, role])]
    [('instructor.lee', 'instructor')]
    """
    practitioners: dict[str, dict[str, Any]] = {}
    roles: dict[str, str] = {}
    for r in resources:
        rtype = r.get("resourceType")
        if rtype == "Practitioner":
            practitioners[r["id"]] = r
        elif rtype == "PractitionerRole":
            ref = (r.get("practitioner") or {}).get("reference", "")
            for concept in r.get("code", []):
                for coding in concept.get("coding", []):
                    if coding.get("system") == ROLE_SYSTEM and ref.startswith("Practitioner/"):
                        roles[ref.split("/", 1)[1]] = coding["code"]
    users = []
    for pid, prac in practitioners.items():
        username = next(
            (
                i.get("value")
                for i in prac.get("identifier", [])
                if i.get("system") == USERNAME_SYSTEM
            ),
            None,
        )
        role = roles.get(pid)
        if prac.get("active") is False:
            continue  # a former employee: the account ended when they left
        if username and role in STAFF_ROLES:
            users.append(User(username, role, _human_name(prac), pid))
    users.sort(key=lambda u: (STAFF_ROLES.index(u.role), u.username))
    return users
