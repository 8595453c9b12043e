"""The organizations of a network: each one its own Sandbox with its own staff and MRNs.

An organization is a whole, separate EHR (an EMR): a primary-care clinic, a cardiology
practice, a hospital with an emergency department and an independent laboratory. Building
sandboxes is the slow part, so generated ones are cached per (seed, size) and every network
gets independent copies (scenarios play the same journey twice, once per mode).

>>> [spec.key for spec in ORGANIZATION_SPECS]
['clinic', 'cardiology', 'hospital', 'lab']
>>> org_seed(7, "clinic") == org_seed(7, "clinic") != org_seed(7, "lab")
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ArgumentError

if TYPE_CHECKING:
    from ehr_sandbox.sandbox import Sandbox
    from ehr_sandbox.session import Session

__all__ = [
    "ORGANIZATION_SPECS",
    "OrgSpec",
    "Organization",
    "build_organizations",
    "org_seed",
    "org_url",
]


@dataclass(frozen=True)
class OrgSpec:
    """What kind of organization to build and from which population preset.

    ``share`` scales the network's ``patients`` argument: a lab sees fewer registered
    patients than a clinic in the same town.

    >>> OrgSpec("clinic", "Riverton Family Medicine", "primary-care", "family-practice", "dr.patel").kind
    'primary-care'
    """

    key: str
    name: str
    kind: str
    population: str
    physician: str
    mrn_prefix: str = "MRN"
    share: float = 1.0


ORGANIZATION_SPECS: tuple[OrgSpec, ...] = (
    OrgSpec(
        "clinic",
        "Riverton Family Medicine",
        "primary-care",
        "family-practice",
        "dr.patel",
        "RFM",
        1.0,
    ),
    OrgSpec(
        "cardiology",
        "Riverton Heart Associates",
        "cardiology",
        "cardiology",
        "dr.nguyen",
        "RHA",
        0.75,
    ),
    OrgSpec(
        "hospital",
        "Riverton General Hospital (ED)",
        "hospital-ed",
        "family-practice",
        "dr.okafor",
        "RGH",
        1.0,
    ),
    OrgSpec(
        "lab",
        "Tri-County Reference Laboratory",
        "laboratory",
        "family-practice",
        "dr.okafor",
        "TCL",
        0.5,
    ),
)
"""The four organizations of every network (key, display name, kind, preset, lead physician)."""


def org_seed(seed: int, key: str) -> int:
    """The seed of one organization's own sandbox: stable, different per organization.

    >>> 0 <= org_seed(1, "clinic") < 2**31 - 1
    True
    """
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


def org_url(key: str) -> str:
    """The (fictional) FHIR base of an organization, used in ``meta.source`` of its data.

    >>> org_url("lab")
    'https://lab.network.ehr-sandbox.org/fhir'
    """
    return f"https://{key}.network.ehr-sandbox.org/fhir"


@dataclass
class Organization:
    """One organization of the network: its name, kind and its own :class:`Sandbox`.

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> org = Organization("clinic", "Riverton Family Medicine", "primary-care", Sandbox.generate(patients=1, seed=1), "dr.patel", "RFM")
    >>> org.login("ma.garcia").user.role
    'medical_assistant'
    """

    key: str
    name: str
    kind: str
    sandbox: Sandbox
    physician: str
    mrn_prefix: str

    def login(self, username: str, **kwargs: Any) -> Session:
        """A Session of ``username`` at this organization (its own staff, its own store).

        Examples
        --------
        >>> from ehr_sandbox.network.network import Network
        >>> org = Network.generate(seed=3, mode="emr", patients=8, people=2).org("cardiology")
        >>> s = org.login("dr.nguyen")
        >>> s.sandbox is org.sandbox, s.role
        (True, 'physician')
        """
        return self.sandbox.login(username, **kwargs)

    @property
    def url(self) -> str:
        """The organization's (fictional) FHIR base, used in ``meta.source`` of its data.

        Examples
        --------
        >>> from ehr_sandbox.network.network import Network
        >>> Network.generate(seed=3, mode="emr", patients=8, people=2).org("clinic").url
        'https://clinic.network.ehr-sandbox.org/fhir'
        """
        return org_url(self.key)

    def __repr__(self) -> str:
        return f"<Organization {self.key}: {self.name} ({self.kind})>"


@lru_cache(maxsize=4)
def generated_clinic(seed: int, patients: int, years: int, reference_date: str) -> tuple[Any, ...]:
    """The generated sandboxes of the four organizations, one per ``ORGANIZATION_SPECS`` entry, cached.

    Callers copy them (:func:`build_organizations`); never write to these.

    Examples
    --------
    >>> clinics = generated_clinic(3, 8, 1, "2026-01-01")
    >>> len(clinics) == len(ORGANIZATION_SPECS), generated_clinic(3, 8, 1, "2026-01-01") is clinics
    (True, True)
    >>> [c.grader_session().search("Patient").count() >= 2 for c in clinics]
    [True, True, True, True]
    """
    from ehr_sandbox.sandbox import Sandbox

    return tuple(
        Sandbox.generate(
            patients=max(2, round(patients * spec.share)),
            seed=org_seed(seed, spec.key),
            reference_date=reference_date,
            years=years,
            population=spec.population,
        )
        for spec in ORGANIZATION_SPECS
    )


def build_organizations(
    seed: int, patients: int, *, years: int = 1, reference_date: str = "2026-01-01"
) -> dict[str, Organization]:
    """Fresh, independent organizations (copies of cached generated sandboxes).

    >>> orgs = build_organizations(3, 2)
    >>> sorted(orgs), orgs["clinic"].sandbox is not build_organizations(3, 2)["clinic"].sandbox
    (['cardiology', 'clinic', 'hospital', 'lab'], True)
    """
    if not isinstance(patients, int) or isinstance(patients, bool) or not 2 <= patients <= 500:
        raise ArgumentError(
            f"patients: expected a whole number from 2 to 500 per organization, got {patients!r}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ArgumentError(f"seed: expected a whole number, got {seed!r}")
    base = generated_clinic(seed, patients, years, str(reference_date))
    return {
        spec.key: Organization(
            spec.key, spec.name, spec.kind, sb.copy(), spec.physician, spec.mrn_prefix
        )
        for spec, sb in zip(ORGANIZATION_SPECS, base, strict=True)
    }
