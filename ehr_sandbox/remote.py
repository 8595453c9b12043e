"""The Session's API against a classroom server: ``connect(url, client_id=..., secret=...)``.

Student code written for a local sandbox runs unchanged against a server: the same methods,
the same lazy search sets and the same typed errors (mapped back from OperationOutcome).

The FHIR REST calls (read, vread, history, search, create, update and the ``$`` operations)
go through fhirpy, a FHIR client any student could use; the OAuth token request, the course
API and transaction/batch (a POST to the FHIR base itself, which fhirpy's URL builder turns
into ``<base>/``) go through httpx. ``docs/server.md`` says why, call by call.

>>> # s = connect("http://127.0.0.1:8080", client_id="c-...", secret="...")
>>> # s.search("Observation", patient=p).sort("-date").first()
>>> RemoteSession.__name__
'RemoteSession'
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import (
    AuthorizationError,
    BaseFHIRError,
    ForbiddenError,
    MultipleResourcesFound,
    OperationOutcome,
    ResourceNotFound,
)
from fhirpy.lib import SyncFHIRSearchSet

from ehr_sandbox.errors import AccessDenied, NotFound, SandboxError
from ehr_sandbox.search_set import SearchSet, normalize_params
from ehr_sandbox.server.outcomes import error_from_outcome
from ehr_sandbox.users import User

if TYPE_CHECKING:
    from ehr_sandbox.exercises.model import Exercise
    from ehr_sandbox.reports.remote import RemoteReports

FHIR_JSON = "application/fhir+json"

RESOURCES_PAGE = 500
"""Resources fetched per page by :meth:`RemoteSession.resources`."""

MAX_GET_QUERY = 4000
"""Longest search query sent as a GET through fhirpy; a longer one goes as ``POST _search``
(a form body, which fhirpy does not send) over httpx."""

_FHIRPY_STATUS: dict[type, int] = {
    AuthorizationError: 401,
    ForbiddenError: 403,
    ResourceNotFound: 404,
    MultipleResourcesFound: 412,  # fhirpy's name for any HTTP 412
}


def fhirpy_error(exc: BaseFHIRError) -> SandboxError:
    """The sandbox's typed error for an error fhirpy raised (the server's OperationOutcome
    names the error type; fhirpy keeps the body and, for 401/403/404/412, the status).

    Examples
    --------
    >>> from ehr_sandbox.server.outcomes import outcome_for
    >>> from ehr_sandbox.errors import ConflictError
    >>> status, body = outcome_for(ConflictError("Observation/1", expected="1", current="2"))
    >>> type(fhirpy_error(MultipleResourcesFound(json.dumps(body)))).__name__
    'ConflictError'
    >>> type(fhirpy_error(ResourceNotFound("not json"))).__name__
    'NotFound'
    """
    status = next((v for k, v in _FHIRPY_STATUS.items() if isinstance(exc, k)), 400)
    if isinstance(exc, OperationOutcome):
        body: Any = exc.resource
    else:
        try:
            body = json.loads(str(exc))
        except ValueError:
            body = None
    return error_from_outcome(status, body)


def _plain(value: Any) -> Any:
    """fhirpy's resource objects as plain JSON dicts (``resourceType`` first, as in-process)."""
    data = json.loads(json.dumps(value))
    if isinstance(data, dict) and "resourceType" in data:
        data = {"resourceType": data.pop("resourceType"), **data}
    return data


class RemoteSession:
    """A Session on a classroom server. Create it with :func:`connect`."""

    is_remote = True
    """Workflows write several resources at once as one transaction Bundle on a remote
    session (a local one uses ``atomic()``, which cannot span HTTP requests)."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        scope: str = "",
        timeout: float = 60.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.base = self.url + "/fhir"
        self._client_id = client_id
        self._secret = secret
        self._scope = scope
        self._http = httpx.Client(timeout=timeout)
        self._timeout = timeout
        self._token = token
        self._expires = float("inf") if token else 0.0
        self.token_response: dict[str, Any] = {}
        self._whoami: dict[str, Any] | None = None
        if token is None:
            self._refresh()

    # ------------------------------------------------------------------ plumbing
    def _refresh(self) -> None:
        if not (self._client_id and self._secret):
            raise AccessDenied("connect() needs client_id and secret, or a token")
        config = self._http.get(self.url + "/.well-known/smart-configuration")
        token_url = (
            config.json()["token_endpoint"]
            if config.status_code == 200
            else self.url + "/auth/token"
        )
        basic = base64.b64encode(f"{self._client_id}:{self._secret}".encode()).decode()
        r = self._http.post(
            token_url,
            data={"grant_type": "client_credentials", "scope": self._scope},
            headers={"Authorization": f"Basic {basic}"},
        )
        body = r.json() if r.content else {}
        if r.status_code != 200:
            raise AccessDenied(
                f"the server refused the credentials: {body.get('error_description') or body.get('error') or r.status_code}"
            )
        self.token_response = body
        self._token = body["access_token"]
        self._expires = time.time() + int(body.get("expires_in", 300)) - 30

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if time.time() >= self._expires:
            self._refresh()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": FHIR_JSON}
        if "json" in kwargs:
            headers["Content-Type"] = FHIR_JSON
        headers.update(kwargs.pop("headers", {}))
        r = self._http.request(method, self.base + path, headers=headers, **kwargs)
        try:
            body = r.json() if r.content else None
        except ValueError:
            body = None
        if r.status_code >= 400:
            raise error_from_outcome(r.status_code, body)
        return body

    def _fhir(
        self,
        method: str,
        path: str,
        run: Callable[[SyncFHIRClient], Any],
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Run one FHIR REST call (``method`` and ``path`` name it) through fhirpy, with extra
        request ``headers``; its errors become the typed errors."""
        if time.time() >= self._expires:
            self._refresh()
        client = SyncFHIRClient(
            self.base,
            authorization=f"Bearer {self._token}",
            extra_headers={"Accept": FHIR_JSON, **(headers or {})},
            requests_config={"timeout": self._timeout},
        )
        try:
            return _plain(run(client))
        except BaseFHIRError as exc:
            raise fhirpy_error(exc) from None

    # ------------------------------------------------------------------ reads
    @property
    def patient_id(self) -> str | None:
        """The patient in context (a patient's own id), if any."""
        return self.token_response.get("patient")

    def _ask_whoami(self) -> dict[str, Any]:
        """``GET $whoami``: the token's user, readable types and the sandbox clock."""
        body = self._fhir("GET", "/$whoami", lambda c: c.execute("$whoami", method="get"))
        values: dict[str, Any] = {"readable-type": []}
        for item in body.get("parameter", []):
            if item["name"] == "readable-type":
                values["readable-type"].append(item["valueString"])
            else:
                values[item["name"]] = item["valueString"]
        self._whoami = values
        return values

    def now(self) -> datetime:
        """The sandbox instant of the server's sandbox (its clock, asked every time)."""
        return datetime.fromisoformat(self._ask_whoami()["now"])

    @property
    def user(self) -> User:
        """Who the token stands for (username, role, practitioner or patient), from the
        server."""
        w = self._whoami or self._ask_whoami()
        return User(
            w["username"],
            w["role"],
            w.get("display", w["username"]),
            practitioner_id=w.get("practitioner-id"),
            patient_id=w.get("patient-id"),
        )

    @property
    def purpose(self) -> str:
        """The purpose of use of this session's role (``TREAT``, ``HPAYMT``, ...), as locally."""
        from ehr_sandbox.access.roles import purpose_of_use

        return purpose_of_use(self.user.role)

    @property
    def scopes_text(self) -> str | None:
        """The SMART scopes the server granted this token (None when it did not say)."""
        scope = self.token_response.get("scope")
        return str(scope) if scope is not None else None

    @property
    def role(self) -> str:
        """The user's role (``physician``, ``medical_assistant``, ...)."""
        return self.user.role

    def can_read(self, resource_type: str) -> bool:
        """True when this session may read some resources of the type (as the server says)."""
        w = self._whoami or self._ask_whoami()
        return resource_type in w["readable-type"]

    def readable_types(self) -> list[str]:
        """Resource types this session may read (sorted), as the server says."""
        return list((self._whoami or self._ask_whoami())["readable-type"])

    def read(self, type_or_ref: str, rid: str | None = None) -> dict[str, Any]:
        """Read the current version (``NotFound`` if absent or hidden)."""
        rtype, rid = _split(type_or_ref, rid)
        return self._fhir("GET", f"/{rtype}/{rid}", lambda c: c.reference(rtype, rid).to_resource())

    def vread(self, rtype: str, rid: str, vid: str | int) -> dict[str, Any]:
        """Read one version."""
        path = f"{rtype}/{rid}/_history/{vid}"
        return self._fhir("GET", "/" + path, lambda c: c.execute(path, method="get"))

    def exists(self, ref: str) -> bool:
        """True when ``ref`` exists and this session may see it."""
        try:
            self.read(ref)
        except (NotFound, SandboxError):
            return False
        return True

    def history(self, rtype: str, rid: str | None = None) -> list[dict[str, Any]]:
        """Version history, newest first."""
        path = f"{rtype}/{rid}/_history" if rid else f"{rtype}/_history"
        bundle = self._fhir("GET", "/" + path, lambda c: c.execute(path, method="get"))
        return [e["resource"] for e in bundle.get("entry", [])]

    def search(
        self,
        resource_type: str,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        **kwargs: Any,
    ) -> SearchSet:
        """A lazy search set, as in-process (runs on the server when iterated)."""
        return SearchSet(self, resource_type, normalize_params(params, kwargs))  # type: ignore[arg-type]

    def resources(self, resource_type: str) -> Iterator[dict[str, Any]]:
        """Every resource of a type this session may see (the server's search, page by
        page)."""
        offset = 0
        while True:
            page, _ = self._execute_search(
                resource_type, [("_count", str(RESOURCES_PAGE)), ("_offset", str(offset))]
            )
            yield from page
            if len(page) < RESOURCES_PAGE:
                return
            offset += RESOURCES_PAGE

    def find_patient(
        self, name: str | None = None, birthdate: str | None = None, identifier: str | None = None
    ) -> list[dict[str, Any]]:
        """Find patients by any of name, birth date and identifier (``Patient/$find``, which
        runs the Session's ``find_patient`` on the server)."""
        values = {"name": name, "birthdate": birthdate, "identifier": identifier}
        bundle = self._parameters_call("Patient/$find", values)
        return [e["resource"] for e in bundle.get("entry", [])]

    def own_actions(self, kind: str, *, patient: str | None = None) -> list[dict[str, Any]]:
        """This user's own audited actions of ``kind`` (``$own-actions`` on the server)."""
        bundle = self._parameters_call("$own-actions", {"kind": kind, "patient": patient})
        return [e["resource"] for e in bundle.get("entry", [])]

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit trail, for roles that may read it (``$audit-events``; reading it is
        audited on the server, and other roles get AccessDenied)."""
        bundle = self._fhir(
            "GET", "/$audit-events", lambda c: c.execute("$audit-events", method="get")
        )
        return [e["resource"] for e in bundle.get("entry", [])]

    def btg_review_queue(self) -> list[dict[str, Any]]:
        """Break-the-glass uses awaiting review (``$btg-review-queue``; privacy officer only,
        decided and audited by the server's Session).

        >>> # po.btg_review_queue()[0]["patient"]
        >>> RemoteSession.btg_review_queue.__name__
        'btg_review_queue'
        """
        out = self._fhir(
            "GET", "/$btg-review-queue", lambda c: c.execute("$btg-review-queue", method="get")
        )
        return [json.loads(p["valueString"]) for p in out.get("parameter", [])]

    def review_btg(self, index: int, *, appropriate: bool, note: str) -> None:
        """Review one pending break-the-glass use as the privacy officer (``$btg-review``,
        recorded in the server's audit trail).

        >>> # po.review_btg(0, appropriate=True, note="Emergency treatment: appropriate")
        >>> RemoteSession.review_btg.__name__
        'review_btg'
        """
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "index", "valueInteger": index},
                {"name": "appropriate", "valueBoolean": appropriate},
                {"name": "note", "valueString": str(note)},
            ],
        }
        self._fhir(
            "POST", "/$btg-review", lambda c: c.execute("$btg-review", method="post", data=body)
        )

    def identify_on_server(
        self,
        patient: str,
        *,
        name: str | None = None,
        birth_date: str | None = None,
        mrn: str | None = None,
    ) -> str:
        """``care.identify`` run by the server (``Patient/{id}/$identify``): the comparison
        with the chart and its audit event are the server's; returns ``"Patient/<id>"``."""
        ref = patient if patient.startswith("Patient/") else f"Patient/{patient}"
        out = self._operation(ref, "identify", name=name, birth_date=birth_date, mrn=mrn)
        return str(out["parameter"][0]["valueString"])

    def _parameters_call(self, path: str, values: Mapping[str, Any]) -> Any:
        params = [{"name": k, "valueString": str(v)} for k, v in values.items() if v is not None]
        body = {"resourceType": "Parameters", "parameter": params}
        return self._fhir("POST", "/" + path, lambda c: c.execute(path, method="post", data=body))

    def _execute_search(
        self, rtype: str, params: list[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        query = urlencode(params)
        if len(query) <= MAX_GET_QUERY:
            grouped: dict[str, list[str]] = {}
            for k, v in params:
                grouped.setdefault(k, []).append(v)
            bundle = self._fhir(
                "GET",
                f"/{rtype}",
                lambda c: SyncFHIRSearchSet(c, rtype, params=grouped).fetch_raw(),
            )
        else:
            bundle = self._call(
                "POST",
                f"/{rtype}/_search",
                content=query,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        matches, included = [], []
        for e in bundle.get("entry", []):
            mode = e.get("search", {}).get("mode", "match")
            (matches if mode == "match" else included).append(e["resource"])
        return matches, included

    # ------------------------------------------------------------------ writes
    def create(
        self,
        resource: dict[str, Any],
        *,
        reason: str | None = None,
        override_reason: str | None = None,
    ) -> dict[str, Any]:
        """Create a resource (validated, access-checked, audited on the server); ``reason``
        goes into its Provenance (sent as ``X-Provenance``), ``override_reason`` documents a
        drug-allergy override (sent as ``X-Override-Reason``), as locally.

        Sent as it is (fhirpy's ``execute``; its ``save`` would drop empty values, and a
        student's empty value must get the same ValidationError as in-process).
        """
        rtype = str(resource.get("resourceType"))
        return self._fhir(
            "POST",
            f"/{rtype}",
            lambda c: c.execute(rtype, method="post", data=resource),
            {**_provenance_header(reason), **_override_header(override_reason)},
        )

    def update(
        self,
        resource: dict[str, Any],
        *,
        reason: str | None = None,
        override_reason: str | None = None,
    ) -> dict[str, Any]:
        """Update a resource; ``meta.versionId`` is sent as ``If-Match`` (a stale version is a
        ConflictError, never a lost update); ``reason`` goes into its Provenance and
        ``override_reason`` documents a drug-allergy override, as locally."""
        vid = (resource.get("meta") or {}).get("versionId")
        headers = {"If-Match": f'W/"{vid}"'} if vid else {}
        headers.update(_provenance_header(reason))
        headers.update(_override_header(override_reason))
        path = f"{resource.get('resourceType')}/{resource.get('id')}"
        return self._fhir(
            "PUT", "/" + path, lambda c: c.execute(path, method="put", data=resource), headers
        )

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Apply a transaction or batch Bundle."""
        return self._call("POST", "", json=bundle)

    def _operation(self, ref: str, op: str, **values: Any) -> Any:
        params = []
        for name, value in values.items():
            if value is None:
                continue
            key = name.replace("_", "-")
            if isinstance(value, dict):
                params.append({"name": key, "resource": value})
            else:
                params.append({"name": key, "valueString": str(value)})
        body = {"resourceType": "Parameters", "parameter": params}
        path = f"{ref}/${op}"
        return self._fhir("POST", "/" + path, lambda c: c.execute(path, method="post", data=body))

    def mark_entered_in_error(self, ref: str, reason: str) -> dict[str, Any]:
        """Void a resource charted in error (``$entered-in-error``)."""
        return self._operation(ref, "entered-in-error", reason=reason)

    def correct(self, resource: dict[str, Any], reason: str) -> dict[str, Any]:
        """Correct a resource with a reason (``$correct``)."""
        return self._operation(_ref(resource), "correct", resource=resource, reason=reason)

    def amend(self, resource: dict[str, Any], reason: str) -> dict[str, Any]:
        """Amend at the patient's request (``$amend``)."""
        return self._operation(_ref(resource), "amend", resource=resource, reason=reason)

    def addendum(self, note_ref: str, text: str, *, reason: str | None = None) -> dict[str, Any]:
        """Append to a note (``$addendum``)."""
        return self._operation(note_ref, "addendum", text=text, reason=reason)

    def late_entry(
        self, resource: dict[str, Any], *, event_time: str, reason: str
    ) -> dict[str, Any]:
        """Chart something that happened earlier (``$late-entry``)."""
        subject = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
        target = (
            subject if subject.startswith("Patient/") else f"{resource.get('resourceType')}/new"
        )
        return self._operation(
            target, "late-entry", resource=resource, event_time=event_time, reason=reason
        )

    def sign(self, note_ref: str) -> dict[str, Any]:
        """Sign a note (``$sign``)."""
        return self._operation(note_ref, "sign")

    def break_glass(self, patient: str | dict[str, Any], reason: str) -> None:
        """Emergency access to one patient (``$break-glass``; the server decides and audits)."""
        ref = f"Patient/{patient['id']}" if isinstance(patient, dict) else patient
        ref = ref if ref.startswith("Patient/") else f"Patient/{ref}"
        self._operation(ref, "break-glass", reason=reason)

    def end_break_glass(self, patient: str) -> None:
        """End break-the-glass access for one patient."""
        ref = patient if patient.startswith("Patient/") else f"Patient/{patient}"
        self._operation(ref, "end-break-glass")

    def report(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a catalogue report on the server; the rows as dicts (values as JSON text).
        ``reports.run(name, **params)`` gives the whole report with exact types."""
        return list(self._report_call({"name": name, **params})["rows"])

    def _report_call(self, values: Mapping[str, Any]) -> Any:
        """``POST $report`` with these parameters (a report name or SQL, and its parameters)."""
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": k, "valueString": str(v)} for k, v in values.items()],
        }
        return self._fhir("POST", "/$report", lambda c: c.execute("$report", "post", data=body))

    @property
    def reports(self) -> RemoteReports:
        """The report catalogue, run on the server as this session: ``catalog()``,
        ``run(name, **params)``, ``sql(query, **params)``, ``view_table(name)``, as locally
        (see :mod:`ehr_sandbox.reports.remote`).

        >>> # r = s.reports.run("day_schedule", date="2026-01-05")
        >>> # r.columns, r.truncated, r.to_pandas()
        >>> type(connect("http://127.0.0.1:9", token="x").reports).__name__
        'RemoteReports'
        """
        from ehr_sandbox.reports.remote import RemoteReports

        return RemoteReports(self)

    @property
    def reference_date(self) -> date:
        """The server sandbox's reference date (reports compute "today" from it)."""
        w = self._whoami or self._ask_whoami()
        return date.fromisoformat(w["reference-date"])

    def run_view(self, view: dict[str, Any]) -> list[dict[str, Any]]:
        """Run a SQL on FHIR ViewDefinition on the server over what this session may see
        (``$run-view``); the rows as dicts (values as JSON has them).

        >>> # s.run_view({"resourceType": "ViewDefinition", "resource": "Patient",
        >>> #             "select": [{"column": [{"name": "id", "path": "id"}]}]})
        """
        body = {"resourceType": "Parameters", "parameter": [{"name": "view", "resource": view}]}
        out = self._fhir("POST", "/$run-view", lambda c: c.execute("$run-view", "post", data=body))
        return list(out["rows"])

    def audit_action(
        self,
        kind: str,
        *,
        patient: str | None = None,
        ref: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record an action that is not a resource write (a hand-in, a disclosure) in the
        server's audit trail as this user (``$audit-action``; the server's Session refuses
        the kinds only the sandbox records, with the same ValidationError).

        >>> # s.audit_action("disclose", patient="Patient/p1", detail="faxed to Dr. Lee")
        """
        self._parameters_call(
            "$audit-action", {"kind": kind, "patient": patient, "ref": ref, "detail": detail}
        )

    def update_address(
        self,
        patient_ref: str,
        address: dict[str, Any],
        *,
        reason: str,
        effective: str | None = None,
    ) -> dict[str, Any]:
        """Registration update, run by the server's Session (``Patient/{id}/$update-address``):
        end-date the current home address and add the new one; returns the Patient.

        >>> # s.update_address("Patient/p1", {"use": "home", "line": ["1 Elm St"], "city": "X"},
        >>> #                  reason="Patient moved", effective="2026-01-02")
        """
        params: list[dict[str, Any]] = [
            {"name": "address", "valueAddress": address},
            {"name": "reason", "valueString": reason},
        ]
        if effective is not None:
            params.append({"name": "effective", "valueString": str(effective)})
        return self._patient_operation(patient_ref, "update-address", params)

    def update_coverage(
        self,
        patient_ref: str,
        coverage: dict[str, Any],
        *,
        reason: str,
        order: int = 1,
        effective: str | None = None,
    ) -> dict[str, Any]:
        """Registration update for insurance, run by the server's Session
        (``Patient/{id}/$update-coverage``): add the new Coverage at ``order`` (1 = primary)
        and end-date the one it replaces; returns the new Coverage."""
        params: list[dict[str, Any]] = [
            # sent as a resource (the Session makes it a Coverage whatever it says)
            {"name": "coverage", "resource": {**coverage, "resourceType": "Coverage"}}
            if isinstance(coverage, dict)
            else {"name": "coverage", "valueString": str(coverage)},
            {"name": "reason", "valueString": reason},
            {"name": "order", "valueInteger": order},
        ]
        if effective is not None:
            params.append({"name": "effective", "valueString": str(effective)})
        return self._patient_operation(patient_ref, "update-coverage", params)

    def _patient_operation(
        self, patient_ref: str, op: str, params: list[dict[str, Any]]
    ) -> dict[str, Any]:
        from ehr_sandbox.session import split_ref

        rtype, rid = split_ref(patient_ref)  # a bare id is refused as locally
        ref = f"{rtype}/{rid}"
        body = {"resourceType": "Parameters", "parameter": params}
        path = f"{ref}/${op}"
        return self._fhir("POST", "/" + path, lambda c: c.execute(path, method="post", data=body))

    def provenance(self, ref: str) -> list[dict[str, Any]]:
        """Provenance records for a resource (any version), oldest first (as locally: the
        target must be visible to this session)."""
        rtype, rid = _split(ref, None)
        self.read(rtype, rid)
        found = self.search("Provenance", target=f"{rtype}/{rid}").fetch()
        return sorted(found, key=lambda p: p.get("recorded", ""))

    def relabel(
        self, ref: str, confidentiality: str, *, reason: str, sensitivity: list[str] | None = None
    ) -> dict[str, Any]:
        """Change a resource's security labels (privacy officer only; ``$relabel``, decided
        and audited by the server's Session)."""
        codes = ",".join(sensitivity) if sensitivity else None
        return self._operation(
            ref, "relabel", confidentiality=confidentiality, reason=reason, sensitivity=codes
        )

    def verify_signature(self, note_ref: str) -> bool:
        """True when the note's current content still matches its signature (checked by the
        server, which keeps the signing keys: ``$verify-signature``)."""
        out = self._operation(note_ref, "verify-signature")
        return bool(out["parameter"][0]["valueBoolean"])

    def start(self, exercise_id: str, *, course: str) -> RemoteAttempt:
        """Start (or resume) your attempt at an exercise assigned in ``course``; it is graded
        on the server.

        Parameters
        ----------
        exercise_id : str
            The exercise (as in ``exercises.catalog()``).
        course : str
            The course id your instructor gave you.

        Returns
        -------
        RemoteAttempt
            ``instructions``, ``facts``, ``session``, ``check()``, ``submit()``, ``hint()``,
            ``reset()`` as in-process.
        """
        data = self.course_call("POST", f"/course/{course}/attempts", {"exercise": exercise_id})
        return RemoteAttempt(self, course, data)

    def course_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the server's course API (JSON, or text for CSV); errors become typed errors."""
        if time.time() >= self._expires:
            self._refresh()
        r = self._http.request(
            method,
            self.url + path,
            json=body if method != "GET" else None,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        if r.headers.get("content-type", "").startswith("text/"):
            payload: Any = r.text
        else:
            try:
                payload = r.json() if r.content else None
            except ValueError:
                payload = r.text
        if r.status_code >= 400:
            raise error_from_outcome(r.status_code, payload)
        return payload

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __repr__(self) -> str:
        return f"<RemoteSession {self.url}>"


class RemoteAttempt:
    """An exercise attempt held by a classroom server (made by :meth:`RemoteSession.start`).

    The work goes through ``session`` (a RemoteSession bound to this attempt); ``check()``
    (practice) and ``submit()`` (graded, counted) run on the server.
    """

    def __init__(self, owner: RemoteSession, course: str, data: dict[str, Any]) -> None:
        from types import MappingProxyType

        self._owner = owner
        self.course = course
        self.attempt_id = str(data["attempt"])
        self.exercise_id = str(data["exercise"])
        self.student = str(data.get("student", ""))
        """Your student id in the course (the hand-ins of report exercises name it)."""
        self.role = str(data.get("role", ""))
        self.instructions = str(data.get("instructions", ""))
        self.facts = MappingProxyType(dict(data.get("facts", {})))
        self.session = RemoteSession(owner.url, token=str(data["access_token"]))

    @property
    def exercise(self) -> Exercise:
        """The exercise (from the catalogue every student has: title, role, instructions
        template, criteria, hints); what your variant is, and its answer, stay on the server."""
        from ehr_sandbox.exercises.registry import get

        return get(self.exercise_id)

    @property
    def user(self) -> User:
        """The sandbox user you work as in this attempt (the exercise's role), from the server."""
        return self.session.user

    def login(self, username: str) -> RemoteSession:
        """A session as one of the exercise's other people, in this attempt only (as
        :meth:`Attempt.login <ehr_sandbox.exercises.attempt.Attempt.login>`): the server
        issues a token for a person the exercise declares, to the attempt's owner only, and
        records the login.

        Raises
        ------
        AccessDenied
            Anyone the exercise does not declare (the message names who may be).

        Examples
        --------
        >>> # po = att.login("po.wilson")
        >>> RemoteAttempt.login.__name__
        'login'
        """
        return self._person({"username": username})

    def login_patient(self, patient_id: str) -> RemoteSession:
        """A portal session of the patient the exercise names, in this attempt only (as
        :meth:`Attempt.login_patient <ehr_sandbox.exercises.attempt.Attempt.login_patient>`).

        Raises
        ------
        AccessDenied
            Any other patient.

        Examples
        --------
        >>> # kiosk = att.login_patient(att.facts["patient_id"])
        >>> RemoteAttempt.login_patient.__name__
        'login_patient'
        """
        return self._person({"patient": patient_id})

    def _person(self, body: dict[str, Any]) -> RemoteSession:
        data = self._action("login", body)
        session = RemoteSession(self._owner.url, token=str(data["access_token"]))
        if str(data.get("role")) == "patient":
            session.token_response = {"patient": str(data["username"]).split("/", 1)[1]}
        return session

    def _action(self, action: str, body: dict[str, Any] | None = None) -> Any:
        path = f"/course/{self.course}/attempts/{self.attempt_id}/{action}"
        return self._owner.course_call("POST", path, body or {})

    def check(self) -> Any:
        """Practice feedback from the server's grader (never counts)."""
        from ehr_sandbox.exercises.attempt import Result

        return Result.from_dict(self._action("check"))

    def submit(self) -> Any:
        """Hand in: graded on the server, counted, stamped by the server's clock."""
        from ehr_sandbox.exercises.attempt import Result

        return Result.from_dict(self._action("submit"))

    def hint(self, *, accept_cost: bool = False) -> str:
        """The next hint (a costly one only with ``accept_cost=True``)."""
        return str(self._action("hint", {"accept_cost": accept_cost})["hint"])

    def reset(self) -> None:
        """Back to this variant's start state."""
        self._action("reset")

    def _repr_markdown_(self) -> str:
        return self.instructions

    def __repr__(self) -> str:
        return f"<RemoteAttempt {self.exercise_id} on {self._owner.url}>"


def connect(
    url: str,
    *,
    client_id: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    scope: str = "",
) -> RemoteSession:
    """Connect to a classroom server; returns a session with the Session's methods.

    Parameters
    ----------
    url : str
        The server's base URL (``http://127.0.0.1:8080``).
    client_id, secret : str, optional
        A class account's credentials (client credentials with ``client_secret_basic``).
    token : str, optional
        An access token obtained elsewhere (e.g. the browser sign-in flow).
    scope : str
        SMART scopes to ask for (default: what the account's role allows).

    Returns
    -------
    RemoteSession

    Raises
    ------
    AccessDenied
        The server refused the credentials.

    Examples
    --------
    >>> connect("http://127.0.0.1:9", token="x").base
    'http://127.0.0.1:9/fhir'
    """
    return RemoteSession(url, client_id=client_id, secret=secret, token=token, scope=scope)


def _provenance_header(reason: str | None) -> dict[str, str]:
    """The ``X-Provenance`` header carrying a write's reason (none without a reason).

    >>> _provenance_header(None)
    {}
    >>> json.loads(_provenance_header("no-show")["X-Provenance"])["reason"]
    [{'text': 'no-show'}]
    """
    if reason is None:
        return {}
    return {
        "X-Provenance": json.dumps({"resourceType": "Provenance", "reason": [{"text": reason}]})
    }


def _override_header(reason: str | None) -> dict[str, str]:
    """The ``X-Override-Reason`` header of a drug-allergy override (a JSON string).

    >>> _override_header(None)
    {}
    >>> _override_header("benefit outweighs the risk")
    {'X-Override-Reason': '"benefit outweighs the risk"'}
    """
    return {} if reason is None else {"X-Override-Reason": json.dumps(reason)}


def _split(type_or_ref: str, rid: str | None) -> tuple[str, str]:
    if rid is not None:
        return type_or_ref, rid
    rtype, _, rest = type_or_ref.partition("/")
    if not rest:
        raise NotFound(f"{type_or_ref!r} is not a reference of the form 'Type/id'")
    return rtype, rest


def _ref(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"
