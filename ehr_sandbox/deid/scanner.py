"""A scanner that looks for identifiers left in a de-identified export.

It learns the identifiers from the original resources (names of patients, relatives and
staff, identifier values, phone numbers, emails, street lines, cities, 5-digit ZIPs, ids)
and then searches every string of the export for them, plus patterns that must never
survive Safe Harbor whatever the originals were: dates finer than a year, SSN-shaped
numbers, emails, IPv4 addresses, URLs outside code-system fields and 4-5 digit postal codes.

>>> original = {"resourceType": "Patient", "id": "pat-000001", "name": [{"family": "Okafor", "given": ["Ada"]}],
...             "telecom": [{"system": "phone", "value": "(614) 555-0101"}]}
>>> leaked = {"resourceType": "Observation", "id": "x", "note": [{"text": "called Ada Okafor at 614.555.0101"}]}
>>> sorted({f.kind for f in scan_for_identifiers([leaked], [original])})
['name', 'phone']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Finding", "scan_for_identifiers"]

_TOKEN = re.compile(r"[\w@.+-]+")
_DIGITS = re.compile(r"\D")
_MONTH_DATE = re.compile(r"\b\d{4}-(0[1-9]|1[0-2])(-\d{2})?\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_SLASH_DATE = re.compile(r"\b(0?[1-9]|1[0-2])/(0?[1-9]|[12]\d|3[01])/(\d{2}|\d{4})\b")
_PHONE = re.compile(r"(?<![\w-])(?:\+?1[-. ]?)?\(?\d{3}\)?[-. ]\d{3}[-. ]\d{4}(?![\w-])")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
_URL = re.compile(r"\b(?:https?|ftp)://", re.IGNORECASE)
_URL_KEYS = frozenset(
    {
        "system",
        "url",
        "profile",
        "code",
        "valueUri",
        "valueUrl",
        "valueCanonical",
        "instantiatesCanonical",
    }
)
_NAME_TYPES = frozenset({"Patient", "Practitioner", "RelatedPerson", "Person"})
_MIN_NAME = 3
_WORD_KINDS = frozenset({"name", "city"})
_TERMINOLOGY_KEYS = frozenset({"display", "system", "code", "unit", "url", "version"})
_MIN_ID = 6


@dataclass(frozen=True)
class Finding:
    """One suspected identifier: where (``ref`` of the exported resource, element ``path``),
    what kind (name, identifier, phone, email, street, city, zip, id, date, ssn, ip, url)
    and the matched value.

    >>> Finding("Patient/x", "name[0].family", "name", "okafor").kind
    'name'
    """

    ref: str
    path: str
    kind: str
    value: str


def _strings(value: Any) -> Iterator[tuple[str, str, str]]:
    """(path, key, string) for every string in a JSON value (iterative: exports are big)."""
    stack: list[tuple[Any, str, str]] = [(value, "", "")]
    pop, push = stack.pop, stack.append
    while stack:
        item, path, key = pop()
        if type(item) is str:
            yield path, key, item
        elif isinstance(item, Mapping):
            # The text of a US Core race/ethnicity extension is terminology, like a display.
            as_display = item.get("url") == "text"
            for k, v in item.items():
                if isinstance(v, str | Mapping | list):
                    push(
                        (
                            v,
                            f"{path}.{k}" if path else k,
                            "display" if as_display and k == "valueString" else k,
                        )
                    )
        elif isinstance(item, list):
            for i, v in enumerate(item):
                if isinstance(v, str | Mapping | list):
                    push((v, f"{path}[{i}]", key))


class _Needles:
    def __init__(self) -> None:
        self.by_first_token: dict[str, list[tuple[str, str]]] = {}
        self.phones: set[str] = set()
        # names and cities as written (capitalised): "May" the name, not "may" the verb
        self.proper: dict[str, set[str]] = {}

    def add(self, kind: str, text: Any, minimum: int = _MIN_NAME) -> None:
        if not isinstance(text, str):
            return
        norm = " ".join(_TOKEN.findall(text.lower()))
        if len(norm) < minimum:
            return
        first = norm.split(" ", 1)[0]
        self.by_first_token.setdefault(first, []).append((norm, kind))
        if kind in _WORD_KINDS:
            self.proper.setdefault(norm, set()).add(" ".join(_TOKEN.findall(text)))

    def add_phone(self, text: Any) -> None:
        if isinstance(text, str):
            digits = _DIGITS.sub("", text)
            if len(digits) >= 7:
                self.phones.add(digits[-10:] if len(digits) >= 10 else digits)


def _learn(originals: Iterable[Mapping[str, Any]]) -> _Needles:
    needles = _Needles()

    def person(res: Mapping[str, Any]) -> None:
        for name in res.get("name", []) if isinstance(res.get("name"), list) else []:
            for part in [
                name.get("family"),
                name.get("text"),
                *name.get("given", []),
                *name.get("prefix", []),
            ]:
                needles.add("name", part)
        for tel in res.get("telecom", []):
            value = tel.get("value")
            if tel.get("system") in ("phone", "fax", "sms", "pager"):
                needles.add_phone(value)
            else:
                needles.add("email" if tel.get("system") == "email" else "telecom", value)
        for address in (
            res.get("address", [])
            if isinstance(res.get("address"), list)
            else [res.get("address") or {}]
        ):
            for line in address.get("line", []):
                needles.add("street", line)
            needles.add("city", address.get("city"))
            postal = address.get("postalCode")
            if isinstance(postal, str) and len(_DIGITS.sub("", postal)) >= 5:
                needles.add("zip", postal[:5], minimum=5)

    def walk(res: Mapping[str, Any]) -> None:
        rtype = res.get("resourceType")
        rid = res.get("id")
        if isinstance(rid, str) and len(rid) >= _MIN_ID:
            needles.add("id", rid, minimum=_MIN_ID)
        if rtype in _NAME_TYPES:
            person(res)
        for contact in res.get("contact", []) if rtype == "Patient" else []:
            person(
                {
                    "name": [contact["name"]] if isinstance(contact.get("name"), Mapping) else [],
                    "telecom": contact.get("telecom", []),
                    "address": contact.get("address") or {},
                }
            )
        if rtype == "FamilyMemberHistory":
            needles.add("name", res.get("name"))
        if rtype == "Coverage":
            needles.add("identifier", res.get("subscriberId"), minimum=4)
        if rtype == "Immunization":  # a lot number names a handful of doses: an identifier
            needles.add("identifier", res.get("lotNumber"), minimum=4)
        for path, key, value in _strings(res):
            if key == "value" and "identifier" in path.lower():
                needles.add("identifier", value, minimum=4)
        for inner in res.get("contained", []):
            walk({k: v for k, v in inner.items() if k != "id"})  # contained ids are local labels

    for res in originals:
        if isinstance(res, Mapping):
            if res.get("resourceType") == "Bundle":
                for entry in res.get("entry", []):
                    if isinstance(entry.get("resource"), Mapping):
                        walk(entry["resource"])
            else:
                walk(res)
    return needles


def _patterns(key: str, value: str) -> Iterator[tuple[str, str]]:
    for kind, pattern in (
        ("date", _MONTH_DATE),
        ("date", _SLASH_DATE),
        ("ssn", _SSN),
        ("phone", _PHONE),
        ("email", _EMAIL),
        ("ip", _IPV4),
    ):
        if kind == "ip" and key in _URL_KEYS:  # OIDs and DICOM UIDs look like dotted quads
            continue
        match = pattern.search(value)
        if match:
            yield kind, match.group(0)
    if key not in _URL_KEYS and _URL.search(value):
        yield "url", value
    if key == "postalCode" and len(_DIGITS.sub("", value)) > 3:
        yield "zip", value


def scan_for_identifiers(
    resources: Iterable[Mapping[str, Any]], originals: Iterable[Mapping[str, Any]]
) -> list[Finding]:
    """Every suspected identifier in ``resources`` (the export), learned from ``originals``.

    An empty list is what a Safe Harbor export should give.

    >>> scan_for_identifiers([{"resourceType": "Patient", "id": "a1", "birthDate": "1980-04-02"}], [])
    [Finding(ref='Patient/a1', path='birthDate', kind='date', value='1980-04-02')]
    """
    needles = _learn(originals)
    findings: list[Finding] = []
    # Most strings of an export repeat (systems, codes, displays): scan each distinct one once.
    cache: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for res in resources:
        ref = f"{res.get('resourceType')}/{res.get('id')}"
        for path, key, value in _strings(res):
            hits = cache.get((key, value))
            if hits is None:
                hits = cache[(key, value)] = tuple(_scan_string(needles, key, value))
            findings.extend(Finding(ref, path, kind, hit) for kind, hit in hits)
    return findings


def _written_as_name(forms: Iterable[str], value: str) -> bool:
    """True when a name occurs in ``value`` as the person wrote it (case-sensitive, whole
    words), or in capitals; a lower-case word ("may", "weeks", "max") is not the name."""
    padded = " " + " ".join(_TOKEN.findall(value)) + " "
    return any(f" {form} " in padded or f" {form.upper()} " in padded for form in forms)


def _scan_string(needles: _Needles, key: str, value: str) -> Iterator[tuple[str, str]]:
    yield from _patterns(key, value)
    norm = " ".join(_TOKEN.findall(value.lower()))
    padded = f" {norm} "
    for token in set(norm.split(" ")):
        for needle, kind in needles.by_first_token.get(token, ()):
            # Codings' displays are terminology: a family name "White" there is a race.
            if kind in _WORD_KINDS and key in _TERMINOLOGY_KEYS:
                continue
            if f" {needle} " in padded and (
                kind not in _WORD_KINDS or _written_as_name(needles.proper.get(needle, ()), value)
            ):
                yield kind, needle
    if needles.phones:
        digits = _DIGITS.sub("", value)
        for size in {len(p) for p in needles.phones}:
            for i in range(len(digits) - size + 1):
                if digits[i : i + size] in needles.phones:
                    yield "phone", digits[i : i + size]
                    break
