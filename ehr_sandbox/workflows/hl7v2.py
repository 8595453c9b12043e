"""HL7 v2.5.1 immunization segments (RXA, RXR): each field's position under its spec name.

The positions are those of the CDC "HL7 Version 2.5.1 Implementation Guide for Immunization
Messaging" (release 1.5): RXA-5 the administered vaccine (CVX, HL70292), RXA-9 the
administration notes (NIP001: 00 new record, 01 historical), RXA-15 the lot, RXA-16 its
expiration date, RXA-17 the manufacturer (MVX, HL70227), RXA-20 the completion status, RXA-21
the action code; RXR-1 the route (HL70162) and RXR-2 the site (HL70163). This is the one table:
:func:`segment` writes a segment from it and :func:`field` reads a parsed segment through it,
so the message writer and every reader (graders included) agree on where a field sits.

>>> line = segment("RXA", {"Substance Lot Number": "HB1234", "Administered Code": "08^HepB^CVX"})
>>> line
'RXA|||||08^HepB^CVX||||||||||HB1234'
>>> rxa = segments(line, "RXA")[0]
>>> field(rxa, "Substance Lot Number"), field(rxa, "Administered Code"), field(rxa, "Indication")
('HB1234', '08^HepB^CVX', '')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ehr_sandbox.errors import ValidationError

__all__ = ["FIELDS", "RXA", "RXR", "field", "segment", "segments"]

RXA: dict[str, int] = {
    "Give Sub-ID Counter": 1,
    "Administration Sub-ID Counter": 2,
    "Date/Time Start of Administration": 3,
    "Date/Time End of Administration": 4,
    "Administered Code": 5,
    "Administered Amount": 6,
    "Administered Units": 7,
    "Administered Dosage Form": 8,
    "Administration Notes": 9,
    "Administering Provider": 10,
    "Administered-at Location": 11,
    "Administered Per (Time Unit)": 12,
    "Administered Strength": 13,
    "Administered Strength Units": 14,
    "Substance Lot Number": 15,
    "Substance Expiration Date": 16,
    "Substance Manufacturer Name": 17,
    "Substance/Treatment Refusal Reason": 18,
    "Indication": 19,
    "Completion Status": 20,
    "Action Code-RXA": 21,
    "System Entry Date/Time": 22,
}
"""RXA (pharmacy/treatment administration): field number by the IG's field name."""

RXR: dict[str, int] = {
    "Route": 1,
    "Administration Site": 2,
    "Administration Device": 3,
    "Administration Method": 4,
}
"""RXR (pharmacy/treatment route): field number by the IG's field name."""

FIELDS: dict[str, dict[str, int]] = {"RXA": RXA, "RXR": RXR}
"""The field table of each segment this module knows."""


def _table(name: str) -> dict[str, int]:
    if name not in FIELDS:
        raise ValidationError("HL7v2", "segment", "one of " + ", ".join(sorted(FIELDS)), found=name)
    return FIELDS[name]


def _position(name: str, table: Mapping[str, int], key: str) -> int:
    if key not in table:
        raise ValidationError(
            "HL7v2", f"{name} field", "a field name of the implementation guide", found=key
        )
    return table[key]


def segment(name: str, values: Mapping[str, str]) -> str:
    """Render one segment: each value goes to the field its spec name gives, the rest empty.

    Examples
    --------
    >>> segment("RXR", {"Route": "IM^^HL70162", "Administration Site": "LT^^HL70163"})
    'RXR|IM^^HL70162|LT^^HL70163'
    >>> segment("RXR", {"Lot": "X"})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: HL7v2: RXR field: expected a field name of the implementation guide (found 'Lot')
    """
    table = _table(name)
    placed = {_position(name, table, key): str(value) for key, value in values.items()}
    fields = [name] + [""] * max(placed, default=0)
    for position, value in placed.items():
        fields[position] = value
    return "|".join(fields)


def segments(message: str, name: str) -> list[list[str]]:
    r"""Every segment ``name`` of a message (segments split on CR or LF), as its field list.

    Examples
    --------
    >>> segments("MSH|^~\\&|A\rRXR|IM^^HL70162|LT^^HL70163\nRXR|SC", "RXR")
    [['RXR', 'IM^^HL70162', 'LT^^HL70163'], ['RXR', 'SC']]
    """
    lines = str(message).replace("\r", "\n").splitlines()
    return [line.split("|") for line in lines if line.split("|")[0] == name]


def field(fields: Sequence[str], key: str) -> str:
    """The field named ``key`` (its spec name) of a parsed segment; empty when absent.

    Examples
    --------
    >>> rxr = ["RXR", "IM^^HL70162", "LT^^HL70163"]
    >>> field(rxr, "Administration Site"), field(rxr, "Administration Method")
    ('LT^^HL70163', '')
    >>> field(["PV1", "1"], "Route")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: HL7v2: segment: expected one of RXA, RXR (found 'PV1')
    """
    name = fields[0] if fields else ""
    position = _position(name, _table(name), key)
    return fields[position] if position < len(fields) else ""
