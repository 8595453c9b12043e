"""EHR mode: a health information exchange over the organizations' own stores.

Nothing is copied into one big database. The exchange keeps a **master patient index**
(:class:`~ehr_sandbox.network.matching.MasterPatientIndex`) over every organization's
Patients and writes each automatic match into ``Patient.link``. A clinician then asks:

* :meth:`Exchange.locate` — "what do other organizations hold about this patient?" (the
  record locator: organization, their Patient, the match score and counts per type);
* :meth:`Exchange.retrieve` — the outside data itself, each resource keeping its source
  (``meta.source`` = the source organization's base URL, tag ``outside``) with a Provenance
  naming the source organization; it is returned beside the local chart, never mixed in;
* :meth:`Exchange.reconcile` — file one outside item in the local chart *with* its source.

Access goes through the requesting user's Session (they must be able to read their own
organization's Patient: the treatment relationship) **and** the source organization's policy:
the source answers through an :class:`ExchangeSession` with the requester's role and a
relationship to that one patient only, so its role matrix, confidentiality ceiling,
sensitivity labels and Consents all apply, and the source audits the disclosure.

>>> OUTSIDE_TAG["code"]
'outside'
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ehr_sandbox.access.labels import ACT_CODE, CONFIDENTIALITY
from ehr_sandbox.errors import AccessDenied, NotFound, SandboxError, ValidationError
from ehr_sandbox.network.fhir_builders import MEDS, medication_statement
from ehr_sandbox.network.matching import MasterPatientIndex, MatchConfig, MatchScore, score_pair
from ehr_sandbox.network.organizations import Organization
from ehr_sandbox.network.reading import patient_resources
from ehr_sandbox.session import Session
from ehr_sandbox.users import User
from synthetic.systems import PROVENANCE_PARTICIPANT_TYPE, SANDBOX_TAGS, V3_DATA_OPERATION

__all__ = [
    "OUTSIDE_TAG",
    "RETRIEVED_TYPES",
    "Exchange",
    "ExchangeSession",
    "OutsideData",
    "RecordLocation",
]

TAGS = SANDBOX_TAGS
OUTSIDE_TAG = {"system": TAGS, "code": "outside", "display": "Retrieved from another organization"}
RETRIEVED_TYPES: tuple[str, ...] = (
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationStatement",
    "Condition",
    "Observation",
    "Encounter",
)
"""What a record-locator query counts and a retrieval returns."""


def ExchangeSession(  # noqa: N802 - kept under its old name for callers
    sandbox: Any, requester: User, org_key: str, patient_id: str
) -> Session:
    """A source organization's answer to an exchange request for one patient.

    The user is ``hie:<requesting org>:<username>`` with the requester's role; its only care
    relationship is the requested patient (the treatment purpose the requester established at
    their own organization), so the source's policy does the rest and audits every read.
    Kept for callers: it is ``sandbox.exchange_session(...)``.

    Parameters
    ----------
    sandbox : Sandbox
        The source organization's sandbox.
    requester : User
        The person asking, at their own organization.
    org_key : str
        The requesting organization.
    patient_id : str
        The patient at the source.

    Returns
    -------
    Session

    Examples
    --------
    >>> from ehr_sandbox.network.network import Network
    >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
    >>> x, p = ehr.exchange, ehr.person("P1")
    >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
    >>> hs = ExchangeSession(ehr.org("hospital").sandbox, s.user, "cardiology", p.records["hospital"])
    >>> hs.user.username, hs.exists(f"Patient/{p.records['hospital']}")
    ('hie:cardiology:dr.nguyen', True)
    """
    return sandbox.exchange_session(requester, org_key, patient_id)


@dataclass(frozen=True)
class RecordLocation:
    """One answer of the record locator: who holds what about the patient.

    ``score`` is None for the requester's own record; ``linked`` says whether the MPI linked it
    automatically (True) or it only scored in the review band (False: a person must decide).
    ``counts`` are resources by type the requester may retrieve; ``available`` is False when
    the holder is down.

    Examples
    --------
    >>> from ehr_sandbox.network.network import Network
    >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
    >>> x, p = ehr.exchange, ehr.person("P1")
    >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
    >>> [(loc.org, loc.linked) for loc in x.locate(s, "cardiology", pid)]
    [('clinic', True), ('lab', True), ('hospital', False), ('hospital', False)]
    """

    org: str
    org_name: str
    patient_ref: str
    enterprise_id: str | None
    linked: bool
    score: float | None
    explanation: str
    counts: dict[str, int] = field(default_factory=dict)
    available: bool = True


@dataclass
class OutsideData:
    """Retrieved outside data: resources (with ``meta.source``), Provenance, and what failed.

    Parameters
    ----------
    resources : list of dict
        Copies of the outside resources, each with ``meta.source`` and the ``outside`` tag.
    provenance : list of dict
        One Provenance per source organization.
    unavailable : list of str
        Organizations that were down.
    sources : list of str
        Organizations data came from.

    Examples
    --------
    >>> from ehr_sandbox.network.network import Network
    >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
    >>> x, p = ehr.exchange, ehr.person("P1")
    >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
    >>> out = x.retrieve(s, "cardiology", pid)
    >>> out.sources, out.unavailable, len(out.provenance)
    (['clinic', 'lab'], [], 2)
    """

    resources: list[dict[str, Any]] = field(default_factory=list)
    provenance: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        """The retrieved resources of one type.

        >>> OutsideData().of_type("AllergyIntolerance")
        []
        """
        return [r for r in self.resources if r.get("resourceType") == resource_type]

    def source_of(self, resource: dict[str, Any]) -> str:
        """The ``meta.source`` of a retrieved resource ('' for local data).

        >>> OutsideData().source_of({"meta": {"source": "https://lab"}})
        'https://lab'
        """
        return str((resource.get("meta") or {}).get("source", ""))


class Exchange:
    """The health information exchange of a network (EHR mode only).

    ``down`` holds the keys of organizations whose systems are unreachable: their data is
    missing from locator answers and retrievals (and listed as unavailable). ``queries`` and
    ``retrievals`` count what was asked.

    Parameters
    ----------
    organizations : dict of str to Organization
    config : MatchConfig, optional
        The master patient index's settings.

    Examples
    --------
    >>> from ehr_sandbox.network.network import Network
    >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
    >>> x, p = ehr.exchange, ehr.person("P1")
    >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
    >>> x.down.add("lab")
    >>> out = x.retrieve(s, "cardiology", pid)
    >>> out.sources, out.unavailable, x.retrievals
    (['clinic'], ['lab'], 1)
    """

    def __init__(
        self, organizations: dict[str, Organization], config: MatchConfig | None = None
    ) -> None:
        self.organizations = organizations
        self.mpi = MasterPatientIndex(config)
        self.down: set[str] = set()
        self.queries = 0
        self.retrievals = 0

    # -- enrolment ----------------------------------------------------------------------------
    def enroll(self) -> dict[str, list[str]]:
        """File every organization's Patients in the MPI and write ``Patient.link`` for matches.

        ``Network.generate`` calls this in EHR mode.

        Returns
        -------
        dict
            The MPI's enterprises with more than one record: enterprise id to ``org/Patient/id``.

        Examples
        --------
        >>> from ehr_sandbox.network.network import Network
        >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
        >>> x, p = ehr.exchange, ehr.person("P1")
        >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
        >>> linked = x.enroll()  # again: the same enterprises
        >>> sorted(linked[x.mpi.enterprise_id(f"clinic/Patient/{p.records['clinic']}")])[0].split("/")[0]
        'cardiology'
        """
        for key in sorted(self.organizations):
            s = self.organizations[key].sandbox.system_session()
            for p in sorted(s.resources("Patient"), key=lambda r: r["id"]):
                self.mpi.add(key, p)
        linked = {e: refs for e, refs in self.mpi.links().items() if len(refs) > 1}
        for refs in linked.values():
            for ref in refs:
                self._write_links(ref)
        for org in self.organizations.values():
            org.sandbox.audit.checkpoint()
        return linked

    def _write_links(self, ref: str) -> None:
        org_key, _, pid = ref.split("/", 2)
        s = self.organizations[org_key].sandbox.system_session()
        patient = s.read("Patient", pid)
        links = self.mpi.patient_links(ref)
        if (patient.get("link") or []) == links:
            return
        if links:
            patient["link"] = links
        else:  # FHIR has no empty arrays: an unlinked patient has no link element
            patient.pop("link", None)
        s.update(patient, reason=f"master patient index: enterprise {self.mpi.enterprise_id(ref)}")

    def link(self, ref_a: str, ref_b: str) -> str:
        """A person confirmed a review pair: merge in the MPI and rewrite both ``Patient.link``.

        Parameters
        ----------
        ref_a, ref_b : str
            ``org/Patient/id`` of the two records.

        Returns
        -------
        str
            The merged enterprise id.

        Examples
        --------
        >>> from ehr_sandbox.network.network import Network
        >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
        >>> x, p = ehr.exchange, ehr.person("P1")
        >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
        >>> hospital = f"hospital/Patient/{p.records['hospital']}"
        >>> "hospital" in x.retrieve(s, "cardiology", pid).sources  # a nickname and an old address: not linked
        False
        >>> eid = x.link(f"cardiology/Patient/{pid}", hospital)
        >>> x.mpi.enterprise_id(hospital) == eid, "hospital" in x.retrieve(s, "cardiology", pid).sources
        (True, True)
        """
        eid = self.mpi.link(ref_a, ref_b)
        for ref in self.mpi.links()[eid]:
            self._write_links(ref)
        return eid

    def unlink(self, ref: str) -> str:
        """Undo a false merge: split ``ref`` out and rewrite the links of everyone involved.

        Parameters
        ----------
        ref : str
            ``org/Patient/id`` of the record to split out.

        Returns
        -------
        str
            Its new enterprise id.

        Examples
        --------
        >>> from ehr_sandbox.network.network import Network
        >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
        >>> x, p = ehr.exchange, ehr.person("P1")
        >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
        >>> lab = f"lab/Patient/{p.records['lab']}"
        >>> new = x.unlink(lab)
        >>> x.mpi.enterprise_id(lab) == new != x.mpi.enterprise_id(f"cardiology/Patient/{pid}")
        True
        """
        old = self.mpi.enterprise_id(ref)
        members = list(self.mpi.links().get(old, []))
        new = self.mpi.unlink(ref)
        for member in members:
            self._write_links(member)
        return new

    # -- queries ------------------------------------------------------------------------------
    def _requester(
        self, session: Session, org_key: str, patient_id: str
    ) -> tuple[str, dict[str, Any]]:
        org = self.organizations.get(org_key)
        if org is None:
            raise ValidationError(
                "Exchange", "org", "one of " + ", ".join(sorted(self.organizations)), found=org_key
            )
        if session.sandbox is not org.sandbox:
            raise AccessDenied(
                f"this session belongs to another organization than {org_key!r}: "
                "query the exchange as a user of your own organization"
            )
        if org_key in self.down:
            raise SandboxError(f"{org.name} is down: its users cannot reach the exchange")
        local = session.read(
            "Patient", patient_id
        )  # NotFound when the user may not see this patient
        return f"{org_key}/Patient/{local['id']}", local

    def locate(
        self, session: Session, org_key: str, patient_id: str, *, include_review: bool = True
    ) -> list[RecordLocation]:
        """What the other organizations hold about this patient (linked and review-band records).

        Parameters
        ----------
        session : Session
            The requester, at ``org_key``; must be able to read the patient there.
        org_key : str
        patient_id : str
            The patient at ``org_key``.
        include_review : bool, default True
            Also list records that only scored in the review band.

        Returns
        -------
        list of RecordLocation

        Raises
        ------
        NotFound
            The requester may not see the patient at their own organization.

        Examples
        --------
        >>> from ehr_sandbox.network.network import Network
        >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
        >>> x, p = ehr.exchange, ehr.person("P1")
        >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
        >>> found = x.locate(s, "cardiology", pid)
        >>> [(loc.org, loc.linked) for loc in found if loc.linked], "MATCH" in found[0].explanation
        ([('clinic', True), ('lab', True)], True)
        >>> [loc.org for loc in x.locate(s, "cardiology", pid, include_review=False)]
        ['clinic', 'lab']
        """
        ref, local = self._requester(session, org_key, patient_id)
        self.queries += 1
        eid = self.mpi.enterprise_id(ref)
        found: dict[str, tuple[bool, MatchScore | None]] = {
            r: (True, None) for r in self.mpi.links()[eid] if r != ref
        }
        if include_review:
            for other, score in self.mpi.candidates(local):
                if other != ref and other not in found:
                    found[other] = (self.mpi.enterprise_id(other) == eid, score)
        out = []
        for other, (linked, score) in found.items():
            o_key, _, o_pid = other.split("/", 2)
            if score is None:
                # The other organization's Patient is read through its own door (its policy,
                # its audit trail), as the exchange user of this request.
                o_session = self._source_session(session, org_key, o_key, o_pid)
                try:
                    o_patient = o_session.read("Patient", o_pid)
                except NotFound:
                    o_patient = {}
                score = score_pair(local, o_patient, self.mpi.config)
            available = o_key not in self.down
            counts = self._counts(session, org_key, o_key, o_pid) if available and linked else {}
            out.append(
                RecordLocation(
                    o_key,
                    self.organizations[o_key].name,
                    f"Patient/{o_pid}",
                    self.mpi.enterprise_id(other),
                    linked,
                    round(score.total, 1),
                    score.explanation,
                    counts,
                    available,
                )
            )
        return sorted(out, key=lambda r: (not r.linked, r.org, r.patient_ref))

    def _source_session(
        self, session: Session, requester_org: str, source_org: str, patient_id: str
    ) -> Session:
        src = self.organizations[source_org].sandbox
        return ExchangeSession(src, session.user, requester_org, patient_id)

    def _counts(
        self, session: Session, requester_org: str, source_org: str, patient_id: str
    ) -> dict[str, int]:
        s = self._source_session(session, requester_org, source_org, patient_id)
        return {t: n for t in RETRIEVED_TYPES if (n := len(self._search(s, t, patient_id)))}

    @staticmethod
    def _search(s: Session, rtype: str, patient_id: str) -> list[dict[str, Any]]:
        return patient_resources(s, rtype, patient_id)

    def retrieve(
        self,
        session: Session,
        org_key: str,
        patient_id: str,
        *,
        types: tuple[str, ...] = RETRIEVED_TYPES,
        include: list[str] | None = None,
    ) -> OutsideData:
        """The outside data about this patient from every linked record (``include``: only those refs).

        Each resource is a copy with ``meta.source`` (the source's base URL) and the ``outside``
        tag; one Provenance per source organization names it (``agent`` = the source
        organization, ``entity.what`` = its Patient) and lists the retrieved versions. Every read
        goes through the source's policy and audit trail.

        Parameters
        ----------
        session : Session
            The requester.
        org_key : str
        patient_id : str
            The patient at ``org_key``.
        types : tuple of str
            Resource types to retrieve.
        include : list of str, optional
            Only these ``org/Patient/id`` records.

        Returns
        -------
        OutsideData

        Examples
        --------
        >>> from ehr_sandbox.network.network import Network
        >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
        >>> x, p = ehr.exchange, ehr.person("P1")
        >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
        >>> out = x.retrieve(s, "cardiology", pid)
        >>> {x.organizations[o].url for o in out.sources} == {out.source_of(r) for r in out.resources}
        True
        """
        ref, _ = self._requester(session, org_key, patient_id)
        self.retrievals += 1
        eid = self.mpi.enterprise_id(ref)
        wanted = [r for r in self.mpi.links()[eid] if r != ref]
        if include is not None:
            wanted = [r for r in wanted if r in include]
        out = OutsideData()
        for other in wanted:
            o_key, _, o_pid = other.split("/", 2)
            org = self.organizations[o_key]
            if o_key in self.down:
                out.unavailable.append(o_key)
                continue
            s = self._source_session(session, org_key, o_key, o_pid)
            got: list[dict[str, Any]] = []
            for rtype in types:
                for res in self._search(s, rtype, o_pid):
                    copy_ = copy.deepcopy(res)
                    meta = copy_.setdefault("meta", {})
                    meta["source"] = org.url
                    meta["tag"] = [*meta.get("tag", []), OUTSIDE_TAG]
                    got.append(copy_)
            if got:
                out.resources.extend(got)
                out.sources.append(o_key)
                out.provenance.append(
                    _provenance(org, o_pid, got, session.sandbox.clock.peek().isoformat())
                )
        return out

    def reconcile(
        self, session: Session, outside: dict[str, Any], patient_id: str, *, reason: str
    ) -> dict[str, Any]:
        """File one retrieved allergy or medication in the local chart, keeping its source.

        The local copy keeps ``meta.source`` and the ``outside`` tag, names the source in
        ``informationSource``/``note``, and its Provenance carries ``reason``.

        Parameters
        ----------
        session : Session
            The clinician filing it.
        outside : dict
            A resource from :meth:`retrieve`.
        patient_id : str
            The local patient.
        reason : str
            Why (e.g. confirmed with the patient).

        Returns
        -------
        dict
            The stored local resource.

        Raises
        ------
        ValidationError
            Not an allergy or medication, or ``reason`` is empty.

        Examples
        --------
        >>> from ehr_sandbox.network.network import Network
        >>> ehr = Network.generate(seed=3, mode="ehr", patients=8, people=2)
        >>> x, p = ehr.exchange, ehr.person("P1")
        >>> s, pid = ehr.login("cardiology", "dr.nguyen"), p.records["cardiology"]
        >>> _ = x.link(f"cardiology/Patient/{pid}", f"hospital/Patient/{p.records['hospital']}")
        >>> allergy = x.retrieve(s, "cardiology", pid).of_type("AllergyIntolerance")[0]
        >>> saved = x.reconcile(s, allergy, pid, reason="confirmed with the patient")
        >>> saved["meta"]["source"] == ehr.org("hospital").url, saved["patient"]["reference"] == f"Patient/{pid}"
        (True, True)
        """
        rtype = outside.get("resourceType")
        source = str((outside.get("meta") or {}).get("source", ""))
        if not source:
            raise ValidationError(
                str(rtype),
                "meta.source",
                "a resource retrieved through the exchange (it names its source)",
            )
        org = next((o for o in self.organizations.values() if o.url == source), None)
        who = org.name if org else source
        if rtype == "MedicationRequest":
            code = outside["medicationCodeableConcept"]["coding"][0]["code"]
            key = next(k for k, v in MEDS.items() if v[0] == code)
            sig = (outside.get("dosageInstruction") or [{}])[0].get("text")
            res = medication_statement(
                f"Patient/{patient_id}",
                key,
                session.sandbox.reference_date.isoformat(),
                dosage=sig,
                source=who,
                note=f"Reconciled from {who} ({source})",
            )
        elif rtype == "AllergyIntolerance":
            res = {
                k: copy.deepcopy(v)
                for k, v in outside.items()
                if k not in ("id", "meta", "recorder", "encounter")
            }
            res["patient"] = {"reference": f"Patient/{patient_id}"}
            res["asserter"] = {"display": who}
            res.setdefault("note", []).append({"text": f"Reported by {who} ({source})"})
        else:
            raise ValidationError(
                str(rtype), "resourceType", "AllergyIntolerance or MedicationRequest"
            )
        # The copy keeps the labels the source gave the record (its confidentiality and
        # sensitivities): a label the source's privacy officer set is not in the codes, and a
        # copy filed without it would be normal data to every local role.
        labels = [
            dict(c)
            for c in (outside.get("meta") or {}).get("security", []) or []
            if isinstance(c, dict) and c.get("system") in (CONFIDENTIALITY, ACT_CODE)
        ]
        res["meta"] = {"source": source, "tag": [OUTSIDE_TAG]}
        if labels:
            res["meta"]["security"] = labels
        return session.create(res, reason=reason)


def _provenance(
    org: Organization, patient_id: str, resources: list[dict[str, Any]], when: str
) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [
            {
                "reference": f"{org.url}/{r['resourceType']}/{r['id']}/_history/{r['meta'].get('versionId', '1')}"
            }
            for r in resources
        ],
        "recorded": when,
        "activity": {
            "coding": [
                {
                    "system": V3_DATA_OPERATION,
                    "code": "UPDATE",
                    "display": "revise",
                }
            ],
            "text": "retrieved through the health information exchange",
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": PROVENANCE_PARTICIPANT_TYPE,
                            "code": "custodian",
                            "display": "Custodian",
                        }
                    ]
                },
                "who": {
                    "display": org.name,
                    "identifier": {"system": "urn:ehr-sandbox:organization", "value": org.key},
                },
            }
        ],
        "entity": [{"role": "source", "what": {"reference": f"{org.url}/Patient/{patient_id}"}}],
    }
