"""HIPAA Safe Harbor de-identification of FHIR R4 resources (45 CFR 164.514(b)(2)).

What :func:`deidentify` does to every resource (and to contained resources):

* **ids and references**: every resource gets a random surrogate id (``secrets``, or the
  ``random.Random`` passed for tests; never derived from the data); every reference
  ``Type/id`` (and ``urn:uuid:`` full URLs of Bundle entries) is rewritten through the same
  map, so links between resources survive; reference ``display`` and ``identifier`` go.
  The map (original -> surrogate) is returned separately: keep it access-controlled.
* **names** of the patient, relatives (``Patient.contact``, ``RelatedPerson``,
  ``FamilyMemberHistory.name``) and staff; **telecom** (phone, fax, email, URLs);
  **identifiers** of every kind (MRN, SSN, member, claim, account, licence, device,
  accession, requisition...), ``photo``, ``Location.position``, ``Patient.link``.
* **geography** smaller than a state: addresses keep ``use``, ``type``, ``state``, ``country``
  and the ZIP3 (``000`` for restricted areas, see :mod:`ehr_sandbox.deid.zip3`).
* **dates**: every date element keeps its year only (``date`` and ``dateTime`` accept a
  bare year); ``instant`` elements (which cannot hold a year alone) are dropped.
* **ages over 89**: the patient's birth year goes and an extension says "90 or older";
  ``Age`` values over 89 become ``>= 90``.
* **free text**: narrative ``text``, notes and comments (Annotation), attachments' data
  and URLs (DocumentReference content keeps only its content type), report conclusions.
* **resource types** that exist only to identify, to log or to carry free text are left
  out: see :data:`DROPPED_TYPES`.
* **labels**: ``meta`` keeps profiles, tags and sensitivity codes; the confidentiality
  becomes ``L`` (low); versionId/lastUpdated/source go.

>>> import random
>>> pat = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Okafor"}],
...        "birthDate": "1980-04-02", "address": [{"city": "Dayton", "state": "OH", "postalCode": "45402"}]}
>>> obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "BP"},
...        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2025-06-01T10:00:00-04:00"}
>>> out = deidentify([pat, obs], seed_or_rng=random.Random(1), reference_date="2026-01-01")
>>> p, o = out.resources
>>> p["birthDate"], p["address"], "name" in p, o["effectiveDateTime"]
('1980', [{'state': 'OH', 'postalCode': '454'}], False, '2025')
>>> o["subject"]["reference"] == "Patient/" + p["id"] == out.surrogate_map["Patient/p1"]
True
"""

from __future__ import annotations

import random
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ehr_sandbox.deid.allowlist import EXTENSIONS_KEPT, FREE_TEXT_KEYS, MASKED_WHEN_EMPTY, keeps
from ehr_sandbox.deid.zip3 import generalize_zip
from ehr_sandbox.errors import ValidationError
from synthetic.systems import (
    EXT_DATA_ABSENT_REASON,
    LOINC,
    SANDBOX_EXT_AGE_90_OR_OLDER,
    SNOMED,
    UCUM,
    V3_CONFIDENTIALITY,
)

DATA_ABSENT_REASON = EXT_DATA_ABSENT_REASON

__all__ = [
    "AGE_90_EXTENSION",
    "CONFIDENTIALITY_SYSTEM",
    "REDACTED",
    "DROPPED_TYPES",
    "DeidResult",
    "deidentify",
]

CONFIDENTIALITY_SYSTEM = V3_CONFIDENTIALITY
AGE_90_EXTENSION = SANDBOX_EXT_AGE_90_OR_OLDER
LOW = {"system": CONFIDENTIALITY_SYSTEM, "code": "L", "display": "low"}

DROPPED_TYPES: frozenset[str] = frozenset(
    {
        "AuditEvent",
        "Provenance",  # logs of who did what: staff identities and exact instants
        "RelatedPerson",
        "Person",  # relatives and cross-record person links
        "Account",
        "Device",
        "Media",
        "Binary",
        "Slot",
        "Schedule",  # identifiers, images, raw data
        "Communication",
        "CommunicationRequest",  # free-text messages
    }
)
"""Resource types left out of a Safe Harbor export entirely."""

# Elements that are identifiers in all but name, dropped wherever they appear.
_IDENTIFYING_KEYS = frozenset(
    {
        "identifier",
        "masterIdentifier",
        "accessionIdentifier",
        "requisition",
        "groupIdentifier",
        "subscriberId",
        "preAuthRef",
        "udiCarrier",
        "serialNumber",
        "telecom",
        "photo",
        "position",
        "signature",
        "link",
    }
)
# Free-text elements (notes, comments, instructions, conclusions, CodeableConcept.text ...).
_FREE_TEXT_KEYS = FREE_TEXT_KEYS
_NAME_BEARING_TYPES = frozenset(
    {"Patient", "Practitioner", "RelatedPerson", "Person", "FamilyMemberHistory", "Location"}
)
_ADDRESS_KEYS = frozenset({"address", "locationAddress", "valueAddress"})
_ADDRESS_KEEP = ("use", "type", "state", "country")
_AGE_KEYS = frozenset({"onsetAge", "abatementAge", "ageAge", "deceasedAge", "valueAge", "age"})
_INSTANT_ANYWHERE = frozenset({"issued", "lastUpdated", "timestamp"})
_INSTANT_TOP_LEVEL = {
    "DocumentReference": frozenset({"date"}),
    "Appointment": frozenset({"start", "end"}),
}
_DROPPED_KEYS = _IDENTIFYING_KEYS | _FREE_TEXT_KEYS | _INSTANT_ANYWHERE
_SPECIAL_KEYS = _DROPPED_KEYS | _ADDRESS_KEYS | _AGE_KEYS | {"extension", "modifierExtension"}
_NEVER_DATES = frozenset({"code", "system", "version", "id", "unit", "reference", "url", "value"})
_DATE = re.compile(
    r"^(\d{4})-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(T[0-9:.]+(Z|[+-]\d{2}:\d{2})?)?)?$"
)
_REFERENCE = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]+)?$"
)
_SEARCH_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)\?.+$")
REDACTED = "[removed by de-identification]"
_EXTENSIONS_DROPPED = ("mothersMaidenName", "patient-birthTime")


@dataclass
class DeidResult:
    """The de-identified resources and the surrogate map (``"Type/old" -> "Type/new"``).

    The map is the only link back to the source records: store it apart from the data.
    ``dropped`` counts resources left out, by type.

    >>> DeidResult([], {}).dropped
    Counter()
    """

    resources: list[dict[str, Any]]
    surrogate_map: dict[str, str]
    dropped: Counter[str] = field(default_factory=Counter)


def _make_rng(seed_or_rng: random.Random | int | None) -> random.Random | None:
    if seed_or_rng is None:
        return None
    if isinstance(seed_or_rng, random.Random):
        return seed_or_rng
    if isinstance(seed_or_rng, int) and not isinstance(seed_or_rng, bool):
        return random.Random(seed_or_rng)
    raise ValidationError(
        "deidentify",
        "seed_or_rng",
        "None (use secrets), an int seed or a random.Random",
        found=type(seed_or_rng).__name__,
    )


def _as_date(value: str | date, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError("deidentify", name, "an ISO date YYYY-MM-DD", found=value) from None


class _Surrogates:
    """Random ids, assigned on first sight of each original ``Type/id``."""

    def __init__(self, rng: random.Random | None) -> None:
        self._rng = rng
        self.map: dict[str, str] = {}
        self._used: set[str] = set()

    def _fresh(self) -> str:
        while True:
            new = (
                f"{self._rng.getrandbits(128):032x}"
                if self._rng is not None
                else secrets.token_hex(16)
            )
            if new not in self._used:
                self._used.add(new)
                return new

    def ref(self, rtype: str, rid: str) -> str:
        key = f"{rtype}/{rid}"
        found = self.map.get(key)
        if found is None:
            found = self.map[key] = f"{rtype}/{self._fresh()}"
        return found


def _is_payer(org: Mapping[str, Any]) -> bool:
    for concept in org.get("type", []) if isinstance(org.get("type"), list) else []:
        for coding in concept.get("coding", []) if isinstance(concept, Mapping) else []:
            if isinstance(coding, Mapping) and coding.get("code") in ("pay", "ins"):
                return True
    return False


def _year_only(value: str) -> str | None:
    match = _DATE.match(value)
    return match.group(1) if match else None


def _age_at(birth: str, at: date) -> int | None:
    """Age in whole years; with a partial birth date, the highest age it allows (conservative)."""
    parts = birth.split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 1
        day = int(parts[2][:2]) if len(parts) > 2 else 1
    except (ValueError, IndexError):
        return None
    return at.year - year - ((at.month, at.day) < (month, day))


class _Scrubber:
    def __init__(
        self, surrogates: _Surrogates, reference: date, urn_map: Mapping[str, str]
    ) -> None:
        self.surrogates = surrogates
        self.reference = reference
        self.urn_map = urn_map

    # ------------------------------------------------------------------ resources
    def resource(self, res: Mapping[str, Any], *, contained: bool = False) -> dict[str, Any] | None:
        rtype = res.get("resourceType")
        if not isinstance(rtype, str):
            raise ValidationError(
                "resource", "resourceType", "a FHIR resource with a resourceType", found=rtype
            )
        if rtype in DROPPED_TYPES or not keeps(rtype, "meta"):
            return None  # only types with an allowlist leave
        out: dict[str, Any] = {"resourceType": rtype}
        if "id" in res:
            out["id"] = (
                str(res["id"])
                if contained
                else self.surrogates.ref(rtype, str(res["id"])).split("/", 1)[1]
            )
        for key, value in res.items():
            if key in ("resourceType", "id", "text", "meta") or not keeps(rtype, key):
                continue  # the allowlist: an element not named for this type never leaves
            if key == "contained":
                kept = [
                    c for c in (self.resource(c, contained=True) for c in value) if c is not None
                ]
                if kept:
                    out["contained"] = kept
                continue
            if key in ("name", "alias") and rtype in _NAME_BEARING_TYPES:
                continue
            if key == "alias" and rtype == "Organization":
                continue
            if key == "name" and rtype == "Organization":
                # A clinic's or hospital's name often names its town; payers' names are kept.
                out["name"] = value if _is_payer(res) else REDACTED
                continue
            if key == "description" and rtype == "DocumentReference":
                continue
            if rtype in _INSTANT_TOP_LEVEL and key in _INSTANT_TOP_LEVEL[rtype]:
                continue
            if rtype == "Patient" and key == "contact":
                contacts = [c for c in (self._contact(c) for c in value) if c]
                if contacts:
                    out["contact"] = contacts
                continue
            cleaned = self.element(key, value)
            if cleaned is not None:
                out[key] = cleaned
        for key in MASKED_WHEN_EMPTY.get(rtype, ()):
            if key in res and key not in out:
                out[key] = {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "masked"}]}
        meta = self._meta(res.get("meta"))
        if meta:
            out["meta"] = meta
        if rtype == "Patient":
            self._age_90(res, out)
        if rtype == "Observation":
            _cap_age_observation(res, out)
        return out

    def _contact(self, contact: Mapping[str, Any]) -> dict[str, Any]:
        # A relative's name, phone and street are identifiers too; the relationship is not.
        out: dict[str, Any] = {}
        for key in ("relationship", "gender"):
            if key in contact:
                out[key] = contact[key]
        if "address" in contact:
            address = self._address(contact["address"])
            if address:
                out["address"] = address
        if "organization" in contact:
            ref = self._reference(contact["organization"])
            if ref:
                out["organization"] = ref
        return out if set(out) - {"gender"} else {}

    def _meta(self, meta: Any) -> dict[str, Any]:
        meta = meta if isinstance(meta, Mapping) else {}
        out: dict[str, Any] = {}
        for key in ("profile", "tag"):
            if meta.get(key):
                out[key] = list(meta[key])
        security = [
            s
            for s in meta.get("security", [])
            if isinstance(s, Mapping) and s.get("system") != CONFIDENTIALITY_SYSTEM
        ]
        out["security"] = [dict(LOW), *security]
        return out

    def _age_90(self, original: Mapping[str, Any], out: dict[str, Any]) -> None:
        birth = original.get("birthDate")
        if not isinstance(birth, str):
            return
        at = self.reference
        death = original.get("deceasedDateTime")
        if isinstance(death, str) and _DATE.match(death) and len(death) >= 10:
            at = min(at, date.fromisoformat(death[:10]))
        age = _age_at(birth, at)
        if age is not None and age > 89:
            out.pop("birthDate", None)
            out.pop("deceasedDateTime", None)  # the year of death plus "90+" narrows the birth year
            out.setdefault("extension", []).append(
                {"url": AGE_90_EXTENSION, "valueString": "90 or older"}
            )

    # ------------------------------------------------------------------ elements
    def element(self, key: str, value: Any) -> Any:
        kind = type(value)
        if kind is str:  # the common case first: exports are mostly strings
            if key in _SPECIAL_KEYS or key.endswith("Instant"):
                return None  # identifiers, free text, instants (and malformed structured values)
            if key not in _NEVER_DATES and _DATE.match(value):
                return _year_only(value)
            return value
        if key in _SPECIAL_KEYS or key.endswith("Instant"):  # effectiveInstant, valueInstant
            if key in _ADDRESS_KEYS:
                return self._address(value)
            if key in _AGE_KEYS and isinstance(value, dict):
                return self._age(value)
            if key == "extension" or key == "modifierExtension":
                return self._extensions(value)
            return None
        if isinstance(value, list):  # FrozenList (shared generated content) too
            items = [self.element(key, v) for v in value]
            items = [v for v in items if v is not None and v != {}]
            return items or None
        if isinstance(value, dict):
            return self._complex(value)
        return value

    def _complex(self, value: Mapping[str, Any]) -> dict[str, Any] | None:
        if _is_age_quantity(value):
            return self._age(value)
        if "reference" in value or ("display" in value and not {"system", "code"} & set(value)):
            # References (and display-only ones) keep no display: it is usually a name.
            return self._reference(value)
        if "contentType" in value and ({"data", "url", "hash", "title"} & set(value)):
            # An attachment: its bytes/URL are the note itself; keep only what kind it was.
            return {"contentType": value["contentType"], "title": REDACTED}
        if "resourceType" in value:
            return self.resource(value, contained=True)
        out: dict[str, Any] = {}
        for k, v in value.items():
            cleaned = self.element(k, v)
            if cleaned is not None and cleaned != {}:
                out[k] = cleaned
        if not out and isinstance(value.get("text"), str):
            # A concept known only by its free text keeps its place (it may be required),
            # not its words.
            return {"text": REDACTED}
        return out or None

    def _reference(self, value: Mapping[str, Any]) -> dict[str, Any] | None:
        ref = value.get("reference")
        out: dict[str, Any] = {}
        if isinstance(ref, str):
            if ref.startswith("#"):
                out["reference"] = ref
            elif ref in self.urn_map:
                rtype, rid = self.urn_map[ref].split("/", 1)
                out["reference"] = self.surrogates.ref(rtype, rid)
            else:
                match = _REFERENCE.search(ref)
                search = _SEARCH_REFERENCE.match(ref)
                if match:  # version suffixes go: they would tie the export to the source history
                    out["reference"] = self.surrogates.ref(match.group(1), match.group(2))
                elif (
                    search
                ):  # a conditional reference carries an identifier (e.g. an NPI): key it whole
                    out["reference"] = self.surrogates.ref(search.group(1), ref)
        if "type" in value:
            out["type"] = value["type"]
        if "reference" not in out and "display" in value:
            # Keep the element present (it may be required) without the display, often a name.
            out["display"] = REDACTED
        return out or None

    def _address(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [a for a in (self._address(v) for v in value) if a]
            return items or None
        if not isinstance(value, dict):
            return None
        out = {k: value[k] for k in _ADDRESS_KEEP if k in value}
        postal = value.get("postalCode")
        if isinstance(postal, str):
            zip3 = generalize_zip(postal)
            if zip3 is not None:
                out["postalCode"] = zip3
        return out or None

    def _age(self, value: Mapping[str, Any]) -> dict[str, Any] | None:
        out = {
            k: v for k, v in value.items() if k in ("value", "comparator", "unit", "system", "code")
        }
        years = value.get("value")
        unit = value.get("code") or value.get("unit")
        if isinstance(years, int | float) and unit in ("a", "yr", "year", "years") and years > 89:
            out["value"] = 90
            out["comparator"] = ">="
        return out or None

    def _extensions(self, value: Any) -> list[dict[str, Any]] | None:
        out = []
        for ext in value if isinstance(value, list) else []:
            if not isinstance(ext, Mapping):
                continue
            url = str(ext.get("url", ""))
            if url.endswith(_EXTENSIONS_DROPPED) or url not in EXTENSIONS_KEPT:
                continue  # extensions are allowlisted too: unknown ones may carry anything
            if any(
                k in ext
                for k in (
                    "valueHumanName",
                    "valueContactPoint",
                    "valueIdentifier",
                    "valueAttachment",
                )
            ):
                continue
            cleaned: dict[str, Any] = {"url": url}
            for k, v in ext.items():
                if k == "url":
                    continue
                c = self.element(k, v)
                if c is not None and c != {}:
                    cleaned[k] = c
            if len(cleaned) > 1:
                out.append(cleaned)
        return out or None


_YEARS = frozenset({"a", "yr", "year", "years", "y"})
AGE_CODES: frozenset[tuple[str, str]] = frozenset(
    {
        (LOINC, "30525-0"),  # Age
        (LOINC, "21612-7"),  # Age - Reported
        (LOINC, "29553-5"),  # Age calculated
        (SNOMED, "424144002"),  # Current chronological age
    }
)
"""Observation codes whose value is the person's age (capped at "90 or older")."""


def _is_age_quantity(value: Mapping[str, Any]) -> bool:
    unit = value.get("code") or value.get("unit")
    return isinstance(value.get("value"), int | float) and unit in _YEARS


def _cap_age_observation(original: Mapping[str, Any], out: dict[str, Any]) -> None:
    """An Observation of the person's age over 89 says ">= 90 years" and nothing finer."""
    code = original.get("code")
    codings = code.get("coding", []) if isinstance(code, Mapping) else []
    if not any(
        isinstance(c, Mapping) and (c.get("system"), c.get("code")) in AGE_CODES for c in codings
    ):
        return
    for key in [k for k in out if k.startswith("value")]:
        value = original.get(key)
        number = value.get("value") if isinstance(value, Mapping) else value
        if isinstance(number, int | float) and not isinstance(number, bool) and number > 89:
            del out[key]
            out["valueQuantity"] = {
                "value": 90,
                "comparator": ">=",
                "unit": "a",
                "system": UCUM,
                "code": "a",
            }


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _redact_path(resource: dict[str, Any], path: str) -> None:
    """Replace the string at ``path`` (``a.b[0].c``, as the scanner reports it)."""
    steps: list[str | int] = [
        m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _PATH_PART.finditer(path)
    ]
    node: Any = resource
    for step in steps[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return
    last = steps[-1] if steps else None
    try:
        if isinstance(node[last], str):  # type: ignore[index]
            node[last] = REDACTED  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return


def _flatten(
    resources: Iterable[Mapping[str, Any]], urn_map: dict[str, str]
) -> list[Mapping[str, Any]]:
    flat: list[Mapping[str, Any]] = []
    for index, res in enumerate(resources):
        if not isinstance(res, Mapping):
            raise ValidationError(
                f"resources[{index}]",
                "resourceType",
                "a FHIR resource (dict)",
                found=type(res).__name__,
            )
        if not isinstance(res.get("resourceType"), str):
            raise ValidationError(
                f"resources[{index}]",
                "resourceType",
                "a FHIR resource with a resourceType",
                found=res.get("resourceType"),
            )
        if res.get("resourceType") == "Bundle":
            for entry in res.get("entry", []):
                inner = entry.get("resource")
                if isinstance(inner, Mapping):
                    full_url = entry.get("fullUrl")
                    if isinstance(full_url, str) and "id" in inner:
                        urn_map[full_url] = f"{inner['resourceType']}/{inner['id']}"
                    flat.append(inner)
        else:
            flat.append(res)
    return flat


def deidentify(
    resources: Iterable[Mapping[str, Any]],
    *,
    seed_or_rng: random.Random | int | None = None,
    reference_date: str | date,
) -> DeidResult:
    """De-identify ``resources`` (resources or Bundles) by HIPAA Safe Harbor; the inputs are
    not modified. ``reference_date`` is the date ages are computed at (the "90 or older"
    rule). ``seed_or_rng`` is for reproducible tests only: leave it None in real use so the
    surrogate ids come from :mod:`secrets`.

    >>> out = deidentify([{"resourceType": "Patient", "id": "p", "birthDate": "1930-05-05"}],
    ...                  seed_or_rng=7, reference_date="2026-01-01")
    >>> "birthDate" in out.resources[0], out.resources[0]["extension"][0]["valueString"]
    (False, '90 or older')
    >>> out.resources[0]["meta"]["security"][0]["code"]
    'L'
    """
    reference = _as_date(reference_date, "reference_date")
    urn_map: dict[str, str] = {}
    flat = _flatten(resources, urn_map)
    surrogates = _Surrogates(_make_rng(seed_or_rng))
    # Assign surrogates in input order first, so ids do not depend on reference order.
    for res in flat:
        if res.get("resourceType") not in DROPPED_TYPES and "id" in res:
            surrogates.ref(str(res["resourceType"]), str(res["id"]))
    scrubber = _Scrubber(surrogates, reference, urn_map)
    out: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for res in flat:
        cleaned = scrubber.resource(res)
        if cleaned is None:
            dropped[str(res.get("resourceType"))] += 1
        else:
            out.append(cleaned)
    # Every string of the output is scanned: whatever the allowlist let through that still
    # looks like an identifier (a name, phone, email, URL, date, lot number ...) is redacted.
    from ehr_sandbox.deid.scanner import scan_for_identifiers

    by_ref = {f"{r.get('resourceType')}/{r.get('id')}": r for r in out}
    for finding in scan_for_identifiers(out, flat):
        target = by_ref.get(finding.ref)
        if target is not None and finding.path not in ("id", "resourceType"):
            _redact_path(target, finding.path)
    return DeidResult(out, dict(surrogates.map), dropped)
