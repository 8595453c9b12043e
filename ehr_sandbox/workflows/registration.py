"""Registration: search the master patient index before creating a patient; insurance cards.

A new patient is created only after an MPI search (probabilistic matching,
:mod:`ehr_sandbox.network.matching`): a probable match must be either used or explicitly set
aside with a reason. An insurance card becomes a ``Coverage`` (subscriber, relationship,
group, member id, payer) and the order of benefits follows the NAIC coordination-of-benefits
rules (own plan before a spouse's, the birthday rule for children, Medicaid last).

>>> card = InsuranceCard(payer="blueshield", member_id="RBP123456789", group="G-100", relationship="self")
>>> card.payer_ref
'Organization/org-payer-blueshield'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.network.matching import score_pair
from ehr_sandbox.workflows.base import Rule, RuleRefused, now, urn, write, write_all
from ehr_sandbox.workflows.content import table
from ehr_sandbox.workflows.payer import plan
from synthetic.systems import COVERAGE_CLASS, MRN, SUBSCRIBER_RELATIONSHIP, V2_0203, V3_ROLE_CODE

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "InsuranceCard",
    "RULES",
    "add_insurance",
    "find_duplicates",
    "order_of_benefits",
    "register_patient",
]

MRN_SYSTEM = MRN
RELATIONSHIP = SUBSCRIBER_RELATIONSHIP
_MPI_SRC = "AHIMA patient identity integrity (search before you create); ONC SAFER Guides: Patient Identification"
_COB_SRC = table("payers")["source"]
RULES = {
    r.id: r
    for r in (
        Rule(
            "registration.mpi-search",
            "search the master patient index before creating a patient; a probable match is used or set aside with a reason",
            _MPI_SRC,
        ),
        Rule(
            "registration.minimum-demographics",
            "a patient is registered with legal name, date of birth, sex and a phone or address",
            _MPI_SRC,
        ),
        Rule(
            "registration.order-of-benefits",
            "the order of benefits follows the coordination-of-benefits rules",
            _COB_SRC,
        ),
        Rule(
            "registration.duplicate-coverage",
            "the same plan and member id are entered once",
            _COB_SRC,
        ),
        Rule(
            "registration.member-id",
            "the member id is copied exactly from the card (the plan's format)",
            _COB_SRC,
        ),
    )
}


@dataclass(frozen=True)
class InsuranceCard:
    """What the front desk copies from an insurance card (front and back).

    ``relationship`` is the patient's relationship to the subscriber (``self``, ``spouse``,
    ``child``, ``other``). For a dependant, the subscriber's name, birth date and sex are on
    the card or asked. ``through_employment``: the subscriber's plan comes from current
    employment (matters when Medicare is the other plan).

    >>> InsuranceCard(payer="medicaid", member_id="MCD1", relationship="self").group
    ''
    """

    payer: str
    member_id: str
    relationship: str = "self"
    group: str = ""
    subscriber_given: str = ""
    subscriber_family: str = ""
    subscriber_birth_date: str = ""
    subscriber_gender: str = ""
    start: str = ""
    through_employment: bool = True

    @property
    def payer_ref(self) -> str:
        """``Organization/org-payer-<payer>``.

        Examples
        --------
        >>> InsuranceCard("medicaid", "M123").payer_ref
        'Organization/org-payer-medicaid'
        """
        return f"Organization/org-payer-{self.payer}"


def find_duplicates(session: Session, candidate: dict[str, Any]) -> list[dict[str, Any]]:
    """Search the MPI for patients who may be the candidate (match or review), best first.

    Returns dicts with ``patient`` (``Patient/<id>``), ``decision``, ``score`` and the
    ``explanation`` of the score.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=3, seed=1, years=1).login("fd.smith")
    >>> p = fd.search("Patient").first()
    >>> hits = find_duplicates(fd, {"resourceType": "Patient", "name": p["name"], "birthDate": p["birthDate"], "gender": p["gender"]})
    >>> hits[0]["patient"] == f"Patient/{p['id']}", hits[0]["decision"] in ("match", "review")
    (True, True)
    """
    cand = {**candidate, "resourceType": "Patient", "id": candidate.get("id", "candidate")}
    out = []
    for p in session.resources("Patient"):
        if p.get("active") is False:
            continue
        s = score_pair(cand, p)
        if s.decision in ("match", "review"):
            out.append(
                {
                    "patient": f"Patient/{p['id']}",
                    "decision": s.decision,
                    "score": round(s.total, 2),
                    "explanation": s.explanation,
                }
            )
    out.sort(key=lambda h: -h["score"])
    return out


def _next_mrn(session: Session) -> str:
    best = 0
    for p in session.resources("Patient"):
        for i in p.get("identifier", []):
            if i.get("system") == MRN_SYSTEM and str(i.get("value", "")).startswith("MRN"):
                digits = str(i["value"])[3:]
                if digits.isdigit():
                    best = max(best, int(digits))
    return f"MRN{best + 1:08d}"


def register_patient(
    session: Session,
    patient: dict[str, Any],
    *,
    not_duplicate_of: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Register a new patient after the MPI search; assigns the next MRN.

    Parameters
    ----------
    session : Session
        Front desk.
    patient : dict
        The Patient (name, birthDate, gender, telecom/address).
    not_duplicate_of : dict, optional
        ``{"Patient/<id>": "why this is a different person"}`` for every probable match the
        search returns (e.g. a different date of birth confirmed with ID, a twin).

    Returns
    -------
    dict
        The created Patient.

    Raises
    ------
    RuleRefused
        ``registration.mpi-search`` when a probable match is not set aside with a reason;
        ``registration.minimum-demographics`` when data is missing.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=3, seed=1, years=1).login("fd.smith")
    >>> p = fd.search("Patient").first()
    >>> twin = {"resourceType": "Patient", "name": p["name"], "birthDate": p["birthDate"],
    ...         "gender": p["gender"], "telecom": p.get("telecom", [])}
    >>> register_patient(fd, twin)
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Patient: name: expected no probable match, or a reason for each ... Refused by rule registration.mpi-search: ...
    """
    if not isinstance(patient, dict):
        raise ValidationError("Patient", "(resource)", "a Patient as a dict")
    name = (patient.get("name") or [{}])[0]
    missing = [
        f
        for f, ok in (
            ("name.family", bool(name.get("family"))),
            ("name.given", bool(name.get("given"))),
            ("birthDate", bool(patient.get("birthDate"))),
            ("gender", bool(patient.get("gender"))),
            ("telecom|address", bool(patient.get("telecom") or patient.get("address"))),
        )
        if not ok
    ]
    if missing:
        raise RuleRefused(
            RULES["registration.minimum-demographics"],
            resource="Patient",
            path=missing[0],
            expected="legal name, date of birth, sex and a phone or address",
            found=None,
        )
    reasons = not_duplicate_of or {}
    hits = find_duplicates(session, patient)
    unexplained = [h["patient"] for h in hits if not str(reasons.get(h["patient"], "")).strip()]
    if unexplained:
        raise RuleRefused(
            RULES["registration.mpi-search"],
            resource="Patient",
            path="name",
            expected="no probable match, or a reason for each why it is a different person",
            found=unexplained,
        )
    res = {**patient, "resourceType": "Patient", "active": True}
    res.pop("id", None)
    ids = [i for i in res.get("identifier", []) if i.get("system") != MRN_SYSTEM]
    ids.insert(
        0,
        {
            "use": "usual",
            "type": {
                "coding": [{"system": V2_0203, "code": "MR"}],
                "text": "MRN",
            },
            "system": MRN_SYSTEM,
            "value": _next_mrn(session),
        },
    )
    res["identifier"] = ids
    why = "; ".join(
        f"{k}: {v}" for k, v in sorted(reasons.items()) if k in {h["patient"] for h in hits}
    )
    return write(
        session,
        res,
        operation="registration.register",
        reason=f"MPI search done; set aside: {why}"
        if why
        else "MPI search done: no probable match",
    )


def _birthday_key(birth_date: str) -> tuple[int, int]:
    d = date.fromisoformat(birth_date[:10])
    return (d.month, d.day)


def order_of_benefits(cards: list[InsuranceCard], *, patient_age: int) -> list[InsuranceCard]:
    """The cards in order of benefits (primary first), by the NAIC COB rules.

    1. Medicaid is the payer of last resort. 2. The plan covering the patient as the
    subscriber pays before a plan covering them as a dependant. 3. For a child on both
    parents' plans, the parent whose birthday (month and day) comes first in the year
    (the *birthday rule*). 4. Medicare (age 65+) pays after a plan from current employment
    (the patient's or the spouse's), before a plan that is not.

    Examples
    --------
    >>> mom = InsuranceCard("blueshield", "RBP1", "child", subscriber_birth_date="1985-09-30")
    >>> dad = InsuranceCard("unityhealth", "UHH1", "child", subscriber_birth_date="1983-03-02")
    >>> [c.payer for c in order_of_benefits([mom, dad], patient_age=8)]
    ['unityhealth', 'blueshield']
    """

    def key(c: InsuranceCard) -> tuple[Any, ...]:
        last = plan(c.payer).last_resort if c.payer != "selfpay" else True
        medicare = c.payer == "medicare"
        if medicare:
            employer_first = any(
                o.payer != "medicare" and o.through_employment and not plan(o.payer).last_resort
                for o in cards
            )
            rank = 2 if employer_first else 0
        else:
            rank = 1 if c.relationship == "self" else 3
            if c.relationship == "self" and not c.through_employment:
                rank = 3
        bday = (
            _birthday_key(c.subscriber_birth_date)
            if c.relationship == "child" and c.subscriber_birth_date
            else (13, 0)
        )
        return (last, rank, bday, c.start or "")

    _ = patient_age  # Medicare entitlement is read from the cards themselves
    return sorted(cards, key=key)


def add_insurance(
    session: Session,
    patient: str,
    cards: list[InsuranceCard],
    *,
    orders: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Enter the patient's current insurance cards as Coverages, in order of benefits, in one
    transaction.

    ``cards`` are all the plans the patient has now: a Coverage on file that is not among them
    is ended (``period.end`` = yesterday, never deleted); one that is keeps its record and gets
    its new order. For a dependant, the subscriber is recorded as a RelatedPerson. ``orders``
    (1 = primary) may be given; when it disagrees with the COB rules the entry is refused.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=2, seed=1, years=1).login("fd.smith")
    >>> p = fd.search("Patient").first()
    >>> covs = add_insurance(fd, f"Patient/{p['id']}", [
    ...     InsuranceCard("medicaid", "MCD000111222", "self"),
    ...     InsuranceCard("unityhealth", "UHH000333444", "spouse", group="G-7", subscriber_given="Sam",
    ...                   subscriber_family="Doe", subscriber_birth_date="1970-05-05", subscriber_gender="male")])
    >>> [(c["payor"][0]["reference"].split("-")[-1], c["order"]) for c in covs]
    [('unityhealth', 1), ('medicaid', 2)]
    """
    pat = session.read(patient)
    if not cards:
        raise ValidationError("Coverage", "(cards)", "at least one insurance card")
    day = now(session).date()
    age = day.year - int(pat["birthDate"][:4]) if pat.get("birthDate") else 40
    existing = [
        c
        for c in session.search("Coverage", patient=patient).fetch()
        if c.get("status") == "active" and not (c.get("period") or {}).get("end")
    ]
    for c in cards:
        p = plan(c.payer)
        if not (c.member_id.startswith(p.prefix) and c.member_id[len(p.prefix) :].isdigit()):
            raise RuleRefused(
                RULES["registration.member-id"],
                resource="Coverage",
                path="subscriberId",
                expected=f"the member id as printed ({p.prefix} followed by digits)",
                found=c.member_id,
            )
        if c.relationship not in ("self", "spouse", "child", "other"):
            raise ValidationError(
                "Coverage", "relationship", "self, spouse, child or other", found=c.relationship
            )
        if c.relationship != "self" and not (c.subscriber_family and c.subscriber_birth_date):
            raise ValidationError(
                "RelatedPerson",
                "name|birthDate",
                "the subscriber's name and date of birth (from the card or the patient)",
            )
    keys = [(c.payer_ref, c.member_id) for c in cards]
    if len(set(keys)) != len(keys):
        raise RuleRefused(
            RULES["registration.duplicate-coverage"],
            resource="Coverage",
            path="subscriberId",
            expected="each plan once",
            found=[k[1] for k in keys],
        )
    on_file = {(e["payor"][0]["reference"], e.get("subscriberId")): e for e in existing}
    ordered = order_of_benefits(list(cards), patient_age=age)
    if orders is not None:
        given = [c for _, c in sorted(zip(orders, cards, strict=True), key=lambda x: x[0])]
        if given != ordered:
            raise RuleRefused(
                RULES["registration.order-of-benefits"],
                resource="Coverage",
                path="order",
                expected="primary first: " + ", ".join(c.payer for c in ordered),
                found=", ".join(c.payer for c in given),
            )
    entries: list[dict[str, Any]] = []
    yesterday = date.fromordinal(day.toordinal() - 1).isoformat()
    for key, e in on_file.items():
        if key not in keys:
            entries.append(
                {
                    **e,
                    "status": "active",
                    "period": {
                        **e.get("period", {}),
                        "end": max(yesterday, e.get("period", {}).get("start", yesterday)),
                    },
                }
            )
    for n, c in enumerate(ordered, start=1):
        kept = on_file.get((c.payer_ref, c.member_id))
        if kept is not None:
            if int(kept.get("order", 0)) != n:
                entries.append({**kept, "order": n})
            continue
        cov: dict[str, Any] = {
            "resourceType": "Coverage",
            "status": "active",
            "subscriberId": c.member_id,
            "beneficiary": {"reference": patient},
            "relationship": {"coding": [{"system": RELATIONSHIP, "code": c.relationship}]},
            "period": {"start": c.start or day.isoformat()},
            "payor": [{"reference": c.payer_ref, "display": plan(c.payer).name}],
            "order": n,
        }
        if c.group:
            cov["class"] = [
                {
                    "type": {"coding": [{"system": COVERAGE_CLASS, "code": "group"}]},
                    "value": c.group,
                }
            ]
        if c.relationship == "self":
            cov["subscriber"] = {"reference": patient}
        else:
            url = urn(session, "RelatedPerson", patient, str(n))
            entries.append(
                {
                    "fullUrl": url,
                    "resource": {
                        "resourceType": "RelatedPerson",
                        "patient": {"reference": patient},
                        "relationship": [
                            {
                                "coding": [
                                    {
                                        "system": V3_ROLE_CODE,
                                        "code": {"spouse": "SPS", "child": "PRN"}.get(
                                            c.relationship, "FAMMEMB"
                                        ),
                                    }
                                ]
                            }
                        ],
                        "name": [
                            {
                                "family": c.subscriber_family,
                                "given": [c.subscriber_given] if c.subscriber_given else [],
                            }
                        ],
                        "birthDate": c.subscriber_birth_date,
                        **({"gender": c.subscriber_gender} if c.subscriber_gender else {}),
                    },
                }
            )
            cov["subscriber"] = {"reference": url}
            cov["policyHolder"] = {"reference": url}
        entries.append(cov)
    written = write_all(session, entries, operation="registration.add-insurance")
    current = [
        c
        for c in written
        if c["resourceType"] == "Coverage" and not (c.get("period") or {}).get("end")
    ]
    untouched = [
        e for k, e in on_file.items() if k in keys and all(c["id"] != e["id"] for c in current)
    ]
    return sorted(current + untouched, key=lambda c: int(c.get("order", 0)))
