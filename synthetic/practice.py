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

from typing import Any

from synthetic.builders.common import coding
from synthetic.catalog import Catalog
from synthetic.dates import instant, iso_date, weekday
from synthetic.ids import practice_id
from synthetic.labels import meta

USERNAME_SYSTEM = "http://ehr-sandbox.org/fhir/username"
ROLE_SYSTEM = "http://ehr-sandbox.org/CodeSystem/role"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROLE_DISPLAY = {
    "front_desk": "Front desk",
    "medical_assistant": "Medical assistant",
    "nurse": "Nurse",
    "physician": "Physician",
    "billing": "Billing specialist",
    "privacy_officer": "Privacy officer",
    "instructor": "Instructor",
    "admin": "System administrator",
}
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
        self.staff = {m.username: m for m in catalog.staff}
        by_role: dict[str, list[str]] = {}
        for m in catalog.staff:
            by_role.setdefault(m.role, []).append(practice_id("prac", m.username))
        self.physicians: list[str] = by_role.get("physician", [])
        self.nurses: list[str] = by_role.get("nurse", [])
        self.assistants: list[str] = by_role.get("medical_assistant", []) or self.nurses
        self.payer_org = {pay.key: practice_id("org", f"payer-{pay.key}") for pay in catalog.payers}
        # minute-of-day starts of bookable slots, per weekday (0 = Monday)
        self.slot_starts: list[list[int]] = [[] for _ in range(7)]
        for h in p.hours:
            wd = _DAYS.index(h.day)
            lunch = (
                (_hhmm(h.lunch_start), _hhmm(h.lunch_end))
                if h.lunch_start and h.lunch_end
                else None
            )
            m = _hhmm(h.open)
            close = _hhmm(h.close)
            while m + SLOT_MINUTES <= close:
                if lunch is None or not (lunch[0] <= m < lunch[1]):
                    self.slot_starts[wd].append(m)
                m += SLOT_MINUTES

    def open_day(self, day: int) -> int:
        """The first day on or after ``day`` when the practice is open.

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> pr = Practice(compile_catalog(load_content()), "family-practice", 739617)
        >>> bool(pr.slot_starts[weekday(pr.open_day(739618))])
        True
        """
        for k in range(7):
            if self.slot_starts[weekday(day + k)]:
                return day + k
        return day

    def resources(self) -> list[dict[str, Any]]:
        """Every shared practice resource, in a stable order.

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
        for m in cat.staff:
            pid = practice_id("prac", m.username)
            hname: dict[str, Any] = {"use": "official", "family": m.family, "given": [m.given]}
            if m.prefix:
                hname["prefix"] = [m.prefix]
            if m.qualification:
                hname["suffix"] = [m.qualification]
            out.append(
                {
                    "resourceType": "Practitioner",
                    "id": pid,
                    "meta": meta("Practitioner"),
                    "identifier": [
                        {"system": USERNAME_SYSTEM, "value": m.username},
                        {"system": NPI_SYSTEM, "value": m.npi},
                    ],
                    "active": True,
                    "name": [hname],
                }
            )
            role: dict[str, Any] = {
                "resourceType": "PractitionerRole",
                "id": practice_id("role", m.username),
                "meta": meta("PractitionerRole"),
                "active": True,
                "practitioner": {"reference": f"Practitioner/{pid}"},
                "organization": {"reference": f"Organization/{self.organization_id}"},
                "code": [
                    {"coding": [coding(ROLE_SYSTEM, m.role, ROLE_DISPLAY.get(m.role, m.role))]}
                ],
            }
            if m.specialty:
                role["specialty"] = [{"text": m.specialty}]
            role["location"] = [{"reference": f"Location/{self.location_id}"}]
            out.append(role)
        out.extend(self._schedules())
        return out

    def _schedules(self) -> list[dict[str, Any]]:
        first = self.reference_day - SCHEDULE_BEFORE_DAYS
        last = self.reference_day + SCHEDULE_AFTER_DAYS
        out: list[dict[str, Any]] = []
        slots: list[dict[str, Any]] = []
        for pid in self.physicians:
            sid = practice_id("sched", pid.removeprefix("prac-"))
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
                        "start": instant(first, 0, self.offset),
                        "end": instant(last, 23 * 60 + 59, self.offset),
                    },
                }
            )
            for day in range(first, last + 1):
                for m in self.slot_starts[weekday(day)]:
                    slots.append(
                        {
                            "resourceType": "Slot",
                            "id": f"slot-{sid.removeprefix('sched-')}-{iso_date(day)}-{m // 60:02d}{m % 60:02d}",
                            "meta": meta("Slot"),
                            "schedule": {"reference": f"Schedule/{sid}"},
                            "status": "free",
                            "start": instant(day, m, self.offset),
                            "end": instant(day, m + SLOT_MINUTES, self.offset),
                        }
                    )
        return out + slots
