"""SMART App Launch v2 scopes: a strict parser and the question "does this token allow that?".

Grammar (docs/privacy.md): ``(patient|user|system)/(Type|*).perms[?param=value(&param=value)*]`` with
perms a non-empty, in-order subset of ``cruds`` (v1 ``read``/``write``/``*`` are accepted as
``rs``/``cud``/``cruds``). The whole token must match; anything else raises
:class:`~ehr_sandbox.errors.ScopeError` naming the token and what was expected. Scopes combine
as a union; write never implies read.

>>> s = parse_scopes("patient/Observation.rs openid fhirUser")
>>> s.allows("patient", "Observation", "r"), s.allows("patient", "Observation", "c")
(True, False)
>>> parse_scopes("patient/Observation.dus")
Traceback (most recent call last):
...
ehr_sandbox.errors.ScopeError: scope 'patient/Observation.dus': permissions must be a non-empty subset of c, r, u, d, s in that order (found 'dus')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import unquote

from ehr_sandbox.errors import ScopeError
from synthetic.fhir import is_resource_type

Kind = Literal["patient", "user", "system"]
Perm = Literal["c", "r", "u", "d", "s"]

KINDS: tuple[str, ...] = ("patient", "user", "system")
PERM_ORDER = "cruds"
V1_PERMS: dict[str, str] = {"read": "rs", "write": "cud", "*": "cruds"}
"""SMART v1 permission words and their v2 equivalents."""

NON_DATA_SCOPES: frozenset[str] = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    }
)
"""Valid scopes that grant no data access (identity, launch context, refresh tokens)."""

# Search parameters a scope may filter on, and the element each one reads. Chains, modifiers
# and result parameters (_include, _revinclude, _has ...) are refused: we can only enforce a
# filter we can evaluate on a single resource.
FILTER_ELEMENTS: dict[str, str] = {
    "category": "category",
    "status": "status",
    "code": "code",
    "clinical-status": "clinicalStatus",
    "verification-status": "verificationStatus",
    "intent": "intent",
    "type": "type",
    "class": "class",
    "_security": "meta.security",
    "_tag": "meta.tag",
}
"""Filter parameters a scope may carry and the resource element each is evaluated on."""

_TOKEN = re.compile(r"(patient|user|system)/([A-Za-z]+|\*)\.([a-z]+|\*)(?:\?(.*))?", re.DOTALL)
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_VALUE = re.compile(r"[^\s=&?]+")
_ABSTRACT = frozenset({"Resource", "DomainResource"})


def _fail(token: str, expected: str, found: str | None = None) -> ScopeError:
    shown = token if len(token) <= 120 else token[:117] + "..."
    msg = f"scope {shown!r}: {expected}"
    if found is not None:
        msg += f" (found {found!r})"
    return ScopeError(msg)


def _parse_perms(token: str, text: str) -> frozenset[str]:
    if text in V1_PERMS:
        return frozenset(V1_PERMS[text])
    pos = -1
    for ch in text:
        nxt = PERM_ORDER.find(ch, pos + 1)
        if nxt < 0:
            raise _fail(
                token,
                "permissions must be a non-empty subset of c, r, u, d, s in that order",
                text,
            )
        pos = nxt
    return frozenset(text)


def _parse_filters(token: str, query: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not query:
        raise _fail(token, "a filter 'param=value' after '?'", "")
    out: list[tuple[str, tuple[str, ...]]] = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        if not eq:
            raise _fail(token, "each filter as 'param=value'", part)
        if "." in name:
            raise _fail(
                token, "a plain search parameter (chained parameters are not allowed)", name
            )
        if ":" in name:
            raise _fail(token, "a plain search parameter (modifiers are not allowed)", name)
        if not _PARAM_NAME.fullmatch(name):
            raise _fail(token, "a search parameter name", name)
        if name not in FILTER_ELEMENTS:
            raise _fail(
                token, f"a filter parameter among {', '.join(sorted(FILTER_ELEMENTS))}", name
            )
        if "%" in value:
            # Percent-encoded values ("%7C" for "|") mean the same as their decoded form; the
            # decoded value must still be a plain value (no smuggled '&', '=' or '?').
            value = unquote(value)
        if not _VALUE.fullmatch(value):
            raise _fail(token, "a non-empty value without '=', '&', '?' or spaces", value)
        values = tuple(value.split(","))
        if any(not v for v in values):
            raise _fail(token, "comma-separated values without empty items", value)
        out.append((name, values))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Scope:
    """One data scope: kind, resource type (or ``*``), permissions, and optional filters.

    ``filters`` is a tuple of ``(param, values)``; all params must match (AND), any value of
    one param may match (OR, as in FHIR search).

    >>> sc = Scope("patient", "Observation", frozenset("rs"), (("status", ("final",)),))
    >>> sc.matches_resource({"resourceType": "Observation", "status": "final"})
    True
    """

    kind: str
    resource_type: str
    perms: frozenset[str]
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    text: str = field(default="", compare=False)

    def covers(self, kind: str, resource_type: str, perm: str) -> bool:
        """True when kind, type and permission match (filters not considered).

        >>> Scope("user", "*", frozenset("rs")).covers("user", "Patient", "s")
        True
        """
        return (
            self.kind == kind
            and perm in self.perms
            and (self.resource_type == "*" or self.resource_type == resource_type)
        )

    def matches_resource(self, resource: dict[str, Any]) -> bool:
        """True when the resource satisfies every filter of the scope.

        >>> Scope("user", "Observation", frozenset("r"), (("category", ("laboratory",)),)
        ...       ).matches_resource({"category": [{"coding": [{"code": "vital-signs"}]}]})
        False
        """
        for name, values in self.filters:
            if not _element_matches(resource, FILTER_ELEMENTS[name], values):
                return False
        return True


def _codings(node: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a code, Coding, CodeableConcept or list of them."""
    out: list[tuple[str | None, str | None]] = []
    if isinstance(node, list):
        for item in node:
            out.extend(_codings(item))
    elif isinstance(node, str):
        out.append((None, node))
    elif isinstance(node, dict):
        if "coding" in node:
            out.extend(_codings(node.get("coding")))
        elif "code" in node:
            system = node.get("system")
            code = node.get("code")
            out.append(
                (
                    system if isinstance(system, str) else None,
                    code if isinstance(code, str) else None,
                )
            )
    return out


def token_matches(
    pairs: list[tuple[str | None, str | None]], value: str, *, bare_code: bool
) -> bool:
    """FHIR token matching of one search value against (system, code) pairs.

    ``bare_code`` is True for elements of type ``code`` (their system is implicit, so
    ``system|code`` matches on the code alone).

    >>> token_matches([("http://s", "a")], "http://s|a", bare_code=False)
    True
    >>> token_matches([("http://s", "a")], "|a", bare_code=False)
    False
    """
    if "|" not in value:
        return any(code == value for _, code in pairs)
    system, _, code = value.partition("|")
    for s, c in pairs:
        if bare_code and s is None:
            if code and c == code:
                return True
            continue
        if system == "":
            if s is None and c == code:
                return True
        elif s == system and (code == "" or c == code):
            return True
    return False


def _element_matches(resource: dict[str, Any], path: str, values: tuple[str, ...]) -> bool:
    node: Any = resource
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return False
    pairs = _codings(node)
    bare = isinstance(node, str)
    return any(token_matches(pairs, v, bare_code=bare) for v in values)


@dataclass(frozen=True, slots=True)
class ScopeSet:
    """The parsed scopes of one token (immutable; :func:`parse_scopes` caches them).

    >>> ScopeSet.empty().allows("user", "Patient", "r")
    False
    >>> parse_scopes("user/*.write").allows("user", "Patient", "r")
    False
    """

    scopes: tuple[Scope, ...] = ()
    other: frozenset[str] = frozenset()
    text: str = ""

    @staticmethod
    def empty() -> ScopeSet:
        """A token that grants nothing.

        Returns
        -------
        ScopeSet
            The one empty set (no data scopes, no other scopes).

        Examples
        --------
        >>> ScopeSet.empty() is ScopeSet.empty(), ScopeSet.empty().scopes
        (True, ())
        """
        return _EMPTY

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds (patient/user/system) present among the data scopes.

        >>> sorted(parse_scopes("patient/*.rs user/Practitioner.r").kinds)
        ['patient', 'user']
        """
        return frozenset(s.kind for s in self.scopes)

    @property
    def needs_patient(self) -> bool:
        """True when some scope is ``patient/``, which needs a patient in context.

        Examples
        --------
        >>> parse_scopes("patient/*.rs launch/patient").needs_patient, parse_scopes("user/*.rs").needs_patient
        (True, False)
        """
        return any(s.kind == "patient" for s in self.scopes)

    @property
    def has_system(self) -> bool:
        """True when some scope is ``system/`` (not allowed on an interactive session).

        Examples
        --------
        >>> parse_scopes("system/*.rs").has_system, parse_scopes("user/*.rs openid").has_system
        (True, False)
        """
        return any(s.kind == "system" for s in self.scopes)

    def allows(
        self, kind: str, resource_type: str, perm: str, resource: dict[str, Any] | None = None
    ) -> bool:
        """True when some scope of ``kind`` grants ``perm`` on the type (and, when a resource
        is given, its filters match that resource).

        With ``resource=None`` this is the type-level question ("could anything of this type be
        allowed?"); the session must then ask again per resource so filters apply to reads,
        searches and writes alike.

        >>> lab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
        >>> s = parse_scopes("patient/Observation.rs?category=" + lab)
        >>> obs = {"resourceType": "Observation", "category": [{"coding": [
        ...     {"system": "http://terminology.hl7.org/CodeSystem/observation-category",
        ...      "code": "vital-signs"}]}]}
        >>> s.allows("patient", "Observation", "r"), s.allows("patient", "Observation", "r", obs)
        (True, False)
        """
        for sc in self.scopes:
            if sc.covers(kind, resource_type, perm) and (
                resource is None or not sc.filters or sc.matches_resource(resource)
            ):
                return True
        return False

    def __str__(self) -> str:
        return self.text


_EMPTY = ScopeSet()


def _parse_token(token: str) -> Scope | None:
    if token in NON_DATA_SCOPES:
        return None
    m = _TOKEN.fullmatch(token)
    if m is None:
        if "/" in token and token.split("/", 1)[0].lower() in KINDS:
            raise _fail(token, "lower-case 'patient/', 'user/' or 'system/', then Type.perms")
        raise _fail(
            token,
            "'(patient|user|system)/(Type|*).perms[?param=value]' or one of "
            + ", ".join(sorted(NON_DATA_SCOPES)),
        )
    kind, rtype, perms_text, query = m.groups()
    if rtype != "*" and (rtype in _ABSTRACT or not is_resource_type(rtype)):
        raise _fail(token, "a FHIR resource type (case-sensitive) or '*'", rtype)
    perms = _parse_perms(token, perms_text)
    filters = _parse_filters(token, query) if query is not None else ()
    return Scope(kind, rtype, perms, filters, token)


@lru_cache(maxsize=512)
def parse_scopes(text: str) -> ScopeSet:
    """Parse a space-separated scope string strictly (cached: equal strings share a result).

    An empty string is a token that grants nothing. Any malformed token raises
    :class:`~ehr_sandbox.errors.ScopeError`; nothing is granted from a partly valid string.

    >>> [ (s.kind, s.resource_type, "".join(sorted(s.perms, key="cruds".index)))
    ...   for s in parse_scopes("patient/*.read user/Observation.cud").scopes]
    [('patient', '*', 'rs'), ('user', 'Observation', 'cud')]
    >>> parse_scopes("launch/patient openid").scopes
    ()
    """
    if not isinstance(text, str):
        raise ScopeError(f"scopes: expected a space-separated string (found {type(text).__name__})")
    # RFC 6749 3.3: scope tokens are separated by the ASCII space (0x20) only. Any other
    # whitespace (tab, NBSP, U+2028, the \x1c-\x1f separators ...) would let str.split()
    # smuggle in a token the sender never showed; it is refused, not split on.
    for i, ch in enumerate(text):
        if ch != " " and (ch.isspace() or not ch.isprintable()):
            raise ScopeError(
                f"scopes: expected tokens separated by ASCII spaces only; found {ch!r} "
                f"(U+{ord(ch):04X}) at position {i}"
            )
    scopes: list[Scope] = []
    other: set[str] = set()
    for token in (t for t in text.split(" ") if t):
        sc = _parse_token(token)
        if sc is None:
            other.add(token)
        else:
            scopes.append(sc)
    return ScopeSet(tuple(scopes), frozenset(other), text)
