"""Security labels: one v3-Confidentiality code per resource plus v3-ActCode sensitivities.

Labels are computed at write time from code lists (the content package's sensitivity rules
merged with the sandbox's own :data:`SANDBOX_RULES`), so a diagnosis of opioid use disorder is
restricted the moment it is charted, whoever charts it. Labels only go up here; lowering them is
the privacy officer's job (the policy's ``label`` action).

>>> obs = {"resourceType": "Condition", "code": {"coding": [
...     {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}]}}
>>> [c["code"] for c in assign_labels(obs)]
['R', 'OPIOIDUD', 'SUD']
>>> confidentiality_of({"meta": {"security": [{"system": CONFIDENTIALITY, "code": "V"}]}})
'V'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from ehr_sandbox.errors import ValidationError
from synthetic.systems import SANDBOX_NOTE_TYPE, V3_ACT_CODE, V3_CONFIDENTIALITY

CONFIDENTIALITY = V3_CONFIDENTIALITY
ACT_CODE = V3_ACT_CODE
NOTE_TYPE = SANDBOX_NOTE_TYPE

CONFIDENTIALITY_ORDER = "ULMNRV"
CONFIDENTIALITY_RANK: dict[str, int] = {c: i for i, c in enumerate(CONFIDENTIALITY_ORDER)}
"""U < L < M < N < R < V."""

CONFIDENTIALITY_DISPLAY: dict[str, str] = {
    "U": "unrestricted",
    "L": "low",
    "M": "moderate",
    "N": "normal",
    "R": "restricted",
    "V": "very restricted",
}

SENSITIVITY_CODES: frozenset[str] = frozenset(
    {"HIV", "PSY", "PSYTHPN", "MH", "BH", "ETH", "SUD", "ETHUD", "OPIOIDUD", "SDV", "STD", "SEX"}
)
"""The v3-ActCode sensitivity codes this sandbox assigns or honours (docs/privacy.md)."""


@dataclass(frozen=True, slots=True)
class LabelRule:
    """Data carrying a code from ``system`` matching ``code`` gets these labels.

    >>> from synthetic.systems import ICD10CM
    >>> LabelRule(ICD10CM, "F1", "prefix", ("SUD",), "R").matches(ICD10CM, "F17.210")
    True
    """

    system: str
    code: str
    match: str
    sensitivity: tuple[str, ...]
    confidentiality: str = "R"

    def matches(self, system: str, code: str) -> bool:
        """True when this rule covers ``code`` of code system URI ``system``.

        Parameters
        ----------
        system : str
            The code system URI.
        code : str
            The code.

        Returns
        -------
        bool
            ``prefix`` rules match codes starting with the rule's code, ``exact`` rules the code
            itself; never a code of another system.

        Examples
        --------
        >>> from synthetic.systems import ICD10CM
        >>> rule = LabelRule(ICD10CM, "F1", "prefix", ("SUD",), "R")
        >>> rule.matches(ICD10CM, "F17.210"), rule.matches(ICD10CM, "E11.9"), rule.matches("http://snomed.info/sct", "F17")
        (True, False, False)
        """
        if system != self.system:
            return False
        return code.startswith(self.code) if self.match == "prefix" else code == self.code


SANDBOX_RULES: tuple[LabelRule, ...] = (
    # Psychotherapy notes (HIPAA 45 CFR 164.501, 164.508(a)(2)): kept apart from the medical
    # record and very restricted. The note-type code system is the sandbox's own, so its rule
    # lives here; every rule over a shared terminology (ICD-10-CM, LOINC, RxNorm, SNOMED CT)
    # lives in the content package's sensitivity.toml, the one source of truth for code lists.
    LabelRule(NOTE_TYPE, "psychotherapy", "exact", ("PSYTHPN",), "V"),
)
"""Rules over code systems the sandbox itself defines (added to the content's rules)."""


@cache
def content_rules() -> tuple[LabelRule, ...]:
    """The content package's sensitivity rules as :class:`LabelRule`.

    There is no silent fallback: content that cannot load, or a rule naming a code set the
    content does not define, raises (a write must never be labelled by a partial table). The
    compiled rules are kept in the content cache (:mod:`ehr_sandbox.content_cache`), so a
    fresh process labels its first write without loading the content.

    >>> rules = content_rules()
    >>> len(rules) > 0 and all(isinstance(r, LabelRule) for r in rules)
    True
    """
    from ehr_sandbox.content_cache import derived

    out = tuple(
        LabelRule(system, code, match, tuple(sensitivity), confidentiality)
        for system, code, match, sensitivity, confidentiality in derived(
            "label-rules", compile_content_rules
        )
    )
    if not out:
        raise ValidationError("sensitivity.toml", "rule", "at least one label rule")
    return out


def compile_content_rules() -> list[list[Any]]:
    """The shipped content's sensitivity rules, each as ``[system URI, code, match,
    [sensitivity codes], confidentiality]`` (loads the content; :func:`content_rules` keeps
    the result).

    Raises
    ------
    ValidationError
        When a rule names a code set the content does not define.

    Examples
    --------
    >>> rows = compile_content_rules()
    >>> all(len(r) == 5 and r[2] in ("exact", "prefix") for r in rows)
    True
    """
    from synthetic.content import load_content  # type: ignore[attr-defined]

    content = load_content()
    out: list[list[Any]] = []
    for i, rule in enumerate(content.sensitivity):
        codeset = content.codes.get(rule.system)
        if codeset is None:
            raise ValidationError(
                "sensitivity.toml",
                f"rule[{i}].system",
                "a code set the content defines (" + ", ".join(sorted(content.codes)) + ")",
                found=rule.system,
            )
        out.append(
            [
                codeset.system,
                rule.code,
                rule.match,
                list(rule.sensitivity),
                rule.confidentiality,
            ]
        )
    return out


@cache
def active_rules() -> tuple[LabelRule, ...]:
    """The rules :func:`assign_labels` uses by default: the content's rules **merged** with
    :data:`SANDBOX_RULES` (neither replaces the other).

    >>> rules = active_rules()
    >>> set(SANDBOX_RULES) <= set(rules) and set(content_rules()) <= set(rules)
    True
    """
    return tuple(dict.fromkeys((*content_rules(), *SANDBOX_RULES)))


def __getattr__(name: str) -> Any:
    # DEFAULT_RULES (kept for callers) is the merged rule set, loaded on first use.
    if name == "DEFAULT_RULES":
        return active_rules()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_Index = tuple[dict[tuple[str, str], tuple[LabelRule, ...]], dict[str, tuple[LabelRule, ...]]]


def _index(rules: tuple[LabelRule, ...]) -> _Index:
    """Exact rules by (system, code) and prefix rules by system (writes label every coding)."""
    exact: dict[tuple[str, str], list[LabelRule]] = {}
    prefix: dict[str, list[LabelRule]] = {}
    for rule in rules:
        if rule.match == "prefix":
            prefix.setdefault(rule.system, []).append(rule)
        else:
            exact.setdefault((rule.system, rule.code), []).append(rule)
    return (
        {k: tuple(v) for k, v in exact.items()},
        {k: tuple(v) for k, v in prefix.items()},
    )


@cache
def _default_index() -> _Index:
    return _index(active_rules())


def codings_in(node: Any) -> Iterator[tuple[str, str]]:
    """Every (system, code) pair in a resource, outside ``meta`` (contained resources included).

    >>> list(codings_in({"meta": {"security": [{"system": "s", "code": "R"}]},
    ...                  "code": {"coding": [{"system": "a", "code": "1"}]}}))
    [('a', '1')]
    """
    if isinstance(node, dict):
        system, code = node.get("system"), node.get("code")
        if isinstance(system, str) and isinstance(code, str):
            yield system, code
        for key, value in node.items():
            if key != "meta" and isinstance(value, dict | list):
                yield from codings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from codings_in(item)


def confidentiality_of(resource: object) -> str | None:
    """The resource's v3-Confidentiality code (the highest, if several were wrongly set).

    >>> confidentiality_of({"resourceType": "Patient"}) is None
    True
    """
    best: str | None = None
    for coding in _security(resource):
        code = coding.get("code")
        if (
            coding.get("system") == CONFIDENTIALITY
            and code in CONFIDENTIALITY_RANK
            and (best is None or CONFIDENTIALITY_RANK[code] > CONFIDENTIALITY_RANK[best])
        ):
            best = code
    return best


def sensitivities_of(resource: object) -> frozenset[str]:
    """The v3-ActCode sensitivity codes in ``meta.security``.

    >>> sorted(sensitivities_of({"meta": {"security": [{"system": ACT_CODE, "code": "HIV"}]}}))
    ['HIV']
    """
    return frozenset(
        c["code"]
        for c in _security(resource)
        if c.get("system") == ACT_CODE and isinstance(c.get("code"), str)
    )


_NO_SENSITIVITY: frozenset[str] = frozenset()


def security_summary(resource: object) -> tuple[str | None, frozenset[str]]:
    """Confidentiality code and sensitivity codes in one pass (the policy's hot path).

    >>> security_summary({"meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"},
    ...                                         {"system": ACT_CODE, "code": "HIV"}]}})
    ('R', frozenset({'HIV'}))
    """
    meta = resource.get("meta") if isinstance(resource, dict) else None
    sec = meta.get("security") if isinstance(meta, dict) else None
    if not sec or not isinstance(sec, list):
        return None, _NO_SENSITIVITY
    best: str | None = None
    sens: set[str] | None = None
    for coding in sec:
        if not isinstance(coding, dict):
            continue
        system = coding.get("system")
        code = coding.get("code")
        if system == CONFIDENTIALITY:
            if code in CONFIDENTIALITY_RANK and (
                best is None or CONFIDENTIALITY_RANK[code] > CONFIDENTIALITY_RANK[best]
            ):
                best = code
        elif system == ACT_CODE and isinstance(code, str):
            if sens is None:
                sens = set()
            sens.add(code)
    return best, (frozenset(sens) if sens else _NO_SENSITIVITY)


def _security(resource: object) -> list[dict[str, Any]]:
    if not isinstance(resource, dict):
        return []
    meta = resource.get("meta")
    sec = meta.get("security") if isinstance(meta, dict) else None
    if not isinstance(sec, list):
        return []
    return [c for c in sec if isinstance(c, dict)]


def confidentiality_coding(code: str) -> dict[str, str]:
    """A v3-Confidentiality Coding.

    >>> confidentiality_coding("R")["display"]
    'restricted'
    """
    return {"system": CONFIDENTIALITY, "code": code, "display": CONFIDENTIALITY_DISPLAY[code]}


def highest_confidentiality(resources: Iterable[object], default: str = "N") -> str:
    """The highest confidentiality among resources (what a Bundle or report carries).

    >>> highest_confidentiality([{"meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"}]}}, {}])
    'R'
    """
    best = default
    for r in resources:
        code = confidentiality_of(r) or default
        if CONFIDENTIALITY_RANK[code] > CONFIDENTIALITY_RANK[best]:
            best = code
    return best


def computed_labels(
    resource: object, rules: Sequence[LabelRule] | None = None
) -> tuple[str | None, frozenset[str]]:
    """Confidentiality (None when no rule matched) and sensitivities the code lists give.

    >>> from synthetic.systems import ICD10CM
    >>> computed_labels({"code": {"coding": [{"system": ICD10CM, "code": "B20"}]}})
    ('R', frozenset({'HIV'}))
    """
    exact, prefix = _default_index() if rules is None else _index(tuple(rules))
    level: str | None = None
    found: set[str] = set()
    for system, code in codings_in(resource):
        candidates = exact.get((system, code), ())
        by_prefix = prefix.get(system)
        if by_prefix:
            candidates = (*candidates, *(r for r in by_prefix if code.startswith(r.code)))
        for rule in candidates:
            if rule.matches(system, code):
                found.update(rule.sensitivity)
                conf = rule.confidentiality if rule.confidentiality in CONFIDENTIALITY_RANK else "R"
                if level is None or CONFIDENTIALITY_RANK[conf] > CONFIDENTIALITY_RANK[level]:
                    level = conf
    return level, frozenset(found)


def assign_labels(
    resource: dict[str, Any], rules: Sequence[LabelRule] | None = None
) -> list[dict[str, Any]]:
    """The ``meta.security`` list for a resource about to be written.

    Exactly one confidentiality code: the higher of the existing one and the one the code
    lists give (N when neither says anything); the sensitivity codes of both; other security
    codings (integrity, policy) kept as they were. The input is not modified.

    >>> from synthetic.systems import ICD10CM
    >>> assign_labels({"resourceType": "Observation"})
    [{'system': 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', 'code': 'N', 'display': 'normal'}]
    >>> hiv = {"resourceType": "Condition", "meta": {"security": [confidentiality_coding("N")]},
    ...        "code": {"coding": [{"system": ICD10CM, "code": "Z21"}]}}
    >>> [c["code"] for c in assign_labels(hiv)]
    ['R', 'HIV']
    """
    existing = _security(resource)
    level, found = computed_labels(resource, rules)
    current = confidentiality_of(resource)
    if current is not None and (
        level is None or CONFIDENTIALITY_RANK[current] >= CONFIDENTIALITY_RANK[level]
    ):
        level = current
    if level is None:
        level = "N"
    have = sensitivities_of(resource)
    out: list[dict[str, Any]] = [confidentiality_coding(level)]
    seen_act: set[str] = set()
    for coding in existing:
        system = coding.get("system")
        if system == CONFIDENTIALITY:
            continue
        if system == ACT_CODE:
            code = coding.get("code")
            if not isinstance(code, str) or code in seen_act:
                continue
            seen_act.add(code)
        out.append(dict(coding))
    for code in sorted(found - have):
        out.append({"system": ACT_CODE, "code": code})
    # Confidentiality first, then sensitivities sorted, then everything else in its order.
    head, acts, rest = (
        out[:1],
        [c for c in out[1:] if c.get("system") == ACT_CODE],
        [c for c in out[1:] if c.get("system") != ACT_CODE],
    )
    acts.sort(key=lambda c: c["code"])
    return head + acts + rest
