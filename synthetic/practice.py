"""The shared practice: Organization, Location, staff Practitioner + PractitionerRole, payers,
Schedules and Slots, plus the opening-hours calendar the engine books visits into.

>>> from synthetic.content import load_content
>>> from synthetic.compile import compile_catalog
>>> pr = Practice(compile_catalog(load_content()), "family-practice", 739617)
>>> pr.physicians[0].startswith("prac-dr.")
True
>>> types = {r["resourceType"] for r in pr.resources()}
>>> {"Organization", "Location", "Practitioner", "PractitionerRole", "Schedule", "Slot"} <= types
True
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from synthetic.builders.common import coding
from synthetic.catalog import Catalog
from synthetic.dates import instant, iso_date, weekday
from synthetic.ids import practice_id
from synthetic.labels import meta
from synthetic.systems import NPI, NUCC_TAXONOMY, ORGANIZATION_TYPE, SANDBOX_ROLE, USERNAME
from synthetic.templates import Templates, slot, template_for

USERNAME_SYSTEM = USERNAME
ROLE_SYSTEM = SANDBOX_ROLE
NPI_SYSTEM = NPI
NUCC_SYSTEM = NUCC_TAXONOMY
ORG_TYPE = ORGANIZATION_TYPE
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROLE_DISPLAY: dict[str, str] = {
    name: str(spec.get("display", name))
    for name, spec in tomllib.loads(
        resources.files("synthetic.content").joinpath("data", "roles.toml").read_text("utf-8")
    )["roles"].items()
}
"""Role code -> display, from the one role table (``roles.toml``, which the EHR's access
control loads too)."""
SLOT_MINUTES = 20
SCHEDULE_BEFORE_DAYS = 7
SCHEDULE_AFTER_DAYS = 14


def _hhmm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


class Practice:
    """The practice of one dataset (fixed for a content version, preset and reference date).

    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> Practice(compile_catalog(load_content()), "family-practice", 739617).offset.startswith(("-", "+"))
    True
    """

    def __init__(self, catalog: Catalog, population: str, reference_day: int) -> None:
        self.catalog = catalog
        self.preset = catalog.presets[population]
        self.reference_day = reference_day
        p = catalog.practice
        self.offset: str = p.utc_offset
        self.organization_id: str = p.organization_id
        self.location_id = practice_id("loc", "main")
        # the contract roster is always there (user accounts); specialists only in their presets
        self.members = (
            [*catalog.staff]
            + [m for m in catalog.specialists if population in m.presets]
            + [*catalog.former]
        )
        self.staff = {m.username: m for m in self.members}
        by_role: dict[str, list[str]] = {}
        for m in self.members:
            by_role.setdefault(m.role, []).append(practice_id("prac", m.username))
        # the clinicians who see this preset's patients, with the ages they see
        own = [m for m in self.members if m.role == "physician" and population in m.presets]
        if not own:
            own = [m for m in self.members if m.role == "physician"]
        self.clinicians: list[tuple[str, float, float]] = [
            (practice_id("prac", m.username), m.patient_age_min, m.patient_age_max) for m in own
        ]
        self.physicians: list[str] = [c[0] for c in self.clinicians]
        self.rules = catalog.rules
        self.nurses: list[str] = by_role.get("nurse", [])
        self.assistants: list[str] = by_role.get("medical_assistant", []) or self.nurses
        self.payer_org = {pay.key: practice_id("org", f"payer-{pay.key}") for pay in catalog.payers}
        # minute-of-day starts of bookable slots, per weekday (0 = Monday)
        self.slot_starts: list[list[int]] = [[] for _ in range(7)]
        self._hours: list[tuple[int, int, tuple[int, int] | None] | None] = [None] * 7
        self._starts: dict[tuple[int, int], list[int]] = {}
        self._open: dict[int, bool] = {}
        self._next_open: dict[int, list[int]] = {}
        self._fit: dict[int, tuple[str, ...]] = {}
        self._on: dict[tuple[str, int], list[str]] = {}
        self._layouts: dict[tuple[str, int], Any] = {}
        for h in p.hours:
            wd = _DAYS.index(h.day)
            lunch = (
                (_hhmm(h.lunch_start), _hhmm(h.lunch_end))
                if h.lunch_start and h.lunch_end
                else None
            )
            m = _hhmm(h.open)
            close = _hhmm(h.close)
            self._hours[wd] = (m, close, lunch)
            while m + SLOT_MINUTES <= close:
                if lunch is None or not (lunch[0] <= m < lunch[1]):
                    self.slot_starts[wd].append(m)
                m += SLOT_MINUTES
        # each clinician's day follows the template of their specialty (templates.toml)
        self.templates = Templates(self._hours)
        self._template = {
            practice_id("prac", m.username): template_for(m.specialty)
            for m in self.members
            if m.role == "physician"
        }

    def template_of(self, provider: str) -> str:
        """The schedule template id a clinician works to (covering physicians: the default).

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> pr = Practice(compile_catalog(load_content()), "family-practice", 739617)
        >>> pr.template_of("prac-dr.okafor"), pr.template_of("prac-locum-01")
        ('cluster-well-child', 'stream-20')
        """
        hit = self._template.get(provider)
        if hit is None:
            hit = self._template[provider] = template_for(None)
        return hit

    def layout(self, provider: str, day: int) -> Any:
        """The slot times of a clinician's template on ``day``'s weekday.

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> pr = Practice(compile_catalog(load_content()), "family-practice", 739617)
        >>> pr.layout("prac-dr.nguyen", 739622)[0].seats  # modified wave: two at the hour
        2
        """
        key = (provider, day % 7)  # the weekday, told apart without computing it
        hit = self._layouts.get(key)
        if hit is None:
            hit = self.templates.layout(self.template_of(provider), weekday(day))
            if len(self._layouts) < 10_000:  # clinicians x weekdays (covering ones included)
                self._layouts[key] = hit
        return hit

    @staticmethod
    def employed(member: Any, day: int) -> bool:
        """Whether a roster member works at the practice on ``day`` (their start/end dates).

        >>> from types import SimpleNamespace as NS
        >>> Practice.employed(NS(start="2019-04-01", end="2025-08-29"), 739617)
        False
        """
        iso = iso_date(day)
        return (not member.start or member.start <= iso) and (not member.end or iso <= member.end)

    def staff_on(self, role: str, day: int) -> list[str]:
        """Practitioner ids of the roster members of ``role`` employed on ``day``.

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> pr = Practice(compile_catalog(load_content()), "family-practice", 739617)
        >>> "prac-fd.alvarez" in pr.staff_on("front_desk", 739000), "prac-fd.alvarez" in pr.staff_on("front_desk", 739617)
        (True, False)
        """
        key = (role, day)
        hit = self._on.get(key)
        if hit is None:
            hit = self._on[key] = [
                practice_id("prac", m.username)
                for m in self.members
                if m.role == role and self.employed(m, day)
            ]
        return hit

    def is_open(self, day: int) -> bool:
        """Whether the practice is open on ``day`` (a working weekday that is no federal holiday).

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> pr = Practice(compile_catalog(load_content()), "family-practice", 739617)
        >>> pr.is_open(739617)  # 2026-01-01, New Year's Day
        False
        """
        hit = self._open.get(day)
        if hit is None:
            hit = self._open[day] = bool(self.slot_starts[weekday(day)]) and (
                self.rules is None or not self.rules.is_holiday(day)
            )
        return hit

    def open_day(self, day: int, rng: Any = None) -> int:
        """An open day for a visit wanted on ``day``: that day when open, else a nearby open day.

        With ``rng`` a closed day moves to one of the next five open days at random (so that
        weekend wishes do not pile up on Mondays); without it, to the next open day.

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> pr = Practice(compile_catalog(load_content()), "family-practice", 739617)
        >>> pr.is_open(pr.open_day(739618))
        True
        """
        is_open = self._open.get(day)  # (a day seen before: no call)
        if is_open is None:
            is_open = self.is_open(day)
        if is_open:
            return day
        found = self._next_open.get(day)
        if found is None:
            found = []
            for k in range(1, 15):
                if self.is_open(day + k):
                    found.append(day + k)
                    if len(found) == 5:
                        break
            self._next_open[day] = found
        if not found:
            return day
        if rng is None:
            return found[0]
        return found[rng.randrange(len(found))]

    def starts(self, day: int, minutes: int) -> list[int]:
        """Start minutes on ``day`` at which a visit of ``minutes`` fits in open hours (no lunch).

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> pr = Practice(compile_catalog(load_content()), "family-practice", 739617)
        >>> max(pr.starts(739618, 30)) + 30 <= 17 * 60
        True
        """
        wd = weekday(day)
        key = (wd, minutes)
        hit = self._starts.get(key)
        if hit is None:
            hours = self._hours[wd]
            hit = []
            if hours is not None:
                open_, close, lunch = hours
                for m in self.slot_starts[wd]:
                    if m + minutes > close:
                        continue
                    if lunch is not None and m < lunch[1] and m + minutes > lunch[0]:
                        continue
                    hit.append(m)
            if not hit:
                hit = [self._hours[wd][0] if self._hours[wd] else 9 * 60]
            self._starts[key] = hit
        return hit

    def clinicians_for(self, age: float) -> tuple[str, ...]:
        """The clinicians who see a patient of ``age`` in this practice (a tuple kept per whole
        year of age: shared, never changed).

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> pr = Practice(compile_catalog(load_content()), "family-practice", 739617)
        >>> "prac-dr.okafor" in pr.clinicians_for(40.0)
        False
        """
        years = int(age)  # the roster's age limits are whole years
        hit = self._fit.get(years)
        if hit is None:
            fit = [c for c, lo, hi in self.clinicians if lo <= years and years < hi + 1]
            hit = self._fit[years] = tuple(fit or self.physicians)
        return hit

    def resources(self, book: Any = None, first_day: int | None = None) -> list[dict[str, Any]]:
        """Every shared practice resource, in a stable order.

        ``book`` (a :class:`synthetic.schedule.Book` after every patient of a dataset was
        placed) leaves out the Slots patients fill (their records carry them, busy) and adds
        the covering physicians the schedule needed; ``first_day`` starts the Schedules'
        planning horizon (default: a week before the reference date).

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> res = Practice(compile_catalog(load_content()), "family-practice", 739617).resources()
        >>> res[0]["resourceType"], len({r["id"] for r in res}) == len(res)
        ('Organization', True)
        """
        cat = self.catalog
        p = cat.practice
        out: list[dict[str, Any]] = []
        name = p.name_pattern.format(city=p.city, specialty=self.preset.specialty)
        address = [
            {
                "line": [p.address_line],
                "city": p.city,
                "state": p.state,
                "postalCode": p.postal_code,
                "country": "US",
            }
        ]
        out.append(
            {
                "resourceType": "Organization",
                "id": self.organization_id,
                "meta": meta("Organization"),
                "identifier": [{"system": NPI_SYSTEM, "value": p.npi}],
                "active": True,
                "type": [{"coding": [coding(ORG_TYPE, "prov", "Healthcare Provider")]}],
                "name": name,
                "telecom": [{"system": "phone", "value": p.phone, "use": "work"}],
                "address": address,
            }
        )
        for pay in cat.payers:
            if pay.type == "self-pay":
                continue
            out.append(
                {
                    "resourceType": "Organization",
                    "id": self.payer_org[pay.key],
                    "meta": meta("Organization"),
                    "active": True,
                    "type": [{"coding": [coding(ORG_TYPE, "pay", "Payer")]}],
                    "name": pay.name,
                }
            )
        out.append(
            {
                "resourceType": "Location",
                "id": self.location_id,
                "meta": meta("Location"),
                "status": "active",
                "name": f"{name} - main office",
                "mode": "instance",
                "telecom": [{"system": "phone", "value": p.phone, "use": "work"}],
                "address": address[0],
                "managingOrganization": {"reference": f"Organization/{self.organization_id}"},
            }
        )
        members = list(self.members)
        locums = book.locums if book is not None else 0
        for m in members:
            pid = practice_id("prac", m.username)
            hname: dict[str, Any] = {"use": "official", "family": m.family, "given": [m.given]}
            if m.prefix:
                hname["prefix"] = [m.prefix]
            if m.qualification:
                hname["suffix"] = [m.qualification]
            employed = self.employed(m, self.reference_day)
            out.append(
                {
                    "resourceType": "Practitioner",
                    "id": pid,
                    "meta": meta("Practitioner"),
                    "identifier": [
                        {"system": USERNAME_SYSTEM, "value": m.username},
                        {"system": NPI_SYSTEM, "value": m.npi},
                    ],
                    "active": employed,
                    "name": [hname],
                }
            )
            role: dict[str, Any] = {
                "resourceType": "PractitionerRole",
                "id": practice_id("role", m.username),
                "meta": meta("PractitionerRole"),
                "active": employed,
                "practitioner": {"reference": f"Practitioner/{pid}"},
                "organization": {"reference": f"Organization/{self.organization_id}"},
                "code": [
                    {"coding": [coding(ROLE_SYSTEM, m.role, ROLE_DISPLAY.get(m.role, m.role))]}
                ],
            }
            if m.specialty:
                spec: dict[str, Any] = {"text": m.specialty}
                if m.taxonomy:
                    spec["coding"] = [coding(NUCC_SYSTEM, m.taxonomy, m.specialty)]
                role["specialty"] = [spec]
            if m.start or m.end:  # employment, and the user account, from start to end
                period: dict[str, str] = {}
                if m.start:
                    period["start"] = m.start
                if m.end:
                    period["end"] = m.end
                role["period"] = period
            role["location"] = [{"reference": f"Location/{self.location_id}"}]
            out.append(role)
        for k in range(1, locums + 1):
            out.extend(self._locum(k))
        out.extend(self._schedules(book, first_day))
        return out

    def _locum(self, k: int) -> list[dict[str, Any]]:
        """A covering (locum tenens) physician the schedule added when the roster was full."""
        pid = practice_id("prac", f"locum-{k:02d}")
        return [
            {
                "resourceType": "Practitioner",
                "id": pid,
                "meta": meta("Practitioner"),
                "active": True,
                "name": [
                    {
                        "use": "official",
                        "text": f"Locum tenens physician {k}",
                        "family": f"Locum-{k:02d}",
                        "suffix": ["MD"],
                    }
                ],
            },
            {
                "resourceType": "PractitionerRole",
                "id": practice_id("role", f"locum-{k:02d}"),
                "meta": meta("PractitionerRole"),
                "active": True,
                "practitioner": {"reference": f"Practitioner/{pid}"},
                "organization": {"reference": f"Organization/{self.organization_id}"},
                "code": [{"coding": [coding(ROLE_SYSTEM, "physician", ROLE_DISPLAY["physician"])]}],
                "location": [{"reference": f"Location/{self.location_id}"}],
            },
        ]

    def _schedules(self, book: Any = None, first_day: int | None = None) -> list[dict[str, Any]]:
        first = self.reference_day - SCHEDULE_BEFORE_DAYS
        last = self.reference_day + SCHEDULE_AFTER_DAYS
        horizon_first = min(first, first_day) if first_day is not None else first
        horizon_last = last + 200  # appointments are booked up to half a year ahead
        out: list[dict[str, Any]] = []
        slots: list[dict[str, Any]] = []
        locums = book.locums if book is not None else 0
        occupied = book.occupied if book is not None else {}
        providers = [
            *self.physicians,
            *(practice_id("prac", f"locum-{k:02d}") for k in range(1, locums + 1)),
        ]
        for pid in providers:
            sid = practice_id("sched", pid.removeprefix("prac-"))
            sched_ref = {"reference": f"Schedule/{sid}"}
            out.append(
                {
                    "resourceType": "Schedule",
                    "id": sid,
                    "meta": meta("Schedule"),
                    "active": True,
                    "actor": [
                        {"reference": f"Practitioner/{pid}"},
                        {"reference": f"Location/{self.location_id}"},
                    ],
                    "planningHorizon": {
                        "start": instant(horizon_first, 0, self.offset),
                        "end": instant(horizon_last, 23 * 60 + 59, self.offset),
                    },
                }
            )
            if pid not in self.physicians:
                continue  # a covering physician only takes the overflow: no open slots offered
            for day in range(first, last + 1):
                if not self.is_open(day):
                    continue
                taken = occupied.get((pid, day), 0)
                for st in self.layout(pid, day):
                    for seat in range(st.seats):
                        if (taken >> (st.bit + seat)) & 1:
                            continue  # busy: the patient record that fills it carries the Slot
                        slots.append(slot(pid, dict(sched_ref), day, st, seat, "free", self.offset))
        return out + slots
