"""The role matrix (minimum necessary), loaded once from ``roles.toml`` (the one role table,
in the shared content, ``synthetic/content/data/``: the generator reads its role names and
displays from it too).

The table is data so that an instructor can read (and a course can adapt) who may do what;
this module only loads it, checks it, and answers "may this role do that to this type?".

>>> ROLES["medical_assistant"].may("c", "Observation"), ROLES["medical_assistant"].may("c", "MedicationRequest")
(True, False)
>>> ROLES["front_desk"].may("r", "Observation")
False
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

from ehr_sandbox.access.labels import CONFIDENTIALITY_RANK
from ehr_sandbox.errors import ValidationError

PERMS = "cruds"
RELATIONSHIPS = frozenset({"care", "self", "any", "bypass"})
ACTIONS = frozenset({"label", "export", "deidentify", "sign", "review"})
PURPOSES = frozenset({"TREAT", "HPAYMT", "HOPERAT", "PATRQT", "HRESCH", "ETREAT"})
"""Purpose-of-use codes (v3-ActReason) a role may carry by default."""
PERM_WORDS: dict[str, str] = {
    "c": "create",
    "r": "read",
    "u": "update",
    "d": "delete",
    "s": "search",
}


@dataclass(frozen=True, slots=True)
class Role:
    """One row of the role matrix.

    >>> r = ROLES["physician"]
    >>> r.ceiling, r.ceiling_rank > ROLES["nurse"].ceiling_rank, r.break_glass
    ('R', True, True)
    """

    name: str
    display: str
    ceiling: str
    ceiling_rank: int
    relationship: str
    break_glass: bool
    actions: frozenset[str]
    consent: bool
    excluded_labels: frozenset[str]
    purposes: frozenset[str]
    purpose: str
    grants: Mapping[str, frozenset[str]]
    default: frozenset[str]
    staff: bool = False
    table: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    def perms(self, resource_type: str) -> frozenset[str]:
        """The permission letters this role holds on ``resource_type``.

        >>> "".join(p for p in "cruds" if p in ROLES["front_desk"].perms("Patient"))
        'crus'
        """
        return self.table.get(resource_type, self.default)

    def may(self, perm: str, resource_type: str) -> bool:
        """True when the role holds ``perm`` (one of c r u d s) on ``resource_type``.

        Parameters
        ----------
        perm : str
            One permission letter: c(reate), r(ead), u(pdate), d(elete), s(earch).
        resource_type : str
            The FHIR type; types the role's table does not name get its default.

        Returns
        -------
        bool

        Examples
        --------
        >>> ROLES["front_desk"].may("u", "Patient"), ROLES["front_desk"].may("c", "Observation")
        (True, False)
        """
        return perm in self.table.get(resource_type, self.default)


def _err(path: str, expected: str, found: object = None) -> ValidationError:
    return ValidationError("roles.toml", path, expected, found=found)


def _perm_set(text: object, path: str) -> frozenset[str]:
    if (
        not isinstance(text, str)
        or any(ch not in PERMS for ch in text)
        or len(set(text)) != len(text)
    ):
        raise _err(path, "a subset of 'cruds'", text)
    return frozenset(text)


def build_roles(data: Mapping[str, Any]) -> dict[str, Role]:
    """Check a parsed role table and build the roles (raises ValidationError naming the key).

    >>> build_roles({"groups": {}, "roles": {"x": {"ceiling": "N", "relationship": "any",
    ...     "grants": {"Patient": "rs"}}}})["x"].may("s", "Patient")
    True
    >>> build_roles({"roles": {"x": {"ceiling": "Q", "relationship": "any", "grants": {}}}})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: roles.toml: roles.x.ceiling: expected one of U, L, M, N, R, V (found 'Q')
    """
    groups_raw = data.get("groups", {})
    if not isinstance(groups_raw, dict):
        raise _err("groups", "a table of group name -> list of resource types", groups_raw)
    groups: dict[str, list[str]] = {}
    for gname, members in groups_raw.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise _err(f"groups.{gname}", "a list of resource type names", members)
        groups[gname] = members
    roles_raw = data.get("roles")
    if not isinstance(roles_raw, dict) or not roles_raw:
        raise _err("roles", "a table of roles")
    out: dict[str, Role] = {}
    for name, spec in roles_raw.items():
        base = f"roles.{name}"
        if not isinstance(spec, dict):
            raise _err(base, "a table", spec)
        ceiling = spec.get("ceiling")
        if ceiling not in CONFIDENTIALITY_RANK:
            raise _err(f"{base}.ceiling", "one of U, L, M, N, R, V", ceiling)
        relationship = spec.get("relationship")
        if relationship not in RELATIONSHIPS:
            raise _err(
                f"{base}.relationship", "one of " + ", ".join(sorted(RELATIONSHIPS)), relationship
            )
        actions = spec.get("actions", [])
        if not isinstance(actions, list) or any(a not in ACTIONS for a in actions):
            raise _err(f"{base}.actions", "a list among " + ", ".join(sorted(ACTIONS)), actions)
        excluded = spec.get("excluded_labels", [])
        if not isinstance(excluded, list) or not all(isinstance(x, str) for x in excluded):
            raise _err(f"{base}.excluded_labels", "a list of v3-ActCode codes", excluded)
        purposes = spec.get("purposes", [])
        if not isinstance(purposes, list) or not all(isinstance(x, str) for x in purposes):
            raise _err(f"{base}.purposes", "a list of v3-ActReason purpose-of-use codes", purposes)
        purpose = spec.get("purpose", "TREAT")
        if purpose not in PURPOSES:
            raise _err(f"{base}.purpose", "one of " + ", ".join(sorted(PURPOSES)), purpose)
        grants_raw = spec.get("grants", {})
        if not isinstance(grants_raw, dict):
            raise _err(f"{base}.grants", "a table of type or group -> permissions", grants_raw)
        grants: dict[str, frozenset[str]] = {}
        default: frozenset[str] = frozenset()
        # Groups first, then single types, so a type named on its own overrides its group.
        ordered = sorted(grants_raw.items(), key=lambda kv: kv[0] not in groups)
        for key, text in ordered:
            perms = _perm_set(text, f"{base}.grants.{key}")
            if key == "*":
                default = perms
            elif key in groups:
                for member in groups[key]:
                    grants[member] = perms
            elif key[:1].isupper():
                grants[key] = perms
            else:
                raise _err(f"{base}.grants.{key}", "a resource type, a group or '*'", key)
        out[name] = Role(
            name=name,
            display=str(spec.get("display", name)),
            ceiling=ceiling,
            ceiling_rank=CONFIDENTIALITY_RANK[ceiling],
            relationship=relationship,
            break_glass=bool(spec.get("break_glass", False)),
            staff=bool(spec.get("staff", False)),
            actions=frozenset(actions),
            consent=bool(spec.get("consent", True)),
            excluded_labels=frozenset(excluded),
            purposes=frozenset(purposes),
            purpose=str(purpose),
            grants=MappingProxyType(grants),
            default=default,
            table=grants,
        )
    return out


def _load() -> tuple[dict[str, Role], dict[str, str], dict[str, list[str]]]:
    # read as a file of the distribution: importing synthetic.content would load the
    # generator's content models, which a session never needs
    table = resources.files("synthetic").joinpath("content", "data", "roles.toml")
    text = table.read_text("utf-8")
    data = tomllib.loads(text)
    verbs = {str(k): str(v) for k, v in data.get("verbs", {}).items()}
    return build_roles(data), verbs, {k: list(v) for k, v in data.get("groups", {}).items()}


_ROLES, VERBS, GROUPS = _load()
ROLES: Mapping[str, Role] = MappingProxyType(_ROLES)
"""Every role by name (the staff roles of docs/privacy.md plus ``patient`` and ``system``)."""

STAFF_ORDER: tuple[str, ...] = tuple(name for name, role in _ROLES.items() if role.staff)
"""Staff roles (``staff = true`` in the table), in the table's order: the order a message
names them."""

ROLE_MATRIX: Mapping[str, Mapping[str, frozenset[str]]] = MappingProxyType(
    {name: role.grants for name, role in _ROLES.items()}
)
"""role -> resource type -> permission letters (types not listed fall back to the role's ``*``)."""


def roles_allowing(perm: str, resource_type: str) -> list[str]:
    """Staff roles that hold ``perm`` on ``resource_type`` (for messages that say who can).

    >>> roles_allowing("c", "MedicationRequest")
    ['physician']
    """
    return [r for r in STAFF_ORDER if r in _ROLES and _ROLES[r].may(perm, resource_type)]


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def refusal(role: str, perm: str, resource_type: str) -> str:
    """An actionable message for a role that lacks ``perm`` on a type.

    >>> refusal("medical_assistant", "c", "MedicationRequest")
    'medical_assistant may not prescribe: MedicationRequest needs a physician'
    >>> refusal("front_desk", "r", "Observation")
    'front_desk may not read Observation: that needs a medical_assistant, nurse, physician, billing or instructor'
    """
    verb = VERBS.get(f"{resource_type}.{perm}")
    who = roles_allowing(perm, resource_type)
    article = "an" if who and who[0][0] in "aeiou" else "a"
    need = f"{article} {_join(who)}" if who else "a role that this sandbox does not give to anyone"
    if verb:
        return f"{role} may not {verb}: {resource_type} needs {need}"
    return f"{role} may not {PERM_WORDS.get(perm, perm)} {resource_type}: that needs {need}"


def _role(role: str) -> Role | None:
    return _ROLES.get(role)


def purpose_of_use(role: str) -> str:
    """The purpose of use a session of ``role`` carries (break-the-glass adds BTG).

    >>> purpose_of_use("physician"), purpose_of_use("billing"), purpose_of_use("patient")
    ('TREAT', 'HPAYMT', 'PATRQT')
    """
    info = _role(role)
    if info is None:
        raise ValidationError("role", "role", "one of " + ", ".join(sorted(_ROLES)), found=role)
    return info.purpose


def may(role: str, action: str) -> bool:
    """True when ``role`` holds the non-resource ``action`` (label, export, deidentify, sign,
    review) or, for ``break_glass``, may break the glass. The one place role questions go.

    >>> may("physician", "sign"), may("nurse", "sign"), may("nurse", "break_glass")
    (True, False, True)
    >>> may("privacy_officer", "review"), may("nobody", "review")
    (True, False)
    """
    info = _role(role)
    if info is None:
        return False
    if action == "break_glass":
        return info.break_glass
    return action in info.actions


def roles_that(action: str) -> list[str]:
    """Staff roles holding ``action`` (see :func:`may`), for messages that say who can.

    >>> roles_that("break_glass")
    ['physician', 'nurse']
    """
    return sorted((r for r in STAFF_ORDER if may(r, action)), reverse=True)
