"""The Network: several organizations, each its own EHR, in EMR mode or EHR mode.

>>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
>>> sorted(net.organizations), net.mode
(['cardiology', 'clinic', 'hospital', 'lab'], 'emr')
>>> net.exchange
Traceback (most recent call last):
...
ehr_sandbox.errors.AccessDenied: EMR mode has no exchange: information moves only as documents (net.send, net.rekey)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ehr_sandbox.errors import AccessDenied, ArgumentError, NotFound, ValidationError
from ehr_sandbox.network import documents as docs
from ehr_sandbox.network.exchange import Exchange
from ehr_sandbox.network.journey import Journey, Person, build_journeys
from ehr_sandbox.network.matching import MatchConfig
from ehr_sandbox.network.organizations import Organization, build_organizations
from ehr_sandbox.network.rekey import RekeyingError, RekeyResult, rekey

__all__ = ["MODES", "Network"]

MODES = ("emr", "ehr")


@dataclass
class Network:
    """Organizations + the care journey + (EHR mode) the exchange, or (EMR mode) documents.

    ``rekey_errors`` lists every re-keying error made (the sandbox's own record of what the
    charts got wrong); ``documents`` every document sent, in order.
    """

    organizations: dict[str, Organization]
    journey: Journey
    mode: str
    seed: int
    reference_date: date
    documents: list[docs.Document] = field(default_factory=list)
    rekey_errors: list[RekeyingError] = field(default_factory=list)
    _exchange: Exchange | None = field(default=None, repr=False)

    @classmethod
    def generate(
        cls,
        seed: int = 7,
        mode: str = "emr",
        patients: int = 16,
        *,
        people: int = 4,
        reference_date: str = "2026-01-01",
        match_config: MatchConfig | None = None,
    ) -> Network:
        """Build the four organizations (``patients`` per organization, fewer at the lab), the
        care journey of ``people`` shared patients, and in EHR mode the exchange and its MPI.

        Deterministic for ``seed``.
        """
        if mode not in MODES:
            raise ArgumentError(f"mode: expected 'emr' or 'ehr', got {mode!r}")
        try:
            ref = date.fromisoformat(str(reference_date))
        except ValueError:
            raise ArgumentError(
                f"reference_date: expected YYYY-MM-DD, got {reference_date!r}"
            ) from None
        orgs = build_organizations(seed, patients, reference_date=ref.isoformat())
        journey = build_journeys(orgs, seed=seed, people=people, reference_date=ref)
        net = cls(orgs, journey, mode, seed, ref)
        if mode == "ehr":
            net._exchange = Exchange(orgs, match_config)
            net._exchange.enroll()
        return net

    def _repr_html_(self) -> str:
        from ehr_sandbox.display.reprs import network_html

        return network_html(self)

    # -- basics -------------------------------------------------------------------------------
    @property
    def exchange(self) -> Exchange:
        """The health information exchange (EHR mode only)."""
        if self._exchange is None:
            raise AccessDenied(
                "EMR mode has no exchange: information moves only as documents (net.send, net.rekey)"
            )
        return self._exchange

    def org(self, key: str) -> Organization:
        """The organization called ``key``."""
        if key not in self.organizations:
            raise ValidationError(
                "Network", "org", "one of " + ", ".join(sorted(self.organizations)), found=key
            )
        return self.organizations[key]

    def login(self, org: str, username: str, **kwargs: Any) -> Any:
        """A Session of ``username`` at organization ``org`` (it sees only that store)."""
        return self.org(org).login(username, **kwargs)

    def person(self, key: str) -> Person:
        """A journey person by key (``P1``...)."""
        for p in self.journey.people:
            if p.key == key:
                return p
        raise NotFound(
            f"no journey person {key!r} (people: {', '.join(p.key for p in self.journey.people)})"
        )

    # -- EMR: documents -----------------------------------------------------------------------
    def send(
        self,
        kind: str,
        session: Any,
        source: str,
        patient_id: str,
        target: str,
        *,
        created: str,
        reason: str = "",
        since: str = "",
    ) -> docs.Document:
        """Render a document from ``source`` (read through ``session``) and deliver it to ``target``."""
        if session.sandbox is not self.org(source).sandbox:
            raise AccessDenied(f"a document from {source} must be written by a user of {source}")
        doc = docs.compose(
            kind,
            session,
            patient_id,
            source=self.org(source),
            target=self.org(target) if target in self.organizations else target,
            created=created,
            reason=reason,
            since=since,
        )
        self.documents.append(doc)
        return doc

    def inbox(self, org: str) -> list[docs.Document]:
        """Documents delivered to ``org`` (the fax tray)."""
        return [d for d in self.documents if d.target_org == org]

    def rekey(self, document: docs.Document, session: Any, patient_id: str) -> RekeyResult:
        """A user of the receiving organization types ``document`` into ``patient_id``'s chart."""
        if session.sandbox is not self.org(document.target_org).sandbox:
            raise AccessDenied(
                f"document {document.id} was sent to {document.target_org}: re-key it there"
            )
        result = rekey(document, session, patient_id, seed=self.seed)
        self.rekey_errors.extend(result.errors)
        return result

    # -- privacy cost -------------------------------------------------------------------------
    def people_with_access(self, person: str, *, source: str = "hospital") -> list[tuple[str, str]]:
        """(org, username) of everyone who can see the clinical data ``source`` recorded about
        ``person`` — in their own chart, or (EHR mode) through the exchange via a linked record.

        Measured through each user's own Session and policy.
        """
        p = self.person(person)
        src_ref = f"{source}/Patient/{p.records[source]}"
        linked: set[str] = set()
        if self._exchange is not None:
            eid = self._exchange.mpi.enterprise_id(src_ref)
            linked = {r.split("/", 1)[0] for r in self._exchange.mpi.links()[eid]}
        out = []
        for org_key, pid in sorted(p.records.items()):
            org = self.organizations[org_key]
            reach = org_key == source or org_key in linked
            for user in org.sandbox.users:
                s = org.login(user.username)
                try:
                    s.read("Patient", pid)
                except NotFound:
                    continue
                if not s.sandbox.policy.can_type(s.context, "search", "AllergyIntolerance").allowed:
                    continue
                has_local = bool(s.search("AllergyIntolerance", patient=f"Patient/{pid}").fetch())
                if reach or has_local:
                    out.append((org_key, user.username))
        return out
