"""Opt-in dirty data for data-quality exercises, with a manifest of every injected defect.

Defects are applied to a finished record with their own random stream (derived from the seed
and patient index), so the clean part of the data is identical with or without them. Altered
resources are copied first: generated records share read-only sub-structures.

>>> spec = parse_defects({"unit_mixups": 1.0})
>>> from synthetic.record import PatientRecord
>>> w = {"resourceType": "Observation", "id": "o", "code": {"coding": [{"code": "29463-7"}]},
...      "effectiveDateTime": "2024-03-07", "valueQuantity": {"value": 70.0, "unit": "kg"}}
>>> rec = PatientRecord(0, {"resourceType": "Patient", "id": "p"}, [w])
>>> out = apply_defects(rec, spec, seed=1)
>>> out.resources[0]["valueQuantity"]["value"], out.defects[0]["kind"], w["valueQuantity"]["value"]
(154.3, 'unit_mixups', 70.0)
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from hashlib import blake2b
from typing import Any

from synthetic.errors import ArgumentError
from synthetic.record import PatientRecord
from synthetic.systems import DATA_ABSENT_REASON

DEFAULT_RATES: dict[str, float] = {
    "duplicate_patients": 0.02,
    "transposed_dates": 0.01,
    "unit_mixups": 0.01,
    "missing_data": 0.01,
}
"""Defect kinds and their default rates (per patient for duplicates, else per eligible resource)."""

DATA_ABSENT = DATA_ABSENT_REASON
_UNIT_MIXUPS = {
    "29463-7": (2.20462, "weight recorded in lb, labelled kg"),
    "8302-2": (1 / 2.54, "height recorded in in, labelled cm"),
}


def parse_defects(defects: Any) -> dict[str, float] | None:
    """Normalise ``defects`` (None, names, or name -> rate) to name -> rate; ArgumentError if bad.

    >>> parse_defects(["missing_data"])
    {'missing_data': 0.01}
    >>> parse_defects({"typos": 0.1})
    Traceback (most recent call last):
    ...
    synthetic.errors.ArgumentError: defects: unknown defect 'typos'; expected some of duplicate_patients, transposed_dates, unit_mixups, missing_data
    """
    if defects is None or defects is False:
        return None
    if defects is True:
        return dict(DEFAULT_RATES)
    if isinstance(defects, str):
        defects = [d for d in defects.split(",") if d.strip()]
    items: Iterable[tuple[str, Any]]
    if isinstance(defects, Mapping):
        items = defects.items()
    else:
        try:
            items = [(str(d).strip(), None) for d in defects]
        except TypeError:
            raise ArgumentError(
                f"defects: expected names or a name -> rate mapping, got {defects!r}"
            ) from None
    out: dict[str, float] = {}
    for name, rate in items:
        if name not in DEFAULT_RATES:
            raise ArgumentError(
                f"defects: unknown defect {name!r}; expected some of {', '.join(DEFAULT_RATES)}"
            )
        r = DEFAULT_RATES[name] if rate is None else rate
        if isinstance(r, bool) or not isinstance(r, int | float) or not 0 <= r <= 1:
            raise ArgumentError(
                f"defects: rate of {name!r}: expected a number from 0 to 1, got {r!r}"
            )
        out[name] = float(r)
    return out or None


def _rng(seed: int, index: int) -> random.Random:
    digest = blake2b(f"{seed}:{index}:defects".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _code(r: dict[str, Any]) -> str:
    try:
        return r["code"]["coding"][0]["code"]
    except (KeyError, IndexError, TypeError):
        return ""


def apply_defects(record: PatientRecord, rates: dict[str, float], *, seed: int) -> PatientRecord:
    """Return ``record`` with defects injected at ``rates``; ``record.defects`` lists each one.

    >>> from synthetic.record import PatientRecord
    >>> apply_defects(PatientRecord(0, {"resourceType": "Patient", "id": "p"}), {"missing_data": 1.0}, seed=1).defects
    []
    """
    rng = _rng(seed, record.index)
    manifest: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    t_rate = rates.get("transposed_dates", 0.0)
    u_rate = rates.get("unit_mixups", 0.0)
    m_rate = rates.get("missing_data", 0.0)
    for r in record.resources:
        if r["resourceType"] == "Observation" and "valueQuantity" in r:
            code = _code(r)
            if u_rate and code in _UNIT_MIXUPS and rng.random() < u_rate:
                factor, why = _UNIT_MIXUPS[code]
                q = dict(r["valueQuantity"])
                before = q["value"]
                q["value"] = round(before * factor, 1)
                r = {**r, "valueQuantity": q}
                manifest.append(
                    _entry("unit_mixups", r, "valueQuantity.value", before, q["value"], why)
                )
            elif m_rate and rng.random() < m_rate:
                before = r["valueQuantity"]["value"]
                r = {k: v for k, v in r.items() if k not in ("valueQuantity", "interpretation")}
                r["dataAbsentReason"] = {
                    "coding": [{"system": DATA_ABSENT, "code": "unknown", "display": "Unknown"}]
                }
                manifest.append(
                    _entry(
                        "missing_data",
                        r,
                        "valueQuantity",
                        before,
                        None,
                        "value replaced by dataAbsentReason",
                    )
                )
            elif t_rate and rng.random() < t_rate:
                when = r.get("effectiveDateTime", "")
                y, m, d = when[:4], when[5:7], when[8:10]
                if len(when) >= 10 and m != d and int(d) <= 12:
                    new = f"{y}-{d}-{m}{when[10:]}"
                    r = {**r, "effectiveDateTime": new}
                    manifest.append(
                        _entry(
                            "transposed_dates",
                            r,
                            "effectiveDateTime",
                            when,
                            new,
                            "month and day swapped",
                        )
                    )
        out.append(r)
    if rates.get("duplicate_patients", 0.0) and rng.random() < rates["duplicate_patients"]:
        dup = _duplicate(record.patient, rng)
        out.append(dup)
        manifest.append(
            _entry(
                "duplicate_patients",
                dup,
                "",
                f"Patient/{record.patient['id']}",
                f"Patient/{dup['id']}",
                "same person registered twice (name typo, new MRN)",
            )
        )
    rec = PatientRecord(record.index, record.patient, out)
    rec.defects = manifest
    return rec


def _entry(
    kind: str, r: dict[str, Any], path: str, before: Any, after: Any, note: str
) -> dict[str, Any]:
    return {
        "kind": kind,
        "resource": f"{r['resourceType']}/{r['id']}",
        "path": path,
        "original": before,
        "injected": after,
        "note": note,
    }


def _duplicate(patient: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    name = dict(patient["name"][0])
    given = list(name.get("given", ["x"]))
    g = given[0]
    if len(g) > 3:
        i = rng.randrange(1, len(g) - 2)
        g = g[:i] + g[i + 1] + g[i] + g[i + 2 :]  # two letters swapped
    given[0] = g
    name["given"] = given
    dup = {k: v for k, v in patient.items() if k not in ("identifier", "name", "id")}
    dup = {
        "resourceType": "Patient",
        "id": f"{patient['id']}-dup",
        **{k: v for k, v in dup.items() if k != "resourceType"},
    }
    dup["identifier"] = [
        {**i, "value": f"{i['value']}D"} if i.get("system", "").endswith("/mrn") else i
        for i in patient["identifier"]
    ]
    dup["name"] = [name]
    return dup
