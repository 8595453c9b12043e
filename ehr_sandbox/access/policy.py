"""The access policy: every rule of docs/privacy.md's decision order, decided in one place.

1. role matrix, 2. SMART scopes, 3. relationship, 4. confidentiality ceiling, 5. Consent,
6. break-the-glass (lifts 3-5 for one patient; not V, not psychotherapy notes). Every rule can
only narrow. The policy is pure: the session fetches data and asks; it never reads the store
itself (Consents come through the ``consents`` callable).

>>> from ehr_sandbox.access.context import AccessContext
>>> policy = Policy(consents=lambda pid: [])
>>> ma = AccessContext(username="ma.garcia", role="medical_assistant", practitioner_id="m1",
...                    patient_id=None, scopes=None, treating=frozenset({"a"}))
>>> obs = {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/a"}}
>>> policy.decide(ma, "read", obs, resource_type="Observation").allowed
True
>>> policy.decide(ma, "create", {"resourceType": "MedicationRequest", "subject": {"reference": "Patient/a"}},
...               resource_type="MedicationRequest").reason
'medical_assistant may not prescribe: MedicationRequest needs a physician'
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from ehr_sandbox.access.breakglass import btg_lifts
from ehr_sandbox.access.compartment import is_reference_data, patients_of
from ehr_sandbox.access.consent import ACTION_CODES, ConsentRequest, evaluate_consents
from ehr_sandbox.access.context import AccessContext, Decision
from ehr_sandbox.access.labels import (
    CONFIDENTIALITY_DISPLAY,
    CONFIDENTIALITY_RANK,
    confidentiality_of,
    security_summary,
    sensitivities_of,
)
from ehr_sandbox.access.masking import REDACTED_SYSTEM
from ehr_sandbox.access.masking import mask as mask_for_role
from ehr_sandbox.access.relationship import has_relationship, relationship_refusal
from ehr_sandbox.access.roles import ROLES, refusal
from ehr_sandbox.errors import ValidationError

ACTIONS: frozenset[str] = frozenset(
    {
        "read",
        "vread",
        "history",
        "search",
        "create",
        "update",
        "delete",
        "export",
        "deidentify",
        "label",
    }
)
"""What a session may ask about."""

PERM_OF: dict[str, str] = {
    "read": "r",
    "vread": "r",
    "history": "r",
    "search": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
    "export": "r",
    "deidentify": "r",
    "label": "u",
}
"""The SMART permission letter each action needs (type-level history is a search: ask "search")."""

WRITES = frozenset({"create", "update", "delete"})
_PLAIN_READS = frozenset({"read", "vread", "history", "search"})
BULK = frozenset({"export", "deidentify"})

ALLOWED = Decision(True, "allowed", "all")
LABEL_ONLY = Decision(True, "label changes only (meta.security)", "label")
"""The shared answer when every rule allows (no allocation on the hot path)."""


def _deny(rule: str, reason: str) -> Decision:
    return Decision(False, reason, rule)


def _as_iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class Policy:
    """Decides every access; built once per sandbox.

    ``consents(patient_id)`` returns that patient's Consent resources; results are cached per
    patient until :meth:`forget_consents` (called automatically when the policy is asked about
    a Consent write). ``clock`` gives "now" for Consent periods (a datetime, date or ISO
    string); without it, periods are not checked. ``derived(resource)`` gives the records the
    resource is derived from, directly or not (``Type/id``), for Consents that name data.

    >>> Policy(consents=lambda pid: []).can_type(
    ...     AccessContext(username="fd.smith", role="front_desk", practitioner_id="f", patient_id=None,
    ...                   scopes=None), "search", "Observation").rule
    'role'
    """

    def __init__(
        self,
        consents: Callable[[str], list[dict[str, Any]]],
        *,
        clock: Callable[[], object] | None = None,
        derived: Callable[[dict[str, Any]], frozenset[str]] | None = None,
    ) -> None:
        self._consents = consents
        self._clock = clock
        self._derived = derived
        self._consent_cache: dict[str, tuple[dict[str, Any], ...]] = {}

    def _derived_of(self, resource: dict[str, Any]) -> Callable[[], frozenset[str]] | None:
        derived = self._derived
        if derived is None:
            return None
        return lambda: derived(resource)

    # ------------------------------------------------------------------ consents
    def forget_consents(self, patient_id: str | None = None) -> None:
        """Drop cached Consents (of one patient, or all) so the next decision re-reads them.

        >>> p = Policy(consents=lambda pid: []); p.forget_consents(); p.forget_consents("x")
        """
        if patient_id is None:
            self._consent_cache.clear()
        else:
            self._consent_cache.pop(patient_id, None)

    def consents_of(self, patient_id: str) -> tuple[dict[str, Any], ...]:
        """The patient's Consents (cached).

        >>> Policy(consents=lambda pid: [{"id": pid}]).consents_of("p1")
        ({'id': 'p1'},)
        """
        cached = self._consent_cache.get(patient_id)
        if cached is None:
            cached = tuple(c for c in (self._consents(patient_id) or ()) if isinstance(c, dict))
            self._consent_cache[patient_id] = cached
        return cached

    # ------------------------------------------------------------------ public API
    def can_type(self, ctx: AccessContext, action: str, resource_type: str) -> Decision:
        """Type-level decision before fetching (rules 1-2 and the role's actions).

        Allowed here means "some instance may be allowed"; every instance must still go
        through :meth:`decide`.

        >>> from ehr_sandbox.access.scopes import parse_scopes
        >>> ctx = AccessContext(username="dr.patel", role="physician", practitioner_id="d",
        ...                     patient_id="a", scopes=parse_scopes("patient/Patient.r"))
        >>> Policy(consents=lambda p: []).can_type(ctx, "search", "Patient").rule
        'scope'
        """
        return self.decide(ctx, action, None, resource_type=resource_type)

    def decide(
        self,
        ctx: AccessContext,
        action: str,
        resource: dict[str, Any] | None,
        *,
        resource_type: str,
        before: dict[str, Any] | None = None,
    ) -> Decision:
        """Decide one action on one resource (or, with ``resource=None``, on its type).

        ``before`` is the stored version for an update or a label change: an update must be
        allowed on the version it replaces **and** on the new one (so nothing moves to a
        patient, or below a label, the user may not reach). Type-level history is a search:
        ask ``can_type(ctx, "search", type)``, then ``decide(ctx, "history", version)`` per
        version.

        >>> from ehr_sandbox.access.context import AccessContext
        >>> ctx = AccessContext(username="rn.kim", role="nurse", practitioner_id="n", patient_id=None,
        ...                     scopes=None, treating=frozenset({"a"}))
        >>> r = {"resourceType": "Condition", "subject": {"reference": "Patient/a"},
        ...      "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}}
        >>> Policy(consents=lambda p: []).decide(ctx, "read", r, resource_type="Condition").rule
        'ceiling'
        """
        if (
            before is None
            and action in _PLAIN_READS
            and ctx.__class__ is AccessContext
            and ctx.scopes is None
            and resource.__class__ is dict
        ):
            # The hot path (a staff read or search candidate without a token): exactly the
            # checks below that can apply to it, in the same order, and nothing else.
            rtype = resource.get("resourceType")  # type: ignore[union-attr]
            role = ctx.role_info
            perm = "s" if action == "search" else "r"
            if (
                rtype == resource_type
                and rtype.__class__ is str
                and rtype
                and perm in role.table.get(rtype, role.default)
            ):
                return self._decide_instance(ctx, action, perm, resource, rtype)  # type: ignore[arg-type]
        if action not in ACTIONS:
            raise ValidationError(
                "policy.decide", "action", "one of " + ", ".join(sorted(ACTIONS)), found=action
            )
        if not isinstance(ctx, AccessContext):
            raise ValidationError(
                "policy.decide", "ctx", "an AccessContext", found=type(ctx).__name__
            )
        if not isinstance(resource_type, str) or not resource_type:
            return _deny(
                "input",
                f"resource_type: expected a FHIR resource type name (found {resource_type!r})",
            )
        if resource is not None:
            if not isinstance(resource, dict):
                return _deny(
                    "input",
                    f"resource: expected a FHIR resource dict (found {type(resource).__name__})",
                )
            if resource.get("resourceType") != resource_type:
                return _deny(
                    "input",
                    f"resource: resourceType {resource.get('resourceType')!r} does not match {resource_type!r}",
                )
        if before is not None and (
            not isinstance(before, dict) or before.get("resourceType") != resource_type
        ):
            return _deny(
                "input", f"before: expected the stored {resource_type} this update replaces"
            )
        role = ctx.role_info
        perm = PERM_OF[action]

        if (
            resource_type == "AuditEvent"
            and action in ("update", "delete", "label")
            and role.relationship != "bypass"
        ):
            return _deny(
                "role",
                f"{ctx.role} may not {action} AuditEvents: the audit trail is append-only, never updated or deleted",
            )
        if action == "label":
            return self._decide_label(ctx, resource, resource_type, before)

        # Rule 1: the role matrix (and the role's bulk actions).
        if action in BULK and action not in role.actions:
            who = ", ".join(
                sorted(n for n, r in _roles().items() if action in r.actions and n != "system")
            )
            return _deny(
                "role", f"{ctx.role} may not {action} ({resource_type}): that needs one of {who}"
            )
        if perm not in role.table.get(resource_type, role.default) and not (
            # A research export leaves as de-identified data: holding the deidentify action is
            # the type-level grant; each record still passes rules 2-5 (ceiling, excluded
            # labels, relationship, Consent) and the research Consents.
            action == "deidentify" and "deidentify" in role.actions
        ):
            if action == "update" and "label" in role.actions:
                # The privacy officer's updates of data they cannot otherwise edit are label
                # changes: allowed only when nothing but meta.security changes.
                if resource is None:
                    return LABEL_ONLY
                if before is None:
                    return _deny(
                        "label",
                        f"{ctx.role} may only change the labels of {resource_type}: "
                        "give the stored version (before) to compare",
                    )
                return self._decide_label(ctx, resource, resource_type, before)
            return _deny("role", refusal(ctx.role, perm, resource_type))

        # Rule 2: SMART scopes, type level.
        scopes = ctx.scopes
        if scopes is not None:
            if action in BULK:
                if ctx.interactive or not scopes.allows("system", resource_type, "r"):
                    return _deny(
                        "scope",
                        f"bulk {action} of {resource_type} needs a system/{resource_type}.rs "
                        "scope on a backend (non-interactive) session",
                    )
            elif not (
                (ctx.patient_id is not None and scopes.allows("patient", resource_type, perm))
                or scopes.allows("user", resource_type, perm)
                or (not ctx.interactive and scopes.allows("system", resource_type, perm))
            ):
                return _deny(
                    "scope",
                    f"the token's scopes ({scopes.text or 'none'}) do not grant "
                    f"'{perm}' on {resource_type}",
                )
        if resource is None:
            return ALLOWED

        if action == "update" and before is not None:
            first = self._decide_instance(ctx, action, perm, before, resource_type)
            if not first.allowed:
                return first
            lowered = self._lowers_labels(before, resource)
            if lowered:
                return _deny("label", lowered)
            second = self._decide_instance(ctx, action, perm, resource, resource_type)
            if not second.allowed:
                return second
            return second if second.via_btg else first
        return self._decide_instance(ctx, action, perm, resource, resource_type)

    def mask(self, ctx: AccessContext, resource: dict[str, Any]) -> dict[str, Any]:
        """Minimum necessary: a new dict with what ``ctx``'s role may not see removed.

        >>> from ehr_sandbox.access.context import AccessContext
        >>> ctx = AccessContext(username="billing.davis", role="billing", practitioner_id="b",
        ...                     patient_id=None, scopes=None)
        >>> o = {"resourceType": "Observation", "valueQuantity": {"value": 7.1}}
        >>> "valueQuantity" in Policy(consents=lambda p: []).mask(ctx, o)
        False
        """
        return mask_for_role(ctx.role, resource)

    def research_verdict(self, resource: dict[str, Any]) -> Decision:
        """May ``resource`` go into a research (de-identified) export? Its patients' active
        Consents are asked with purpose of use HRESCH, whoever runs the export (a research
        opt-out binds the system account too).

        >>> opt_out = {"resourceType": "Consent", "id": "c1", "status": "active",
        ...     "provision": {"type": "deny", "purpose": [{"system":
        ...     "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}]}}
        >>> p = Policy(consents=lambda pid: [opt_out] if pid == "a" else [])
        >>> obs = {"resourceType": "Observation", "subject": {"reference": "Patient/a"}}
        >>> p.research_verdict(obs).allowed, p.research_verdict({"resourceType": "Observation"}).allowed
        (False, True)
        """
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(rtype, str):
            return _deny("input", "resource: expected a FHIR resource dict")
        now = _as_iso(self._clock()) if self._clock is not None else None
        req = ConsentRequest(
            actor_refs=frozenset(),
            actor_roles=frozenset(),
            actions=ACTION_CODES["deidentify"],
            purposes=frozenset({"HRESCH"}),
            resource_type=rtype,
            resource=resource,
            now=now,
            derived_from=self._derived_of(resource),
        )
        for pid in sorted(patients_of(resource)):
            verdict, cid = evaluate_consents(self.consents_of(pid), req)
            if verdict == "deny":
                return _deny(
                    "consent",
                    f"Consent/{cid} of the patient opts out of research use (HRESCH)",
                )
        return ALLOWED

    # ------------------------------------------------------------------ rules 2-6 per instance
    def _decide_instance(
        self, ctx: AccessContext, action: str, perm: str, resource: dict[str, Any], rtype: str
    ) -> Decision:
        role = ctx.role_info
        patients = patients_of(resource)
        if action in WRITES and rtype == "Consent":
            # The stored Consents are about to change: decide later accesses on fresh ones.
            for pid in patients:
                self.forget_consents(pid)
        if action == "update" and _is_redacted(resource):
            return _deny(
                "input",
                f"{rtype}/{resource.get('id', '')} is a redacted (masked) copy; "
                "writing it back would erase what was withheld",
            )

        # Rule 2 per resource: patient/ scopes only reach the patient in context; filters apply.
        scopes = ctx.scopes
        if scopes is not None:
            if action in BULK:
                ok = not ctx.interactive and scopes.allows("system", rtype, "r", resource)
            else:
                ok = (
                    (
                        ctx.patient_id is not None
                        and (
                            patients == {ctx.patient_id}
                            or (not patients and is_reference_data(rtype))
                        )
                        and scopes.allows("patient", rtype, perm, resource)
                    )
                    or scopes.allows("user", rtype, perm, resource)
                    or (not ctx.interactive and scopes.allows("system", rtype, perm, resource))
                )
            if not ok:
                return _deny(
                    "scope",
                    f"the token's scopes ({scopes.text or 'none'}) do not cover "
                    f"{_ref(resource, rtype)} for '{perm}'",
                )

        conf, sens = security_summary(resource)
        conf = conf or "N"
        bypass = role.relationship == "bypass"

        # Absolute limits (not lifted by break-the-glass): excluded labels, psychotherapy notes.
        if sens and not sens.isdisjoint(role.excluded_labels):
            excluded = sens & role.excluded_labels
            return _deny(
                "ceiling",
                f"{_ref(resource, rtype)} is labelled {', '.join(sorted(excluded))}; "
                f"{ctx.role} never sees such data (minimum necessary)",
            )
        named = (bool(ctx.named_access) and bool(patients) and patients <= ctx.named_access) or (
            "PSYTHPN" in sens and _authored_by(resource, ctx.actor_refs)
        )
        if sens and "PSYTHPN" in sens and not (named or bypass):
            return _deny(
                "ceiling",
                f"{_ref(resource, rtype)} is a psychotherapy note: only its author, "
                "named for it, may see it (break-the-glass does not apply)",
            )

        # Rules 3-5, each of which break-the-glass may lift.
        denial: Decision | None = None
        kind = role.relationship
        if kind == "care" and patients:
            related = patients <= ctx.treating  # the common case, inlined (hot path)
        else:
            related = has_relationship(ctx, patients, rtype)
        if not related:
            denial = _deny("relationship", relationship_refusal(ctx, patients))
        elif CONFIDENTIALITY_RANK.get(conf, 0) > role.ceiling_rank and not named:
            need = "named access" if conf == "V" else "a role whose ceiling allows it"
            denial = _deny(
                "ceiling",
                f"{_ref(resource, rtype)} is labelled {conf} "
                f"({CONFIDENTIALITY_DISPLAY.get(conf, conf)}); {ctx.role} may see up to "
                f"{role.ceiling}; this needs {need}",
            )
        elif role.consent and patients and rtype != "Consent":
            # Most patients have no Consent: skip the call when the cache already says so.
            cached = self._consent_cache.get(next(iter(patients))) if len(patients) == 1 else None
            if cached is None or cached:
                denial = self._consent_verdict(ctx, action, resource, rtype, patients)
        if denial is None:
            return ALLOWED
        # Break-the-glass opens a chart for the emergency in front of the clinician; it never
        # lifts a bulk copy (an export file outlives the override and its review).
        if action not in BULK and btg_lifts(ctx, patients, conf, sens):
            return Decision(
                True,
                f"break-the-glass for {', '.join(sorted(patients))} lifted: {denial.reason}",
                "btg",
                True,
            )
        return denial

    def _consent_verdict(
        self,
        ctx: AccessContext,
        action: str,
        resource: dict[str, Any],
        rtype: str,
        patients: frozenset[str],
    ) -> Decision | None:
        if len(patients) == 1:
            (only,) = patients
            single = self._consent_cache.get(only)
            if single is None:
                single = self.consents_of(only)
            if not single:
                return None
            lists = [(only, single)]
        else:
            lists = [(pid, self.consents_of(pid)) for pid in sorted(patients)]
            if not any(consents for _, consents in lists):
                return None
        now = _as_iso(self._clock()) if self._clock is not None else None
        derived_from = self._derived_of(resource)
        for pid, consents in lists:
            # Each patient's Consents hear the purposes of use of an access to *that*
            # patient: break-the-glass (BTG, ETREAT) only for the patient it covers.
            purposes = ctx.purposes_for(pid)
            req = ConsentRequest(
                actor_refs=ctx.actor_refs,
                actor_roles=frozenset({ctx.role}),
                actions=ACTION_CODES.get(action, frozenset()),
                purposes=purposes,
                resource_type=rtype,
                resource=resource,
                now=now,
                derived_from=derived_from,
            )
            verdict, cid = evaluate_consents(consents, req)
            if verdict == "deny":
                return _deny(
                    "consent",
                    f"Consent/{cid} of the patient does not permit {ctx.role} "
                    f"({', '.join(sorted(purposes))}) to {action} {_ref(resource, rtype)}",
                )
        return None

    # ------------------------------------------------------------------ labels
    def _decide_label(
        self,
        ctx: AccessContext,
        resource: dict[str, Any] | None,
        rtype: str,
        before: dict[str, Any] | None,
    ) -> Decision:
        if "label" not in ctx.role_info.actions:
            return _deny(
                "role",
                f"{ctx.role} may not change security labels: only the privacy officer can "
                "(labels decide who may see the data)",
            )
        scopes = ctx.scopes
        if scopes is not None and not any(
            scopes.allows(kind, rtype, "u", resource)
            for kind in ("user", "patient", "system")
            if kind != "system" or not ctx.interactive
        ):
            return _deny("scope", f"the token's scopes do not grant 'u' on {rtype}")
        if (
            resource is not None
            and before is not None
            and _strip_labels(before) != _strip_labels(resource)
        ):
            return _deny(
                "label",
                "a label change may only change meta.security; edit the content separately "
                "(with a reason) if it is wrong",
            )
        return ALLOWED

    @staticmethod
    def _lowers_labels(before: dict[str, Any], after: dict[str, Any]) -> str | None:
        old, new = confidentiality_of(before) or "N", confidentiality_of(after) or "N"
        if CONFIDENTIALITY_RANK.get(new, 0) < CONFIDENTIALITY_RANK.get(old, 0):
            return (
                f"this update lowers the confidentiality from {old} to {new}; only the privacy officer "
                "changes labels"
            )
        gone = sensitivities_of(before) - sensitivities_of(after)
        if gone:
            return (
                f"this update removes the sensitivity labels {', '.join(sorted(gone))}; only the privacy "
                "officer changes labels"
            )
        return None


def _authored_by(resource: dict[str, Any], actor_refs: frozenset[str]) -> bool:
    """True when one of the user's references is an author of the note (named access to a
    psychotherapy note is its author's)."""
    authors = resource.get("author")
    return isinstance(authors, list) and any(
        isinstance(a, dict) and a.get("reference") in actor_refs for a in authors
    )


def _roles() -> dict[str, Any]:
    return dict(ROLES)


def _ref(resource: dict[str, Any], rtype: str) -> str:
    rid = resource.get("id")
    return f"{rtype}/{rid}" if isinstance(rid, str) and rid else f"this {rtype}"


def _is_redacted(resource: dict[str, Any]) -> bool:
    meta = resource.get("meta")
    sec = meta.get("security") if isinstance(meta, dict) else None
    return isinstance(sec, list) and any(
        isinstance(c, dict) and c.get("system") == REDACTED_SYSTEM and c.get("code") == "REDACTED"
        for c in sec
    )


def _strip_labels(resource: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k != "meta"}
    meta = resource.get("meta")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if k not in ("security", "versionId", "lastUpdated")}
        if kept:
            out["meta"] = kept
    return out
