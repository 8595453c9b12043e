"""Rule 4: a code must belong to its code system — and unlicensed systems never enter.

For the code systems the sandbox ships (LOINC, ICD-10-CM, RxNorm, CVX, HCPCS Level II,
SNOMED CT IPS subset, the sandbox procedure system, HL7 confidentiality...), a coding's code
must be in the shipped code set: a typo'd or invented code would teach the wrong thing and
break every report that selects by code. Codings in systems we do not ship pass (we cannot
know their codes). CPT (AMA) and CDT (ADA) are refused everywhere: they need a licence even
to develop or test with, and HCPCS ``D`` codes are CDT under another name.

>>> sets = CodeSets({"http://loinc.org": {"8480-6"}})
>>> sets.contains("http://loinc.org", "8480-6"), sets.contains("http://loinc.org", "8480-7")
(True, False)
>>> sets.checks("http://example.org/local")
False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from synthetic.systems import CDT, CDT_SHORT, CPT, HCPCS, V3_ACT_CODE, V3_CONFIDENTIALITY

from .problem import Problem
from .tree import Scan, format_path

__all__ = [
    "CONFIDENTIALITY",
    "HCPCS",
    "CodeSets",
    "code_problems",
    "unlicensed_system",
]

CONFIDENTIALITY = V3_CONFIDENTIALITY
ACT_CODE = V3_ACT_CODE

_UNLICENSED = {
    CPT: "CPT (American Medical Association)",
    "urn:oid:2.16.840.1.113883.6.12": "CPT (American Medical Association)",
    CDT: "CDT (American Dental Association)",
    CDT_SHORT: "CDT (American Dental Association)",
    "urn:oid:2.16.840.1.113883.6.13": "CDT (American Dental Association)",
}

BASELINE: dict[str, frozenset[str]] = {
    # The whole v3-Confidentiality code system is six codes; it is checked even without content.
    CONFIDENTIALITY: frozenset({"U", "L", "M", "N", "R", "V"}),
}
"""Code sets known without the content package (complete, small HL7 systems)."""

# v3-ActCode has thousands of codes; content lists only the sensitivity ones. These common
# ones are added so an Encounter.class or a Coverage.type is not refused for being outside
# the privacy subset.
_ACT_CODE_COMMON = frozenset(
    {
        "AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR",
        "ETH", "GDIS", "HIV", "MST", "SCA", "SDV", "SEX", "SPI", "BH", "COGN", "DVD", "EMOTDIS",
        "MH", "PSY", "PSYTHPN", "SUD", "ETHUD", "OPIOIDUD", "STD", "TBOO", "SICKLE", "LABGEN",
        "HIP", "MCPOL", "PUBLICPOL", "SUBSIDIZ", "DENTAL", "DRUGPOL", "HMO", "PPO", "POS",
        "MANDPOL", "MENTPOL", "SUBPOL", "VISPOL", "WCBPOL", "AUTOPOL",
    }
)  # fmt: skip


def unlicensed_system(system: str) -> str | None:
    """The name of the licence-restricted system ``system`` is, or ``None``.

    >>> unlicensed_system("http://www.ama-assn.org/go/cpt/")
    'CPT (American Medical Association)'
    >>> unlicensed_system("http://loinc.org") is None
    True
    """
    norm = system.strip().rstrip("/").lower()
    if norm in _UNLICENSED:
        return _UNLICENSED[norm]
    if "ama-assn.org" in norm and "cpt" in norm:
        return "CPT (American Medical Association)"
    if "ada.org" in norm and "cdt" in norm:
        return "CDT (American Dental Association)"
    return None


class CodeSets:
    """Per-system sets of valid codes, with O(1) membership.

    Built once per content version (see :func:`code_sets_from_content` in
    :mod:`ehr_sandbox.validation.content_adapter`) and reused for every write.

    >>> CodeSets({}).contains("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R")
    True
    """

    __slots__ = ("_sets",)

    def __init__(self, systems: Mapping[str, Iterable[str]]) -> None:
        merged: dict[str, frozenset[str]] = dict(BASELINE)
        for system, codes in systems.items():
            merged[system] = merged.get(system, frozenset()) | frozenset(codes)
        if ACT_CODE in merged:
            merged[ACT_CODE] |= _ACT_CODE_COMMON
        self._sets = merged

    @property
    def systems(self) -> tuple[str, ...]:
        """The system URIs whose codes are checked.

        >>> CodeSets({"http://loinc.org": ["1-8"]}).systems[-1]
        'http://loinc.org'
        """
        return tuple(self._sets)

    def checks(self, system: str) -> bool:
        """True when codes of ``system`` are checked against a shipped set.

        >>> CodeSets({}).checks(CONFIDENTIALITY)
        True
        """
        return system in self._sets

    def contains(self, system: str, code: str) -> bool:
        """True when ``code`` is in ``system``'s set (or the system is not one we check).

        >>> CodeSets({"http://loinc.org": ["1-8"]}).contains("http://other", "x")
        True
        """
        codes = self._sets.get(system)
        return codes is None or code in codes

    def __len__(self) -> int:
        return len(self._sets)


def code_problems(found: Scan, code_sets: CodeSets, *, strict: bool = True) -> list[Problem]:
    """Problems for codings outside their shipped code set, and for any unlicensed system.

    With ``strict=False`` (importing outside data that legitimately uses the full
    terminologies) only the licence rule applies.

    >>> from ehr_sandbox.validation.tree import scan
    >>> r = {"code": {"coding": [{"system": "http://loinc.org", "code": "9999-9"}]}}
    >>> [(p.path, p.expected) for p in code_problems(scan(r), CodeSets({"http://loinc.org": ["8480-6"]}))]
    [('code.coding[0].code', 'a code from http://loinc.org shipped with the sandbox')]
    >>> code_problems(scan(r), CodeSets({"http://loinc.org": ["8480-6"]}), strict=False)
    []
    """
    problems = []
    for path, node in found.systems:
        system: str = node["system"]
        licence = unlicensed_system(system)
        if licence is not None:
            problems.append(
                Problem(
                    format_path((*path, "system")),
                    "a code system the sandbox may use (never CPT or CDT)",
                    found=system,
                    why=f"{licence} is not licensed for this project: it needs a licence even for "
                    "teaching and testing; use the sandbox procedure system "
                    "http://ehr-sandbox.org/CodeSystem/procedure or HCPCS Level II instead",
                    rule="code",
                )
            )
            continue
        code = node.get("code")
        if not isinstance(code, str) or "value" in node or "unit" in node:
            continue  # not a Coding (e.g. an Identifier or a Quantity's UCUM unit)
        if system == HCPCS and len(code) == 5 and code[0] in "Dd" and code[1:].isdigit():
            problems.append(
                Problem(
                    format_path((*path, "code")),
                    "an HCPCS Level II code outside the D range",
                    found=code,
                    why="HCPCS D codes are CDT (American Dental Association), which is not licensed here",
                    rule="code",
                )
            )
            continue
        if strict and not code_sets.contains(system, code):
            problems.append(
                Problem(
                    format_path((*path, "code")),
                    f"a code from {system} shipped with the sandbox",
                    found=code,
                    why="the code is not in that code system's shipped set: check it for a typo, "
                    "or add it to the content code file (with its display) if it is real",
                    rule="code",
                )
            )
    return problems
