"""The Session: the only door to patient data.

Every read, search, history, write, report, view and export goes through a :class:`Session`
bound to one user. The session asks the one :class:`~ehr_sandbox.access.Policy` about every
resource, masks what the role may not see, validates every write, records a Provenance for it,
and writes an AuditEvent for every interaction, including denials. Denied reads look exactly
like absent data.

>>> from ehr_sandbox.sandbox import Sandbox
>>> sb = Sandbox.generate(patients=3, seed=1)
>>> s = sb.login("dr.patel")
>>> s.user.role
'physician'
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ehr_sandbox.access import (
    AccessContext,
    Decision,
    highest_confidentiality,
    parse_scopes,
    patient_of,
    patients_of,
)
from ehr_sandbox.access.labels import CONFIDENTIALITY_RANK
from ehr_sandbox.access.redaction import quoted_targets, redact_references
from ehr_sandbox.clock import instant
from ehr_sandbox.errors import (
    AccessDenied,
    AllergyConflict,
    ConflictError,
    NotFound,
    SearchError,
    ValidationError,
)
from ehr_sandbox.gcpause import collector_paused
from ehr_sandbox.provenance import ACTIVITIES_NEEDING_REASON, build_provenance
from ehr_sandbox.records.writes import WriteRequest
from ehr_sandbox.search_set import SearchSet, normalize_params
from ehr_sandbox.users import User
from synthetic.fhir import is_resource_type
from synthetic.systems import V3_ACT_CODE, V3_CONFIDENTIALITY

if TYPE_CHECKING:
    from ehr_sandbox.reports import Reports
    from ehr_sandbox.sandbox import Sandbox

OPERATION_ACTIONS: dict[str, str] = {
    "transaction": "C",
    "import": "C",
    "export": "E",
    "deidentify": "E",
    "sign": "U",
}
"""Record operations that audit themselves (:meth:`Session.audit_operation`): interaction ->
AuditEvent action code."""

OPERATION_ACTIVITIES: frozenset[str] = frozenset({"create", "import", "sign"})
"""Activities of the Provenance a record operation records (:meth:`Session.record_provenance`)."""

SANDBOX_AUDIT_KINDS = frozenset(
    {
        "allergy-override",
        "audit-read",
        "break-glass-start",
        "break-glass-stop",
        "btg-review",
        "btg-review-queue",
        "deidentify",
        "exists",
        "export",
        "history",
        "history-system",
        "history-type",
        "import",
        "label",
        "report",
        "sign",
        "transaction",
    }
)
"""Audit kinds only the sandbox writes: :meth:`Session.audit_action` refuses them, so nobody
can post an event that poses as a break-the-glass review, a label change or a refusal."""

FRAMEWORK_AUDIT_KINDS = frozenset(
    {"exercise-check", "exercise-hint", "exercise-login", "exercise-submit"}
)
"""Audit kinds of the exercise framework's own bookkeeping (a hint taken, a hand-in, a login
as one of the exercise's people). The gradebook (attempts used, hand-in time), the hint count
and the collateral check trust them, so only the framework records them, through
:meth:`ehr_sandbox.sandbox.Sandbox.record_framework_action`; :meth:`Session.audit_action`
refuses them from every user and over every client, so a student cannot forge one."""

BTG_MINUTES = 60
"""How long a break-the-glass grant lasts on the sandbox clock."""

CONFIDENTIALITY = V3_CONFIDENTIALITY
ACT_CODE = V3_ACT_CODE

REASON_RULE = (
    "a reason is required: the legal record must show who changed what and why "
    "(HIPAA 164.312(b) audit controls; documentation standards)"
)


def split_ref(type_or_ref: str, rid: str | None = None) -> tuple[str, str]:
    """``("Patient", "1")`` from ``"Patient/1"`` or from ``("Patient", "1")``.

    >>> split_ref("Patient/1"), split_ref("Patient", "1")
    (('Patient', '1'), ('Patient', '1'))
    """
    if rid is None:
        if not isinstance(type_or_ref, str) or type_or_ref.count("/") < 1:
            raise ValidationError(
                str(type_or_ref),
                "reference",
                "a reference of the form 'Type/id'",
                found=type_or_ref,
            )
        parts = type_or_ref.split("/")
        return parts[0], parts[1]
    return type_or_ref, rid


def _raises(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    from ehr_sandbox.access.derived import raises

    return raises(before, after)


def _require_type(rtype: str) -> None:
    if not isinstance(rtype, str) or not is_resource_type(rtype):
        raise ValidationError(
            str(rtype), "resourceType", "a FHIR R4 resource type (case-sensitive)", found=rtype
        )


def _require_reason(reason: str | None, operation: str) -> str:
    if reason is None or not str(reason).strip():
        raise ValidationError(operation, "reason", "a non-empty reason", why=REASON_RULE)
    return str(reason).strip()


class Session:
    """One user's door into a sandbox. Create it with :meth:`Sandbox.login`.

    Every read, search, write, report and export of patient data goes through a session: the
    policy decides on each resource for this session's user (role, scopes, treating
    relationships, break-the-glass), denied reads look exactly like absent data, and every
    interaction is audited.

    Parameters
    ----------
    sandbox : Sandbox
        The clinic the session reads and writes.
    user : User
        Who is logged in; fixes the role and the purpose of use.
    store : object
        The sandbox's store (only the sandbox builds sessions).
    pointers, scopes, patient, interactive, treating
        Set by the sandbox's ``login*`` methods: SMART scopes, the patient of a patient or
        launch session, whether a person is at the keyboard, a fixed treating set.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> s = sb.login("dr.patel")
    >>> s.user.username, s.role, s.purpose
    ('dr.patel', 'physician', 'TREAT')
    >>> sb.login("dr.nguyen").search("Patient").count()  # not treating anyone: sees no one
    0
    """

    def __init__(
        self,
        sandbox: Sandbox,
        user: User,
        *,
        store: Any,
        pointers: Any = None,
        scopes: str | None = None,
        patient: str | None = None,
        interactive: bool = True,
        treating: frozenset[str] | None = None,
    ) -> None:
        from ehr_sandbox.access.roles import purpose_of_use

        self.sandbox = sandbox
        self.user = user
        self._store = store
        self._pointers = pointers
        # Purpose of use comes from the role (and from break-the-glass), never from a caller.
        self.purpose = purpose_of_use(user.role)
        self.interactive = interactive
        self.scopes_text = scopes
        self._scopes = parse_scopes(scopes) if scopes is not None else None
        if patient is not None and patient.startswith("Patient/"):
            patient = patient.split("/", 1)[1]
        self.patient_id = patient if patient is not None else user.patient_id
        self._btg: dict[str, datetime] = {}
        self._ctx: AccessContext | None = None
        self._treating: frozenset[str] | None = treating
        self._fixed_treating = treating is not None
        self._epoch = sandbox._relationship_epoch

    # ------------------------------------------------------------------ context
    @property
    def role(self) -> str:
        """The user's role (``physician``, ``medical_assistant``, ...).

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith").role
        'front_desk'
        """
        return self.user.role

    def _btg_active(self) -> frozenset[str]:
        now = self.sandbox.clock.peek()
        expired = [p for p, until in self._btg.items() if until <= now]
        for p in expired:
            del self._btg[p]
            self._audit_btg(p, start=False, reason="expired")
        return frozenset(self._btg)

    @property
    def context(self) -> AccessContext:
        """The access context the policy decides on (role, scopes, relationships, BTG).

        Recomputed when the sandbox's treating relationships change or break-the-glass access
        starts or ends.

        Returns
        -------
        AccessContext
            What :class:`~ehr_sandbox.access.Policy` needs to decide on a resource.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> ctx = sb.login("dr.patel").context
        >>> ctx.role, ctx.purpose, ctx.treating == sb.treating("dr.patel"), len(ctx.treating)
        ('physician', 'TREAT', True, 1)
        """
        btg = self._btg_active()
        epoch = self.sandbox._relationship_epoch
        if self._treating is None or (not self._fixed_treating and epoch != self._epoch):
            self._treating = self.sandbox._relationships(self.user)
            self._epoch = epoch
            self._ctx = None
        if self._ctx is None or self._ctx.btg != btg:
            self._ctx = AccessContext(
                username=self.user.username,
                role=self.user.role,
                practitioner_id=self.user.practitioner_id,
                patient_id=self.patient_id,
                scopes=self._scopes,
                purpose="BTG" if btg else self.purpose,
                treating=self._treating,
                btg=btg,
                interactive=self.interactive,
                named_access=frozenset(),
            )
        return self._ctx

    def _relationships_changed(self) -> None:
        self.sandbox._relationship_epoch += 1
        if not self._fixed_treating:
            self._treating = None
        self._ctx = None

    # ------------------------------------------------------------------ audit
    def _audit(
        self,
        *,
        action: str,
        interaction: str,
        outcome: str,
        patient_id: str | None = None,
        entity: dict[str, Any] | None = None,
        entity_ref: str | None = None,
        query: str | None = None,
        detail: str | None = None,
    ) -> None:
        # Whatever the caller typed goes into the trail as valid text (a lone surrogate or a
        # control character is escaped, never a reason the audit itself fails).
        entity_ref, query, detail = _safe_text(entity_ref), _safe_text(query), _safe_text(detail)
        labels = list((entity or {}).get("meta", {}).get("security", [])) if entity else []
        if entity is not None and entity_ref is None:
            entity_ref = f"{entity.get('resourceType')}/{entity.get('id')}"
        version = (entity or {}).get("meta", {}).get("versionId") if entity else None
        self.sandbox._audit_append(
            self.user,
            action=action,
            interaction=interaction,
            outcome=outcome,
            purpose=self.context.purpose,
            patient_id=patient_id,
            entity_ref=entity_ref,
            version=version,
            labels=labels,
            query=query,
            detail=detail,
        )

    def _audit_patients(
        self, patient_ids: list[str | None], *, query: str | None = None, **common: Any
    ) -> None:
        """One AuditEvent per patient id, in order, all in one savepoint: the same events as
        calling :meth:`_audit` once per patient (see :mod:`ehr_sandbox.audit.batch`)."""
        self.sandbox._audit_append_many(
            self.user,
            patient_ids,
            purpose=self.context.purpose,
            entity_ref=None,
            version=None,
            labels=[],
            query=_safe_text(query),
            **common,
        )

    def _audit_btg(self, patient_id: str, *, start: bool, reason: str) -> None:
        self.sandbox._audit_append(
            self.user,
            action="E",
            interaction="break-glass-start" if start else "break-glass-stop",
            outcome="0",
            purpose="BTG",
            patient_id=patient_id,
            entity_ref=f"Patient/{patient_id}",
            version=None,
            labels=[],
            query=None,
            detail=reason,
        )

    # ------------------------------------------------------------------ decisions
    def _decide(
        self,
        action: str,
        resource: dict[str, Any] | None,
        rtype: str,
        before: dict[str, Any] | None = None,
    ) -> Decision:
        return self.sandbox.policy.decide(
            self.context, action, resource, resource_type=rtype, before=before
        )

    def _visible(self, resource: dict[str, Any], action: str = "read") -> bool:
        return self._decide(action, resource, resource["resourceType"]).allowed

    def _check_pointer(self, current: dict[str, Any]) -> None:
        # The stored current-version pointer must carry its MAC (see store.pointers).
        if self._pointers is not None:
            meta = current.get("meta") or {}
            if "versionId" in meta:
                self._pointers.check(current["resourceType"], current["id"], meta["versionId"])

    def _record_pointer(self, saved: dict[str, Any]) -> None:
        if self._pointers is not None:
            self._pointers.record(saved["resourceType"], saved["id"], saved["meta"]["versionId"])

    def _mask(
        self, resource: dict[str, Any], seen: dict[str, bool] | None = None
    ) -> dict[str, Any]:
        # What leaves the door, on every channel: the role's minimum necessary, then no text
        # of a record this session may not see (access/redaction.py). ``seen`` remembers the
        # answers within one response (a page, a history, an export stream).
        masked = self.sandbox.policy.mask(self.context, resource)
        if self.context.role_info.relationship == "bypass":
            return masked  # the system account sees every record: nothing to withhold
        known: dict[str, bool] = {} if seen is None else seen

        def visible(ref: str) -> bool:
            ok = known.get(ref)
            if ok is None:
                ok = known[ref] = self._can_see(ref)
            return ok

        return redact_references(masked, visible)

    def _hidden(self, rtype: str, rid: str) -> NotFound:
        return NotFound(f"{rtype}/{rid} was not found")

    # ------------------------------------------------------------------ reads
    def read(self, type_or_ref: str, rid: str | None = None) -> dict[str, Any]:
        """Read the current version of a resource; :class:`NotFound` if absent **or hidden**.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=2, seed=1).login("dr.patel")
        >>> pid = s.search("Patient").first()["id"]
        >>> s.read("Patient", pid)["id"] == pid
        True
        """
        rtype, rid = split_ref(type_or_ref, rid)
        _require_type(rtype)
        raw = self._store.read(rtype, rid) if _valid_id(rid) else None
        return self._release(raw, rtype, rid, "read", "R")

    def vread(self, rtype: str, rid: str, vid: str | int) -> dict[str, Any]:
        """Read one version of a resource.

        The current version must be visible too (so a later label or a move to another patient
        also hides the older versions).

        Parameters
        ----------
        rtype : str
            The resource type.
        rid : str
            The resource id.
        vid : str or int
            The version id (``meta.versionId``).

        Returns
        -------
        dict
            That version, masked for this session's role.

        Raises
        ------
        NotFound
            The resource or version does not exist, or this session may not see it.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> pid = s.search("Patient").first()["id"]
        >>> s.vread("Patient", pid, 1)["meta"]["versionId"]
        '1'
        >>> s.vread("Patient", pid, 99)
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.NotFound: Patient/... was not found
        """
        _require_type(rtype)
        ok = _valid_id(rid) and _valid_id(str(vid))
        current = self._store.read(rtype, rid) if ok else None
        if current is not None:
            self._check_pointer(current)
        raw = self._store.vread(rtype, rid, str(vid)) if current is not None else None
        if raw is not None and (
            current is None or not self._decide("vread", current, rtype).allowed
        ):
            raw = None
        return self._release(raw, rtype, rid, "vread", "R")

    def _release(
        self, raw: dict[str, Any] | None, rtype: str, rid: str, action: str, code: str
    ) -> dict[str, Any]:
        if raw is None:
            self._audit(
                action=code,
                interaction=action,
                outcome="4",
                entity_ref=f"{rtype}/{rid}",
                detail="absent",
            )
            raise self._hidden(rtype, rid)
        if action == "read":
            self._check_pointer(raw)
        decision = self._decide(action, raw, rtype)
        pid = patient_of(raw)
        if not decision.allowed:
            self._audit(
                action=code,
                interaction=action,
                outcome="4",
                patient_id=pid,
                entity=raw,
                detail=decision.reason,
            )
            raise self._hidden(rtype, rid)
        self._audit(action=code, interaction=action, outcome="0", patient_id=pid, entity=raw)
        return self._mask(raw)

    def exists(self, ref: str) -> bool:
        """True when ``ref`` exists **and** this session may see it (no existence oracle).

        Asking is an access like any other: it is audited before the answer leaves the door.

        Parameters
        ----------
        ref : str
            A ``Type/id`` reference; a malformed one answers False.

        Returns
        -------
        bool
            Whether the resource exists and is visible to this session.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> ref = "Patient/" + sb.grader_session().search("Patient").first()["id"]
        >>> sb.login("dr.patel").exists(ref), sb.login("dr.nguyen").exists(ref)
        (True, False)
        >>> sb.login("dr.patel").exists("not a reference")
        False
        """
        try:
            rtype, rid = split_ref(ref)
        except ValidationError:
            return False
        if not is_resource_type(rtype):
            return False
        raw = self._store.read(rtype, rid) if _valid_id(rid) else None
        ok = raw is not None and self._visible(raw)
        pid = patient_of(raw) if ok and raw is not None else None
        if pid is not None or not ok:
            # An answer about a patient's record, or a refusal, is audited before it leaves;
            # looking up shared directory data (an Organization, a Practitioner) is not PHI.
            self._audit(
                action="R",
                interaction="exists",
                outcome="0" if ok else "4",
                patient_id=pid,
                entity_ref=f"{rtype}/{rid}",
            )
        return ok

    def _can_see(self, ref: str) -> bool:
        # The write pipeline's reference check: the write itself is audited.
        try:
            rtype, rid = split_ref(ref)
        except ValidationError:
            return False
        if not is_resource_type(rtype):
            return False
        raw = self._store.read(rtype, rid) if _valid_id(rid) else None
        return raw is not None and self._visible(raw)

    def history(self, rtype: str, rid: str | None = None) -> list[dict[str, Any]]:
        """Version history, newest first.

        Instance history needs read access to the current version; type-level history is a search
        and needs search access. Either way each record is decided on its **current** version (as
        :meth:`vread` does), so a record later labelled R or moved to another patient hides its
        older versions too.

        Parameters
        ----------
        rtype : str
            The resource type.
        rid : str, optional
            One resource's id; without it, the history of every visible resource of the type.

        Returns
        -------
        list of dict
            The versions, masked, newest first.

        Raises
        ------
        NotFound
            ``rid`` is given and that resource is absent or hidden from this session.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
        >>> p = s.search("Patient").first()
        >>> p["gender"] = "female" if p["gender"] == "male" else "male"
        >>> _ = s.update(p)
        >>> [v["meta"]["versionId"] for v in s.history("Patient", p["id"])]
        ['2', '1']
        """
        _require_type(rtype)
        if rid is not None:
            current = self._store.read(rtype, rid) if _valid_id(rid) else None
            if current is not None:
                self._check_pointer(current)
            if current is None or not self._decide("history", current, rtype).allowed:
                self._audit(
                    action="R", interaction="history", outcome="4", entity_ref=f"{rtype}/{rid}"
                )
                raise self._hidden(rtype, rid)
        elif not self.sandbox.policy.can_type(self.context, "search", rtype).allowed:
            self._audit(action="E", interaction="history-type", outcome="4", query=rtype)
            return []
        versions = self._store.history(rtype, rid)
        currents: dict[str, bool] = {}

        def current_ok(vid: str) -> bool:
            ok = currents.get(vid)
            if ok is None:
                cur = self._store.read(rtype, vid)
                if cur is not None:
                    self._check_pointer(cur)
                ok = currents[vid] = cur is not None and self._decide("history", cur, rtype).allowed
            return ok

        seen: dict[str, bool] = {}
        out = [
            self._mask(v, seen)
            for v in versions
            if current_ok(str(v.get("id"))) and self._decide("history", v, rtype).allowed
        ]
        for pid in sorted({patient_of(v) or "" for v in out}) or [""]:
            self._audit(
                action="R",
                interaction="history",
                outcome="0",
                patient_id=pid or None,
                entity_ref=f"{rtype}/{rid}" if rid else None,
                query=rtype,
            )
        return out

    # ------------------------------------------------------------------ search
    def search(
        self,
        resource_type: str,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        **kwargs: Any,
    ) -> SearchSet:
        """A lazy search set; nothing runs until you iterate, ``fetch()`` or ``first()``.

        Parameters whose names are not Python identifiers (``name:exact``) go in ``params``.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=2, seed=1).login("dr.patel")
        >>> s.search("Patient").count() >= 1
        True
        """
        _require_type(resource_type)
        normalized = normalize_params(params, kwargs)
        from ehr_sandbox.search import parse

        parse(resource_type, normalized)  # fail fast on a bad parameter, before iteration
        from ehr_sandbox.search_hints import identifier_hint

        identifier_hint(self, resource_type, normalized)  # an MRN where an id belongs
        return SearchSet(self, resource_type, normalized)

    def _execute_search(
        self, rtype: str, params: list[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from ehr_sandbox.search import parse, resolve_includes

        query = parse(rtype, params)
        qtext = "&".join(f"{k}={v}" for k, v in params)
        ctx = self.context
        policy = self.sandbox.policy
        for chained in _chained_types(query):
            if not policy.can_type(ctx, "search", chained).allowed:
                self._audit(action="E", interaction="search", outcome="4", query=f"{rtype}?{qtext}")
                raise AccessDenied(
                    f"search on {rtype} may not chain through {chained}: your role cannot search {chained}"
                )
        if not policy.can_type(ctx, "search", rtype).allowed:
            self._audit(action="E", interaction="search", outcome="4", query=f"{rtype}?{qtext}")
            return [], []
        try:
            self._refuse_masked(query)
        except AccessDenied as exc:
            self._audit(
                action="E",
                interaction="search",
                outcome="4",
                query=f"{rtype}?{qtext}",
                detail=str(exc),
            )
            raise
        # Decoded resources, policy decisions and audit events are acyclic: the cyclic
        # collector stays off while a page is built (with a large heap, a 900-patient search
        # spent more time in collector passes than in its own work).
        with collector_paused():
            return self._search_page(query, rtype, qtext, resolve_includes)

    def _search_page(
        self, query: Any, rtype: str, qtext: str, resolve_includes: Any
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ctx = self.context
        policy = self.sandbox.policy
        count = getattr(query, "count", None)
        offset = getattr(query, "offset", 0) or 0
        # candidates come in _sort order and are decoded lazily: the policy decides on each one
        # in turn and decoding stops once the page is full (hidden rows never count); chains
        # are resolved through what this session may see first
        page: list[dict[str, Any]] = []
        if count != 0:
            for seen_visible, r in enumerate(self._visible_iter(_without_paging(query)), 1):
                if seen_visible > offset:
                    page.append(r)
                    if count is not None and len(page) >= count:
                        break
        included: list[dict[str, Any]] = []
        if query.include or query.revinclude:
            seen = {(r["resourceType"], r["id"]) for r in page}

            def may_include(r: dict[str, Any]) -> bool:
                return policy.decide(ctx, "read", r, resource_type=r["resourceType"]).allowed

            # Every hop of an include (and of :iterate) goes only through what this user may
            # see, so a hidden resource never links to a visible one.
            for inc in resolve_includes(self._store, page, query, visible=may_include):
                key = (inc["resourceType"], inc["id"])
                if key not in seen:
                    seen.add(key)
                    included.append(inc)
        patients = sorted({patient_of(r) or "" for r in page + included})
        for r in page:
            self._check_pointer(r)
        # one event per patient, written in one savepoint (one commit per search)
        self._audit_patients(
            [pid or None for pid in patients or [""]],
            action="E",
            interaction="search",
            outcome="0",
            query=f"{rtype}?{qtext}",
        )
        seen: dict[str, bool] = {}
        return [self._mask(r, seen) for r in page], [self._mask(r, seen) for r in included]

    def chart(self, patient: str | dict[str, Any]) -> Any:
        """The patient's chart as this session may see it (HTML in a notebook, text in a terminal).

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=2).login("dr.patel")
        >>> s.chart(s.search("Patient").first()).problems.name
        'problems'
        """
        from ehr_sandbox.display import build_chart

        return build_chart(self, patient)

    def _visible_iter(self, query: Any) -> Iterator[dict[str, Any]]:
        """The matches of ``query`` this session may see, in ``_sort`` order and decoded lazily,
        with every chain resolved through the session's visible set (never over records it
        cannot see)."""
        ctx = self.context
        policy = self.sandbox.policy
        resolved = self._resolve_chains(query)
        rtype = query.resource_type
        try:
            # in _sort order, decoded lazily (a caller that needs one page decodes about that)
            for r in self._store.search_iter(rtype, resolved):
                if policy.decide(ctx, "search", r, resource_type=rtype).allowed:
                    yield r
        except sqlite3.OperationalError as exc:
            # e.g. too many values or a pattern too complex: a typed error, nothing changed
            raise SearchError(
                rtype, "(query)", "a search the database can run (fewer or shorter values)"
            ) from exc

    def _visible_matches(self, query: Any) -> list[dict[str, Any]]:
        """Every match of ``query`` this session may see (see :meth:`_visible_iter`)."""
        return list(self._visible_iter(query))

    def _resolve_chains(self, query: Any) -> Any:
        from dataclasses import replace

        from ehr_sandbox.search.query import Chain, ReferenceValue

        if not any(isinstance(v, Chain) for c in query.clauses for v in c.values):
            return query
        clauses = []
        for clause in query.clauses:
            values = []
            for v in clause.values:
                if isinstance(v, Chain):
                    refs: list[str] = []
                    for inner in v.inner:
                        self._refuse_masked(inner)
                        refs += [
                            f"{inner.resource_type}/{r['id']}" for r in self._visible_matches(inner)
                        ]
                    v = ReferenceValue(tuple(refs))
                values.append(v)
            clauses.append(replace(clause, values=tuple(values)))
        return replace(query, clauses=tuple(clauses))

    def _refuse_masked(self, query: Any) -> None:
        """Refuse search and sort parameters over elements this role sees masked (derived
        from the masking table): a filter or an order on a hidden value reveals it."""
        from ehr_sandbox.access.masking import masked_search_params

        hidden = masked_search_params(self.user.role, query.resource_type)
        if not hidden:
            return
        for clause in query.clauses:
            if clause.param.name in hidden:
                raise AccessDenied(
                    f"{self.user.role} may not search {query.resource_type} by "
                    f"{clause.param.name}: that element is masked for the role (minimum necessary)"
                )
        for key in query.sort:
            if key.param.name in hidden:
                raise AccessDenied(
                    f"{self.user.role} may not sort {query.resource_type} by {key.param.name}: "
                    "that element is masked for the role (minimum necessary)"
                )

    def find_patient(
        self, name: str | None = None, birthdate: str | None = None, identifier: str | None = None
    ) -> list[dict[str, Any]]:
        """Find patients by any of name (prefix of any part), birth date and identifier.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=2, seed=1).login("fd.smith")
        >>> p = s.search("Patient").first()
        >>> s.find_patient(name=p["name"][0]["family"], birthdate=p["birthDate"])[0]["id"] == p["id"]
        True
        """
        params: list[tuple[str, str]] = []
        if name:
            params += [("name", part) for part in str(name).replace(",", " ").split()]
        if birthdate:
            params.append(("birthdate", str(birthdate)))
        if identifier:
            params.append(("identifier", str(identifier)))
        if not params:
            raise ValidationError(
                "Patient", "name|birthdate|identifier", "at least one search criterion"
            )
        return self.search("Patient", params).fetch()

    # ------------------------------------------------------------------ writes
    def create(
        self,
        resource: dict[str, Any],
        *,
        reason: str | None = None,
        override_reason: str | None = None,
    ) -> dict[str, Any]:
        """Create a resource (validated, access-checked, with Provenance and audit).

        A MedicationRequest or MedicationAdministration of a drug the patient is recorded as
        allergic to (directly or through a cross-reactive class) raises
        :class:`~ehr_sandbox.errors.AllergyConflict` unless ``override_reason`` documents why it
        is given anyway; the override is kept in the Provenance and the audit trail.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=2, seed=1)
        >>> s = sb.login("dr.patel")
        >>> pid = s.search("Patient").first()["id"]
        >>> obs = s.create({"resourceType": "Observation", "status": "final",
        ...     "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        ...     "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        ...     "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-01-05T08:00:00+00:00",
        ...     "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
        >>> obs["meta"]["versionId"]
        '1'
        """
        return self.write(
            WriteRequest(
                "create",
                resource,
                activity="create",
                reason=reason,
                override_reason=override_reason,
            )
        )

    def update(
        self,
        resource: dict[str, Any],
        *,
        reason: str | None = None,
        override_reason: str | None = None,
    ) -> dict[str, Any]:
        """Update a resource (validated, access-checked, with Provenance and audit).

        ``meta.versionId`` must be the version you read (optimistic concurrency); a stale one raises
        :class:`ConflictError` naming both versions. The drug-allergy check of :meth:`create` applies
        when a medication changes.

        Parameters
        ----------
        resource : dict
            The whole new content, with ``id`` and the ``meta.versionId`` you read.
        reason : str, optional
            Why (kept in the Provenance).
        override_reason : str, optional
            A documented clinical reason to give a drug despite a recorded allergy.

        Returns
        -------
        dict
            The stored version (its ``meta.versionId`` one higher).

        Raises
        ------
        ConflictError
            ``meta.versionId`` is not the current version.
        ValidationError
            The new content is not valid FHIR for the sandbox.
        AccessDenied
            The role may not update this type or this record.
        NotFound
            The resource is absent or hidden from this session.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> from ehr_sandbox.errors import ConflictError
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
        >>> p = s.search("Patient").first()
        >>> p["gender"] = "unknown"
        >>> s.update(p)["meta"]["versionId"]
        '2'
        >>> try:
        ...     s.update(p)  # still says version 1
        ... except ConflictError as e:
        ...     print(e.expected, e.current)
        1 2
        """
        return self.write(
            WriteRequest(
                "update",
                resource,
                activity="update",
                reason=reason,
                override_reason=override_reason,
            )
        )

    def write(self, request: WriteRequest) -> dict[str, Any]:
        """The one write pipeline: validate, check access (before and after), label, store,
        record a Provenance and audit, all or nothing. Every write method uses it.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
        >>> s.write(WriteRequest("create", {"resourceType": "Observation"}, activity="create"))
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.AccessDenied: front_desk may not create Observation: that needs a medical_assistant, nurse or physician
        """
        if not isinstance(request, WriteRequest):
            raise ValidationError(
                "write", "request", "a WriteRequest", found=type(request).__name__
            )
        action, resource, activity = request.action, request.resource, request.activity
        reason, occurred = request.reason, request.occurred
        label_change, keep_id, strict = request.label_change, request.keep_id, request.strict
        provenance, planned = request.provenance, request.planned
        override_reason = request.override_reason
        if not isinstance(resource, dict):
            raise ValidationError(
                "resource", "(resource)", "a FHIR resource as a dict", found=type(resource).__name__
            )
        rtype = resource.get("resourceType")
        _require_type(rtype)  # type: ignore[arg-type]
        _check_hostile(resource)
        if activity in ACTIVITIES_NEEDING_REASON:
            reason = _require_reason(reason, activity)
        policy = self.sandbox.policy
        ctx = self.context
        type_decision = policy.can_type(ctx, action, rtype)  # type: ignore[arg-type]
        if not type_decision.allowed:
            self._audit(
                action="C" if action == "create" else "U",
                interaction=action,
                outcome="4",
                query=rtype,
                detail=type_decision.reason,
            )
            raise AccessDenied(type_decision.reason)
        res = copy.deepcopy(resource)
        _check_meta(res)
        store = self._store
        before = None
        expected = None
        if action == "update":
            rid = res.get("id")
            if not rid:
                raise ValidationError(str(rtype), "id", "the id of the resource to update")
            before = store.read(rtype, rid)  # type: ignore[arg-type]
            see = "label" if label_change else "read"
            if before is None or not self._decide(see, before, rtype).allowed:  # type: ignore[arg-type]
                self._audit(
                    action="U", interaction="update", outcome="4", entity_ref=f"{rtype}/{rid}"
                )
                raise self._hidden(rtype, rid)  # type: ignore[arg-type]
            expected = (res.get("meta") or {}).get("versionId")
            if not expected:
                raise ValidationError(
                    f"{rtype}/{rid}",
                    "meta.versionId",
                    "the version you read (it guards against overwriting someone else's change)",
                )
            if self.sandbox._is_signed(f"{rtype}/{rid}") and activity not in (
                "entered-in-error",
                "label",
            ):
                self._audit(
                    action="U",
                    interaction="update",
                    outcome="4",
                    patient_id=patient_of(before),
                    entity=before,
                    detail="signed note",
                )
                raise AccessDenied(
                    f"{rtype}/{rid} is a signed note and cannot be edited; add an addendum instead "
                    "(session.addendum(ref, text)) so the signed original stays intact"
                )
        elif not keep_id:
            res.pop("id", None)
        self._apply_labels(res, before, label_change)
        from ehr_sandbox.validation import check

        known = (_references(before) if before is not None else frozenset()) | planned
        # references already in the stored version were checked when it was written; only new
        # ones must exist and be visible to this user
        check(res, exists=lambda ref: ref in known or self._can_see(ref), strict=strict)
        decision = self._decide(action, res, rtype, before=before)  # type: ignore[arg-type]
        if not decision.allowed:
            self._audit(
                action="C" if action == "create" else "U",
                interaction=action,
                outcome="4",
                patient_id=patient_of(res),
                entity_ref=f"{rtype}/{res.get('id', '')}",
                detail=decision.reason,
            )
            raise AccessDenied(decision.reason)
        overridden = self._allergy_check(res, before, activity, override_reason)
        if overridden:
            reason = (
                f"{reason}; allergy alert overridden: {override_reason}"
                if reason
                else (f"allergy alert overridden: {override_reason}")
            )
        with store.transaction():
            try:
                saved = (
                    store.create(res)
                    if action == "create"
                    else store.update(res, expected_version=expected)
                )
            except ConflictError:
                if action == "create" and not self._can_see(f"{rtype}/{res.get('id')}"):
                    # Never name the version (or anything else) of a record this user cannot see.
                    raise ValidationError(
                        str(rtype),
                        "id",
                        "an id not already in use (create without an id to get a new one)",
                        found=res.get("id"),
                    ) from None
                raise
            self._record_pointer(saved)
            target = f"{rtype}/{saved['id']}/_history/{saved['meta']['versionId']}"
            if provenance:
                self._record_provenance([target], activity, reason, occurred=occurred)
            # labels that went up go up on everything derived from the record, in this same
            # transaction (all or nothing): a later relabel of a claim reaches its response.
            # A record created under a new server-assigned id has nothing pointing at it yet;
            # one created under its own id (a transaction's or an import's entry) may have.
            may_have_dependents = before is not None or keep_id
            inherited = (
                self._cascade_labels(saved)
                if may_have_dependents and _raises(before, saved)
                else []
            )
        self._audit(
            action="C" if action == "create" else "U",
            interaction=action,
            outcome="0",
            patient_id=patient_of(saved),
            entity=saved,
        )
        for record, source in inherited:
            self._audit(
                action="U",
                interaction="label",
                outcome="0",
                patient_id=patient_of(record),
                entity=record,
                detail=f"labels inherited from {source}",
            )
        if rtype in ("Appointment", "Encounter", "Patient", "CareTeam"):
            self._relationships_changed()
        if overridden:
            import json

            self._audit_kind(
                "allergy-override",
                patient=patient_of(saved),
                ref=f"{rtype}/{saved['id']}",
                detail=json.dumps(
                    {
                        "drug": overridden[0].drug,
                        "class": overridden[0].drug_class,
                        "allergy": overridden[0].allergy_ref,
                        "reason": override_reason,
                    }
                ),
            )
        return self._mask(saved)

    def _allergy_check(
        self,
        res: dict[str, Any],
        before: dict[str, Any] | None,
        activity: str,
        override_reason: str | None,
    ) -> list[Any]:
        """Refuse a drug the patient is allergic to unless overridden; returns the conflicts
        that an override let through ([] when there were none)."""
        from ehr_sandbox.records.allergy_check import conflicts, needs_check
        from ehr_sandbox.search import parse

        if not self.interactive or activity in ("import", "entered-in-error"):
            return []
        if not needs_check(res, before):
            return []
        pid = patient_of(res)
        if not pid:
            return []
        store = self.sandbox._store
        allergies = store.search(
            "AllergyIntolerance", parse("AllergyIntolerance", [("patient", f"Patient/{pid}")])
        )
        medication = None
        med_ref = (res.get("medicationReference") or {}).get("reference", "")
        if med_ref.startswith("Medication/"):
            medication = store.read("Medication", med_ref.split("/", 1)[1])
        found = conflicts(res, allergies, medication)
        if not found:
            return []
        if override_reason is None:
            # Safety first: an allergy this user may not see still stops the order, but the
            # refusal never names it (substance or id): that would disclose restricted data.
            by_ref = {f"AllergyIntolerance/{a.get('id')}": a for a in allergies}

            def shown(c: Any) -> bool:
                allergy = by_ref.get(c.allergy_ref)
                return allergy is not None and self._visible(allergy)

            first = next((c for c in found if shown(c)), found[0])
            named = shown(first)
            err = AllergyConflict(
                str(res.get("resourceType")),
                pid,
                first.drug,
                first.drug_class,
                first.allergy if named else RESTRICTED_ALLERGY,
                first.allergy_ref if named else "ask a clinician who may see it",
                via=first.via if named else "",
            )
            self._audit(
                action="C" if before is None else "U",
                interaction="create" if before is None else "update",
                outcome="4",
                patient_id=pid,
                entity_ref=f"{res.get('resourceType')}/{res.get('id', '')}",
                detail=str(err),
            )
            raise err
        _require_reason(override_reason, "allergy override")
        return found

    def _apply_labels(
        self, res: dict[str, Any], before: dict[str, Any] | None, label_change: bool
    ) -> None:
        from ehr_sandbox.access import assign_labels

        meta = res.setdefault("meta", {})
        if not label_change:
            # Only the privacy officer changes labels: everyone else keeps the stored ones,
            # and the code lists can only raise them.
            if before is not None:
                meta["security"] = copy.deepcopy((before.get("meta") or {}).get("security", []))
            elif "security" in meta and not _may(self.user.role, "label"):
                # A new record keeps the labels it comes with as far as they only restrict
                # (a copy of a restricted record, an import from a system that labelled it):
                # its sensitivity codes, and a confidentiality no lower than the default N.
                # Nothing below N: only the privacy officer lowers labels.
                meta["security"] = [
                    s
                    for s in meta["security"]
                    if not (
                        s.get("system") == CONFIDENTIALITY
                        and CONFIDENTIALITY_RANK.get(s.get("code"), -1) < CONFIDENTIALITY_RANK["N"]
                    )
                ]
            meta["security"] = assign_labels(res)
        # A record about another (a claim's response, a payment, a message about a result)
        # carries the labels of what it is about: read here, inside the door, whoever writes,
        # a relabel included (the privacy officer lowers a derived record only down to what
        # it inherits; lowering the source first lowers that).
        from ehr_sandbox.access.derived import derived_sources, inherit_labels

        sources = [
            found
            for rtype, rid in derived_sources(res)
            if is_resource_type(rtype)
            and _valid_id(rid)
            and (found := self._store.read(rtype, rid)) is not None
        ]
        if sources:
            meta["security"] = inherit_labels(meta["security"], sources)

    def _record_provenance(
        self,
        targets: list[str],
        activity: str,
        reason: str | None,
        *,
        occurred: str | None = None,
        signature: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        from ehr_sandbox.access import confidentiality_of
        from ehr_sandbox.access.labels import confidentiality_coding, sensitivities_of

        written = []
        for t in targets:
            parts = t.split("/")
            found = self._store.read(parts[0], parts[1]) if len(parts) >= 2 else None
            if found is not None:
                written.append(found)
        patients = sorted(
            {pid for r in written for pid in patients_of(r) or self._patients_behind(r)}
        )
        level = highest_confidentiality(written) if written else "N"
        if not any(confidentiality_of(r) for r in written):
            level = "N"
        acts = sorted({code for r in written for code in sensitivities_of(r)})
        security = [confidentiality_coding(level)] + [
            {"system": ACT_CODE, "code": code} for code in acts
        ]
        prov = build_provenance(
            targets,
            recorded=instant(self.sandbox.clock.now()),
            activity=activity,
            who=self.user.ref,
            reason=reason,
            occurred=occurred,
            signature=signature,
            patients=patients,
            security=security,
        )
        saved = self._store.create(prov)
        self._record_pointer(saved)
        return saved

    def _cascade_labels(self, changed: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        """Raise the labels of every record derived from ``changed`` (transitively; see
        :func:`ehr_sandbox.access.derived.cascade`), each as a new version with a Provenance
        (``label``, naming the source). Runs inside the write's transaction; returns the
        stored records and their sources for the audit trail."""
        from ehr_sandbox.access.derived import cascade

        store = self._store
        scans: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
        done: list[tuple[dict[str, Any], str]] = []

        def read(rtype: str, rid: str) -> dict[str, Any] | None:
            return store.read(rtype, rid) if is_resource_type(rtype) and _valid_id(rid) else None

        def write(record: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
            saved = store.update(record, expected_version=record["meta"]["versionId"])
            self._record_pointer(saved)
            origin = f"{source['resourceType']}/{source['id']}"
            if saved["resourceType"] != "Provenance":
                # (a Provenance's own relabel is audited, not given a Provenance of its own)
                self._record_provenance(
                    [
                        f"{saved['resourceType']}/{saved['id']}/_history/{saved['meta']['versionId']}"
                    ],
                    "label",
                    f"labels inherited from {origin} (a record derived from it)",
                )
            done.append((saved, origin))
            return saved

        cascade(changed, lambda src: self._derived_from(src, scans), read, write)
        return done

    def _derived_from(
        self,
        source: dict[str, Any],
        scans: dict[str, dict[tuple[str, str], list[dict[str, Any]]]],
    ) -> list[dict[str, Any]]:
        """The stored records whose derived sources name ``source``: through the search
        index where a parameter covers the field, else among the records of its patients,
        else (a type with no patient, or a source naming none) among every record of the
        type (``scans`` keeps those, by source, for the rest of one cascade; the cascade
        reads each one again before raising it)."""
        from ehr_sandbox.access.derived import derived_sources, reverse_lookups
        from ehr_sandbox.search import lookup, parse

        store = self._store
        key = (str(source.get("resourceType")), str(source.get("id")))
        ref = f"{key[0]}/{key[1]}"
        patients = patients_of(source) or self._patients_behind(source)
        by_patient = ",".join(f"Patient/{p}" for p in sorted(patients))
        found: dict[tuple[str, str], dict[str, Any]] = {}
        asked: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for dtype, _path, param, targets in reverse_lookups():
            if param is not None and (not targets or key[0] in targets):
                how = (param, ref)
            elif patients and lookup(dtype, "patient") is not None:
                how = ("patient", by_patient)
            else:
                how = ("", "")
            if not how[0]:
                if dtype not in scans:
                    by_source: dict[tuple[str, str], list[dict[str, Any]]] = {}
                    for record in store.iter_type(dtype):
                        for src in derived_sources(record):
                            by_source.setdefault(src, []).append(record)
                    scans[dtype] = by_source
                for record in scans[dtype].get(key, ()):
                    found[(dtype, str(record.get("id")))] = record
                continue
            if (dtype, how[0]) not in asked:
                asked[(dtype, how[0])] = store.search(dtype, parse(dtype, [how]))
            for record in asked[(dtype, how[0])]:
                if key in derived_sources(record):
                    found[(dtype, str(record.get("id")))] = record
        return list(found.values())

    def _patients_behind(self, resource: dict[str, Any]) -> frozenset[str]:
        """The patients of the records ``resource`` is about (a payment names the claims it
        pays, not the patient): its Provenance belongs to them, not to nobody."""
        from ehr_sandbox.access.derived import derived_sources

        out: set[str] = set()
        for rtype, rid in derived_sources(resource):
            found = (
                self._store.read(rtype, rid) if is_resource_type(rtype) and _valid_id(rid) else None
            )
            if found is not None:
                out |= patients_of(found)
        return frozenset(out)

    # ------------------------------------------------------------------ legal-record operations
    def mark_entered_in_error(self, ref: str, reason: str) -> dict[str, Any]:
        """Void a resource charted in error.

        Nothing is deleted: the status becomes ``entered-in-error``, history keeps every version,
        Provenance keeps the reason.

        Parameters
        ----------
        ref : str
            The ``Type/id`` of the resource charted in error.
        reason : str
            Why; required.

        Returns
        -------
        dict
            The new (voided) version.

        Raises
        ------
        ValidationError
            ``reason`` is empty, or the type has no status that can say entered-in-error.
        NotFound
            The resource is absent or hidden from this session.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> obs = s.search("Observation", code="http://loinc.org|8867-4").first()
        >>> voided = s.mark_entered_in_error(f"Observation/{obs['id']}", reason="wrong patient")
        >>> voided["status"], len(s.history("Observation", obs["id"]))
        ('entered-in-error', 2)
        """
        from ehr_sandbox.records.editing import entered_in_error_version

        reason = _require_reason(reason, "entered-in-error")
        current = self.read(ref)
        return self.write(
            WriteRequest(
                "update",
                entered_in_error_version(current),
                activity="entered-in-error",
                reason=reason,
            )
        )

    def correct(self, resource: dict[str, Any], reason: str) -> dict[str, Any]:
        """Correct a resource.

        The status becomes ``corrected``/``amended`` where the type has one; the old version stays
        in history and the Provenance records the reason.

        Parameters
        ----------
        resource : dict
            The corrected content (with the ``meta.versionId`` you read).
        reason : str
            Why; required.

        Returns
        -------
        dict
            The new version.

        Raises
        ------
        ValidationError
            ``reason`` is empty or the content is invalid.
        ConflictError
            ``meta.versionId`` is stale.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> obs = s.search("Observation", code="http://loinc.org|8867-4").first()
        >>> obs["valueQuantity"]["value"] = 64
        >>> fixed = s.correct(obs, reason="transcription error")
        >>> fixed["status"], fixed["valueQuantity"]["value"], fixed["meta"]["versionId"]
        ('corrected', 64, '2')
        """
        from ehr_sandbox.records.editing import corrected_version

        reason = _require_reason(reason, "correct")
        return self.write(
            WriteRequest("update", corrected_version(resource), activity="correct", reason=reason)
        )

    def amend(self, resource: dict[str, Any], reason: str) -> dict[str, Any]:
        """Amend at the patient's request (HIPAA 164.526).

        Like :meth:`correct`, but recorded as an amendment (status ``amended`` where the type has
        one; the Provenance activity is ``amend``).

        Parameters
        ----------
        resource : dict
            The amended content (with the ``meta.versionId`` you read).
        reason : str
            Why; required (e.g. the patient's request).

        Returns
        -------
        dict
            The new version.

        Raises
        ------
        ValidationError
            ``reason`` is empty or the content is invalid.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> obs = s.search("Observation", code="http://loinc.org|8867-4").first()
        >>> s.amend(obs, reason="patient request 2026-01-02")["status"]
        'amended'
        """
        from ehr_sandbox.records.editing import corrected_version

        reason = _require_reason(reason, "amend")
        return self.write(
            WriteRequest(
                "update", corrected_version(resource, amended=True), activity="amend", reason=reason
            )
        )

    def addendum(self, note_ref: str, text: str, *, reason: str | None = None) -> dict[str, Any]:
        """Append to a note with a new DocumentReference (``relatesTo`` appends).

        The original, signed or not, is unchanged.

        Parameters
        ----------
        note_ref : str
            The ``DocumentReference/id`` of the original note.
        text : str
            The addendum's text; must not be blank.
        reason : str, optional
            Why (kept in the Provenance).

        Returns
        -------
        dict
            The new DocumentReference.

        Raises
        ------
        ValidationError
            ``text`` is blank.
        NotFound
            The note is absent or hidden from this session.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> note = s.search("DocumentReference").first()
        >>> add = s.addendum(f"DocumentReference/{note['id']}", "Patient called back: no fever.")
        >>> add["relatesTo"][0]["code"], add["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{note['id']}"
        ('appends', True)
        """
        from ehr_sandbox.records.editing import addendum_for

        if not text or not str(text).strip():
            raise ValidationError("DocumentReference", "content", "the addendum's text")
        original = self.read(note_ref)
        doc = addendum_for(
            original, str(text), author=self.user.ref, when=instant(self.sandbox.clock.peek())
        )
        return self.write(WriteRequest("create", doc, activity="addendum", reason=reason))

    def late_entry(
        self, resource: dict[str, Any], *, event_time: str, reason: str
    ) -> dict[str, Any]:
        """Chart something that happened earlier.

        The event time is when it happened, the recorded time is now, and the resource is tagged as
        a late entry.

        Parameters
        ----------
        resource : dict
            The new resource, as it would have been charted then.
        event_time : str
            When it happened (FHIR dateTime).
        reason : str
            Why it is charted late; required.

        Returns
        -------
        dict
            The created resource.

        Raises
        ------
        ValidationError
            ``reason`` is empty, ``event_time`` is not a dateTime, or the resource is invalid.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> pid = s.search("Patient").first()["id"]
        >>> hr = {"resourceType": "Observation", "status": "final",
        ...     "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        ...     "subject": {"reference": f"Patient/{pid}"},
        ...     "valueQuantity": {"value": 80, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
        >>> late = s.late_entry(hr, event_time="2025-12-31T10:00:00+00:00", reason="paper chart")
        >>> late["effectiveDateTime"]
        '2025-12-31T10:00:00+00:00'
        """
        from ehr_sandbox.records.editing import late_entry_version

        reason = _require_reason(reason, "late-entry")
        now = self.sandbox.clock.peek()
        res = late_entry_version(resource, event_time=event_time, now=now)
        return self.write(
            WriteRequest("create", res, activity="late-entry", reason=reason, occurred=event_time)
        )

    def update_address(
        self,
        patient_ref: str,
        address: dict[str, Any],
        *,
        reason: str,
        effective: str | None = None,
    ) -> dict[str, Any]:
        """Registration update: end-date the current home address and add the new one.

        Parameters
        ----------
        patient_ref : str
            The patient (``Patient/id``).
        address : dict
            The new FHIR Address.
        reason : str
            Why; required.
        effective : str, optional
            The day the change takes effect (default: the sandbox's today).

        Returns
        -------
        dict
            The updated Patient.

        Raises
        ------
        ValidationError
            ``reason`` is empty or the address is invalid.
        AccessDenied
            The role may not update patients.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
        >>> pid = s.search("Patient").first()["id"]
        >>> new = {"use": "home", "line": ["1 Elm St"], "city": "Riverton", "state": "WY", "postalCode": "82501"}
        >>> p = s.update_address(f"Patient/{pid}", new, reason="patient moved")
        >>> [a["line"][0] for a in p["address"] if not a.get("period", {}).get("end")]
        ['1 Elm St']
        """
        from ehr_sandbox.records.editing import with_new_address

        reason = _require_reason(reason, "registration-update")
        patient = self.read(patient_ref)
        day = effective or self.sandbox.clock.peek().date().isoformat()
        return self.write(
            WriteRequest(
                "update",
                with_new_address(patient, address, day),
                activity="registration-update",
                reason=reason,
            )
        )

    def update_coverage(
        self,
        patient_ref: str,
        coverage: dict[str, Any],
        *,
        reason: str,
        order: int = 1,
        effective: str | None = None,
    ) -> dict[str, Any]:
        """Registration update for insurance.

        Adds the new Coverage at ``order`` (1 = primary) and end-dates the Coverage it replaces
        (never overwrites it), in one transaction.

        Parameters
        ----------
        patient_ref : str
            The patient (``Patient/id``).
        coverage : dict
            The new Coverage's content (payor, subscriber id ...); beneficiary, order and period
            are filled in.
        reason : str
            Why; required.
        order : int, default 1
            1 for primary, 2 for secondary ...
        effective : str, optional
            The day the change takes effect (default: the sandbox's today).

        Returns
        -------
        dict
            The new Coverage.

        Raises
        ------
        ValidationError
            ``reason`` is empty or the coverage is invalid.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
        >>> pid = s.search("Patient").first()["id"]
        >>> old = s.search("Coverage", beneficiary=f"Patient/{pid}").first()
        >>> new = {k: v for k, v in old.items() if k in ("payor", "type", "subscriberId")}
        >>> cov = s.update_coverage(f"Patient/{pid}", new, reason="new employer plan")
        >>> cov["order"], s.read("Coverage", old["id"])["period"]["end"]
        (1, '2026-01-01')
        """
        from ehr_sandbox.records.editing import new_coverage, replaced_coverage

        reason = _require_reason(reason, "registration-update")
        patient = self.read(patient_ref)
        day = effective or self.sandbox.clock.peek().date().isoformat()
        current = [
            c
            for c in self.search("Coverage", beneficiary=f"Patient/{patient['id']}").fetch()
            if c.get("status") == "active" and not (c.get("period") or {}).get("end")
        ]
        with self._store.transaction():
            for old in current:
                if int(old.get("order", 1)) == order:
                    self.write(
                        WriteRequest(
                            "update",
                            replaced_coverage(old, day),
                            activity="registration-update",
                            reason=reason,
                        )
                    )
            return self.write(
                WriteRequest(
                    "create",
                    new_coverage(coverage, patient["id"], order, day),
                    activity="registration-update",
                    reason=reason,
                )
            )

    def relabel(
        self, ref: str, confidentiality: str, *, reason: str, sensitivity: list[str] | None = None
    ) -> dict[str, Any]:
        """Change a resource's security labels (privacy officer only; audited, with a reason).

        Parameters
        ----------
        ref : str
            The ``Type/id`` to relabel.
        confidentiality : str
            One of U, L, M, N, R, V.
        reason : str
            Why; required.
        sensitivity : list of str, optional
            v3-ActCode sensitivity codes (e.g. ``["PSY"]``) that **replace** the record's
            current ones; ``[]`` removes them all. Left out, the record keeps the ones it has
            (raising a substance-use record to R never drops its 42 CFR Part 2 labels by
            omission).

        Returns
        -------
        dict
            The relabelled version.

        Raises
        ------
        AccessDenied
            Any role but the privacy officer (whether or not the record exists).
        NotFound
            The record is absent or hidden from the officer.
        ValidationError
            ``reason`` is empty or a code is unknown.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> ref = "Condition/" + sb.grader_session().search("Condition").first()["id"]
        >>> new = sb.login("po.wilson").relabel(ref, "R", reason="patient request", sensitivity=["PSY"])
        >>> [c["code"] for c in new["meta"]["security"]]
        ['R', 'PSY']
        >>> again = sb.login("po.wilson").relabel(ref, "V", reason="court order")  # keeps PSY
        >>> [c["code"] for c in again["meta"]["security"]]
        ['V', 'PSY']
        >>> sb.login("dr.patel").relabel(ref, "N", reason="x")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.AccessDenied: physician may not change security labels: only the privacy officer can (labels decide who may see the data)
        """
        from ehr_sandbox.access.roles import may
        from ehr_sandbox.records.editing import relabeled

        reason = _require_reason(reason, "label")
        rtype, rid = split_ref(ref)
        _require_type(rtype)
        if not may(self.user.role, "label"):
            # Refused for the role whether or not the record exists (no existence oracle).
            self._audit(action="U", interaction="label", outcome="4", entity_ref=f"{rtype}/{rid}")
            raise AccessDenied(
                f"{self.user.role} may not change security labels: only the privacy officer can "
                "(labels decide who may see the data)"
            )
        raw = self._store.read(rtype, rid)
        decision = self._decide("label", raw, rtype) if raw is not None else None
        if raw is None or decision is None or not decision.allowed:
            # A record the officer cannot see answers exactly like an absent one.
            self._audit(action="U", interaction="label", outcome="4", entity_ref=f"{rtype}/{rid}")
            raise self._hidden(rtype, rid)
        if sensitivity is None:  # keep what the record carries: removing a label is explicit
            sensitivity = [
                str(s.get("code"))
                for s in (raw.get("meta") or {}).get("security", [])
                if s.get("system") == ACT_CODE
            ]
        new = relabeled(raw, confidentiality, sensitivity)
        return self.write(
            WriteRequest("update", new, activity="label", reason=reason, label_change=True)
        )

    def provenance(self, ref: str) -> list[dict[str, Any]]:
        """Provenance records for a resource (any version), oldest first.

        Parameters
        ----------
        ref : str
            The ``Type/id`` of the target; this session must be able to read it.

        Returns
        -------
        list of dict
            The Provenance resources that target it.

        Raises
        ------
        NotFound
            The target is absent or hidden from this session.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> obs = s.search("Observation", code="http://loinc.org|8867-4").first()
        >>> _ = s.correct(obs, reason="recounted")
        >>> [p["activity"]["coding"][0]["code"] for p in s.provenance(f"Observation/{obs['id']}")][-1]
        'correct'
        """
        rtype, rid = split_ref(ref)
        self.read(rtype, rid)  # must be able to see the target
        found = self.search("Provenance", target=f"{rtype}/{rid}").fetch()
        return sorted(found, key=lambda p: p.get("recorded", ""))

    def sign(self, note_ref: str) -> dict[str, Any]:
        """Sign a note (physicians).

        An Ed25519 signature over the note's canonical JSON, kept in a Provenance. A signed note can
        no longer be edited, only given an addendum.

        Parameters
        ----------
        note_ref : str
            The ``DocumentReference/id`` to sign.

        Returns
        -------
        dict
            The Provenance that holds the signature.

        Raises
        ------
        AccessDenied
            The role may not sign notes.
        ValidationError
            The reference is not a DocumentReference, or the note is already signed.
        NotFound
            The note is absent or hidden from this session.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> pid = s.search("Patient").first()["id"]
        >>> note = s.create({"resourceType": "DocumentReference", "status": "current",
        ...     "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        ...     "subject": {"reference": f"Patient/{pid}"},
        ...     "content": [{"attachment": {"contentType": "text/plain", "data": "Tm90ZQ=="}}]})
        >>> prov = s.sign(f"DocumentReference/{note['id']}")
        >>> prov["resourceType"], s.verify_signature(f"DocumentReference/{note['id']}")
        ('Provenance', True)
        """
        from ehr_sandbox.records.signing import sign_note

        return sign_note(self, note_ref)

    def verify_signature(self, note_ref: str) -> bool:
        """True when the note's current content still matches its signature.

        A note this session may not see answers as an absent one (:class:`NotFound`), signed or
        not: whether a hidden id is a signed note is not for this session to learn.

        Parameters
        ----------
        note_ref : str
            The ``DocumentReference/id``.

        Returns
        -------
        bool
            False for an unsigned note or one whose content changed since it was signed.

        Raises
        ------
        NotFound
            The note is absent or hidden from this session.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> pid = s.search("Patient").first()["id"]
        >>> note = s.create({"resourceType": "DocumentReference", "status": "current",
        ...     "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        ...     "subject": {"reference": f"Patient/{pid}"},
        ...     "content": [{"attachment": {"contentType": "text/plain", "data": "Tm90ZQ=="}}]})
        >>> ref = f"DocumentReference/{note['id']}"
        >>> s.verify_signature(ref)
        False
        >>> _ = s.sign(ref); s.verify_signature(ref)
        True
        """
        from ehr_sandbox.records.signing import verify_note

        self.read(*split_ref(note_ref))
        return verify_note(self, note_ref)

    # ------------------------------------------------------------------ break the glass
    def break_glass(self, patient: str | dict[str, Any], reason: str) -> None:
        """Emergency access to one patient for a limited time.

        Physician or nurse only, with a reason. Audited as an emergency override and queued for
        the privacy officer's review (:meth:`btg_review_queue`); it ends by itself after
        ``BTG_MINUTES`` of sandbox time, or with :meth:`end_break_glass`.

        Parameters
        ----------
        patient : str or dict
            The patient: an id, ``Patient/id`` or the Patient resource.
        reason : str
            Why; required.

        Raises
        ------
        AccessDenied
            A role that may not break the glass.
        ValidationError
            ``reason`` is empty or ``patient`` is not a patient.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> pid = sb.grader_session().search("Patient").first()["id"]
        >>> s = sb.login("dr.nguyen")  # not this patient's doctor
        >>> s.exists(f"Patient/{pid}")
        False
        >>> s.break_glass(pid, reason="unresponsive in the waiting room")
        >>> s.exists(f"Patient/{pid}"), len(sb.login("po.wilson").btg_review_queue())
        (True, 1)
        """
        from ehr_sandbox.access.roles import may, roles_that

        pid = _patient_id(patient, "break_glass")
        reason = _require_reason(reason, "break-glass")
        if not may(self.user.role, "break_glass"):
            self._audit(
                action="E",
                interaction="break-glass-start",
                outcome="4",
                patient_id=pid,
                detail=reason,
            )
            raise AccessDenied(
                f"{self.user.role} may not break the glass: only a "
                f"{' or '.join(roles_that('break_glass'))} treating an "
                "emergency can, and every use is reviewed by the privacy officer"
            )
        until = self.sandbox.clock.peek() + timedelta(minutes=BTG_MINUTES)
        self._btg[pid] = until
        self._ctx = None
        self._audit_btg(pid, start=True, reason=reason)
        self.sandbox._queue_btg_review(self.user, pid, reason, instant(self.sandbox.clock.peek()))

    def end_break_glass(self, patient: str | dict[str, Any] | None = None) -> None:
        """End break-the-glass access (for one patient, or all).

        Parameters
        ----------
        patient : str or dict, optional
            The forms :meth:`break_glass` takes (an id, ``Patient/id`` or the Patient resource);
            None ends every active grant.

        Raises
        ------
        ValidationError
            ``patient`` has no active grant (rather than doing nothing).

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> pid = sb.grader_session().search("Patient").first()["id"]
        >>> s = sb.login("dr.nguyen")
        >>> s.break_glass(pid, reason="emergency")
        >>> s.end_break_glass(f"Patient/{pid}")
        >>> s.exists(f"Patient/{pid}")
        False
        >>> s.end_break_glass(pid)
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: end_break_glass: patient: expected a patient with active break-the-glass access (none is active) (found '...')
        """
        if patient is None:
            pids = list(self._btg)
        else:
            pid = _patient_id(patient, "end_break_glass")
            if pid not in self._btg:
                raise ValidationError(
                    "end_break_glass",
                    "patient",
                    "a patient with active break-the-glass access ("
                    + (", ".join(sorted(self._btg)) or "none is active")
                    + ")",
                    found=patient if isinstance(patient, str) else pid,
                )
            pids = [pid]
        for pid in pids:
            del self._btg[pid]
            self._audit_btg(pid, start=False, reason="ended by user")
        self._ctx = None

    def btg_review_queue(self) -> list[dict[str, Any]]:
        """Break-the-glass uses awaiting review, oldest first (privacy officer only; a
        refusal is audited). Each item names the ``user``, ``role``, ``patient``, ``reason``
        and when it ``started``.

        Raises
        ------
        AccessDenied
            A role that does not review break-the-glass use.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.login("po.wilson").btg_review_queue()
        []
        >>> sb.login("ma.garcia").btg_review_queue()
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.AccessDenied: only the privacy officer reviews break-the-glass use
        """
        return [dict(item) for item in self.sandbox.btg_review_queue(self)]

    def review_btg(self, index: int, *, appropriate: bool, note: str) -> None:
        """Review one pending break-the-glass use (``index`` into :meth:`btg_review_queue`)
        as the privacy officer: whether the access was appropriate, and a note saying why.
        The review is recorded in the tamper-evident audit trail (``btg-review``).

        Raises
        ------
        AccessDenied
            A role that does not review break-the-glass use.
        ValidationError
            ``index`` is not one of the pending items.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> po = Sandbox.generate(patients=1, seed=1, years=1).login("po.wilson")
        >>> po.review_btg(0, appropriate=True, note="x")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: btg_review: index: expected 0..-1 (found 0)
        """
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValidationError("btg_review", "index", "an integer", found=index)
        self.sandbox.review_btg(self, index, appropriate=appropriate, note=note)

    # ------------------------------------------------------------------ bulk access
    def resources(
        self, resource_type: str, *, research: bool = False, export: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every resource of a type this session may read, masked (reports and views use it).

        ``research=True`` narrows it to what may go into a research export: the role's
        ``deidentify`` permission per record (ceiling, excluded labels, relationship) and the
        patients' research Consents (purpose HRESCH). ``export=True`` decides each record as a
        bulk export (the role's ``export`` action; break-the-glass lifts nothing there).
        Audited before data leaves: one event per patient.

        Parameters
        ----------
        resource_type : str
            The FHIR resource type.
        research : bool, default False
            Only what may go into a research export.
        export : bool, default False
            Decide each record as a bulk export.

        Yields
        ------
        dict
            Each visible resource, masked.

        Raises
        ------
        ValidationError
            ``resource_type`` is not a FHIR resource type.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> len(list(sb.login("dr.patel").resources("Condition"))) == sb.grader_session().search("Condition").count()
        True
        >>> list(sb.login("fd.smith").resources("Condition"))  # not the front desk's to read
        []
        """
        _require_type(resource_type)
        ctx = self.context
        policy = self.sandbox.policy
        action = "deidentify" if research else "export" if export else "search"
        interaction = "deidentify" if research else "export" if export else "report"
        if not policy.can_type(ctx, action, resource_type).allowed:
            self._audit(action="E", interaction=interaction, outcome="4", query=resource_type)
            return
        yield from self._resources_checked(resource_type, action, interaction, research)

    def _resources_checked(
        self, resource_type: str, action: str, interaction: str, research: bool
    ) -> Iterator[dict[str, Any]]:
        ctx = self.context
        policy = self.sandbox.policy
        # Audit before data leaves the door: a caller that stops early (islice, break) has
        # still left one event per patient whose data it received.
        patients: set[str] = set()
        any_yielded = False
        seen: dict[str, bool] = {}
        for r in self._store.iter_type(resource_type):
            if policy.decide(ctx, action, r, resource_type=resource_type).allowed and (
                not research or policy.research_verdict(r).allowed
            ):
                pid = patient_of(r) or ""
                if pid not in patients:
                    patients.add(pid)
                    self._audit(
                        action="E",
                        interaction=interaction,
                        outcome="0",
                        patient_id=pid or None,
                        query=resource_type,
                    )
                any_yielded = True
                yield self._mask(r, seen)
        if not any_yielded:
            self._audit(action="E", interaction=interaction, outcome="0", query=resource_type)

    def report_view(self, view: dict[str, Any], *, engine: str = "auto") -> Any:
        """Run a ViewDefinition over what this session may see, for reports.

        The same rows as flattening :meth:`resources`, from the sandbox's cache of flattened rows
        per resource version (see :mod:`ehr_sandbox.reports.cache`): only new or changed versions
        are flattened again, the policy decides on every resource (decisions are reused only while
        nothing was written and no Consent exists), and each run is audited like :meth:`resources`,
        one event per patient.

        Parameters
        ----------
        view : dict
            A SQL on FHIR ViewDefinition.
        engine : str, default "auto"
            The view engine to use.

        Returns
        -------
        tuple
            The rows (an Arrow table) and the highest confidentiality among the resources they
            come from.

        Raises
        ------
        ViewDefinitionError
            The view is invalid.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> view = {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]}
        >>> table, level = s.report_view(view)
        >>> table.num_rows, table.column_names
        (1, ['id'])
        """
        from ehr_sandbox.reports.cache import caches_of
        from ehr_sandbox.views import run_arrow

        rtype = view["resource"]
        _require_type(rtype)
        ctx = self.context
        policy = self.sandbox.policy
        store = self._store
        if not policy.can_type(ctx, "search", rtype).allowed:
            self._audit(action="E", interaction="report", outcome="4", query=rtype)
            return run_arrow(view, [], engine=engine), "N"
        caches = caches_of(self.sandbox, lambda: bool(store.count("Consent")))
        current = store.current_versions(rtype)
        key = (view.get("name"), repr(view), ctx.role)
        stale = set(caches.flat.stale(key, current))
        decided = caches.decisions_for(rtype, ctx, store.change_mark())
        decoded: dict[str, dict[str, Any]] = {}
        if decided is None or stale and len(stale) > len(current) // 2:
            from ehr_sandbox.access.labels import confidentiality_of

            allowed: set[str] = set()
            patients: dict[str, str] = {}
            label, rank = "N", CONFIDENTIALITY_RANK["N"]
            with collector_paused():  # tens of thousands of decoded resources, all acyclic
                for r in store.iter_type(rtype):
                    if r["id"] in stale:
                        decoded[r["id"]] = r
                    if (
                        decided is None
                        and policy.decide(ctx, "search", r, resource_type=rtype).allowed
                    ):
                        allowed.add(r["id"])
                        patients[r["id"]] = patient_of(r) or ""
                        conf = confidentiality_of(r) or "N"
                        if CONFIDENTIALITY_RANK[conf] > rank:
                            label, rank = conf, CONFIDENTIALITY_RANK[conf]
            if decided is None:
                decided = (frozenset(allowed), patients, label)
                caches.remember(rtype, ctx, store.change_mark(), decided)

        def load(ids: list[str]) -> list[dict[str, Any]]:
            missing = [i for i in ids if i not in decoded]
            decoded.update((r["id"], r) for r in store.read_many(rtype, missing))
            return [policy.mask(ctx, decoded[i]) for i in ids if i in decoded]

        with collector_paused():  # the flattened rows: acyclic too
            caches.flat.update(key, view, current, load, engine=engine)
        allowed_ids, patient_of_id, label = decided
        # The cached rows are the role's view of each record; a record quoting one this
        # session may not see (a reference's display) is flattened again from its redacted
        # copy, as every other channel releases it.
        instead: list[dict[str, Any]] = []
        if ctx.role_info.relationship != "bypass":

            def raw(ids: list[str]) -> list[dict[str, Any]]:
                missing = [i for i in ids if i not in decoded]
                decoded.update((r["id"], r) for r in store.read_many(rtype, missing))
                return [decoded[i] for i in ids if i in decoded]

            quoting = caches.quoting(rtype, current, raw, quoted_targets)
            seen: dict[str, bool] = {}
            for rid in sorted(allowed_ids & quoting.keys()):
                if not all(seen.setdefault(t, self._can_see(t)) for t in quoting[rid]):
                    instead.extend(self._mask(r, seen) for r in raw([rid]))
        # one event per patient, written in one savepoint (one commit)
        self._audit_patients(
            [pid or None for pid in sorted({patient_of_id[i] for i in allowed_ids}) or [""]],
            action="E",
            interaction="report",
            outcome="0",
            query=rtype,
        )
        return caches.flat.rows_for(
            key, set(allowed_ids), instead=instead, view=view, current=current, engine=engine
        ), label

    def can_read(self, resource_type: str) -> bool:
        """True when this session may read some resources of the type (its role and scopes
        allow it); reports use it to refuse rather than show misleading empty data.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
        >>> s.can_read("Patient"), s.can_read("Observation")
        (True, False)
        """
        _require_type(resource_type)
        decision = self.sandbox.policy.can_type(self.context, "search", resource_type)
        if not decision.allowed:
            # A refused report (or report SQL over a view the role may not read) is a denial
            # like any other: it is audited before the caller raises.
            self._audit(
                action="E",
                interaction="report",
                outcome="4",
                query=resource_type,
                detail=decision.reason,
            )
        return decision.allowed

    def now(self) -> datetime:
        """The sandbox instant (its deterministic clock, not moved; never the wall clock).
        Workflows ask the time here, so a remote session can ask its server's clock.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> Sandbox.empty(reference_date="2026-01-05").system_session().now().isoformat()
        '2026-01-05T08:00:00+00:00'
        """
        return self.sandbox.clock.peek()

    @property
    def reference_date(self) -> Any:
        """The sandbox's reference date (reports compute 'today' from it).

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> Sandbox.empty(reference_date="2026-01-05").system_session().reference_date.isoformat()
        '2026-01-05'
        """
        return self.sandbox.reference_date

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit trail, for roles that may read it (privacy officer). Reading it is audited.

        Returns
        -------
        list of dict
            Every AuditEvent, oldest first.

        Raises
        ------
        AccessDenied
            A role that may not read the audit trail (the refusal is audited too).

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> events = sb.login("po.wilson").audit_events()
        >>> {e["resourceType"] for e in events}
        {'AuditEvent'}
        >>> sb.login("dr.patel").audit_events()
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.AccessDenied: physician may not read the audit trail; the privacy officer can
        """
        if not self.sandbox.policy.can_type(self.context, "read", "AuditEvent").allowed:
            self._audit(action="R", interaction="audit-read", outcome="4", query="AuditEvent")
            raise AccessDenied(
                f"{self.user.role} may not read the audit trail; the privacy officer can"
            )
        self._audit(action="R", interaction="audit-read", outcome="0", query="AuditEvent")
        return self.sandbox.audit.events()

    def audit_action(
        self,
        kind: str,
        *,
        patient: str | None = None,
        ref: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record an action that is not a resource write (a disclosure, a hand-in, a hint, a
        rights change) in the tamper-evident audit trail, as this user.

        ``kind`` is a lower-case name such as ``disclose``; RESTful interaction names (read,
        create, ...) are refused so that an action cannot pose as a read or a write.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.login("ma.garcia").audit_action("disclose", detail='{"recipient": "Organization/x"}')
        >>> sb.audit.events()[-1]["outcomeDesc"]
        '{"recipient": "Organization/x"}'
        >>> sb.login("ma.garcia").audit_action("read")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: audit action: kind: expected a lower-case action name that is not a RESTful interaction or one the sandbox records itself (found 'read')
        >>> sb.login("ma.garcia").audit_action("exercise-submit", detail="{}")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: audit action: kind: expected an action name that is not the exercise framework's own bookkeeping (exercise-check, exercise-hint, exercise-login, exercise-submit: the framework records those itself) (found 'exercise-submit')
        """
        from ehr_sandbox.audit.events import RESTFUL_CODES

        if isinstance(kind, str) and kind in FRAMEWORK_AUDIT_KINDS:
            raise ValidationError(
                "audit action",
                "kind",
                "an action name that is not the exercise framework's own bookkeeping ("
                + ", ".join(sorted(FRAMEWORK_AUDIT_KINDS))
                + ": the framework records those itself)",
                found=kind,
            )
        if (
            not isinstance(kind, str)
            or not kind
            or kind in RESTFUL_CODES
            or kind in SANDBOX_AUDIT_KINDS
            or not all(c.islower() or c in "-" for c in kind)
        ):
            raise ValidationError(
                "audit action",
                "kind",
                "a lower-case action name that is not a RESTful interaction "
                "or one the sandbox records itself",
                found=kind,
            )
        self._audit_kind(kind, patient=patient, ref=ref, detail=detail)

    def own_actions(self, kind: str, *, patient: str | None = None) -> list[dict[str, Any]]:
        """The actions of ``kind`` this user recorded with :meth:`audit_action` (about
        ``patient``, when given), oldest first: how a workflow asks whether its user did
        something that is not a record write (identified a patient, for one).

        Only this user's own events of an action kind come back, never another user's nor a
        read or write event, so any role may ask and asking is not itself audited (it tells
        the user nothing about a record they could not see).

        Raises
        ------
        ValidationError
            For a kind :meth:`audit_action` would refuse.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> s = sb.login("ma.garcia")
        >>> s.audit_action("demo-act", detail="one")
        >>> sb.login("rn.kim").audit_action("demo-act", detail="not mine")
        >>> [e["outcomeDesc"] for e in s.own_actions("demo-act")]
        ['one']
        """
        from ehr_sandbox.audit.events import RESTFUL_CODES

        if not isinstance(kind, str) or kind in RESTFUL_CODES or kind in SANDBOX_AUDIT_KINDS:
            raise ValidationError(
                "own actions", "kind", "an action kind audit_action records", found=kind
            )
        pid = None
        if patient:
            pid = split_ref(patient)[1] if "/" in patient else patient
        return [
            e
            for e in self.sandbox.audit.events(patient=pid, user=self.user.username)
            if any(c.get("code") == kind for c in e.get("subtype", []) or [])
        ]

    def audit_operation(
        self,
        interaction: str,
        outcome: str,
        *,
        entity: dict[str, Any] | None = None,
        entity_ref: str | None = None,
        query: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record the outcome of one of the record operations that are more than one RESTful
        interaction (a transaction Bundle, an import, an export, a de-identified export, a
        signature) in the audit trail, as this user. The operations in
        :mod:`ehr_sandbox.records` audit through it; nothing else may pose as them.

        Parameters
        ----------
        interaction
            One of :data:`OPERATION_ACTIONS` (``transaction``, ``import``, ``export``,
            ``deidentify``, ``sign``); the AuditEvent action code comes from that table.
        outcome
            ``"0"`` done, ``"4"`` refused, ``"8"`` failed.
        entity, entity_ref, query, detail
            What the event names: a resource (its labels and version are recorded), a
            reference, the query or the types, and why.

        Raises
        ------
        ValidationError
            For an interaction outside the table or an unknown outcome code.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.login("dr.patel").audit_operation("export", "4", query="Observation")
        >>> sb.audit.events()[-1]["subtype"][0]["code"], sb.audit.events()[-1]["outcome"]
        ('export', '4')
        >>> sb.login("dr.patel").audit_operation("read", "0")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: audit operation: interaction: expected one of deidentify, export, import, sign, transaction (found 'read')
        """
        action = OPERATION_ACTIONS.get(interaction) if isinstance(interaction, str) else None
        if action is None:
            raise ValidationError(
                "audit operation",
                "interaction",
                "one of " + ", ".join(sorted(OPERATION_ACTIONS)),
                found=interaction,
            )
        if outcome not in ("0", "4", "8"):
            raise ValidationError(
                "audit operation",
                "outcome",
                "'0' (done), '4' (refused) or '8' (failed)",
                found=outcome,
            )
        self._audit(
            action=action,
            interaction=interaction,
            outcome=outcome,
            entity=entity,
            entity_ref=entity_ref,
            query=query,
            detail=detail,
        )

    def record_provenance(
        self,
        targets: list[str],
        activity: str,
        *,
        reason: str | None = None,
        signature: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record one Provenance, by this user, over versions a record operation wrote or
        signed (a transaction Bundle or an import records one for all it wrote; a signature
        records the signed version). Returns the stored Provenance.

        The Provenance takes the patients and the highest labels of its targets, as every
        write's does. Only the operations' activities are accepted, and every target must be
        a version this session may see (a hidden or unknown one answers
        :class:`~ehr_sandbox.errors.NotFound`).

        Parameters
        ----------
        targets
            Versioned references, ``Type/id/_history/vid``.
        activity
            One of :data:`OPERATION_ACTIVITIES`.
        reason, signature
            The reason text, and the signature of a ``sign`` Provenance.

        Raises
        ------
        ValidationError
            For another activity or a target that is not a versioned reference.
        NotFound
            For a target this session cannot see.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> p = s.search("Patient").first()
        >>> ref = f"Patient/{p['id']}/_history/{p['meta']['versionId']}"
        >>> s.record_provenance([ref], "import")["target"][0]["reference"] == ref
        True
        >>> s.record_provenance([ref], "correction")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: record provenance: activity: expected one of create, import, sign (found 'correction')
        """
        if activity not in OPERATION_ACTIVITIES:
            raise ValidationError(
                "record provenance",
                "activity",
                "one of " + ", ".join(sorted(OPERATION_ACTIVITIES)),
                found=activity,
            )
        for target in targets:
            parts = target.split("/") if isinstance(target, str) else []
            if len(parts) != 4 or parts[2] != "_history":
                raise ValidationError(
                    "record provenance",
                    "targets",
                    "versioned references Type/id/_history/vid",
                    found=target,
                )
            if not self._can_see(f"{parts[0]}/{parts[1]}"):
                raise self._hidden(parts[0], parts[1])
        return self._record_provenance(list(targets), activity, reason, signature=signature)

    def _audit_kind(
        self,
        kind: str,
        *,
        patient: str | None = None,
        ref: str | None = None,
        detail: str | None = None,
    ) -> None:
        pid = None
        if patient:
            pid = split_ref(patient)[1] if "/" in patient else patient
        self._audit(
            action="E",
            interaction=kind,
            outcome="0",
            patient_id=pid,
            entity_ref=ref,
            detail=detail,
        )

    def change_mark(self) -> int:
        """Where the record's history stands now (pass it to :meth:`changes_since` later).

        The mark counts every write to any record, so it is asked only by the roles that may
        read the whole record's history (the system account, the privacy officer): for anyone
        else it would tell when a record they cannot see was written.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.system_session().change_mark() > 0
        True
        >>> sb.login("rn.kim").change_mark()
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.AccessDenied: nurse may not read the whole record's history; the privacy officer can
        """
        self._require_review()
        return self.sandbox._store.change_mark()

    def _require_review(self) -> None:
        if not _may(self.user.role, "review"):
            self._audit(action="R", interaction="history-system", outcome="4")
            raise AccessDenied(
                f"{self.user.role} may not read the whole record's history; the privacy officer can"
            )

    def changes_since(self, mark: int, *, until: int | None = None) -> list[dict[str, Any]]:
        """Every resource version written after ``mark`` (up to ``until``), oldest first (the system account and
        the privacy officer only: it is the whole record's history). Graders use it to see every
        write, including ones later "repaired"; the privacy officer gets only the versions their
        role may read (consents, provenance, demographics), decided like :meth:`history`.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> s = sb.system_session(); m = s.change_mark()
        >>> s.changes_since(m)
        []
        """
        self._require_review()
        store = self.sandbox._store
        # the system account (graders) sees every version; the privacy officer sees the
        # versions the policy lets them read, as history does (not clinical content)
        everything = self.context.role_info.relationship == "bypass"
        out = []
        for rtype, rid, vid in store.changes_since(mark, until):
            version = store.vread(rtype, rid, vid)
            if version is None:
                continue
            if not everything:
                current = store.read(rtype, rid)
                if current is None or not (
                    self._decide("history", current, rtype).allowed
                    and self._decide("history", version, rtype).allowed
                ):
                    continue
                version = self._mask(version)
            out.append(version)
        self._audit(action="R", interaction="history-system", outcome="0")
        return out

    def run_view(self, view: dict[str, Any]) -> list[dict[str, Any]]:
        """Run a SQL on FHIR ViewDefinition over what this session may see.

        Parameters
        ----------
        view : dict
            The ViewDefinition (``resource`` and ``select``).

        Returns
        -------
        list of dict
            One dict per row, keyed by column name.

        Raises
        ------
        ViewDefinitionError
            The view is invalid.
        ValidationError
            ``view["resource"]`` is not a FHIR resource type.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> view = {"resource": "Patient", "select": [{"column": [
        ...     {"name": "id", "path": "id"}, {"name": "gender", "path": "gender"}]}]}
        >>> rows = s.run_view(view)
        >>> rows == [{"id": p["id"], "gender": p["gender"]} for p in s.search("Patient")]
        True
        """
        from ehr_sandbox.views import run

        rtype = view.get("resource") if isinstance(view, dict) else None
        _require_type(str(rtype))
        return run(view, list(self.resources(str(rtype))))

    @property
    def reports(self) -> Reports:
        """The clinic's report catalogue, run as this session (``session.reports.run(name)``).

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> from ehr_sandbox.reports import Reports
        >>> r = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel").reports
        >>> isinstance(r, Reports) and r.source.user.username == "dr.patel"
        True
        """
        from ehr_sandbox.reports import Reports

        return Reports(self)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """All or nothing: writes inside the block are undone together if any fails.

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
        >>> with s.atomic():
        ...     pass
        """
        try:
            with self._store.transaction():
                yield
        except BaseException:
            # relationships worked out inside the block may rest on writes now undone
            self._relationships_changed()
            raise

    def readable_types(self) -> list[str]:
        """Resource types this session may read (sorted): every type the role grants, held
        or not, so the list does not change when a record the session cannot see is the
        first of its type (roles granted every type list the types the sandbox holds).

        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
        >>> "Observation" in s.readable_types(), "Slot" in s.readable_types()
        (False, True)
        """
        policy = self.sandbox.policy
        ctx = self.context
        candidates = set(ctx.role_info.table) if not ctx.role_info.default else set()
        candidates |= set(self._store.types())
        return sorted(t for t in candidates if policy.can_type(ctx, "search", t).allowed)

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Apply a transaction (all or nothing) or batch (entry by entry) Bundle.

        Parameters
        ----------
        bundle : dict
            A FHIR Bundle of type ``transaction`` or ``batch``.

        Returns
        -------
        dict
            The response Bundle (``transaction-response`` or ``batch-response``).

        Raises
        ------
        ValidationError
            The Bundle is malformed, or (transaction) an entry is refused: nothing is written.

        Examples
        --------
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
        >>> out = s.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        ...     {"resource": {"resourceType": "Patient", "name": [{"family": "Doe"}], "gender": "female"},
        ...      "request": {"method": "POST", "url": "Patient"}}]})
        >>> out["type"], out["entry"][0]["response"]["status"][:3]
        ('transaction-response', '201')
        """
        from ehr_sandbox.records.bundles import apply_bundle

        return apply_bundle(self, bundle)

    def import_(self, paths: Iterable[str], *, units: str = "refuse") -> dict[str, int]:
        r"""Import FHIR Bundles or Bulk NDJSON files/directories; returns counts by type.

        Parameters
        ----------
        paths : iterable of str
            Files or folders to import.
        units : {"refuse", "as-text"}, default "refuse"
            ``"as-text"`` keeps non-UCUM units of outside data as text only instead of refusing
            their file (see :func:`ehr_sandbox.records.importing.import_paths`).

        Returns
        -------
        dict
            Resources imported, by type.

        Raises
        ------
        ImportFailed
            Some files were refused (the others went in); the error names each problem.

        Examples
        --------
        >>> import json, pathlib, tempfile
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "Patient.ndjson"
        >>> _ = f.write_text(json.dumps({"resourceType": "Patient", "id": "imp1", "gender": "male"}) + "\n")
        >>> sb = Sandbox.empty()
        >>> sb.system_session().import_([str(f)])
        {'Patient': 1}
        """
        from ehr_sandbox.records.bundles import import_paths

        return import_paths(self, paths, units=units)

    def export(
        self, out_dir: str, *, format: str = "ndjson", types: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Export what this session may read as Bulk NDJSON or Bundles.

        Bulk export needs a ``system/`` scope or a staff role that may export.

        Parameters
        ----------
        out_dir : str
            The folder to write (created if needed).
        format : {"ndjson", "bundle"}, default "ndjson"
            One ``Type.ndjson`` per type, or Bundles.
        types : iterable of str, optional
            Only these resource types.

        Returns
        -------
        dict
            Resources written, by type.

        Raises
        ------
        AccessDenied
            The session may not export.

        Examples
        --------
        >>> import tempfile
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> s = Sandbox.generate(patients=1, seed=1, years=1).system_session()
        >>> s.export(tempfile.mkdtemp(), types=["Patient", "Condition"])
        {'Condition': 4, 'Patient': 1}
        """
        from ehr_sandbox.records.bundles import export_session

        return export_session(self, out_dir, format=format, types=types)

    def deidentify(self, out_dir: str) -> dict[str, int]:
        """A HIPAA Safe Harbor research export of what this session may read.

        Parameters
        ----------
        out_dir : str
            The folder to write.

        Returns
        -------
        dict
            Resources written, by type.

        Raises
        ------
        AccessDenied
            The role may not make research exports.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from ehr_sandbox.sandbox import Sandbox
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> out = tempfile.mkdtemp()
        >>> counts = sb.system_session().deidentify(out)
        >>> counts["Patient"], "Hunter" in (pathlib.Path(out) / "Patient.ndjson").read_text()
        (1, False)
        """
        from ehr_sandbox.records.research import deidentified_export

        return deidentified_export(self, out_dir)

    def __repr__(self) -> str:
        return f"<Session {self.user.username} ({self.user.role})>"

    def _repr_html_(self) -> str:
        from ehr_sandbox.display.reprs import session_html

        return session_html(self)


MAX_DEPTH = 64
"""How deeply a written resource may nest (FHIR data is a few levels deep; more is an attack)."""


RESTRICTED_ALLERGY = "this drug or its class, recorded in a restricted part of the chart"
"""What an allergy alert says instead of an allergy the user may not see (ask a clinician
who can see it, or break the glass in an emergency)."""


def _check_hostile(resource: dict[str, Any]) -> None:
    """Refuse what would escape as a raw error later: nesting deeper than :data:`MAX_DEPTH`
    (RecursionError), strings that are not valid Unicode text (UnicodeEncodeError) or hold a
    NUL. Iterative, so the check itself cannot overflow.

    >>> _check_hostile({"resourceType": "Basic", "x": "a" + chr(0)})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Basic: x: expected text without NUL characters or lone surrogates (found 'a\\x00')
    """
    label = str(resource.get("resourceType", "resource"))
    stack: list[tuple[Any, str, int]] = [(resource, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValidationError(
                label, path or "(resource)", f"a resource nested at most {MAX_DEPTH} levels deep"
            )
        if isinstance(node, str):
            bad = "\x00" in node
            if not bad:
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError:
                    bad = True
            if bad:
                raise ValidationError(
                    label,
                    path or "(value)",
                    "text without NUL characters or lone surrogates",
                    found=node[:40],
                )
        elif isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise ValidationError(label, path or "(resource)", "text keys", found=k)
                stack.append((k, f"{path}.{k}" if path else k, depth + 1))
                stack.append((v, f"{path}.{k}" if path else k, depth + 1))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                stack.append((v, f"{path}[{i}]", depth + 1))


def _may(role: str, action: str) -> bool:
    from ehr_sandbox.access.roles import may

    return may(role, action)


def _safe_text(text: str | None) -> str | None:
    """``text`` as valid, printable Unicode (escaped as ``\\uXXXX`` where it was not).

    >>> _safe_text("a" + chr(0)) == "a" + chr(92) + "u0000"
    True
    """
    if text is None or text.isprintable():  # surrogates and controls are not printable
        return text
    return "".join(
        c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else f"\\u{ord(c):04x}"
        for c in text
    )


def _valid_id(rid: Any) -> bool:
    from ehr_sandbox.references import ID_RE

    return isinstance(rid, str) and ID_RE.match(rid) is not None


def _patient_id(patient: Any, operation: str) -> str:
    """The patient id in ``patient``: an id, ``Patient/id`` or a Patient resource."""
    if isinstance(patient, dict) and patient.get("resourceType") == "Patient" and patient.get("id"):
        return str(patient["id"])
    if isinstance(patient, str) and patient.strip():
        if "/" in patient:
            rtype, rid = split_ref(patient)
            if rtype == "Patient" and rid:
                return rid
        else:
            return patient
    raise ValidationError(
        operation, "patient", "a patient id, 'Patient/<id>' or a Patient resource", found=patient
    )


def _check_meta(res: dict[str, Any]) -> None:
    """``meta`` and its lists must have the shape FHIR gives them before labels are applied."""
    if "meta" not in res:
        return
    meta = res["meta"]
    label = f"{res.get('resourceType')}/{res.get('id', '')}".rstrip("/")
    if not isinstance(meta, dict):
        raise ValidationError(label, "meta", "an object (FHIR Meta)", found=meta)
    for key in ("security", "tag", "profile"):
        if key in meta and not isinstance(meta[key], list):
            raise ValidationError(label, f"meta.{key}", "a list", found=meta[key])
        if key != "profile" and any(not isinstance(c, dict) for c in meta.get(key, [])):
            raise ValidationError(label, f"meta.{key}", "a list of Coding objects", found=meta[key])


def _references(resource: Any) -> frozenset[str]:
    found: set[str] = set()
    stack = [resource]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(found)


def _chained_types(query: Any) -> list[str]:
    chains = getattr(query, "chained_types", None)
    if callable(chains):
        return list(chains())
    return list(chains or [])


def _without_paging(query: Any) -> Any:
    strip = getattr(query, "without_paging", None)
    return strip() if callable(strip) else query


__all__ = ["Session", "split_ref"]
