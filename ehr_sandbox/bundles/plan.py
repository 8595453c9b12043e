"""Plan the writes of a transaction/collection Bundle or of Bulk NDJSON resources (pure).

Planning validates every entry (structurally, with :func:`synthetic.fhir.validate`), decides
ids, resolves ``urn:uuid`` fullUrls, contained (``#id``) and conditional (``Type?query``)
references and conditional creates (``ifNoneExist``) - all before anything is written, so an
invalid Bundle is rejected whole with the entry index and field named.

Ids: a resource's own id is kept when it is a valid FHIR id (Synthea's UUIDs are), else the
UUID of a ``urn:uuid:`` fullUrl, else a UUID derived from the entry's content. A create whose
``Type/id`` already exists is planned as ``exists``: the stored resource is the same entity
(Synthea repeats its organizations and practitioners in every patient Bundle) and is kept
as it is; references to the entry point at it.

>>> b = {"resourceType": "Bundle", "type": "transaction", "entry": [
...   {"fullUrl": "urn:uuid:5b3e0e3e-0b1e-4c1e-9b1e-0e3e0b1e4c1e",
...    "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
...   {"fullUrl": "urn:uuid:6c4f1f4f-1c2f-4d2f-8c2f-1f4f1c2f4d2f",
...    "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
...                 "subject": {"reference": "urn:uuid:5b3e0e3e-0b1e-4c1e-9b1e-0e3e0b1e4c1e"}},
...    "request": {"method": "POST", "url": "Observation"}}]}
>>> plan = plan_bundle(b, exists=lambda t, i: False, find=lambda t, q: [])
>>> [(w.action, w.ref) for w in plan]
[('create', 'Patient/5b3e0e3e-0b1e-4c1e-9b1e-0e3e0b1e4c1e'), ('create', 'Observation/6c4f1f4f-1c2f-4d2f-8c2f-1f4f1c2f4d2f')]
>>> plan[1].resource["subject"]
{'reference': 'Patient/5b3e0e3e-0b1e-4c1e-9b1e-0e3e0b1e4c1e'}
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ehr_sandbox.bundles.references import Finder, copy_with_references
from ehr_sandbox.errors import NotFound, ValidationError
from ehr_sandbox.references import ID_RE, split_reference
from synthetic.fhir import is_resource_type, validate

BUNDLE_TYPES = ("transaction", "collection")
"""Bundle types that can be imported (a batch is not atomic; a searchset is a result, not data)."""

_NS = uuid.UUID("0d9c1c7e-3a8e-5b7e-9c3e-7e1a3b5c7d9e")

Exists = Callable[[str, str], bool]
"""``exists(resource_type, id) -> bool`` against the store."""


@dataclass
class PlannedWrite:
    """One write of a plan: ``create``, ``update`` or ``exists`` (nothing to write).

    >>> PlannedWrite(0, "create", {"resourceType": "Patient", "id": "a"}).ref
    'Patient/a'
    """

    entry_index: int
    action: str
    resource: dict[str, Any]
    full_url: str | None = None
    expected_version: str | None = None
    chosen: str | None = None
    """``Type/id`` the entry asked for when the server assigned another (references to it
    in the same Bundle or file follow)."""

    @property
    def ref(self) -> str:
        """``Type/id`` of the written (or existing) resource.

        Examples
        --------
        >>> PlannedWrite(3, "exists", {"resourceType": "Practitioner", "id": "prac-1"}).ref
        'Practitioner/prac-1'
        """
        return f"{self.resource['resourceType']}/{self.resource['id']}"


def _derived_id(resource: dict[str, Any], index: int) -> str:
    digest = hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return str(uuid.uuid5(_NS, f"{index}:{digest}"))


def _pick_id(resource: dict[str, Any], full_url: str | None, index: int) -> str:
    rid = resource.get("id")
    if isinstance(rid, str) and ID_RE.match(rid):
        return rid
    if full_url and full_url.startswith("urn:uuid:") and ID_RE.match(full_url[9:]):
        return full_url[9:]
    if full_url:
        parts = split_reference(full_url)
        if parts and parts[0] == resource.get("resourceType"):
            return parts[1]
    return _derived_id(resource, index)


def _if_match(value: Any, where: str) -> str | None:
    if value is None:
        return None
    text = str(value)
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise ValidationError(where, "request.ifMatch", 'a version like W/"3"', found=value)
    return text


def _entry_errors(
    where: str, errors: list[tuple[str, str]], resource: Any
) -> list[ValidationError]:
    """One error per structural problem, each naming the entry and the resource."""
    label = _label(resource)
    return [
        ValidationError(
            f"{where} {label}" if label else where,
            path,
            "a valid FHIR R4B value",
            why=msg,
            found=_value_at(resource, path),
        )
        for path, msg in errors
    ]


def _label(resource: Any) -> str:
    """``Type/id`` (or the type alone) of a resource, for messages."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return ""
    rid = resource.get("id")
    rtype = resource["resourceType"]
    return f"{rtype}/{rid}" if isinstance(rid, str) and ID_RE.match(rid) else rtype


def _value_at(resource: Any, path: str) -> Any:
    node = resource
    for part in path.replace("[", ".").replace("]", "").split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node if not isinstance(node, dict | list) else None


def _plan_entry(
    i: int,
    entry: Any,
    bundle_type: str,
    exists: Exists,
    find: Finder,
    where: str,
    server_ids: bool = False,
) -> tuple[PlannedWrite, list[ValidationError]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
        raise ValidationError(
            where,
            "resource",
            "an entry with a resource",
            found=entry if not isinstance(entry, dict) else None,
        )
    resource = entry["resource"]
    errors = validate(resource)
    problems = _entry_errors(where, errors, resource) if errors else []
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not is_resource_type(rtype):
        raise (
            problems[0]
            if problems
            else ValidationError(where, "resource.resourceType", "a FHIR resource type")
        )
    full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    # shallow on purpose: the reference rewrite below makes the deep copy in one orjson round trip
    res = dict(resource)
    request = entry.get("request") if bundle_type == "transaction" else None
    if bundle_type == "transaction":
        if not isinstance(request, dict):
            raise ValidationError(where, "request", "a request with method POST or PUT")
        method = request.get("method")
        if method not in ("POST", "PUT"):
            raise ValidationError(
                where,
                "request.method",
                "POST or PUT (the sandbox never deletes: use entered-in-error)",
                found=method,
            )
        url = request.get("url")
        if not isinstance(url, str) or not url.startswith(rtype):
            raise ValidationError(
                where, "request.url", f"{rtype}, {rtype}/id or {rtype}?query", found=url
            )
        if method == "PUT":
            expected = _if_match(request.get("ifMatch"), where)
            if "?" in url:
                ids = find(rtype, url.partition("?")[2])
                if len(ids) > 1:
                    raise ValidationError(
                        where,
                        "request.url",
                        f"a condition matching at most one {rtype}",
                        found=url,
                        why=f"{len(ids)} matched",
                    )
                rid = ids[0] if ids else _pick_id(res, full_url, i)
            else:
                parts = split_reference(url)
                if parts is None or parts[0] != rtype:
                    raise ValidationError(where, "request.url", f"{rtype}/id", found=url)
                rid = parts[1]
                if res.get("id") not in (None, rid):
                    raise ValidationError(
                        where,
                        "resource.id",
                        f"the id in request.url ({rid})",
                        found=res.get("id"),
                    )
            res["id"] = rid
            action = "update" if exists(rtype, rid) else "create"
            if server_ids and action == "create":
                # No update-as-create for users: an absent and a hidden id answer the same.
                raise NotFound(
                    f"{where}: {rtype}/{rid} was not found (PUT updates an existing resource; "
                    "POST creates one and the server assigns its id)"
                )
            return PlannedWrite(i, action, res, full_url, expected), problems
        cond = request.get("ifNoneExist")
        if isinstance(cond, str) and cond:
            ids = find(rtype, cond.partition("?")[2] if "?" in cond else cond)
            if len(ids) > 1:
                raise ValidationError(
                    where,
                    "request.ifNoneExist",
                    f"a condition matching at most one {rtype}",
                    found=cond,
                    why=f"{len(ids)} matched",
                )
            if ids:
                return PlannedWrite(
                    i, "exists", {"resourceType": rtype, "id": ids[0]}, full_url
                ), problems
    if server_ids and bundle_type == "transaction":
        # FHIR: a POST ignores the client's id. A fresh random one cannot probe for records.
        res["id"] = uuid.uuid4().hex
        return PlannedWrite(i, "create", res, full_url), problems
    rid = _pick_id(res, full_url, i)
    res["id"] = rid
    if exists(rtype, rid):
        return PlannedWrite(i, "exists", {"resourceType": rtype, "id": rid}, full_url), problems
    if server_ids:
        # A user's new record gets a server-assigned id, as a POST does: keeping the chosen
        # one when it is free but not when a hidden record holds it would tell which ids
        # hidden records hold. References to the chosen id in the same Bundle or file follow.
        res["id"] = uuid.uuid4().hex
        return PlannedWrite(i, "create", res, full_url, chosen=f"{rtype}/{rid}"), problems
    return PlannedWrite(i, "create", res, full_url), problems


def _plan_entries(
    entries: Iterable[Any],
    bundle_type: str,
    *,
    exists: Exists,
    find: Finder,
    label: str,
    wheres: Iterable[str] | None = None,
    server_ids: bool = False,
) -> list[PlannedWrite]:
    plan, problems, _ = plan_collecting(
        entries,
        bundle_type,
        exists=exists,
        find=find,
        label=label,
        wheres=wheres,
        server_ids=server_ids,
    )
    if problems:
        raise combined(problems)
    return plan


def plan_collecting(
    entries: Iterable[Any],
    bundle_type: str,
    *,
    exists: Exists,
    find: Finder,
    label: str = "Bundle.entry",
    wheres: Iterable[str] | None = None,
    server_ids: bool = False,
) -> tuple[list[PlannedWrite], list[ValidationError], frozenset[str]]:
    """Plan what can be planned and collect every problem (for imports that report all).

    Returns the plan of the entries without problems, every problem found, and the
    ``Type/id`` of the entries left out (so references to them are not reported twice).

    >>> plan, problems, left_out = plan_collecting(
    ...     [{"resource": {"resourceType": "Patient", "id": "a"}},
    ...      {"resource": {"resourceType": "Patient", "id": "b", "gender": 5}}],
    ...     "collection", exists=lambda t, i: False, find=lambda t, q: [])
    >>> [w.ref for w in plan], [p.resource for p in problems], sorted(left_out)
    (['Patient/a'], ['Bundle.entry[1] Patient/b'], ['Patient/b'])
    """
    plan: list[PlannedWrite] = []
    problems: list[ValidationError] = []
    where_of: dict[int, str] = {}
    left_out: set[str] = set()
    full_urls: dict[str, str] = {}
    names = iter(wheres) if wheres is not None else None
    for i, entry in enumerate(entries):
        where = next(names) if names is not None else f"{label}[{i}]"
        where_of[i] = where
        try:
            write, errs = _plan_entry(i, entry, bundle_type, exists, find, where, server_ids)
        except ValidationError as exc:
            problems.append(exc)
            _remember(entry, i, left_out, full_urls)
            continue
        if errs:
            problems.extend(errs)
            left_out.add(write.ref)
            if write.full_url:
                full_urls[write.full_url] = write.ref
            continue
        plan.append(write)
    seen: dict[str, int] = {}
    for w in plan:
        if w.action != "exists":
            asked = w.chosen or w.ref
            if asked in seen:
                problems.append(
                    ValidationError(
                        f"{where_of[w.entry_index]} {asked}",
                        "id",
                        f"an id not already used by {where_of[seen[asked]]}",
                        found=asked.partition("/")[2],
                    )
                )
            seen[asked] = w.entry_index
        if w.full_url:
            full_urls[w.full_url] = w.ref
        if w.chosen:
            full_urls[w.chosen] = w.ref
    kept = []
    for w in plan:
        if w.action != "exists":
            try:
                w.resource = copy_with_references(
                    w.resource, full_urls, find=find, where=where_of[w.entry_index]
                )
            except ValidationError as exc:
                problems.append(exc)
                left_out.add(w.ref)
                continue
        kept.append(w)
    return kept, problems, frozenset(left_out)


def _remember(entry: Any, i: int, left_out: set[str], full_urls: dict[str, str]) -> None:
    res = entry.get("resource") if isinstance(entry, dict) else None
    if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
        return
    full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    ref = f"{res['resourceType']}/{_pick_id(res, full_url, i)}"
    left_out.add(ref)
    if full_url:
        full_urls[full_url] = ref


def combined(problems: list[ValidationError]) -> ValidationError:
    """One ValidationError for many: the first one's fields, ``.errors`` listing all.

    >>> e = combined([ValidationError("a", "x", "1"), ValidationError("b", "y", "2")])
    >>> str(e), len(e.errors)
    ('a: x: expected 1. (2 problems in all)', 2)
    """
    flat: list[ValidationError] = []
    for p in problems:
        flat.extend(p.errors or [p])
    first = flat[0]
    more = f"({len(flat)} problems in all)" if len(flat) > 1 else ""
    why = f"{first.why} {more}".strip() if more else first.why
    return ValidationError(
        first.resource, first.path, first.expected, found=first.found, why=why, errors=flat
    )


def plan_bundle(
    bundle: dict[str, Any] | list[dict[str, Any]],
    *,
    exists: Exists,
    find: Finder,
    server_ids: bool = False,
    wheres: Iterable[str] | None = None,
) -> list[PlannedWrite]:
    """Plan a transaction or collection Bundle; raise :class:`ValidationError` on any bad entry.

    A list (Bulk NDJSON lines, e.g. from :func:`read_ndjson_dir`) is planned as by
    :func:`plan_resources`.

    ``wheres`` names each entry in messages (default ``Bundle.entry[i]``), e.g.
    ``practice.json Bundle.entry[3]``. Every problem is reported: the raised error is the
    first and ``.errors`` lists all of them.

    Nothing is written: pass the plan to :func:`~ehr_sandbox.bundles.apply.apply_plan`.

    ``server_ids=True`` (a user's transaction through the Session) applies FHIR's rules with no
    existence oracle: a POST ignores any id the client chose and gets a fresh random one, and a
    PUT only updates a resource the user can see (an absent or hidden one is the same
    :class:`~ehr_sandbox.errors.NotFound`; there is no update-as-create).

    >>> plan_bundle({"resourceType": "Bundle", "type": "batch"}, exists=lambda t, i: False, find=lambda t, q: [])
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Bundle: Bundle.type: expected transaction or collection (found 'batch')
    """
    if isinstance(bundle, list):
        return plan_resources(bundle, exists=exists, find=find)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise ValidationError(
            "Bundle",
            "resourceType",
            "a Bundle",
            found=bundle.get("resourceType") if isinstance(bundle, dict) else bundle,
        )
    btype = bundle.get("type")
    if btype not in BUNDLE_TYPES:
        raise ValidationError("Bundle", "Bundle.type", " or ".join(BUNDLE_TYPES), found=btype)
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ValidationError(
            "Bundle", "Bundle.entry", "a list of entries", found=type(entries).__name__
        )
    return _plan_entries(
        entries,
        btype,
        exists=exists,
        find=find,
        label="Bundle.entry",
        server_ids=server_ids,
        wheres=wheres,
    )


def plan_resources(
    resources: Iterable[dict[str, Any]],
    *,
    exists: Exists,
    find: Finder,
    label: str = "ndjson",
    wheres: Iterable[str] | None = None,
) -> list[PlannedWrite]:
    """Plan plain resources (Bulk NDJSON lines) as creates that keep their ids.

    Errors name ``<label>[i]`` (the i-th resource, from 0), or the entry's name in
    ``wheres`` (e.g. ``Observation.ndjson:1260``).

    >>> [w.action for w in plan_resources([{"resourceType": "Patient", "id": "a"}],
    ...                                   exists=lambda t, i: True, find=lambda t, q: [])]
    ['exists']
    """
    return _plan_entries(
        ({"resource": r} for r in resources),
        "collection",
        exists=exists,
        find=find,
        label=label,
        wheres=wheres,
    )
