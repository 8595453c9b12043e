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
    charts got wrong); ``documents`` every document sent, in order. Build one with
    :meth:`generate`.

    Parameters
    ----------
    organizations : dict of str to Organization
        ``clinic``, ``cardiology``, ``hospital`` and ``lab``, each its own sandbox.
    journey : Journey
        The shared patients and their visits.
    mode : {"emr", "ehr"}
    seed : int
    reference_date : date
    documents, rekey_errors : list
        Start empty.

    Examples
    --------
    >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
    >>> [p.key for p in net.journey.people], net.documents, net.rekey_errors
    (['P1', 'P2'], [], [])
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
        """Build the four organizations, the care journey and (EHR mode) the exchange.

        ``patients`` per organization (fewer at the lab), the care journey of ``people`` shared
        patients, and in EHR mode the exchange and its MPI. Deterministic for ``seed``.

        Parameters
        ----------
        seed : int, default 7
        mode : {"emr", "ehr"}, default "emr"
        patients : int, default 16
            Patients per organization (2 to 500).
        people : int, default 4
            Shared patients whose journey crosses the organizations.
        reference_date : str, default "2026-01-01"
        match_config : MatchConfig, optional
            The MPI's matching settings (EHR mode).

        Returns
        -------
        Network

        Raises
        ------
        ArgumentError
            An unknown mode, a bad date, or a size out of range.

        Examples
        --------
        >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
        >>> sorted(ehr.organizations), ehr.exchange.mpi.config.link_threshold > 0
        (['cardiology', 'clinic', 'hospital', 'lab'], True)
        >>> Network.generate(mode="hie")
        Traceback (most recent call last):
        ...
        synthetic.errors.ArgumentError: mode: expected 'emr' or 'ehr', got 'hie'
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
        """The health information exchange (EHR mode only).

        Raises
        ------
        AccessDenied
            In EMR mode: information moves only as documents.

        Examples
        --------
        >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
        >>> type(ehr.exchange).__name__, sorted(ehr.exchange.organizations) == sorted(ehr.organizations)
        ('Exchange', True)
        """
        if self._exchange is None:
            raise AccessDenied(
                "EMR mode has no exchange: information moves only as documents (net.send, net.rekey)"
            )
        return self._exchange

    def org(self, key: str) -> Organization:
        """The organization called ``key``.

        Parameters
        ----------
        key : str
            ``clinic``, ``cardiology``, ``hospital`` or ``lab``.

        Returns
        -------
        Organization

        Raises
        ------
        ValidationError
            No such organization.

        Examples
        --------
        >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
        >>> net.org("hospital").name
        'Riverton General Hospital (ED)'
        >>> net.org("pharmacy")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: Network: org: expected one of cardiology, clinic, hospital, lab (found 'pharmacy')
        """
        if key not in self.organizations:
            raise ValidationError(
                "Network", "org", "one of " + ", ".join(sorted(self.organizations)), found=key
            )
        return self.organizations[key]

    def login(self, org: str, username: str, **kwargs: Any) -> Any:
        """A Session of ``username`` at organization ``org`` (it sees only that store).

        Parameters
        ----------
        org : str
            The organization's key.
        username : str
            A staff account there.
        **kwargs
            Passed to ``Sandbox.login`` (``scopes``, ``patient``).

        Returns
        -------
        Session

        Examples
        --------
        >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
        >>> p = net.person("P1")
        >>> s = net.login("clinic", "dr.patel")
        >>> s.read("Patient", p.records["clinic"])["id"] == p.records["clinic"]
        True
        >>> s.exists(f"Patient/{p.records['hospital']}")  # another organization's chart
        False
        """
        return self.org(org).login(username, **kwargs)

    def person(self, key: str) -> Person:
        """A journey person by key (``P1``...).

        Parameters
        ----------
        key : str

        Returns
        -------
        Person

        Raises
        ------
        NotFound
            No such person (the message lists them).

        Examples
        --------
        >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
        >>> sorted(net.person("P1").records)
        ['cardiology', 'clinic', 'hospital', 'lab']
        >>> net.person("P9")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.NotFound: no journey person 'P9' (people: P1, P2)
        """
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
        """Render a document from ``source`` (read through ``session``) and deliver it to ``target``.

        Parameters
        ----------
        kind : str
            The document kind (``fhir-document``, ``visit-summary``, ``referral-letter`` ...).
        session : Session
            A session of the sending organization (its policy decides what goes in).
        source : str
            The sending organization.
        patient_id : str
            The patient's id at ``source``.
        target : str
            The receiving organization (or an outside addressee).
        created : str
            The document's date.
        reason, since : str, optional
            Why it is sent; only data recorded since this date.

        Returns
        -------
        Document
            Also appended to :attr:`documents` and found in the target's :meth:`inbox`.

        Raises
        ------
        AccessDenied
            ``session`` is not a session of ``source``.

        Examples
        --------
        >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
        >>> p = net.person("P1")
        >>> doc = net.send("fhir-document", net.login("hospital", "dr.okafor"), "hospital",
        ...                p.records["hospital"], "clinic", created="2025-12-18")
        >>> doc.source_org, doc.target_org, "Penicillin" in doc.text, net.inbox("clinic") == [doc]
        ('hospital', 'clinic', True, True)
        """
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
        """Documents delivered to ``org`` (the fax tray).

        Parameters
        ----------
        org : str

        Returns
        -------
        list of Document
            In the order they were sent.

        Examples
        --------
        >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
        >>> p = net.person("P1")
        >>> doc = net.send("visit-summary", net.org("lab").sandbox.system_session(), "lab",
        ...                p.records["lab"], "clinic", created="2025-12-12")
        >>> [d.id for d in net.inbox("clinic")] == [doc.id], net.inbox("hospital")
        (True, [])
        """
        return [d for d in self.documents if d.target_org == org]

    def rekey(self, document: docs.Document, session: Any, patient_id: str) -> RekeyResult:
        """A user of the receiving organization types ``document`` into ``patient_id``'s chart.

        Deterministic for the network's seed, with realistic errors (omitted items, transposed
        digits, a wrong sig) that are recorded in :attr:`rekey_errors`.

        Parameters
        ----------
        document : Document
            A document sent to the session's organization.
        session : Session
            The person re-keying, at the receiving organization.
        patient_id : str
            The chart to type it into.

        Returns
        -------
        RekeyResult
            What was created and what went wrong.

        Raises
        ------
        AccessDenied
            The document was sent to another organization.

        Examples
        --------
        >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
        >>> p = net.person("P1")
        >>> doc = net.send("fhir-document", net.login("hospital", "dr.okafor"), "hospital",
        ...                p.records["hospital"], "clinic", created="2025-12-18")
        >>> result = net.rekey(doc, net.login("clinic", "ma.garcia"), p.records["clinic"])
        >>> [ref.split("/")[0] for ref in result.created], net.rekey_errors == result.errors
        (['AllergyIntolerance', 'MedicationStatement'], True)
        """
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
        ``person``.

        In their own chart, or (EHR mode) through the exchange via a linked record. Measured
        through each user's own Session and policy: the privacy cost of sharing.

        Parameters
        ----------
        person : str
            A journey person's key.
        source : str, default "hospital"
            The organization whose data is followed.

        Returns
        -------
        list of (str, str)

        Examples
        --------
        >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
        >>> net.people_with_access("P1")  # EMR: only the hospital's own staff, until a document is re-keyed
        [('hospital', 'dr.okafor'), ('hospital', 'instructor.lee')]
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
