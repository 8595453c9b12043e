"""Import FHIR Bundles and Bulk NDJSON through a Session, any number of files in any order.

The files given (a directory stands for the ``.ndjson`` and Bundle ``.json`` files in it)
are ordered by what they refer to: a file that defines resources others point at (the
practice of a ``generate --format bundle`` folder, Synthea's hospital and practitioner
files) is imported before them, and files that refer to each other form one unit. Each
unit is one all-or-nothing transaction with one Provenance; every write in it runs through
the session's checks (validation, access, labels, audit).

Every problem found is reported, not only the first: bad JSON lines, structural problems
and rule checks of every resource of every file, each named by its place, e.g.
``Observation.ndjson:1260 Observation/abc: code.coding[0].code: expected ...`` or
``practice.json Bundle.entry[3] Organization/x: ...``. When some units fail, the others
still go in; :class:`~ehr_sandbox.errors.ImportFailed` then says exactly which files went in
(with counts) and which did not (with every error). Each refused unit leaves an audit event.

>>> import json, tempfile, pathlib
>>> from ehr_sandbox.sandbox import Sandbox
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "b.ndjson").write_text(json.dumps({"resourceType": "Observation", "id": "o1",
...     "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}) + "\\n")
>>> _ = (d / "a.ndjson").write_text(json.dumps({"resourceType": "Patient", "id": "p1"}) + "\\n")
>>> import_paths(Sandbox.empty().system_session(), [d / "b.ndjson", d / "a.ndjson"])
{'Observation': 1, 'Patient': 1}
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from ehr_sandbox.errors import (
    DataQualityWarning,
    ImportFailed,
    NotFound,
    SandboxError,
    ValidationError,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = ["UNIT_POLICIES", "expand_paths", "import_paths", "visible_exists", "visible_finder"]


def visible_exists(session: Session):
    """``exists(type, id)`` as the session sees it (hidden looks absent).

    Bundle planning asks it whether a reference target exists, so an import can never learn
    of a record its session may not see.

    Parameters
    ----------
    session : Session

    Returns
    -------
    callable
        ``(resource type, id) -> bool``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> pid = sb.grader_session().search("Patient").first()["id"]
    >>> visible_exists(sb.login("dr.patel"))("Patient", pid), visible_exists(sb.login("dr.nguyen"))("Patient", pid)
    (True, False)
    """

    def exists(rtype: str, rid: str) -> bool:
        return session.exists(f"{rtype}/{rid}")

    return exists


def visible_finder(session: Session):
    """``find(type, query) -> ids`` through the session's search.

    Bundle planning resolves conditional references and creates (``Patient?identifier=...``)
    with it.

    Parameters
    ----------
    session : Session

    Returns
    -------
    callable
        ``(resource type, query string) -> list of ids``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> pid = sb.grader_session().search("Patient").first()["id"]
    >>> mrn = sb.grader_session().read("Patient", pid)["identifier"][0]["value"]
    >>> visible_finder(sb.login("dr.patel"))("Patient", f"identifier={mrn}") == [pid]
    True
    >>> visible_finder(sb.login("dr.nguyen"))("Patient", f"identifier={mrn}")
    []
    """

    def find(rtype: str, query: str) -> list[str]:
        return [
            r["id"] for r in session.search(rtype, parse_qsl(query, keep_blank_values=True)).fetch()
        ]

    return find


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The files to import: a directory stands for its ``*.ndjson`` and ``*.json`` files.

    >>> expand_paths(["/nonexistent/x.json"])
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.NotFound: nothing to import at 'x.json'
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.ndjson")) + sorted(path.glob("*.json"))
            if not found:
                raise ValidationError(
                    path.name, "(directory)", "a directory of .ndjson or Bundle .json files"
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise NotFound(f"nothing to import at {path.name!r}")
    if not files:
        raise ValidationError("import", "paths", "at least one file or directory to import")
    return files


@dataclass
class _Source:
    """One file: its entries, each with the place messages name."""

    path: Path
    name: str
    index: int
    bundle_type: str = "collection"
    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    errors: list[ValidationError] = field(default_factory=list)
    defines: set[str] = field(default_factory=set)
    refers: set[str] = field(default_factory=set)
    has_patient: bool = False


def _display_names(files: list[Path]) -> list[str]:
    names = [f.name for f in files]
    if len(set(names)) == len(names):
        return names
    return [str(Path(f.parent.name) / f.name) for f in files]


def _read(path: Path, name: str, index: int) -> _Source:
    src = _Source(path, name, index)
    if path.suffix == ".ndjson":
        with path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{name}:{lineno}"
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    src.errors.append(
                        ValidationError(where, "(line)", "one JSON resource per line", why=str(exc))
                    )
                    continue
                if not isinstance(obj, dict) or not isinstance(obj.get("resourceType"), str):
                    src.errors.append(ValidationError(where, "resourceType", "a FHIR resource"))
                    continue
                src.entries.append((where, {"resource": obj}))
    else:
        try:
            data = orjson.loads(path.read_bytes())
        except OSError as exc:
            src.errors.append(ValidationError(name, "(file)", "a readable file", why=str(exc)))
            return src
        except orjson.JSONDecodeError as exc:
            src.errors.append(ValidationError(name, "(file)", "valid JSON", why=str(exc)))
            return src
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            found = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
            src.errors.append(
                ValidationError(
                    name, "resourceType", "a FHIR Bundle (or a .ndjson file)", found=found
                )
            )
            return src
        src.bundle_type = data.get("type")  # type: ignore[assignment]
        if src.bundle_type not in ("transaction", "collection"):
            src.errors.append(
                ValidationError(
                    name, "Bundle.type", "transaction or collection", found=src.bundle_type
                )
            )
            return src
        entries = data.get("entry", [])
        if not isinstance(entries, list):
            src.errors.append(ValidationError(name, "Bundle.entry", "a list of entries"))
            return src
        src.entries = [(f"{name} Bundle.entry[{i}]", e) for i, e in enumerate(entries)]
    _index(src)
    return src


def _index(src: _Source) -> None:
    """What the file defines and what it refers to (to order files by dependency)."""
    for _, entry in src.entries:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict):
            continue
        rtype = res.get("resourceType")
        if rtype == "Patient":
            src.has_patient = True
        if isinstance(res.get("id"), str):
            src.defines.add(f"{rtype}/{res['id']}")
        for ident in res.get("identifier") or ():
            if isinstance(ident, dict):
                src.defines.add(f"{rtype}?identifier={ident.get('system')}|{ident.get('value')}")
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            src.defines.add(full_url)
        for ref in _references(res):
            src.refers.add(_normal(ref))
    src.refers -= src.defines


def _normal(ref: str) -> str:
    """A reference as the defining file names it: ``Type/id`` (versions dropped) or a
    conditional ``Type?identifier=...``.

    >>> _normal("Patient/a/_history/2"), _normal("Patient?identifier=s|1")
    ('Patient/a', 'Patient?identifier=s|1')
    """
    if "/_history/" in ref:
        ref = ref.split("/_history/", 1)[0]
    if "?" in ref:
        rtype, _, query = ref.partition("?")
        pairs = parse_qsl(query, keep_blank_values=True)
        if len(pairs) == 1 and pairs[0][0] == "identifier":
            return f"{rtype}?identifier={pairs[0][1]}"
    return ref


def _references(node: Any) -> Iterator[str]:
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            ref = cur.get("reference")
            if isinstance(ref, str):
                yield ref
            stack.extend(v for v in cur.values() if isinstance(v, dict | list))
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, dict | list))


def _units(sources: list[_Source]) -> list[list[_Source]]:
    """Group files that refer to each other; order groups so targets come first.

    Ties keep shared files (no Patient) first, then the order given.
    """
    owner: dict[str, int] = {}
    for s in sources:
        for d in s.defines:
            owner.setdefault(d, s.index)
    deps = {s.index: {owner[r] for r in s.refers if r in owner} - {s.index} for s in sources}
    # Tarjan's strongly connected components
    order: list[list[int]] = []
    index_of: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    counter = [0]

    def visit(v: int) -> None:
        index_of[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(deps[v]):
            if w not in index_of:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index_of[w])
        if low[v] == index_of[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            order.append(sorted(comp))

    for s in sources:
        if s.index not in index_of:
            visit(s.index)
    comp_of = {i: n for n, comp in enumerate(order) for i in comp}
    by_index = {s.index: s for s in sources}
    needs = {n: {comp_of[d] for i in comp for d in deps[i]} - {n} for n, comp in enumerate(order)}
    done: list[int] = []
    left = set(range(len(order)))

    def key(n: int) -> tuple[bool, int]:
        return (any(by_index[i].has_patient for i in order[n]), min(order[n]))

    while left:
        ready = [n for n in left if needs[n] <= set(done)]
        pick = min(ready, key=key)
        done.append(pick)
        left.discard(pick)
    return [[by_index[i] for i in order[n]] for n in done]


def _located(exc: SandboxError, where: str) -> list[ValidationError]:
    """``exc`` (and each problem it lists) prefixed with the entry's place."""
    if isinstance(exc, ValidationError):
        return [
            ValidationError(f"{where} {e.resource}", e.path, e.expected, found=e.found, why=e.why)
            for e in (exc.errors or [exc])
        ]
    return [ValidationError(where, "(write)", "a write the sandbox accepts", why=str(exc))]


def _plan(
    session: Session, src: _Source
) -> tuple[list[Any], list[ValidationError], frozenset[str]]:
    from ehr_sandbox.bundles import plan_collecting

    return plan_collecting(
        [e for _, e in src.entries],
        src.bundle_type,
        exists=visible_exists(session),
        find=visible_finder(session),
        wheres=[w for w, _ in src.entries],
        # a user's new records get server-assigned ids (a chosen id could probe for hidden
        # records); the system account's imports keep theirs
        server_ids=session.context.role_info.relationship != "bypass",
    )


class _RollBack(Exception):
    """Internal: undo a unit's writes (it has problems, or it only runs the checks)."""


def _apply(
    session: Session,
    unit: list[_Source],
    plans: list[list[Any]],
    *,
    known: frozenset[str],
    commit: bool,
) -> tuple[dict[str, dict[str, int]], list[ValidationError]]:
    """Write a unit's plans in one transaction, collecting every rule problem.

    With problems (or ``commit=False``) everything is rolled back: the writes only served
    to run the rule checks of every resource, so all problems are reported in one run.
    """
    planned = frozenset(w.ref for plan in plans for w in plan) | known
    counts: dict[str, dict[str, int]] = {}
    problems: list[ValidationError] = []
    written: list[dict[str, Any]] = []
    try:
        with session.atomic():
            for src, plan in zip(unit, plans, strict=True):
                file_counts = counts.setdefault(src.name, {})
                wheres = [w for w, _ in src.entries]
                for w in plan:
                    if w.action == "exists":
                        continue
                    try:
                        saved = _write_one(session, w, planned)
                    except SandboxError as exc:
                        problems.extend(_located(exc, wheres[w.entry_index]))
                        continue
                    written.append(saved)
                    rtype = saved["resourceType"]
                    file_counts[rtype] = file_counts.get(rtype, 0) + 1
            if problems or not commit:
                raise _RollBack
            targets = [
                f"{r['resourceType']}/{r['id']}/_history/{r['meta']['versionId']}"
                for r in written
                if r.get("meta", {}).get("versionId")
            ]
            if targets:
                session.record_provenance(targets, "import")
    except _RollBack:
        return {}, problems
    return counts, problems


def _write_one(session: Session, w: Any, planned: frozenset[str]) -> dict[str, Any]:
    from ehr_sandbox.records.writes import WriteRequest

    if w.action == "create":
        return session.write(
            WriteRequest(
                "create",
                w.resource,
                activity="import",
                keep_id=True,
                strict=False,
                provenance=False,
                planned=planned,
            )
        )
    res = dict(w.resource)
    if w.expected_version:
        res["meta"] = {**res.get("meta", {}), "versionId": w.expected_version}
    else:
        try:
            found = session.read(res["resourceType"], res["id"])
        except NotFound:
            found = None
        if found is not None:
            res["meta"] = {**res.get("meta", {}), "versionId": found["meta"]["versionId"]}
    return session.write(
        WriteRequest(
            "update", res, activity="update", strict=False, provenance=False, planned=planned
        )
    )


UNIT_POLICIES = ("refuse", "as-text")
"""What an import does with a Quantity whose UCUM code is not UCUM: refuse the file (the
default), or keep the unit as text only (:func:`~ehr_sandbox.validation.r4b.nonucum_units_as_text`)."""


def import_paths(
    session: Session, paths: Iterable[str | Path], *, units: str = "refuse"
) -> dict[str, int]:
    r"""Import Bundle files (``.json``), NDJSON files and directories; returns counts by type.

    Parameters
    ----------
    session : Session
        Who imports (every write runs through its checks).
    paths : iterable of str or Path
        Files and directories, in any order.
    units : {"refuse", "as-text"}
        A Quantity that names UCUM with a code that is not UCUM (``bananas``, ``(score)``)
        refuses its file by default. ``"as-text"`` keeps such a unit as ``Quantity.unit``
        text only and drops its ``system`` and ``code``; a :class:`~ehr_sandbox.errors.
        DataQualityWarning` then says how many were changed.

    Returns
    -------
    dict
        Resources imported, by type.

    Raises
    ------
    ImportFailed
        When any file was refused: ``.imported`` maps each file that went in to its counts,
        ``.refused`` each file that did not to its errors; ``.errors`` lists every problem.
    NotFound
        When a path does not exist (nothing is imported).

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> from ehr_sandbox.errors import ImportFailed
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "good.ndjson").write_text(json.dumps({"resourceType": "Patient", "id": "n1"}) + "\n")
    >>> _ = (d / "bad.ndjson").write_text(json.dumps({"resourceType": "Patient", "gender": "often"}) + "\n")
    >>> s = Sandbox.empty().system_session()
    >>> import_paths(s, [d / "good.ndjson"])
    {'Patient': 1}
    >>> try:
    ...     import_paths(s, [d / "bad.ndjson"])
    ... except ImportFailed as e:
    ...     print(sorted(e.refused), e.imported)
    ['bad.ndjson'] {}
    """
    if units not in UNIT_POLICIES:
        raise ValidationError("import", "units", " or ".join(UNIT_POLICIES), found=units)
    files = expand_paths(paths)
    names = _display_names(files)
    sources = [_read(f, n, i) for i, (f, n) in enumerate(zip(files, names, strict=True))]
    if units == "as-text":
        _units_as_text(sources)
    imported: dict[str, dict[str, int]] = {}
    refused: dict[str, list[ValidationError]] = {}
    for unit in _units(sources):
        unit_names = [s.name for s in unit]
        blocked = sorted(
            {
                name
                for s in unit
                for name in refused
                if name not in unit_names and s.refers & _defined_by(sources, name)
            }
        )
        problems: list[ValidationError] = [e for s in unit for e in s.errors]
        if blocked:
            problems.insert(
                0,
                ValidationError(
                    " + ".join(unit_names),
                    "(references)",
                    f"the resources of {', '.join(blocked)} it refers to",
                    why=f"not imported because {', '.join(blocked)} was not imported",
                ),
            )
        known: frozenset[str] = frozenset().union(*(_defined_by(sources, b) for b in blocked))
        plans: list[list[Any]] = []
        for s in unit:
            plan, structural, left_out = _plan(session, s)
            plans.append(plan)
            problems.extend(structural)
            known |= left_out
        stage = "structure" if problems else "rules"
        counts, rule_problems = _apply(session, unit, plans, known=known, commit=not problems)
        problems.extend(rule_problems)
        if problems:
            for s in unit:
                refused[s.name] = [e for e in problems if _names(e, s.name)] or problems
            _audit_refusal(session, unit_names, problems, stage=stage)
            continue
        imported.update(counts)
    if refused:
        raise ImportFailed(imported, refused)
    total: dict[str, int] = {}
    for counts in imported.values():
        for rtype, n in counts.items():
            total[rtype] = total.get(rtype, 0) + n
    return dict(sorted(total.items()))


def _units_as_text(sources: list[_Source]) -> None:
    from ehr_sandbox.validation.r4b import nonucum_units_as_text

    changed: list[str] = []
    for src in sources:
        for _, entry in src.entries:
            if isinstance(entry, dict):
                changed += nonucum_units_as_text(entry.get("resource"))
    if changed:
        shown = ", ".join(sorted(set(changed))[:5])
        warnings.warn(
            f"{len(changed)} quantities named UCUM with a code that is not UCUM ({shown}): "
            "kept as unit text only (system and code dropped)",
            DataQualityWarning,
            stacklevel=3,
        )


def _defined_by(sources: list[_Source], name: str) -> set[str]:
    return next((s.defines for s in sources if s.name == name), set())


def _names(err: ValidationError, name: str) -> bool:
    return err.resource == name or err.resource.startswith((f"{name}:", f"{name} "))


def _audit_refusal(
    session: Session, names: list[str], problems: list[ValidationError], *, stage: str
) -> None:
    first = problems[0]
    session.audit_operation(
        "import",
        "8",
        query=" + ".join(names),
        detail=f"refused at the {stage} stage ({len(problems)} problems); first: {first}",
    )
