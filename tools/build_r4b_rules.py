"""Regenerate ``ehr_sandbox/validation/data/r4b_rules.json`` from the official HL7 FHIR R4B
core package (``hl7.fhir.r4b.core`` on the npm registry).

Usage (from the repository root)::

    npm pack hl7.fhir.r4b.core            # downloads hl7.fhir.r4b.core-4.3.0.tgz
    python tools/build_r4b_rules.py hl7.fhir.r4b.core-4.3.0.tgz

What is extracted, for the resource types the sandbox writes and the data types they use:

- required bindings on ``code``, ``Coding`` and ``CodeableConcept`` elements, with the codes
  of each value set expanded from the package's own CodeSystems (value sets that draw on
  outside terminologies are left out, since they cannot be expanded offline);
- the resource types each ``Reference`` element may point to;
- for **every** R4B resource type (not only those above), each ``Reference`` element (and
  the ``reference`` of each ``CodeableReference``) by its path from the resource root and the
  types it may point to (``Resource``: any), so a rule over references (the labels a record
  inherits, ``ehr_sandbox.access.derived``) can be checked against all of FHIR;
- error-level invariants (key, FHIRPath expression, human text), except ``ele-1`` and
  ``ext-1`` (the sandbox checks empty values natively, and extensions are checked by the
  model) and the ``dom-*`` family, which only applies to ``contained`` resources;
- the common UCUM units value set (``ucum-common``), to check unit codes.

Licence: the FHIR specification and its package are published by HL7 under CC0 1.0 ("No
Rights Reserved"); the generated file carries that notice.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "ehr_sandbox" / "validation" / "data" / "r4b_rules.json"

RESOURCE_TYPES = [
    "AllergyIntolerance", "Appointment", "AuditEvent", "CarePlan", "CareTeam", "Claim",
    "ClaimResponse", "Communication", "Composition", "Condition", "Consent", "Coverage",
    "Device", "DiagnosticReport", "DocumentReference", "Encounter", "EpisodeOfCare",
    "FamilyMemberHistory", "Goal", "Immunization", "Location", "Medication",
    "MedicationAdministration", "MedicationRequest", "MedicationStatement", "Observation",
    "Organization", "Patient", "Practitioner", "PractitionerRole", "Procedure", "Provenance",
    "QuestionnaireResponse", "RelatedPerson", "Schedule", "ServiceRequest", "Slot",
    "Specimen", "Task",
]  # fmt: skip

SKIP_INVARIANTS = ("ele-1", "ext-1", "dom-2", "dom-3", "dom-4", "dom-5", "dom-6")
PRIMITIVES_PREFIX = "http://hl7.org/fhirpath/System."


def _load(tgz: Path) -> dict[str, dict[str, Any]]:
    wanted: dict[str, dict[str, Any]] = {}
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not name.endswith(".json") or not name.startswith(
                ("StructureDefinition-", "ValueSet-", "CodeSystem-")
            ):
                continue
            fh = tar.extractfile(member)
            if fh is not None:
                wanted[name[:-5]] = json.load(fh)
    return wanted


def _codes_of_system(cs: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def walk(concepts: list[dict[str, Any]]) -> None:
        for c in concepts:
            out.append(c["code"])
            walk(c.get("concept", []))

    walk(cs.get("concept", []))
    return out


def _expand(vs: dict[str, Any], systems: dict[str, dict[str, Any]]) -> dict[str, list[str]] | None:
    """``{system: [codes]}`` of a value set, or None when it needs outside terminology."""
    compose = vs.get("compose") or {}
    if compose.get("exclude"):
        return None
    out: dict[str, list[str]] = {}
    for inc in compose.get("include", []):
        if inc.get("valueSet") or inc.get("filter"):
            return None
        system = inc.get("system")
        if not system:
            return None
        if inc.get("concept"):
            codes = [c["code"] for c in inc["concept"]]
        elif system in systems and systems[system].get("content") == "complete":
            codes = _codes_of_system(systems[system])
        else:
            return None
        out.setdefault(system, []).extend(codes)
    return out or None


def _type_codes(element: dict[str, Any]) -> list[str]:
    codes = []
    for t in element.get("type", []):
        code = t["code"]
        if code.startswith(PRIMITIVES_PREFIX):
            code = "string"
        codes.append(code)
    return codes


def _references(sds: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Per concrete resource type, ``{path: [target types]}`` of its reference elements."""
    out: dict[str, dict[str, list[str]]] = {}
    for tname, sd in sorted(sds.items()):
        if sd.get("kind") != "resource" or sd.get("abstract"):
            continue
        refs: dict[str, list[str]] = {}
        for el in sd["snapshot"]["element"]:
            path: str = el["path"]
            if "." not in path:
                continue
            rel = path.split(".", 1)[1]
            for t in el.get("type", []):
                if t["code"] not in ("Reference", "CodeableReference"):
                    continue
                key = rel[:-3] + t["code"] if rel.endswith("[x]") else rel
                if t["code"] == "CodeableReference":
                    key += ".reference"
                refs[key] = sorted({p.rsplit("/", 1)[-1] for p in t.get("targetProfile", [])})
        out[tname] = refs
    return out


def build(tgz: Path) -> dict[str, Any]:
    files = _load(tgz)
    systems = {
        cs["url"]: cs for k, cs in files.items() if k.startswith("CodeSystem-") and "url" in cs
    }
    value_sets = {
        vs["url"]: vs for k, vs in files.items() if k.startswith("ValueSet-") and "url" in vs
    }
    sds = {
        sd["type"]: sd
        for k, sd in files.items()
        if k.startswith("StructureDefinition-")
        and sd.get("derivation") == "specialization"
        and sd.get("kind") in ("resource", "complex-type")
    }
    types: dict[str, dict[str, Any]] = {}
    invariants: dict[str, list[list[str]]] = {}
    used_vs: dict[str, dict[str, list[str]]] = {}
    pending = list(RESOURCE_TYPES)
    done: set[str] = set()
    while pending:
        tname = pending.pop()
        if tname in done or tname not in sds:
            continue
        done.add(tname)
        sd = sds[tname]
        for el in sd["snapshot"]["element"]:
            path: str = el["path"]
            owner, _, name = path.rpartition(".")
            for c in el.get("constraint", []):
                if c.get("severity") == "error" and c["key"] not in SKIP_INVARIANTS:
                    invariants.setdefault(path, []).append(
                        [c["key"], c["expression"], c.get("human", "")]
                    )
            if not owner:
                continue
            tcodes = _type_codes(el)
            if not tcodes:  # contentReference: the same backbone as another element
                ref = el.get("contentReference", "").lstrip("#")
                if ref:
                    tcodes = [ref.split("#")[-1]]
            spec: dict[str, Any] = {"t": tcodes}
            if el.get("max") == "*" or (el.get("max", "1") not in ("0", "1")):
                spec["n"] = 1  # repeats (a JSON array)
            binding = el.get("binding") or {}
            if binding.get("strength") == "required" and set(tcodes) & {
                "code",
                "Coding",
                "CodeableConcept",
            }:
                url = binding.get("valueSet", "").split("|")[0]
                vs = value_sets.get(url)
                expanded = _expand(vs, systems) if vs else None
                if expanded:
                    key = url.rsplit("/", 1)[-1]
                    used_vs[key] = expanded
                    spec["b"] = key
            targets = sorted(
                {
                    p.rsplit("/", 1)[-1]
                    for t in el.get("type", [])
                    if t["code"] == "Reference"
                    for p in t.get("targetProfile", [])
                }
            )
            if targets and "Resource" not in targets:
                spec["r"] = targets
            if tcodes in (["BackboneElement"], ["Element"]):
                spec["t"] = [path]
            names = (
                [name[:-3] + t[0].upper() + t[1:] for t in tcodes]
                if name.endswith("[x]")
                else [name]
            )
            for i, key in enumerate(names):
                entry = dict(spec)
                if name.endswith("[x]"):
                    entry["t"] = [tcodes[i]]
                types.setdefault(owner, {})[key] = entry
            for t in tcodes:
                if t in sds and t not in done and sds[t].get("kind") == "complex-type":
                    pending.append(t)
    ucum = value_sets["http://hl7.org/fhir/ValueSet/ucum-common"]["compose"]["include"][0]
    return {
        "source": "hl7.fhir.r4b.core 4.3.0 (HL7 FHIR R4B), CC0-1.0",
        "licence": "Derived from the HL7 FHIR R4B core package, published by HL7 under "
        "CC0 1.0 Universal (public domain dedication). Regenerate with "
        "tools/build_r4b_rules.py.",
        "types": dict(sorted(types.items())),
        "invariants": dict(sorted(invariants.items())),
        "valuesets": dict(sorted(used_vs.items())),
        "ucum_common": sorted(c["code"] for c in ucum["concept"]),
        "references": _references(sds),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tools/build_r4b_rules.py hl7.fhir.r4b.core-4.3.0.tgz", file=sys.stderr)
        return 2
    data = build(Path(argv[0]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n")
    print(
        f"wrote {OUT.name}: {len(data['types'])} types, {sum(len(v) for v in data['invariants'].values())} "
        f"invariants, {len(data['valuesets'])} value sets, references of "
        f"{len(data['references'])} resource types"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
