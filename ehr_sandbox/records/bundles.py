"""Bundles through the Session: transactions (all or nothing), batches (entry by entry),
imports of Bundles and Bulk NDJSON, and exports of what the session may read.

Planning (``urn:uuid``, conditional and contained references) is :mod:`ehr_sandbox.bundles`;
this module runs each planned write through the session's checks, so every entry is
validated, access-checked, labelled, given Provenance and audited.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import AccessDenied, ConflictError, NotFound, SandboxError, ValidationError
from ehr_sandbox.records.importing import import_paths, visible_exists, visible_finder

__all__ = ["apply_bundle", "export_session", "import_paths"]

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

_STATUS = (
    (AccessDenied, "403 Forbidden"),
    (NotFound, "404 Not Found"),
    (ConflictError, "409 Conflict"),
    (ValidationError, "400 Bad Request"),
)


def _status_of(exc: BaseException) -> str:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return "500 Internal Server Error"


def _outcome(exc: BaseException) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": str(exc)}],
    }


def _batch_entry(session: Session, entry: dict[str, Any]) -> dict[str, Any]:
    request = entry.get("request") or {}
    method = str(request.get("method", "")).upper()
    url = str(request.get("url", ""))
    try:
        if method == "GET":
            if "?" in url:
                from urllib.parse import parse_qsl

                rtype, query = url.split("?", 1)
                found = session.search(rtype, parse_qsl(query, keep_blank_values=True)).bundle()
                return {"resource": found, "response": {"status": "200 OK"}}
            return {"resource": session.read(url), "response": {"status": "200 OK"}}
        if method == "POST":
            saved = session.create(entry.get("resource") or {})
            return {
                "resource": saved,
                "response": {
                    "status": "201 Created",
                    "location": f"{saved['resourceType']}/{saved['id']}/_history/1",
                },
            }
        if method == "PUT":
            saved = session.update(entry.get("resource") or {})
            return {"resource": saved, "response": {"status": "200 OK"}}
        raise ValidationError("Bundle.entry", "request.method", "GET, POST or PUT", found=method)
    except SandboxError as exc:
        return {"response": {"status": _status_of(exc), "outcome": _outcome(exc)}}


def apply_bundle(session: Session, bundle: dict[str, Any]) -> dict[str, Any]:
    """Run a ``batch`` (each entry on its own) or a ``transaction`` (all or nothing).

    A transaction entry that fails rolls every entry back and raises the entry's error,
    prefixed with ``Bundle.entry[i]``. A batch answers each entry with its own status.
    :meth:`Session.transaction` calls this.

    Parameters
    ----------
    session : Session
        Who writes (each entry passes the session's checks).
    bundle : dict
        A Bundle of type ``transaction`` or ``batch``.

    Returns
    -------
    dict
        A ``transaction-response`` or ``batch-response`` Bundle.

    Raises
    ------
    ValidationError
        Not a Bundle, or (transaction) an entry was refused; nothing is written.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
    >>> batch = {"resourceType": "Bundle", "type": "batch", "entry": [
    ...     {"resource": {"resourceType": "Patient", "gender": "female"}, "request": {"method": "POST", "url": "Patient"}},
    ...     {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Observation"}}]}
    >>> [e["response"]["status"][:3] for e in apply_bundle(s, batch)["entry"]]
    ['201', '403']
    >>> apply_bundle(s, {"resourceType": "Patient"})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Bundle: resourceType: expected a Bundle
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise ValidationError("Bundle", "resourceType", "a Bundle")
    if bundle.get("type") == "batch":
        entries = [_batch_entry(session, e) for e in bundle.get("entry", [])]
        return {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
    from ehr_sandbox.bundles import plan_bundle, transaction_response

    try:
        plan = plan_bundle(
            bundle,
            exists=visible_exists(session),
            find=visible_finder(session),
            server_ids=True,
        )
    except ValidationError as exc:
        # a refusal at the structural stage is audited like one at the later stages
        session.audit_operation("transaction", "8", detail=f"refused at the structure stage: {exc}")
        raise
    results = _apply_checked(session, plan, activity="create")
    return transaction_response(plan, results)


def _apply_checked(
    session: Session,
    plan: list[Any],
    *,
    activity: str,
    strict: bool = True,
    provenance_per_write: bool = True,
) -> list[dict[str, Any]]:
    from ehr_sandbox.records.writes import WriteRequest

    results: list[dict[str, Any]] = []
    current = None
    # a bundle's own entries count as existing while it is being written (one transaction)
    planned = frozenset(w.ref for w in plan)
    try:
        with session.atomic():
            for w in plan:
                current = w
                if w.action == "create":
                    results.append(
                        session.write(
                            WriteRequest(
                                "create",
                                w.resource,
                                activity=activity,
                                keep_id=True,
                                strict=strict,
                                provenance=provenance_per_write,
                                planned=planned,
                            )
                        )
                    )
                elif w.action == "update":
                    res = dict(w.resource)
                    if w.expected_version:
                        res["meta"] = {**res.get("meta", {}), "versionId": w.expected_version}
                    elif (found := _visible_current(session, w.ref)) is not None:
                        res["meta"] = {
                            **res.get("meta", {}),
                            "versionId": found["meta"]["versionId"],
                        }
                    results.append(
                        session.write(
                            WriteRequest(
                                "update",
                                res,
                                activity="update",
                                strict=strict,
                                provenance=provenance_per_write,
                                planned=planned,
                            )
                        )
                    )
                else:
                    results.append(session.read(w.ref))
            if not provenance_per_write and results:
                targets = [
                    f"{r['resourceType']}/{r['id']}/_history/{r['meta']['versionId']}"
                    for r in results
                    if r.get("meta", {}).get("versionId")
                ]
                session.record_provenance(targets, activity)
    except SandboxError as exc:
        where = f"Bundle.entry[{current.entry_index}]" if current is not None else "Bundle"
        session.audit_operation("transaction", "8", detail=f"{where}: {exc}")
        raise _with_entry(exc, where) from exc
    return results


def _visible_current(session: Session, ref: str) -> dict[str, Any] | None:
    try:
        return session.read(ref)
    except NotFound:
        return None


def _with_entry(exc: SandboxError, where: str) -> SandboxError:
    if isinstance(exc, ValidationError):
        err = ValidationError(
            f"{where} {exc.resource}", exc.path, exc.expected, found=exc.found, why=exc.why
        )
        err.errors = exc.errors
        return err
    if isinstance(exc, ConflictError):
        return exc
    return type(exc)(f"{where}: {exc}")


def export_session(
    session: Session,
    out_dir: str | Path,
    *,
    format: str = "ndjson",
    types: Iterable[str] | None = None,
) -> dict[str, int]:
    """Export what the session may read: Bulk NDJSON (one file per type) or one Bundle per patient.

    :meth:`Session.export` calls this.

    Parameters
    ----------
    session : Session
        Who exports (a ``system/`` scope or a staff role that may export).
    out_dir : str or Path
        The folder to write.
    format : {"ndjson", "bundle"}, default "ndjson"
    types : iterable of str, optional
        Only these types.

    Returns
    -------
    dict
        Resources written, by type.

    Raises
    ------
    AccessDenied
        The session may not export.
    ValidationError
        An unknown ``format`` or type.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).system_session()
    >>> export_session(s, out, types=["Patient"]), sorted(p.name for p in out.iterdir())
    ({'Patient': 1}, ['Patient.ndjson'])
    """
    from ehr_sandbox.access import patient_of
    from ehr_sandbox.bundles import export_bundles, export_ndjson

    if format not in ("ndjson", "bundle"):
        raise ValidationError("export", "format", "ndjson or bundle", found=format)
    wanted = list(types) if types is not None else session.readable_types()
    policy = session.sandbox.policy
    denied = [t for t in wanted if not policy.can_type(session.context, "export", t).allowed]
    if denied:
        reason = policy.can_type(session.context, "export", denied[0]).reason
        session.audit_operation("export", "4", query=",".join(denied))
        raise AccessDenied(reason or f"{session.user.role} may not export {denied[0]}")
    by_type = {t: list(session.resources(t, export=True)) for t in wanted}
    by_type = {t: rs for t, rs in by_type.items() if rs}
    if format == "ndjson":
        export_ndjson(by_type, out_dir)
    else:
        groups: dict[str, list[dict[str, Any]]] = {}
        for rs in by_type.values():
            for r in rs:
                groups.setdefault(
                    f"patient-{patient_of(r)}" if patient_of(r) else "shared", []
                ).append(r)
        export_bundles(groups, out_dir, bundle_type="collection")
    session.audit_operation("export", "0", query=",".join(sorted(by_type)))
    return {t: len(rs) for t, rs in sorted(by_type.items())}
