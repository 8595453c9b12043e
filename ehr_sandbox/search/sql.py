"""Compile a :class:`~ehr_sandbox.search.query.SearchQuery` to SQL over the index table.

Each clause becomes ``seq IN (SELECT seq FROM search_index WHERE ...)`` (``NOT IN`` for
``:not`` and ``:missing=true``), so a search is a few indexed look-ups, not a scan. The same SQL
runs against the store's file and, when rows are encrypted, against a private in-memory copy of
the plaintext index of the candidates (see :mod:`ehr_sandbox.store.store`).

>>> from ehr_sandbox.search.query import parse
>>> sql, args = compile_query(parse("Patient", {"gender": "female"}), blind=str, chain_refs={})
>>> "search_index" in sql and args[:3]
['Patient', 'Patient', 'gender']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ehr_sandbox.search.query import (
    Chain,
    Clause,
    MissingValue,
    RangeValue,
    ReferenceValue,
    SearchQuery,
    StringValue,
    TokenValue,
    Value,
)
from ehr_sandbox.search.registry import covering_param
from ehr_sandbox.search.values import normalize_string

DAY = 86400.0
_TOP = "\U0010ffff"


def blind_capable(clause: Clause) -> bool:
    """True when the clause can run on blind (keyed-hash) index values: equality only.

    Prefix/contains strings, dates and quantities need plaintext; with encryption on they are
    evaluated on decrypted candidates instead.

    >>> from ehr_sandbox.search.query import parse
    >>> [blind_capable(c) for c in parse("Patient", {"gender": "male", "birthdate": "2000"}).clauses]
    [True, False]
    """
    t = clause.param.type
    if t in ("token", "uri", "reference", "special"):
        return True
    if t == "string":
        return clause.modifier in ("exact", "missing")
    return False


def _range_sql(v: RangeValue) -> tuple[str, list[object]]:
    p, lo, hi = v.prefix, v.lo, v.hi
    if p == "eq":
        return "(lo >= ? AND hi <= ?)", [lo, hi]
    if p == "ne":
        return "NOT (lo >= ? AND hi <= ?)", [lo, hi]
    if p == "gt":
        return "(hi > ?)", [hi]
    if p == "lt":
        return "(lo < ?)", [lo]
    if p == "ge":
        return "(hi > ? OR (lo >= ? AND hi <= ?))", [hi, lo, hi]
    if p == "le":
        return "(lo < ? OR (lo >= ? AND hi <= ?))", [lo, lo, hi]
    if p == "sa":
        return "(lo >= ?)", [hi]
    if p == "eb":
        return "(hi <= ?)", [lo]
    # ap: no "now" in a deterministic sandbox, so widen by 10% of the value's own span (>= 1 day)
    w = max(0.1 * (hi - lo), DAY)
    return "(lo < ? AND hi > ?)", [hi + w, lo - w]


def _quantity_sql(v: RangeValue) -> tuple[str, list[object]]:
    p, lo, hi, x = v.prefix, v.lo, v.hi, v.value
    cond: str
    args: list[object]
    if p == "eq":
        cond, args = "(num >= ? AND num < ?)", [lo, hi]
    elif p == "ne":
        cond, args = "NOT (num >= ? AND num < ?)", [lo, hi]
    elif p in ("gt", "sa"):
        cond, args = "(num > ?)", [x]
    elif p in ("lt", "eb"):
        cond, args = "(num < ?)", [x]
    elif p == "ge":
        cond, args = "(num >= ?)", [x]
    elif p == "le":
        cond, args = "(num <= ?)", [x]
    else:
        w = abs(x or 0.0) * 0.1
        cond, args = "(num >= ? AND num <= ?)", [(x or 0.0) - w, (x or 0.0) + w]
    if v.system:
        cond += " AND sys = ?"
        args.append(v.system)
    if v.code:
        cond += " AND (s = ? OR x = ?)"
        args += [v.code, v.code]
    return f"({cond})", args


def _value_sql(
    clause: Clause, v: Value, blind: Callable[[str], str], chain_refs: dict[int, list[str]]
) -> tuple[str, list[object]]:
    t = clause.param.type
    if isinstance(v, StringValue):
        if clause.modifier == "exact":
            return "(x = ?)", [blind(v.text)]
        norm = normalize_string(v.text)
        if clause.modifier == "contains":
            esc = norm.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return "(s LIKE ? ESCAPE '\\')", [f"%{esc}%"]
        return "(s >= ? AND s < ?)", [norm, norm + _TOP]
    if isinstance(v, TokenValue):
        parts: list[str] = []
        args: list[object] = []
        if v.system == "":
            parts.append("sys IS NULL")
        elif v.system is not None:
            parts.append("sys = ?")
            args.append(v.system)
        if v.code is not None:
            parts.append("s = ?")
            args.append(blind(v.code))
        return "(" + " AND ".join(parts) + ")", args
    if isinstance(v, ReferenceValue):
        return f"(s IN ({','.join('?' * len(v.refs))}))", [blind(r) for r in v.refs]
    if isinstance(v, Chain):
        refs = chain_refs.get(id(v), [])
        if not refs:
            return "(0)", []
        return f"(s IN ({','.join('?' * len(refs))}))", [blind(r) for r in refs]
    if isinstance(v, RangeValue):
        if t == "date":
            # date rows have no s: "s IS NULL" lets SQLite range-scan the (rtype, param, s, lo)
            # index, which also holds hi and seq (a date clause is answered from it alone)
            cond, args = _range_sql(v)
            return f"(s IS NULL AND {cond})", args
        return _quantity_sql(v)
    raise TypeError(f"no SQL for {v!r}")  # pragma: no cover - parse only builds the values above


def _positive(clause: Clause) -> bool:
    if clause.modifier == "not":
        return False
    if clause.modifier == "missing":
        return not any(isinstance(v, MissingValue) and v.missing for v in clause.values)
    return True


def clause_sql(
    rtype: str,
    clause: Clause,
    blind: Callable[[str], str],
    chain_refs: dict[int, list[str]],
    *,
    correlated: bool = False,
    row: str = "r",
) -> tuple[str, list[object]]:
    """SQL condition on the resource row ``r`` for one clause (values ORed).

    ``correlated`` checks the clause per candidate row (``EXISTS`` on the row's own index
    entries) instead of collecting every matching row first: cheaper for a range or prefix
    clause when another clause already selected the candidates. ``row`` names the table whose
    ``seq`` the condition is on (``r``, the resource row, by default).

    >>> from ehr_sandbox.search.query import parse
    >>> clause_sql("Patient", parse("Patient", {"_id": "a,b"}).clauses[0], str, {})
    ('r.rid IN (?,?)', ['a', 'b'])
    """
    name = clause.param.name
    if clause.param.type == "special":
        ids = [v.code for v in clause.values if isinstance(v, TokenValue)]
        return f"r.rid IN ({','.join('?' * len(ids))})", list(ids)
    names = param_names(rtype, name)
    marks = "?" if len(names) == 1 else f"({','.join('?' * len(names))})"
    op_in = "=" if len(names) == 1 else "IN"
    if correlated:
        sub = f"SELECT 1 FROM search_index i WHERE i.seq = {row}.seq AND i.param {op_in} {marks}"
        args: list[object] = [*names]
    else:
        sub = f"SELECT seq FROM search_index WHERE rtype = ? AND param {op_in} {marks}"
        args = [rtype, *names]
    positive, negative = (
        ("EXISTS", "NOT EXISTS") if correlated else (f"{row}.seq IN", f"{row}.seq NOT IN")
    )
    if clause.modifier == "missing":
        mv = clause.values[0]
        missing = isinstance(mv, MissingValue) and mv.missing
        return f"{negative if missing else positive} ({sub})", args
    conds: list[str] = []
    for v in clause.values:
        c, a = _value_sql(clause, v, blind, chain_refs)
        conds.append(c)
        args.extend(a)
    op = negative if clause.modifier == "not" else positive
    return f"{op} ({sub} AND ({' OR '.join(conds)}))", args


def param_names(rtype: str, name: str) -> tuple[str, ...]:
    """The ``param`` values of the index rows that hold parameter ``name`` (a reference a
    narrower parameter covers is stored once, under that one).

    >>> param_names("Observation", "subject"), param_names("Observation", "code")
    (('subject', 'patient'), ('code',))
    """
    covered = covering_param(rtype, name)
    return (name,) if covered is None else (name, covered)


def _driver_rank(clause: Clause) -> int:
    """Lower is a better driver: the clause most likely to match few resources."""
    if not _positive(clause):
        return 99
    t = clause.param.type
    if t == "special":
        return 0
    if t == "reference":
        return 1
    if t in ("token", "uri"):
        has_system = any(isinstance(v, TokenValue) and v.system for v in clause.values)
        return 2 if has_system else 3
    if t == "string" and clause.modifier == "exact":
        return 4
    return 5


def _driver(chosen: Sequence[Clause]) -> int | None:
    """Index of the clause that selects the candidates (None: every clause is checked)."""
    ranked = sorted(range(len(chosen)), key=lambda k: _driver_rank(chosen[k]))
    return ranked[0] if ranked and _driver_rank(chosen[ranked[0]]) < 99 else None


def driving_subquery(
    query: SearchQuery,
    *,
    blind: Callable[[str], str],
    chain_refs: dict[int, list[str]],
    clauses: Sequence[Clause] | None = None,
) -> tuple[str, list[object]] | None:
    """``SELECT seq FROM search_index ...`` of the clause :func:`compile_query` drives with:
    a superset of the matches' positions, read from the value index alone. None when no
    clause drives through the index (no positive clause, or ``_id``).

    Parameters
    ----------
    query
        The search.
    blind, chain_refs, clauses
        As for :func:`compile_query`.

    Returns
    -------
    tuple[str, list[object]] or None
        The subquery and its arguments.

    Examples
    --------
    >>> from ehr_sandbox.search.query import parse
    >>> sql, args = driving_subquery(parse("Observation", {"date": "2020", "patient": "p1"}), blind=str, chain_refs={})
    >>> sql.startswith("SELECT seq FROM search_index"), args[:2]
    (True, ['Observation', 'patient'])
    >>> driving_subquery(parse("Observation", {"_id": "o1"}), blind=str, chain_refs={}) is None
    True
    """
    chosen = list(query.clauses if clauses is None else clauses)
    driver = _driver(chosen)
    if driver is None or chosen[driver].param.type == "special":
        return None
    sql, args = clause_sql(query.resource_type, chosen[driver], blind, chain_refs)
    return sql.removeprefix("r.seq IN (").removesuffix(")"), args


def row_checks(
    query: SearchQuery,
    *,
    row: str,
    blind: Callable[[str], str],
    chain_refs: dict[int, list[str]],
    clauses: Sequence[Clause] | None = None,
    correlated: bool = True,
) -> tuple[str, list[object]] | None:
    """Every clause as a condition on the resource at ``{row}.seq`` (ANDed), for a statement
    that already holds the positions of its candidates. None when a clause needs the
    resource row itself (``_id``).

    ``correlated`` checks each candidate's own index rows (``EXISTS``: cheap for a few
    candidates); otherwise each clause's matches are collected once from the value index and
    candidates are looked up in them (``seq IN``: cheap for many).

    Parameters
    ----------
    query
        The search.
    row
        The alias of the table whose ``seq`` column holds a candidate's position.
    blind, chain_refs, clauses
        As for :func:`compile_query`.
    correlated
        Per-candidate checks (True) or membership in each clause's matches (False).

    Returns
    -------
    tuple[str, list[object]] or None
        The condition and its arguments (``1`` for a query without clauses).

    Examples
    --------
    >>> from ehr_sandbox.search.query import parse
    >>> q = parse("Encounter", {"status": "finished"})
    >>> sql, args = row_checks(q, row="e", blind=str, chain_refs={})
    >>> print(sql); args
    EXISTS (SELECT 1 FROM search_index i WHERE i.seq = e.seq AND i.param = ? AND ((s = ?)))
    ['status', 'finished']
    >>> print(row_checks(q, row="e", blind=str, chain_refs={}, correlated=False)[0])
    e.seq IN (SELECT seq FROM search_index WHERE rtype = ? AND param = ? AND ((s = ?)))
    >>> row_checks(parse("Encounter", {"_id": "e1"}), row="e", blind=str, chain_refs={}) is None
    True
    """
    chosen = list(query.clauses if clauses is None else clauses)
    if any(c.param.type == "special" for c in chosen):
        return None
    parts: list[str] = []
    args: list[object] = []
    for clause in chosen:
        c, a = clause_sql(
            query.resource_type, clause, blind, chain_refs, correlated=correlated, row=row
        )
        parts.append(c)
        args.extend(a)
    return (" AND ".join(parts) or "1"), args


def compile_query(
    query: SearchQuery,
    *,
    blind: Callable[[str], str],
    chain_refs: dict[int, list[str]],
    clauses: Sequence[Clause] | None = None,
    columns: str = "r.rid",
    joins: str = "",
    sort: bool = False,
) -> tuple[str, list[object]]:
    """``SELECT r.rid`` (or ``columns``, from ``resources r`` plus ``joins``) of the current resources of the query's type matching every clause.

    ``clauses`` restricts the filter to a subset (the blind-capable ones, with encryption on);
    ``chain_refs`` maps ``id(Chain)`` to the ``Type/id`` references its inner search found.
    One clause - the likeliest to match few resources (``_id``, then a reference, then a
    token...) - selects the candidates through the value index; every other clause is checked
    per candidate on that resource's own index rows. Results come in insertion order, or in
    the query's ``_sort`` order with ``sort=True`` (see :func:`sort_sql`).

    >>> from ehr_sandbox.search.query import parse
    >>> sql, _ = compile_query(parse("Observation", {"date": "2020", "patient": "p1"}), blind=str, chain_refs={})
    >>> sql.index("r.seq IN") > sql.index("EXISTS")  # the reference drives, the date is checked
    True
    """
    rtype = query.resource_type
    chosen = list(query.clauses if clauses is None else clauses)
    driver = _driver(chosen)
    by_id = driver is not None and chosen[driver].param.type == "special"
    # "+r.rtype" keeps SQLite from scanning every resource of the type when an IN list drives
    where = ["+r.rtype = ?" if driver is not None and not by_id else "r.rtype = ?"]
    args: list[object] = [rtype]
    for k, clause in enumerate(chosen):
        c, a = clause_sql(rtype, clause, blind, chain_refs, correlated=k != driver)
        where.append(c)
        args.extend(a)
    order = "r.seq"
    if sort:
        key_sql, key_args = sort_sql(query)
        order = f"{key_sql}, r.seq"
        args.extend(key_args)
    sql = f"SELECT {columns} FROM resources r {joins} WHERE {' AND '.join(where)} ORDER BY {order}"
    return sql, args


def sort_sql(query: SearchQuery) -> tuple[str, list[object]]:
    """``ORDER BY`` terms for the query's ``_sort`` keys, on plaintext index rows.

    The same order as :func:`~ehr_sandbox.search.sort.sort_resources`: a date sorts by the
    start of its earliest value ascending and the end of its latest value descending, a
    resource without a value sorts last in either direction, ties keep insertion order.

    >>> from ehr_sandbox.search.query import parse
    >>> sql, args = sort_sql(parse("Observation", {"_sort": "-date"}))
    >>> "MAX(i.hi)" in sql and "DESC" in sql, args
    (True, ['date', 'date'])
    """
    terms: list[str] = []
    args: list[object] = []
    for key in query.sort:
        p = key.param
        if p.type == "special":
            terms.append("r.rid DESC" if key.descending else "r.rid")
            continue
        if p.type == "date":
            col = "i.hi" if key.descending else "i.lo"
        elif p.type in ("quantity", "number"):
            col = "i.num"
        else:
            col = "i.s"
        names = param_names(query.resource_type, p.name)
        agg = "MAX" if key.descending else "MIN"
        sub = (
            f"(SELECT {agg}({col}) FROM search_index i WHERE i.seq = r.seq "
            f"AND i.param IN ({','.join('?' * len(names))}))"
        )
        terms.append(f"{sub} IS NULL, {sub} {'DESC' if key.descending else 'ASC'}")
        args.extend([*names, *names])
    return ", ".join(terms), args
