"""Keeping the EHR running: accounts, access review, backup and restore drill, downtime, data quality.

* **Accounts** are the directory's ``Practitioner`` (username identifier) and
  ``PractitionerRole`` (role code, period). Provisioning gives the least-privilege role for the
  job title; de-provisioning ends the role and deactivates the account (nothing is deleted).
* **Access review** lists accounts that should not be active (ended, terminated, a role that
  does not fit the job, no login for 90 days when the audit trail is readable).
* **Backup and restore drill**: a backup with a manifest (record counts, audit-chain length
  and state); the drill restores into a separate instance, never over live data, and checks
  the audit chain and the counts.
* **Downtime**: what was done on paper during an outage is back-entered as late entries
  (event time inside the outage, recorded now, with the paper form's id).
* **Data quality**: probable duplicate patients, patients without insurance on file, unsigned
  (preliminary) notes, encounters left open, arrived appointments never checked out.

>>> role_for("Medical assistant")
'medical_assistant'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import NotFound, SandboxError, ValidationError
from ehr_sandbox.workflows.base import Rule, RuleRefused, now, today, urn, write_all
from ehr_sandbox.workflows.content import table
from synthetic.systems import SANDBOX_ROLE, USERNAME

if TYPE_CHECKING:
    from ehr_sandbox.sandbox import Sandbox
    from ehr_sandbox.session import Session

__all__ = [
    "Downtime",
    "RULES",
    "access_review",
    "accounts",
    "back_enter",
    "backup",
    "data_quality_report",
    "deprovision_user",
    "provision_user",
    "restore_drill",
    "role_for",
]

USERNAME_SYSTEM = USERNAME
ROLE_SYSTEM = SANDBOX_ROLE
BACKUP_TYPES = (
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "Appointment",
    "Coverage",
    "Claim",
    "ClaimResponse",
    "DocumentReference",
    "MedicationRequest",
    "Immunization",
    "Practitioner",
    "PractitionerRole",
    "Provenance",
)
_T = table("maintenance")
RULES = {
    r.id: r
    for r in (
        Rule(
            "maintenance.least-privilege",
            "an account gets the role its job needs, no more",
            _T["source"],
        ),
        Rule(
            "maintenance.unique-user",
            "one account per person, with a unique username",
            _T["source"],
        ),
        Rule(
            "maintenance.termination",
            "an account is ended when its holder leaves (end date, deactivated, never deleted)",
            _T["source"],
        ),
        Rule(
            "maintenance.restore-separate",
            "a restore drill restores into a separate copy, never over live data",
            _T["source"],
        ),
        Rule(
            "maintenance.downtime-window",
            "downtime back-entry records events inside the outage, after systems are back, citing the paper form",
            _T["source"],
        ),
    )
}


def role_for(job_title: str) -> str:
    """The least-privilege role for a job title (``data/maintenance.toml``).

    Examples
    --------
    >>> role_for("Billing specialist")
    'billing'
    """
    role = _T["job_titles"].get(job_title)
    if role is None:
        raise ValidationError(
            "PractitionerRole",
            "code.text",
            "a job title of " + ", ".join(_T["job_titles"]),
            found=job_title,
        )
    return role


def _account(session: Session, username: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    prac = session.search("Practitioner", identifier=f"{USERNAME_SYSTEM}|{username}").first()
    if prac is None:
        return None, []
    roles = session.search("PractitionerRole", practitioner=f"Practitioner/{prac['id']}").fetch()
    return prac, roles


def provision_user(
    session: Session,
    *,
    username: str,
    given: str,
    family: str,
    job_title: str,
    role: str,
    start: str,
    end: str | None = None,
) -> dict[str, Any]:
    """Create an account: Practitioner (username) and PractitionerRole (role, period).

    Parameters
    ----------
    session : Session
        The system administrator's session.
    username : str
        ``first-initial.family`` style, unique.
    given, family : str
        The person's name.
    job_title : str
        Job title from HR (``data/maintenance.toml``).
    role : str
        Role asked for; must be the least-privilege role of the job title.
    start : str
        First day (ISO date). ``end`` optional last day (temporary staff, students).

    Returns
    -------
    dict
        The PractitionerRole.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> adm = Sandbox.generate(patients=1, seed=1, years=1).login("admin.root")
    >>> r = provision_user(adm, username="ma.rivera", given="Luz", family="Rivera", job_title="Medical assistant",
    ...                    role="medical_assistant", start="2026-01-05", end="2026-06-30")
    >>> r["code"][0]["coding"][0]["code"], r["period"]
    ('medical_assistant', {'start': '2026-01-05', 'end': '2026-06-30'})
    >>> provision_user(adm, username="ma.stone", given="Al", family="Stone", job_title="Medical assistant",
    ...                role="physician", start="2026-01-05")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: PractitionerRole: code: expected medical_assistant for a Medical assistant (found 'physician'). Refused by rule maintenance.least-privilege: ...
    """
    import re

    if not re.fullmatch(r"[a-z]{1,12}\.[a-z][a-z-]{1,30}", username or ""):
        raise ValidationError(
            "Practitioner",
            "identifier",
            "a username like 'ma.rivera' (lower case, role.family)",
            found=username,
        )
    want = role_for(job_title)
    if role != want:
        raise RuleRefused(
            RULES["maintenance.least-privilege"],
            resource="PractitionerRole",
            path="code",
            expected=f"{want} for a {job_title}",
            found=role,
        )
    prac, _ = _account(session, username)
    if prac is not None:
        raise RuleRefused(
            RULES["maintenance.unique-user"],
            resource=f"Practitioner/{prac['id']}",
            path="identifier",
            expected="a username nobody has",
            found=username,
        )
    for p in session.resources("Practitioner"):
        n = (p.get("name") or [{}])[0]
        if p.get("active", True) and n.get("family") == family and given in n.get("given", []):
            raise RuleRefused(
                RULES["maintenance.unique-user"],
                resource=f"Practitioner/{p['id']}",
                path="name",
                expected="one account per person (this person already has one)",
                found=f"{given} {family}",
            )
    date.fromisoformat(start)
    if end is not None and date.fromisoformat(end) < date.fromisoformat(start):
        raise ValidationError("PractitionerRole", "period.end", "on or after the start", found=end)
    url = urn(session, "Practitioner", username)
    practitioner = {
        "resourceType": "Practitioner",
        "identifier": [{"system": USERNAME_SYSTEM, "value": username}],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given]}],
    }
    period = {"start": start, **({"end": end} if end else {})}
    prole = {
        "resourceType": "PractitionerRole",
        "active": True,
        "period": period,
        "practitioner": {"reference": url},
        "organization": {"reference": "Organization/practice-1"},
        "code": [{"coding": [{"system": ROLE_SYSTEM, "code": role}], "text": job_title}],
        "location": [{"reference": "Location/loc-main"}],
    }
    return write_all(
        session,
        [{"fullUrl": url, "resource": practitioner}, prole],
        operation="maintenance.provision",
    )[1]


def deprovision_user(
    session: Session, username: str, *, last_day: str, reason: str
) -> list[dict[str, Any]]:
    """End an account when its holder leaves: roles end on ``last_day`` and are deactivated,
    the Practitioner is deactivated (history kept; nothing deleted).

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> adm = Sandbox.generate(patients=1, seed=1, years=1).login("admin.root")
    >>> out = deprovision_user(adm, "fd.brown", last_day="2025-12-31", reason="resigned")
    >>> [(r["resourceType"], r["active"]) for r in out]
    [('PractitionerRole', False), ('Practitioner', False)]
    """
    if not reason or not str(reason).strip():
        raise ValidationError("PractitionerRole", "period.end", "why the account is ended")
    prac, roles = _account(session, username)
    if prac is None:
        raise NotFound(f"no account {username!r}")
    day = date.fromisoformat(last_day)
    ended = day < today(session)
    writes: list[dict[str, Any]] = []
    for r in roles:
        start = (r.get("period") or {}).get("start")
        period = {**r.get("period", {}), "end": max(last_day, start) if start else last_day}
        writes.append({**r, "period": period, "active": not ended and r.get("active", True)})
    if ended:
        writes.append({**prac, "active": False})
    if not writes:
        raise ValidationError(
            f"Practitioner/{prac['id']}", "PractitionerRole", "an account role to end"
        )
    return write_all(session, writes, operation="maintenance.deprovision")


def accounts(session: Session) -> list[dict[str, Any]]:
    """Every account: username, role, job title, period, active.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> a = accounts(Sandbox.generate(patients=1, seed=1, years=1).login("admin.root"))
    >>> ("dr.patel", "physician") in {(x["username"], x["role"]) for x in a}
    True
    """
    pracs = {p["id"]: p for p in session.resources("Practitioner")}
    out = []
    for r in session.resources("PractitionerRole"):
        pid = r.get("practitioner", {}).get("reference", "").split("/")[-1]
        p = pracs.get(pid)
        if p is None:
            continue
        username = next(
            (i["value"] for i in p.get("identifier", []) if i.get("system") == USERNAME_SYSTEM),
            None,
        )
        code = next(
            (
                c.get("code")
                for cc in r.get("code", [])
                for c in cc.get("coding", [])
                if c.get("system") == ROLE_SYSTEM
            ),
            None,
        )
        out.append(
            {
                "username": username,
                "role": code,
                "job_title": next(
                    (cc.get("text") for cc in r.get("code", []) if cc.get("text")), None
                ),
                "start": (r.get("period") or {}).get("start"),
                "end": (r.get("period") or {}).get("end"),
                "active": bool(r.get("active", True)) and bool(p.get("active", True)),
                "role_ref": f"PractitionerRole/{r['id']}",
            }
        )
    return sorted(out, key=lambda a: (a["username"] or "", a["role"] or ""))


def access_review(
    session: Session, *, terminated: tuple[str, ...] = (), as_of: str | None = None
) -> list[dict[str, Any]]:
    """The periodic access review: accounts that should not be active, each with its rule.

    ``terminated`` is HR's list of usernames of people who have left.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> adm = Sandbox.generate(patients=1, seed=1, years=1).login("admin.root")
    >>> [f["username"] for f in access_review(adm, terminated=("rn.kim",))]
    ['rn.kim']
    """
    day = as_of or today(session).isoformat()
    findings = []
    last_seen: dict[str, str] = {}
    try:
        for e in session.audit_events():
            for a in e.get("agent", []):
                who = (a.get("who") or {}).get("identifier", {}).get("value") or (
                    a.get("who") or {}
                ).get("display")
                if who:
                    last_seen[who] = max(last_seen.get(who, ""), e.get("recorded", ""))
    except SandboxError:
        last_seen = {}
    for a in accounts(session):
        if not a["active"]:
            continue
        why = None
        if a["end"] and a["end"] < day:
            why = f"role ended {a['end']} but the account is active"
        elif a["username"] in terminated:
            why = "holder has left the practice (HR list) but the account is active"
        elif (
            a["job_title"]
            and a["job_title"] in _T["job_titles"]
            and _T["job_titles"][a["job_title"]] != a["role"]
        ):
            why = f"role {a['role']} exceeds what a {a['job_title']} needs"
        elif last_seen and a["username"] in last_seen:
            idle = (
                date.fromisoformat(day) - date.fromisoformat(last_seen[a["username"]][:10])
            ).days
            if idle > int(_T["access_review_inactive_days"]):
                why = f"no login for {idle} days"
        if why:
            findings.append(
                {
                    **a,
                    "finding": why,
                    "rule": "maintenance.termination"
                    if "left" in why or "ended" in why
                    else "maintenance.least-privilege",
                }
            )
    return findings


@dataclass(frozen=True)
class Downtime:
    """An EHR outage: start and end instants (ISO with offset) and why.

    >>> Downtime("2026-01-05T09:00:00-05:00", "2026-01-05T13:00:00-05:00", "network outage").hours
    4.0
    """

    start: str
    end: str
    reason: str

    @property
    def hours(self) -> float:
        """Length of the outage in hours.

        Examples
        --------
        >>> Downtime("2026-01-05T23:30:00-05:00", "2026-01-06T00:15:00-05:00", "upgrade").hours
        0.75
        """
        return (
            datetime.fromisoformat(self.end) - datetime.fromisoformat(self.start)
        ).total_seconds() / 3600


def back_enter(
    session: Session, resource: dict[str, Any], *, downtime: Downtime, event_time: str, form_id: str
) -> dict[str, Any]:
    """Back-enter what was charted on paper during an outage, as a late entry.

    The event time must fall inside the outage, the systems must be back (now after the end),
    and the reason cites the paper form.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> s = sb.system_session()
    >>> pid = s.search("Patient").first()["id"]
    >>> dt = Downtime("2025-12-31T09:00:00-05:00", "2025-12-31T13:00:00-05:00", "network outage")
    >>> obs = {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
    ...        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    ...        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
    >>> out = back_enter(s, obs, downtime=dt, event_time="2025-12-31T10:15:00-05:00", form_id="DT-0042")
    >>> out["effectiveDateTime"], "late-entry" in {t["code"] for t in out["meta"]["tag"]}
    ('2025-12-31T10:15:00-05:00', True)
    """
    if not form_id or not str(form_id).strip():
        raise RuleRefused(
            RULES["maintenance.downtime-window"],
            resource=resource.get("resourceType", "?"),
            path="reason",
            expected="the paper form's id",
            found=form_id,
        )
    ev = datetime.fromisoformat(event_time)
    start, end = datetime.fromisoformat(downtime.start), datetime.fromisoformat(downtime.end)
    if not (start <= ev <= end):
        raise RuleRefused(
            RULES["maintenance.downtime-window"],
            resource=resource.get("resourceType", "?"),
            path="event_time",
            expected=f"a time inside the outage {downtime.start} - {downtime.end}",
            found=event_time,
        )
    if now(session) < end:
        raise RuleRefused(
            RULES["maintenance.downtime-window"],
            resource=resource.get("resourceType", "?"),
            path="recorded",
            expected="back-entry after the systems are back",
            found=now(session).isoformat(),
        )
    return session.late_entry(
        resource,
        event_time=event_time,
        reason=f"Downtime back-entry from paper form {form_id} ({downtime.reason})",
    )


def backup(sandbox: Sandbox, path: str | Path) -> dict[str, Any]:
    """Back up a sandbox to a file and return its manifest (counts, audit chain).

    Examples
    --------
    >>> import tempfile, os
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> sb = Sandbox.generate(patients=2, seed=1, years=1)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     m = backup(sb, os.path.join(d, "clinic.db"))
    ...     r = restore_drill(os.path.join(d, "clinic.db"), m, key=sb.master_key, live=sb)
    >>> m["counts"]["Patient"], r["ok"]
    (2, True)
    """
    s = sandbox.system_session()
    counts = {t: s.search(t).count() for t in BACKUP_TYPES}
    verified = sandbox.audit.verify()
    sandbox.save(path)
    return {
        "path": str(Path(path).name),
        "taken": s.sandbox.clock.peek().isoformat(),
        "counts": counts,
        "audit_events": sandbox.audit.count(),
        "audit_ok": bool(getattr(verified, "ok", verified)),
    }


def restore_drill(
    path: str | Path, manifest: dict[str, Any], *, key: Any = None, live: Sandbox | None = None
) -> dict[str, Any]:
    """Restore a backup into a separate instance and verify it (audit chain, record counts).

    Parameters
    ----------
    path : str or Path
        The backup file.
    manifest : dict
        What :func:`backup` returned when the backup was taken.
    key : optional
        The sandbox key (an encrypted or key-protected backup needs it).
    live : Sandbox, optional
        The running sandbox: the drill refuses to restore over its file.

    Returns
    -------
    dict
        ``chain_ok``, ``counts``, ``mismatches``, ``audit_events`` and ``ok``.

    Raises
    ------
    RuleRefused
        ``maintenance.restore-separate`` when ``path`` is the live database.

    Examples
    --------
    >>> import tempfile, os
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> with tempfile.TemporaryDirectory() as d:
    ...     live = Sandbox.generate(patients=1, seed=1, years=1, path=os.path.join(d, "live.db"))
    ...     m = backup(live, os.path.join(d, "b.db"))
    ...     try:
    ...         restore_drill(os.path.join(d, "live.db"), m, live=live)
    ...     except RuleRefused as e:
    ...         print(e.rule_id)
    ...     live.close()
    maintenance.restore-separate
    """
    from ehr_sandbox.sandbox import Sandbox

    if live is not None and live.path and Path(live.path).resolve() == Path(path).resolve():
        raise RuleRefused(
            RULES["maintenance.restore-separate"],
            resource="Sandbox",
            path="path",
            expected="a backup file other than the live database",
            found=Path(path).name,
        )
    restored = Sandbox.open(path, key=key)
    try:
        verified = restored.audit.verify()
        chain_ok = bool(getattr(verified, "ok", verified))
        s = restored.system_session()
        counts = {t: s.search(t).count() for t in manifest["counts"]}
        mismatches = {
            t: (manifest["counts"][t], counts[t])
            for t in counts
            if counts[t] != manifest["counts"][t]
        }
        events = restored.audit.count()
    finally:
        restored.close()
    return {
        "chain_ok": chain_ok,
        "counts": counts,
        "mismatches": mismatches,
        "audit_events": events,
        "ok": chain_ok and not mismatches and events >= manifest["audit_events"],
    }


def data_quality_report(session: Session) -> dict[str, list[Any]]:
    """Duplicates, missing insurance, unsigned notes, open encounters, appointments not checked out.

    Sections the session's role may not read are reported as not visible.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> r = data_quality_report(Sandbox.generate(patients=3, seed=1, years=1).system_session())
    >>> sorted(r)
    ['duplicates', 'missing_insurance', 'not_checked_out', 'not_visible', 'open_encounters', 'unsigned_notes']
    """
    from ehr_sandbox.network.matching import score_pair

    day = today(session).isoformat()
    out: dict[str, list[Any]] = {
        k: []
        for k in (
            "duplicates",
            "missing_insurance",
            "unsigned_notes",
            "open_encounters",
            "not_checked_out",
            "not_visible",
        )
    }
    patients = (
        [p for p in session.resources("Patient") if p.get("active", True)]
        if session.can_read("Patient")
        else []
    )
    for i, a in enumerate(patients):
        for b in patients[i + 1 :]:
            if a.get("birthDate", "")[:4] != b.get("birthDate", "")[:4] and (a.get("name") or [{}])[
                0
            ].get("family") != (b.get("name") or [{}])[0].get("family"):
                continue
            s = score_pair(a, b)
            if s.decision in ("match", "review"):
                out["duplicates"].append(
                    {"a": f"Patient/{a['id']}", "b": f"Patient/{b['id']}", "decision": s.decision}
                )
    if session.can_read("Coverage"):
        insured = {
            c["beneficiary"]["reference"]
            for c in session.resources("Coverage")
            if c.get("status") == "active" and ((c.get("period") or {}).get("end") or day) >= day
        }
        out["missing_insurance"] = sorted(
            f"Patient/{p['id']}" for p in patients if f"Patient/{p['id']}" not in insured
        )
    else:
        out["not_visible"].append("Coverage")
    if session.can_read("DocumentReference"):
        out["unsigned_notes"] = sorted(
            f"DocumentReference/{d['id']}"
            for d in session.resources("DocumentReference")
            if d.get("status") == "current" and d.get("docStatus") == "preliminary"
        )
    else:
        out["not_visible"].append("DocumentReference")
    if session.can_read("Encounter"):
        out["open_encounters"] = sorted(
            f"Encounter/{e['id']}"
            for e in session.resources("Encounter")
            if e.get("status") in ("arrived", "triaged", "in-progress", "onleave")
            and (e.get("period") or {}).get("start", day)[:10] < day
        )
    else:
        out["not_visible"].append("Encounter")
    if session.can_read("Appointment"):
        out["not_checked_out"] = sorted(
            f"Appointment/{a['id']}"
            for a in session.resources("Appointment")
            if a.get("status") in ("arrived", "checked-in") and a.get("start", day)[:10] < day
        )
    else:
        out["not_visible"].append("Appointment")
    return out
