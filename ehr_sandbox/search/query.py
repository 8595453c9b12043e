"""Parsed search queries: ``parse(resource_type, params) -> SearchQuery``.

Parsing is strict, as a FHIR server's should be for a teaching tool: an unknown parameter,
an unknown modifier, a malformed value or a chain through a non-reference parameter raises
:class:`~ehr_sandbox.errors.SearchError` naming the parameter and what was expected. Nothing
is silently ignored.

>>> q = parse("Observation", {"patient": "Patient/p1", "code": "http://loinc.org|8480-6,8462-4",
...                           "_sort": "-date", "_count": "5"})
>>> [c.param.name for c in q.clauses], q.sort[0].descending, q.count
(['patient', 'code'], True, 5)
>>> parse("Observation", {"colour": "red"})
Traceback (most recent call last):
...
ehr_sandbox.errors.SearchError: Observation: colour: expected a search parameter of Observation (found 'colour')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ehr_sandbox.errors import SearchError
from ehr_sandbox.references import ID_RE, split_reference
from ehr_sandbox.search.registry import SearchParam, lookup, params_for
from ehr_sandbox.search.values import date_range, number_range
from synthetic.fhir import is_resource_type

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
"""Comparison prefixes for date, number and quantity values."""

MODIFIERS = {
    "string": ("exact", "contains", "missing"),
    "token": ("not", "missing"),
    "uri": ("not", "missing"),
    "reference": ("missing",),
    "date": ("missing",),
    "quantity": ("missing",),
    "number": ("missing",),
    "special": (),
}
"""Modifiers each parameter type accepts (a reference also takes a resource type)."""

_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True)
class StringValue:
    """A string search value (``text`` as given).

    Matching (prefix, ``:exact``, ``:contains``) is the engine's business; the value keeps the
    text as the user typed it.

    Examples
    --------
    >>> c = parse("Patient", [("name", "Smith")]).clauses[0]
    >>> c.values
    (StringValue(text='Smith'),)
    """

    text: str


@dataclass(frozen=True)
class TokenValue:
    """``system|code``: ``system`` None means any system, ``""`` means no system; ``code`` None any code.

    Examples
    --------
    >>> [parse("Observation", [("code", v)]).clauses[0].values[0] for v in ("http://loinc.org|8867-4", "|x", "8867-4")]
    [TokenValue(system='http://loinc.org', code='8867-4'), TokenValue(system='', code='x'), TokenValue(system=None, code='8867-4')]
    """

    system: str | None
    code: str | None


@dataclass(frozen=True)
class RangeValue:
    """A date, number or quantity value: prefix, the value's precision range ``[lo, hi)``.

    Dates are POSIX seconds (UTC); ``value``/``system``/``code`` are a quantity's number and
    unit.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> v = parse("Observation", [("date", "ge2026-01")]).clauses[0].values[0]
    >>> v.prefix, datetime.fromtimestamp(v.lo, UTC).date().isoformat(), datetime.fromtimestamp(v.hi, UTC).date().isoformat()
    ('ge', '2026-01-01', '2026-02-01')
    >>> parse("Observation", [("value-quantity", "lt5")]).clauses[0].values[0]
    RangeValue(prefix='lt', lo=4.5, hi=5.5, value=5.0, system=None, code=None)
    """

    prefix: str
    lo: float
    hi: float
    value: float | None = None
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class ReferenceValue:
    """Alternative ``Type/id`` forms of one reference value (a bare id may name several types).

    Examples
    --------
    >>> c = parse("Observation", [("patient", "p1")]).clauses[0]
    >>> c.values
    (ReferenceValue(refs=('Patient/p1',)),)
    """

    refs: tuple[str, ...]


@dataclass(frozen=True)
class MissingValue:
    """``:missing=true|false``.

    Examples
    --------
    >>> c = parse("Observation", [("status:missing", "true")]).clauses[0]
    >>> c.modifier, c.values
    ('missing', (MissingValue(missing=True),))
    """

    missing: bool


@dataclass(frozen=True)
class Chain:
    """``param.name=value``: the reference points at a resource matching ``inner`` (one per target type).

    Examples
    --------
    >>> chain = parse("Observation", [("patient.name", "Smith")]).clauses[0].values[0]
    >>> [(q.resource_type, q.clauses[0].values) for q in chain.inner]
    [('Patient', (StringValue(text='Smith'),))]
    """

    inner: tuple[SearchQuery, ...]


Value = StringValue | TokenValue | RangeValue | ReferenceValue | MissingValue | Chain


@dataclass(frozen=True)
class Clause:
    """One parameter occurrence: the values are ORed; clauses of a query are ANDed.

    Examples
    --------
    >>> q = parse("Observation", [("code", "8867-4,8480-6"), ("status", "final")])
    >>> [(c.param.name, len(c.values)) for c in q.clauses]
    [('code', 2), ('status', 1)]
    """

    param: SearchParam
    modifier: str | None
    values: tuple[Value, ...]


@dataclass(frozen=True)
class SortKey:
    """One ``_sort`` key.

    Examples
    --------
    >>> [(k.param.name, k.descending) for k in parse("Observation", [("_sort", "-date,code")]).sort]
    [('date', True), ('code', False)]
    """

    param: SearchParam
    descending: bool = False


@dataclass(frozen=True)
class Include:
    """``_include``/``_revinclude``: ``source_type:param[:target]`` (``param`` ``*`` = all references).

    Examples
    --------
    >>> parse("Observation", [("_include", "Observation:subject:Patient")]).include
    (Include(source_type='Observation', param='subject', target='Patient', iterate=False),)
    >>> parse("Patient", [("_revinclude:iterate", "Provenance:target")]).revinclude[0].iterate
    True
    """

    source_type: str
    param: str
    target: str | None = None
    iterate: bool = False


@dataclass(frozen=True)
class SearchQuery:
    """A parsed search: filters, sort, paging and includes.

    >>> parse("Patient", [("family", "smith")]).without_paging().count is None
    True
    """

    resource_type: str
    clauses: tuple[Clause, ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int | None = None
    offset: int = 0
    include: tuple[Include, ...] = ()
    revinclude: tuple[Include, ...] = field(default_factory=tuple)

    def without_paging(self) -> SearchQuery:
        """The same query without ``_count``/``_offset`` (the session pages after the policy).

        Returns
        -------
        SearchQuery
            A copy with ``count=None`` and ``offset=0``; filters, sort and includes unchanged.

        Examples
        --------
        >>> q = parse("Patient", [("family", "smith"), ("_count", "5"), ("_offset", "10")])
        >>> p = q.without_paging()
        >>> (p.count, p.offset, p.clauses == q.clauses), (q.count, q.offset)
        ((None, 0, True), (5, 10))
        """
        return replace(self, count=None, offset=0)

    def chained_types(self) -> list[str]:
        """Every resource type a chain in this query reads (the session checks them all).

        >>> parse("Observation", [("subject:Patient.name", "x")]).chained_types()
        ['Patient']
        """
        out: list[str] = []
        for c in self.clauses:
            for v in c.values:
                if isinstance(v, Chain):
                    for q in v.inner:
                        for t in [q.resource_type, *q.chained_types()]:
                            if t not in out:
                                out.append(t)
        return out


def _err(rtype: str, param: str, expected: str, found: object = None) -> SearchError:
    return SearchError(rtype, param or "(parameter name)", expected, found=found)


def _unescape(text: str) -> str:
    return re.sub(r"\\([,|$\\])", r"\1", text)


def _as_items(
    params: Mapping[str, Any] | list[tuple[str, Any]] | None, rtype: str
) -> list[tuple[str, str]]:
    raw: list[tuple[Any, Any]] = []
    if params is None:
        return []
    if isinstance(params, Mapping):
        for k, v in params.items():
            for one in v if isinstance(v, list | tuple) else [v]:
                raw.append((k, one))
    else:
        try:
            raw = [(k, v) for k, v in params]
        except (TypeError, ValueError):
            raise _err(
                rtype, "(parameters)", "a mapping or a list of (name, value) pairs", params
            ) from None
    out: list[tuple[str, str]] = []
    for k, v in raw:
        if not isinstance(k, str) or not k:
            raise _err(rtype, str(k), "a parameter name (text)", k)
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, int | float) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            raise _err(rtype, k, "a text value", v)
        if v == "" or v.strip() != v:
            raise _err(rtype, k, "a non-empty value without surrounding spaces", v)
        for text, what in ((k, "name"), (v, "value")):
            if not text.isprintable() or _has_surrogate(text):
                # A NUL would end the SQL LIKE pattern early (":contains" matching everything);
                # control characters and lone surrogates cannot be stored or compared either.
                raise _err(
                    rtype, k, f"a {what} of printable text (no NUL or control characters)", v
                )
        out.append((k, v))
    return out


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _prefixed(rtype: str, name: str, text: str) -> tuple[str, str]:
    if len(text) > 2 and text[:2] in DATE_PREFIXES and not text[:2].isdigit():
        return text[:2], text[2:]
    return "eq", text


def _date_value(rtype: str, name: str, text: str) -> RangeValue:
    prefix, rest = _prefixed(rtype, name, text)
    rng = date_range(rest)
    if rng is None:
        raise _err(
            rtype,
            name,
            "a date like [prefix]YYYY[-MM[-DD[Thh:mm[:ss][zone]]]] (prefixes eq ne gt lt ge le sa eb ap)",
            text,
        )
    return RangeValue(prefix, rng[0], rng[1])


def _quantity_value(rtype: str, name: str, text: str) -> RangeValue:
    prefix, rest = _prefixed(rtype, name, text)
    parts = _UNESCAPED_PIPE.split(rest)
    if len(parts) not in (1, 3):
        raise _err(rtype, name, "[prefix]number or [prefix]number|system|code", text)
    num = number_range(parts[0])
    if num is None:
        raise _err(rtype, name, "[prefix]number[|system|code] with a decimal number", text)
    system = _unescape(parts[1]) or None if len(parts) == 3 else None
    code = _unescape(parts[2]) or None if len(parts) == 3 else None
    return RangeValue(prefix, num[1], num[2], num[0], system, code)


def _token_value(rtype: str, name: str, text: str) -> TokenValue:
    parts = _UNESCAPED_PIPE.split(text)
    if len(parts) == 1:
        return TokenValue(None, _unescape(parts[0]))
    if len(parts) == 2 and (parts[0] or parts[1]):
        return TokenValue(_unescape(parts[0]), _unescape(parts[1]) or None)
    raise _err(rtype, name, "code, system|code, |code or system|", text)


def _reference_value(rtype: str, p: SearchParam, modifier: str | None, text: str) -> ReferenceValue:
    targets = (modifier,) if modifier else p.targets
    if "/" in text:
        parts = split_reference(text)
        if parts is None or not is_resource_type(parts[0]):
            raise _err(
                rtype, p.name, "a reference Type/id (or an id) with a FHIR resource type", text
            )
        if targets and parts[0] not in targets:
            raise _err(rtype, p.name, f"a reference to {' or '.join(targets)}", text)
        return ReferenceValue((f"{parts[0]}/{parts[1]}",))
    if not ID_RE.match(text):
        raise _err(
            rtype, p.name, "a reference Type/id or a FHIR id ([A-Za-z0-9-.], up to 64)", text
        )
    if not targets:
        raise _err(
            rtype,
            p.name,
            f"Type/id, or {p.name}:Type=id (this parameter can point at several types)",
            text,
        )
    return ReferenceValue(tuple(f"{t}/{text}" for t in targets))


def _clause(rtype: str, key: str, text: str, depth: int) -> Clause:
    head, dot, rest = key.partition(".")
    name, colon, modifier = head.partition(":")
    p = lookup(rtype, name)
    if p is None:
        raise _err(rtype, name, f"a search parameter of {rtype}", name)
    mod = modifier if colon else None
    if colon and not modifier:
        raise _err(rtype, key, "a modifier after ':'", key)
    if dot:
        if p.type != "reference":
            raise _err(
                rtype,
                key,
                f"a chain only through a reference parameter ({name} is a {p.type})",
                key,
            )
        if not rest:
            raise _err(rtype, key, "a parameter name after '.'", key)
        if depth >= 3:
            raise _err(rtype, key, "at most 3 chained parameters", key)
        targets = (mod,) if mod else p.targets
        if mod and (not is_resource_type(mod) or (p.targets and mod not in p.targets)):
            raise _err(
                rtype,
                key,
                f"a target type of {name}: {', '.join(p.targets) or 'a FHIR resource type'}",
                mod,
            )
        if not targets:
            raise _err(rtype, key, f"{name}:Type.{rest} (give the target type of the chain)", key)
        inner_name = rest.partition(".")[0].partition(":")[0]
        usable = [t for t in targets if lookup(t, inner_name) is not None]
        if not usable:
            raise _err(
                rtype, key, f"a search parameter of {' or '.join(targets)} after '.'", inner_name
            )
        inner = tuple(_parse_items(t, [(rest, text)], depth + 1) for t in usable)
        return Clause(p, mod, (Chain(inner),))
    is_type_modifier = p.type == "reference" and mod is not None and is_resource_type(mod)
    if is_type_modifier and p.targets and mod not in p.targets:
        raise _err(rtype, key, f"a target type of {name}: {', '.join(p.targets)}", mod)
    if mod is not None and mod not in MODIFIERS[p.type] and not is_type_modifier:
        allowed = ", ".join(MODIFIERS[p.type]) or "none"
        if p.type == "reference":
            allowed += ", or a target resource type"
        raise _err(rtype, key, f"a modifier of a {p.type} parameter ({allowed})", mod)
    if mod == "missing":
        if text not in ("true", "false"):
            raise _err(rtype, key, "true or false", text)
        return Clause(p, mod, (MissingValue(text == "true"),))
    values: list[Value] = []
    for piece in _UNESCAPED_COMMA.split(text):
        if piece == "":
            raise _err(rtype, key, "no empty value between commas", text)
        values.append(_value(rtype, p, mod, key, piece))
    return Clause(p, mod, tuple(values))


def _value(rtype: str, p: SearchParam, mod: str | None, key: str, piece: str) -> Value:
    if p.type == "string":
        return StringValue(_unescape(piece))
    if p.type in ("token", "uri"):
        return _token_value(rtype, key, piece)
    if p.type == "date":
        return _date_value(rtype, key, piece)
    if p.type in ("quantity", "number"):
        return _quantity_value(rtype, key, piece)
    if p.type == "reference":
        return _reference_value(rtype, p, mod, piece)
    # _id
    if not ID_RE.match(piece):
        raise _err(rtype, key, "a FHIR id ([A-Za-z0-9-.], up to 64 characters)", piece)
    return TokenValue(None, piece)


def _int(rtype: str, name: str, text: str) -> int:
    if not text.isdigit():
        raise _err(rtype, name, "a whole number >= 0", text)
    return int(text)


def _include(rtype: str, key: str, text: str, rev: bool) -> list[Include]:
    name, _, mod = key.partition(":")
    if mod not in ("", "iterate", "recurse"):
        raise _err(rtype, key, f"{name} or {name}:iterate", key)
    iterate = bool(mod)
    out: list[Include] = []
    for piece in text.split(","):
        if piece == "*":
            out.append(Include(rtype if not rev else "*", "*", None, iterate))
            continue
        parts = piece.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise _err(rtype, key, "SourceType:param[:TargetType] or *", piece)
        source, pname = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if not is_resource_type(source):
            raise _err(rtype, key, "a FHIR resource type before ':'", source)
        if not rev and not iterate and source != rtype:
            raise _err(rtype, key, f"{rtype}:param (the searched type) unless :iterate", piece)
        if pname != "*":
            p = lookup(source, pname)
            if p is None or p.type != "reference":
                raise _err(rtype, key, f"a reference parameter of {source}", pname)
            if target is not None and (
                not is_resource_type(target) or (p.targets and target not in p.targets)
            ):
                raise _err(rtype, key, f"a target type of {source}:{pname}", target)
        if rev and not iterate and target is not None and target != rtype:
            raise _err(rtype, key, f"target {rtype} (the searched type)", target)
        out.append(Include(source, pname, target, iterate))
    return out


def _parse_items(rtype: str, items: list[tuple[str, str]], depth: int) -> SearchQuery:
    clauses: list[Clause] = []
    sort: list[SortKey] = []
    count: int | None = None
    offset = 0
    include: list[Include] = []
    revinclude: list[Include] = []
    seen_control: set[str] = set()
    for key, text in items:
        base = key.partition(":")[0]
        if base in ("_sort", "_count", "_offset") and depth > 0:
            raise _err(rtype, key, "a filter parameter inside a chain", key)
        if base in ("_sort", "_count", "_offset"):
            if base in seen_control:
                raise _err(rtype, key, f"{base} at most once", text)
            seen_control.add(base)
            if key != base:
                raise _err(rtype, key, f"{base} without a modifier", key)
        if key == "_count":
            count = _int(rtype, key, text)
        elif key == "_offset":
            offset = _int(rtype, key, text)
        elif key == "_sort":
            for piece in text.split(","):
                desc = piece.startswith("-")
                pname = piece[1:] if desc else piece
                p = lookup(rtype, pname)
                if p is None:
                    raise _err(
                        rtype, "_sort", f"[-]param with a search parameter of {rtype}", piece
                    )
                sort.append(SortKey(p, desc))
        elif base in ("_include", "_revinclude"):
            if depth > 0:
                raise _err(rtype, key, "a filter parameter inside a chain", key)
            (include if base == "_include" else revinclude).extend(
                _include(rtype, key, text, base == "_revinclude")
            )
        else:
            clauses.append(_clause(rtype, key, text, depth))
    return SearchQuery(
        rtype, tuple(clauses), tuple(sort), count, offset, tuple(include), tuple(revinclude)
    )


def parse(
    resource_type: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None = None
) -> SearchQuery:
    """Parse search parameters for ``resource_type`` into a :class:`SearchQuery`.

    A mapping value that is a list means the parameter is repeated (AND); commas inside one
    value mean OR.

    >>> q = parse("Patient", {"birthdate": ["ge1950", "lt1960-06"], "gender": "female,other"})
    >>> len(q.clauses), len(q.clauses[2].values)
    (3, 2)
    >>> parse("Patient", {"birthdate": "1950-13"})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.SearchError: Patient: birthdate: expected a date like [prefix]YYYY[-MM[-DD[Thh:mm[:ss][zone]]]] (prefixes eq ne gt lt ge le sa eb ap) (found '1950-13')
    """
    if not isinstance(resource_type, str) or not is_resource_type(resource_type):
        raise _err(str(resource_type), "resourceType", "a FHIR resource type", resource_type)
    params_for(resource_type)
    return _parse_items(resource_type, _as_items(params, resource_type), 0)
