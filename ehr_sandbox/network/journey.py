"""The generated care journey: who is shared between which organizations, with what data.

A handful of people from the clinic's panel are also registered at the cardiology practice,
the hospital ED and the lab, each time by a different front desk, so their records disagree
the way real ones do (a nickname, a transposed birth date, an old address, a missing phone).
Their clinical data is partly duplicated and partly unique to one place:

* clinic (day -21): office visit, statin started, a lipid panel ordered at the lab, a
  referral to cardiology;
* lab (day -20): the lipid panel result, sent back to the ordering clinic only;
* hospital ED (day -14): the patient reports a **penicillin allergy** (known only there)
  and is started on aspirin;
* cardiology (the reference date): the referred consult, booked; the cardiologist will need
  the lipids, the medication list and the allergies, and plans amoxicillin prophylaxis;
* clinic (the day after): a follow-up.

Everything is deterministic for the network seed. A pair of **twins** registered at the
hospital (same family name, birth date, address and phone) tests the matcher.

>>> transpose_birth_date("1980-04-12")
'1980-12-04'
>>> transpose_birth_date("1980-04-04") is None
True
>>> nickname_for("William") in {"Bill", "Billy", "Will", "Willy", "Liam"}
True
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ehr_sandbox.errors import ArgumentError
from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.matching import NICKNAMES
from ehr_sandbox.network.organizations import Organization
from synthetic.systems import MRN

__all__ = [
    "DAYS",
    "Journey",
    "Person",
    "Visit",
    "build_journeys",
    "nickname_for",
    "transpose_birth_date",
]

MRN_SYSTEM = MRN
DAYS: dict[str, int] = {
    "clinic-visit": -21,
    "lab-draw": -20,
    "ed-visit": -14,
    "cardiology-consult": 0,
    "clinic-follow-up": 1,
}
"""Day of each journey step relative to the network's reference date."""


@dataclass(frozen=True)
class Visit:
    """One step of a journey: where, when (ISO date), what, and what the clinician needs.

    >>> Visit("cardiology", "2026-01-01", "cardiology-consult").org
    'cardiology'
    """

    org: str
    day: str
    kind: str


@dataclass
class Person:
    """One real person and their record at each organization (the truth the MPI must find).

    ``records`` maps organization key -> local Patient id; ``variations`` says how each
    organization's registration differs from the clinic's.

    Parameters
    ----------
    key : str
        ``P1``, ``P2`` ...
    display : str
        The person's name.
    records : dict
        Organization key to local Patient id.
    variations : dict
        Organization key to its registration differences (``nickname``, ``old-address`` ...).
    lipids : tuple of int
        The lipid panel values of the journey's lab draw.

    Examples
    --------
    >>> p = Person("P1", "Ann Lee", {"clinic": "c1", "hospital": "h1", "lab": "l1"})
    >>> sorted(p.records), p.variations
    (['clinic', 'hospital', 'lab'], {})
    """

    key: str
    display: str
    records: dict[str, str] = field(default_factory=dict)
    variations: dict[str, list[str]] = field(default_factory=dict)
    lipids: tuple[int, int, int] = (0, 0, 0)

    def ref(self, org: str) -> str:
        """``Patient/<id>`` of this person at ``org``.

        Raises
        ------
        KeyError
            The person has no record at ``org``.

        Examples
        --------
        >>> p = Person("P1", "Ann Lee", {"clinic": "c1", "hospital": "h1", "lab": "l1"})
        >>> p.ref("hospital")
        'Patient/h1'
        """
        return f"Patient/{self.records[org]}"


@dataclass
class Journey:
    """The shared people, their visits, and the twins (a true non-match).

    >>> Journey([], [], None).visits_of("P1")
    []
    """

    people: list[Person]
    visits: list[Visit]
    twins: tuple[str, str] | None  # two hospital Patient ids: same family, DOB, address, phone

    def visits_of(self, person_key: str) -> list[Visit]:
        """The visits of one person, in order (every person follows the same path).

        Parameters
        ----------
        person_key : str

        Returns
        -------
        list of Visit
            Empty for someone not on the journey.

        Examples
        --------
        >>> j = Journey([Person("P1", "Ann Lee")], [Visit("clinic", "2025-12-11", "clinic-visit"),
        ...             Visit("hospital", "2025-12-18", "ed-visit")], None)
        >>> [v.org for v in j.visits_of("P1")], j.visits_of("P7")
        (['clinic', 'hospital'], [])
        """
        return list(self.visits) if any(p.key == person_key for p in self.people) else []

    def truth_pairs(self) -> set[frozenset[str]]:
        """Pairs of ``org/Patient/id`` that are the same person (for precision/recall).

        Returns
        -------
        set of frozenset
            Every pair of one person's records (n records give n*(n-1)/2 pairs).

        Examples
        --------
        >>> p = Person("P1", "Ann Lee", {"clinic": "c1", "hospital": "h1", "lab": "l1"})
        >>> pairs = Journey([p], [], None).truth_pairs()
        >>> len(pairs), frozenset({"clinic/Patient/c1", "lab/Patient/l1"}) in pairs
        (3, True)
        """
        out: set[frozenset[str]] = set()
        for p in self.people:
            refs = [f"{org}/Patient/{pid}" for org, pid in sorted(p.records.items())]
            out |= {frozenset((a, b)) for i, a in enumerate(refs) for b in refs[i + 1 :]}
        return out


def transpose_birth_date(birth_date: str) -> str | None:
    """Day and month swapped (None when the swap is not a different valid date).

    The registration error a journey person's record may carry at another organization.

    Parameters
    ----------
    birth_date : str
        ``YYYY-MM-DD``.

    Returns
    -------
    str or None

    Examples
    --------
    >>> transpose_birth_date("1946-06-03"), transpose_birth_date("1946-06-26"), transpose_birth_date("1946-04-04")
    ('1946-03-06', None, None)
    """
    y, m, d = birth_date.split("-")
    if m == d or int(d) > 12:
        return None
    return f"{y}-{d}-{m}"


def birth_date_typo(born: str) -> str | None:
    """Month and day swapped; when that is impossible (day > 12), the day's digits swapped.

    >>> birth_date_typo("1980-04-12"), birth_date_typo("1980-04-21"), birth_date_typo("1980-04-04")
    ('1980-12-04', '1980-04-12', None)
    """
    swapped = transpose_birth_date(born)
    if swapped is None and born[8] != born[9] and 1 <= int(born[9] + born[8]) <= 28:
        swapped = f"{born[:8]}{born[9]}{born[8]}"
    return swapped


def nickname_for(given: str) -> str | None:
    """A nickname people use for ``given`` (None when there is none).

    >>> nickname_for("Zebedee") is None
    True
    """
    name = given.lower()
    options = sorted(n for n, formal in NICKNAMES.items() if name in formal and n != name)
    return options[0].capitalize() if options else None


def _day(reference: date, offset: int) -> str:
    return (reference + timedelta(days=offset)).isoformat()


def _instant(day: str, hour: int, minutes: int = 0) -> str:
    return f"{day}T{hour:02d}:{minutes:02d}:00-05:00"


def _practitioner(org: Organization, username: str) -> str:
    return f"Practitioner/{org.sandbox.user(username).practitioner_id}"


def _eligible(org: Organization, reference: date) -> list[dict[str, Any]]:
    """Living adults with no recorded penicillin allergy, sorted by id (deterministic)."""
    s = org.sandbox.system_session()
    allergic = {
        (a.get("patient") or {}).get("reference", "").split("/")[-1]
        for a in s.resources("AllergyIntolerance")
        if any(c.get("code") == fb.PENICILLIN[0] for c in (a.get("code") or {}).get("coding", []))
    }
    out = []
    for p in s.resources("Patient"):
        born = p.get("birthDate", "")
        if p.get("deceasedDateTime") or p.get("deceasedBoolean") or len(born) != 10:
            continue
        if reference.year - int(born[:4]) < 25 or p["id"] in allergic:
            continue
        out.append(p)
    return sorted(out, key=lambda p: p["id"])


def _registration(
    source: dict[str, Any], org: Organization, number: int, changes: list[str], rng: random.Random
) -> dict[str, Any]:
    """A copy of the clinic's Patient as another front desk registered it."""
    p = {
        k: copy.deepcopy(v)
        for k, v in source.items()
        if k not in ("id", "meta", "text", "link", "generalPractitioner")
    }
    p["identifier"] = [
        {
            "use": "usual",
            "system": MRN_SYSTEM,
            "value": f"{org.mrn_prefix}{number:06d}",
            "type": {"text": "MRN"},
        }
    ]
    applied: list[str] = []
    for change in changes:
        if change == "nickname":
            name = p["name"][0]
            given = name.get("given", [""])
            # no nickname for this name: the front desk used the middle name people call them by
            nick = nickname_for(given[0]) or (given[1] if len(given) > 1 else None)
            if nick:
                name["given"] = [nick]
                applied.append("nickname")
        elif change == "transposed-birth-date":
            swapped = birth_date_typo(p.get("birthDate", "0000-00-00"))
            if swapped:
                p["birthDate"] = swapped
                applied.append("transposed-birth-date")
        elif change == "old-address" and p.get("address"):
            addr = p["address"][0]
            addr["line"] = [
                f"{rng.randint(100, 9899)} {rng.choice(['Maple', 'Cedar', 'Birch', 'Willow'])} Avenue"
            ]
            applied.append("old-address")
        elif change == "no-phone":
            p["telecom"] = [t for t in p.get("telecom", []) if t.get("system") != "phone"]
            applied.append("no-phone")
    changes[:] = applied
    return p


# How each organization's registration differs, cycled over the people (index = person).
_VARIATIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "cardiology": (("transposed-birth-date",), (), ("nickname",), ("no-phone",)),
    "hospital": (
        ("nickname", "old-address"),
        ("old-address",),
        (),
        ("nickname", "transposed-birth-date", "old-address", "no-phone"),
    ),
    "lab": (("no-phone",), ("nickname",), ("no-phone",), ()),
}


def build_journeys(
    orgs: dict[str, Organization], *, seed: int, people: int, reference_date: date
) -> Journey:
    """Register ``people`` clinic patients at the other organizations and write their history.

    Writes go through each organization's system session (this is the past the scenario
    starts from), so every resource has its Provenance and AuditEvent.

    Examples
    --------
    >>> from datetime import date
    >>> from ehr_sandbox.network.organizations import build_organizations
    >>> orgs = build_organizations(3, 8)
    >>> j = build_journeys(orgs, seed=3, people=1, reference_date=date(2026, 1, 1))
    >>> p = j.people[0]
    >>> sorted(p.records), [v.kind for v in j.visits_of(p.key)][:3]
    (['cardiology', 'clinic', 'hospital', 'lab'], ['clinic-visit', 'lab-draw', 'ed-visit'])
    >>> orgs["hospital"].sandbox.grader_session().exists(p.ref("hospital"))  # registered there
    True
    >>> build_journeys(orgs, seed=3, people=9, reference_date=date(2026, 1, 1))
    Traceback (most recent call last):
    ...
    synthetic.errors.ArgumentError: people: expected a whole number from 1 to 8 (journeys are a handful), got 9
    """
    if not isinstance(people, int) or isinstance(people, bool) or not 1 <= people <= 8:
        raise ArgumentError(
            f"people: expected a whole number from 1 to 8 (journeys are a handful), got {people!r}"
        )
    clinic = orgs["clinic"]
    candidates = _eligible(clinic, reference_date)
    if len(candidates) < people:
        raise ArgumentError(
            f"patients: the clinic has {len(candidates)} eligible adults; the journey needs {people} (raise patients=)"
        )
    rng = random.Random(f"journey:{seed}")
    chosen = sorted(rng.sample(candidates, people), key=lambda p: p["id"])
    day = {k: _day(reference_date, v) for k, v in DAYS.items()}
    sessions = {k: o.sandbox.system_session() for k, o in orgs.items()}
    out: list[Person] = []
    for i, src in enumerate(chosen):
        name = (src.get("name") or [{}])[0]
        person = Person(f"P{i + 1}", " ".join([*name.get("given", []), name.get("family", "")]))
        person.records["clinic"] = src["id"]
        for key in ("cardiology", "hospital", "lab"):
            changes = list(_VARIATIONS[key][i % len(_VARIATIONS[key])])
            reg = _registration(src, orgs[key], 900 + i, changes, rng)
            created = sessions[key].create(reg, reason="registered at first visit")
            person.records[key] = created["id"]
            person.variations[key] = changes
        person.lipids = (rng.randint(185, 260), rng.randint(110, 280), rng.randint(32, 58))
        _write_history(orgs, sessions, person, day)
        out.append(person)
    twins = _add_twins(orgs["hospital"], sessions["hospital"], chosen[0], rng)
    visits = [
        Visit("clinic", day["clinic-visit"], "clinic-visit"),
        Visit("lab", day["lab-draw"], "lab-draw"),
        Visit("hospital", day["ed-visit"], "ed-visit"),
        Visit("cardiology", day["cardiology-consult"], "cardiology-consult"),
        Visit("clinic", day["clinic-follow-up"], "clinic-follow-up"),
    ]
    for s in sessions.values():
        s.sandbox.audit.checkpoint()
    return Journey(out, visits, twins)


def _write_history(
    orgs: dict[str, Organization], sessions: dict[str, Any], person: Person, day: dict[str, str]
) -> None:
    c, lab, h, card = (orgs[k] for k in ("clinic", "lab", "hospital", "cardiology"))
    dr_c, dr_h, dr_card = (_practitioner(o, o.physician) for o in (c, h, card))
    s = sessions["clinic"]
    pc = person.ref("clinic")
    d0 = day["clinic-visit"]
    s.create(
        fb.encounter(
            pc, dr_c, _instant(d0, 9), _instant(d0, 9, 30), reason="Chest tightness on exertion"
        )
    )
    s.create(fb.medication_request(pc, dr_c, d0, "atorvastatin"))
    order = s.create(
        fb.service_request(
            pc, dr_c, d0, fb.LIPID_PANEL, performer=lab.name, reason="Cardiovascular risk"
        )
    )
    s.create(
        fb.referral(
            pc,
            dr_c,
            d0,
            card.name,
            "Chest tightness on exertion; please evaluate",
            supporting=[f"ServiceRequest/{order['id']}"],
        )
    )
    s.create(
        fb.appointment(
            pc,
            dr_c,
            _instant(day["clinic-follow-up"], 10),
            _instant(day["clinic-follow-up"], 10, 20),
            "Follow-up after cardiology consult",
        )
    )
    # lab: the result exists only at the lab (sent to the ordering clinic by fax in EMR mode)
    sl = sessions["lab"]
    for obs in fb.lipid_panel(person.ref("lab"), _instant(day["lab-draw"], 8), person.lipids):
        sl.create(obs)
    # hospital ED: the allergy and a new drug exist only here
    sh = sessions["hospital"]
    ph = person.ref("hospital")
    de = day["ed-visit"]
    sh.create(
        fb.encounter(
            ph,
            dr_h,
            _instant(de, 22),
            _instant(de, 23, 50),
            emergency=True,
            reason="Hives after a dose of a friend's amoxicillin",
        )
    )
    sh.create(fb.allergy(ph, de, dr_h))
    sh.create(fb.medication_request(ph, dr_h, de, "aspirin"))
    # cardiology: the consult is booked for the reference date
    pk = person.ref("cardiology")
    dc = day["cardiology-consult"]
    sessions["cardiology"].create(
        fb.appointment(
            pk,
            dr_card,
            _instant(dc, 9),
            _instant(dc, 9, 40),
            "Referral from primary care: chest tightness",
        )
    )


def _add_twins(
    hospital: Organization, session: Any, source: dict[str, Any], rng: random.Random
) -> tuple[str, str]:
    """Two hospital patients who share everything a matcher looks at except given name and sex."""
    ids = []
    for n, (given, gender) in enumerate((("Jordan", "female"), ("Jamie", "male"))):
        twin = _registration(source, hospital, 950 + n, [], rng)
        twin["name"] = [
            {"use": "official", "family": twin["name"][0].get("family", "Doe"), "given": [given]}
        ]
        twin["gender"] = gender
        twin["birthDate"] = "2001-03-14"
        twin.pop("extension", None)
        ids.append(session.create(twin, reason="registered at first visit")["id"])
    return ids[0], ids[1]
