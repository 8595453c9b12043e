"""Who is asking (AccessContext) and what the policy answered (Decision).

>>> ctx = AccessContext(username="ma.garcia", role="medical_assistant", practitioner_id="pr-1",
...                     patient_id=None, scopes=None, treating=frozenset({"p1"}))
>>> ctx.actor_refs
frozenset({'Practitioner/pr-1'})
>>> Decision(False, "no", "role")
Decision(allowed=False, reason='no', rule='role', via_btg=False)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ehr_sandbox.access.roles import ROLES, Role
from ehr_sandbox.access.scopes import ScopeSet
from ehr_sandbox.errors import ScopeError, ValidationError

RULES: tuple[str, ...] = (
    "input",
    "role",
    "scope",
    "relationship",
    "ceiling",
    "consent",
    "btg",
    "label",
    "all",
)
"""Names a Decision's ``rule`` can take: the rule that denied, ``btg`` when break-the-glass
allowed what rules 3-5 refused, ``all`` when every rule allowed."""


_EMERGENCY = frozenset({"BTG", "ETREAT"})


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer. ``reason`` is for the audit log (and, for writes, the student).

    >>> bool(Decision(True, "allowed", "all"))
    True
    """

    allowed: bool
    reason: str
    rule: str
    via_btg: bool = False

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True, slots=True)
class AccessContext:
    """One session's standing: user, role, SMART scopes, relationships, break-the-glass.

    ``patient_id`` is the patient in context (a SMART launch, or the patient themself);
    ``treating`` the patients the user has a care relationship with; ``btg`` the patients
    under an active break-the-glass; ``named_access`` the patients whose very-restricted (V)
    data this user is named for. Construction fails with :class:`ScopeError` when the scopes
    cannot be used here (``patient/`` without a patient in context, ``system/`` on an
    interactive session) and with :class:`ValidationError` for an unknown role.

    >>> from ehr_sandbox.access.scopes import parse_scopes
    >>> AccessContext(username="dr.patel", role="physician", practitioner_id="d1", patient_id=None,
    ...               scopes=parse_scopes("patient/*.rs"))
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ScopeError: scope 'patient/*.rs': a patient/ scope needs a patient in context (launch/patient); none was given
    """

    username: str
    role: str
    practitioner_id: str | None
    patient_id: str | None
    scopes: ScopeSet | None
    purpose: str = "TREAT"
    treating: frozenset[str] = frozenset()
    btg: frozenset[str] = frozenset()
    interactive: bool = True
    named_access: frozenset[str] = frozenset()
    role_info: Role = field(init=False, repr=False, compare=False)
    actor_refs: frozenset[str] = field(init=False, repr=False, compare=False)
    purposes: frozenset[str] = field(init=False, repr=False, compare=False)
    routine_purposes: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        role = ROLES.get(self.role) if isinstance(self.role, str) else None
        if role is None:
            raise ValidationError(
                "AccessContext", "role", "one of " + ", ".join(sorted(ROLES)), found=self.role
            )
        if self.scopes is not None and not isinstance(self.scopes, ScopeSet):
            raise ValidationError(
                "AccessContext",
                "scopes",
                "a ScopeSet from parse_scopes() or None",
                found=type(self.scopes).__name__,
            )
        for name in ("treating", "btg", "named_access"):
            value = getattr(self, name)
            if not isinstance(value, frozenset):
                raise ValidationError(
                    "AccessContext", name, "a frozenset of patient ids", found=type(value).__name__
                )
        if self.scopes is not None:
            if self.scopes.needs_patient and not self.patient_id:
                first = next(s.text for s in self.scopes.scopes if s.kind == "patient")
                raise ScopeError(
                    f"scope {first!r}: a patient/ scope needs a patient in context (launch/patient); none was given"
                )
            if self.scopes.has_system and self.interactive:
                first = next(s.text for s in self.scopes.scopes if s.kind == "system")
                raise ScopeError(
                    f"scope {first!r}: system/ scopes are for backend services, not an interactive user session"
                )
        refs = set()
        if self.practitioner_id:
            refs.add(f"Practitioner/{self.practitioner_id}")
        if self.role == "patient" and self.patient_id:
            refs.add(f"Patient/{self.patient_id}")
        object.__setattr__(self, "role_info", role)
        object.__setattr__(self, "actor_refs", frozenset(refs))
        purposes = {self.purpose} if isinstance(self.purpose, str) else set()
        routine = purposes - _EMERGENCY
        if purposes & _EMERGENCY:
            # Emergency access is still treatment: a Consent restricting treatment keeps
            # applying to every patient the break-the-glass does not cover.
            purposes |= _EMERGENCY | {"TREAT"}
            routine.add("TREAT")
        object.__setattr__(self, "purposes", frozenset(purposes | role.purposes))
        object.__setattr__(self, "routine_purposes", frozenset(routine | role.purposes))

    def purposes_for(self, patient_id: str) -> frozenset[str]:
        """The purposes of use an access to ``patient_id``'s data carries: the emergency ones
        (BTG, ETREAT) only for a patient the break-the-glass covers. A Consent that permits
        emergency treatment only (an HIE opt-out's usual exception) is not opened for every
        other patient by a break-the-glass on one.

        >>> ctx = AccessContext(username="rn.kim", role="nurse", practitioner_id="n",
        ...                     patient_id=None, scopes=None, purpose="BTG", btg=frozenset({"a"}))
        >>> sorted(ctx.purposes_for("a")), sorted(ctx.purposes_for("b"))
        (['BTG', 'ETREAT', 'TREAT'], ['TREAT'])
        """
        return self.purposes if patient_id in self.btg else self.routine_purposes
