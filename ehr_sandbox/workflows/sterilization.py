"""Autoclave sterilization log, biological-indicator recall, equipment maintenance and calibration.

The autoclave and each instrument pack are ``Device`` s. :func:`log_cycle` records one cycle as
a completed ``Task`` focused on the autoclave (cycle type, load, temperature, minutes,
pressure, chemical and biological indicator, operator) and releases the load's packs (their
``lotNumber`` becomes the load id) only when the parameters reach the cycle's minimum
(``data/sterilization.toml``) and the chemical indicator passed; a weekly spore test (BI) is
required. :func:`record_bi` files the spore-test result: a **positive (failed) BI recalls** the
load's packs and those of every later load of that sterilizer (status ``inactive`` with the
reason), and every ``Procedure`` that used a recalled pack gets a ``Flag`` on the patient and a
``Task`` to the provider. :func:`check_pack` refuses a recalled or unreleased pack;
:func:`log_maintenance` keeps the maintenance/calibration log (a failed check takes the device
out of service).

>>> cycle_ok("gravity", 121, 30, 15), cycle_ok("prevacuum", 132, 3, 27)
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ehr_sandbox.workflows.base import Rule, write
from ehr_sandbox.workflows.care import (
    SANDBOX_OBS,
    coding,
    demo_session,
    now,
    now_text,
    provider_of,
    read_patient,
    refuse,
    routed_task,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from synthetic.systems import FLAG_CATEGORY, SANDBOX_PROCEDURE, UCUM

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "Recall",
    "check_pack",
    "cycle_ok",
    "demo_session",
    "log_cycle",
    "log_maintenance",
    "output_value",
    "record_bi",
    "register_autoclave",
    "register_pack",
    "use_pack",
]

_CDC = "CDC Guideline for Disinfection and Sterilization (2008, upd. 2019); ANSI/AAMI ST79:2017"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("sterilization.cycle", "a cycle is logged with load, type, temperature, time, pressure, chemical indicator and operator", _CDC),
        Rule("sterilization.weekly-bi", "a biological indicator (spore test) is run at least weekly on each sterilizer", _CDC),
        Rule("sterilization.bi-result", "a BI result is pass or fail and belongs to a logged cycle", _CDC),
        Rule("sterilization.recalled-pack", "a pack from a failed or recalled load, or never released, is not used", _CDC),
        Rule("sterilization.maintenance", "maintenance and calibration are logged with the result; a failed check takes the device out of service", "manufacturer IFU; CLIA 42 CFR 493.1254"),
    )
}  # fmt: skip
CYCLE_CODE = "sterilization-cycle"


def cycle_ok(kind: str, temp_c: float, minutes: float, pressure_psi: float) -> bool:
    """Whether the physical parameters reach the cycle type's minimum.

    Examples
    --------
    >>> cycle_ok("gravity", 118, 30, 15)
    False
    """
    spec = table("sterilization")["cycle"][kind]
    return (
        temp_c >= spec["min_temp_c"]
        and minutes >= spec["min_minutes"]
        and pressure_psi >= spec["min_pressure_psi"]
    )


def register_autoclave(session: Session, name: str, serial: str) -> dict[str, Any]:
    """The clinic's steam sterilizer as a Device.

    Examples
    --------
    >>> register_autoclave(demo_session(), "Autoclave A", "SN-100")["serialNumber"]
    'SN-100'
    """
    dev = {
        "resourceType": "Device",
        "status": "active",
        "serialNumber": serial,
        "deviceName": [{"name": name, "type": "user-friendly-name"}],
        "type": {"text": "steam sterilizer (autoclave)"},
    }
    return write(session, dev, operation="sterilization.register-autoclave")


def register_pack(session: Session, name: str) -> dict[str, Any]:
    """A wrapped instrument pack (not yet released: ``inactive`` until a passing cycle).

    Examples
    --------
    >>> register_pack(demo_session(), "Suture removal kit 1")["status"]
    'inactive'
    """
    dev = {
        "resourceType": "Device",
        "status": "inactive",
        "deviceName": [{"name": name, "type": "user-friendly-name"}],
        "type": {"text": "instrument pack"},
        "note": [{"text": "awaiting sterilization"}],
    }
    return write(session, dev, operation="sterilization.register-pack")


def _cycles(session: Session, autoclave: str) -> list[dict[str, Any]]:
    out = session.search("Task", code=f"{SANDBOX_OBS}|{CYCLE_CODE}", focus=autoclave).fetch()
    return sorted(out, key=lambda t: t.get("authoredOn", ""))


def output_value(task: dict[str, Any], name: str) -> Any:
    """The value of the Task output named ``name`` (the cycle log's fields).

    Examples
    --------
    >>> output_value({"output": [{"type": {"text": "load"}, "valueString": "L1"}]}, "load")
    'L1'
    """
    for o in task.get("output", []):
        if (o.get("type") or {}).get("text") == name:
            for k, v in o.items():
                if k.startswith("value"):
                    return v.get("value") if isinstance(v, dict) and "value" in v else v
    return None


def log_cycle(
    session: Session,
    autoclave: str,
    *,
    load: str,
    cycle: str,
    temp_c: float,
    minutes: float,
    pressure_psi: float,
    chemical_indicator: str,
    packs: list[str],
    biological_indicator: bool = False,
) -> dict[str, Any]:
    """Log one autoclave cycle and release its packs when it passed.

    Parameters
    ----------
    load : str
        Load number (printed on each pack's label).
    cycle : str
        ``"gravity"`` or ``"prevacuum"``.
    chemical_indicator : str
        ``"pass"`` or ``"fail"`` (the integrator in the load).
    biological_indicator : bool
        True when a spore test vial is in this load (its result comes later: :func:`record_bi`).

    Returns
    -------
    dict
        The cycle log entry (a Task); ``businessStatus.text`` is ``"released"`` or ``"failed"``.

    Raises
    ------
    RuleRefused
        ``sterilization.cycle`` (missing data) or ``sterilization.weekly-bi`` (no BI in 7 days
        on this sterilizer and none in this load).

    Examples
    --------
    >>> s = demo_session()
    >>> a = register_autoclave(s, "Autoclave B", "SN-200")
    >>> p = register_pack(s, "Pack 1")
    >>> log_cycle(s, f"Device/{a['id']}", load="L-1", cycle="gravity", temp_c=121, minutes=30,
    ...           pressure_psi=16, chemical_indicator="pass", packs=[f"Device/{p['id']}"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Task (sterilization cycle): biological indicator: expected a spore test this week ...
    >>> t = log_cycle(s, f"Device/{a['id']}", load="L-1", cycle="gravity", temp_c=121, minutes=30,
    ...               pressure_psi=16, chemical_indicator="pass", packs=[f"Device/{p['id']}"],
    ...               biological_indicator=True)
    >>> t["businessStatus"]["text"], s.read(f"Device/{p['id']}")["status"]
    ('released', 'active')
    """
    spec = table("sterilization")
    rule = RULES["sterilization.cycle"]
    if cycle not in spec["cycle"]:
        raise refuse(rule, "Task (sterilization cycle)", "cycle", "gravity or prevacuum", cycle)
    if not load or not packs:
        raise refuse(
            rule, "Task (sterilization cycle)", "load", "the load number and its packs", load
        )
    if chemical_indicator not in ("pass", "fail"):
        raise refuse(
            rule,
            "Task (sterilization cycle)",
            "chemical indicator",
            "pass or fail",
            chemical_indicator,
        )
    for name, v in (("temperature", temp_c), ("minutes", minutes), ("pressure", pressure_psi)):
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            raise refuse(rule, "Task (sterilization cycle)", name, "a measured value", v)
    since = (now(session) - timedelta(days=spec["bi_interval_days"])).isoformat()
    recent_bi = any(
        output_value(t, "biological indicator") in ("pending", "pass", "fail")
        and t.get("authoredOn", "") >= since[:19]
        for t in _cycles(session, autoclave)
    )
    if not biological_indicator and not recent_bi:
        raise refuse(
            RULES["sterilization.weekly-bi"],
            "Task (sterilization cycle)",
            "biological indicator",
            f"a spore test this week (none in {spec['bi_interval_days']} days): put a BI in this load",
            None,
        )
    passed = cycle_ok(cycle, temp_c, minutes, pressure_psi) and chemical_indicator == "pass"
    when = now_text(session)
    task = {
        "resourceType": "Task",
        "status": "completed",
        "intent": "order",
        "businessStatus": {"text": "released" if passed else "failed"},
        "code": coding(SANDBOX_OBS, CYCLE_CODE, "Steam sterilization cycle"),
        "description": f"Load {load}: {cycle} cycle, {temp_c} C, {minutes} min, {pressure_psi} psi",
        "focus": {"reference": autoclave},
        "authoredOn": when,
        "executionPeriod": {"start": when, "end": when},
        "requester": user_ref(session),
        "owner": user_ref(session),
        "input": [{"type": {"text": "pack"}, "valueReference": {"reference": p}} for p in packs],
        "output": [
            {"type": {"text": "load"}, "valueString": load},
            {"type": {"text": "cycle"}, "valueString": cycle},
            {"type": {"text": "temperature"}, "valueQuantity": {"value": temp_c, "unit": "Cel", "system": UCUM, "code": "Cel"}},
            {"type": {"text": "exposure time"}, "valueQuantity": {"value": minutes, "unit": "min", "system": UCUM, "code": "min"}},
            {"type": {"text": "pressure"}, "valueQuantity": {"value": pressure_psi, "unit": "psi", "system": UCUM, "code": "[psi]"}},
            {"type": {"text": "chemical indicator"}, "valueString": chemical_indicator},
            {"type": {"text": "biological indicator"}, "valueString": "pending" if biological_indicator else "not run"},
        ],
    }  # fmt: skip
    updates = []
    for p in packs:
        dev = session.read(p)
        dev["lotNumber"] = load
        dev["status"] = "active" if passed else "inactive"
        dev["note"] = [
            {
                "text": f"sterilized in load {load} ({when[:10]})"
                if passed
                else f"load {load} FAILED: reprocess"
            }
        ]
        updates.append(dev)
    return write_entries(session, [task, *updates], operation="sterilization.cycle")[0]


@dataclass
class Recall:
    """A BI failure's consequences: recalled packs, flagged procedures, flags and provider tasks.

    Parameters
    ----------
    cycle : dict
        The failed sterilizer cycle.
    packs : list of str
        The instrument packs recalled.
    procedures : list of str
        The procedures that used them.
    flags : list of dict
        The Flags and Tasks written for the providers.

    Examples
    --------
    >>> r = Recall({"id": "cycle-7"}, packs=["pack-1", "pack-2"])
    >>> len(r.packs), r.procedures
    (2, [])
    """

    cycle: dict[str, Any]
    packs: list[str] = field(default_factory=list)
    procedures: list[str] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)


def record_bi(session: Session, cycle: str, result: str) -> Recall:
    """File the spore-test result of a cycle; a failed BI recalls packs and flags procedures.

    A failed BI recalls the packs of that load and of every later load of the same sterilizer
    (CDC: everything processed since the last negative BI), marks them ``inactive`` with the
    reason, and for each Procedure that used one writes a ``Flag`` on the patient and a ``Task``
    to the patient's provider.

    Examples
    --------
    >>> record_bi(demo_session(), "Task/none", "maybe")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Task/none: biological indicator: expected pass or fail ...
    """
    if result not in ("pass", "fail"):
        raise refuse(
            RULES["sterilization.bi-result"], cycle, "biological indicator", "pass or fail", result
        )
    task = session.read(cycle)
    if output_value(task, "biological indicator") != "pending":
        raise refuse(
            RULES["sterilization.bi-result"],
            cycle,
            "biological indicator",
            "a cycle whose spore test is pending",
            output_value(task, "biological indicator"),
        )
    for o in task["output"]:
        if (o.get("type") or {}).get("text") == "biological indicator":
            o["valueString"] = result
    out = Recall(cycle=task)
    if result == "pass":
        out.cycle = write(session, task, operation="sterilization.bi")
        return out
    task["businessStatus"] = {"text": "recalled: biological indicator failed"}
    autoclave = task["focus"]["reference"]
    affected = [
        t
        for t in _cycles(session, autoclave)
        if t.get("authoredOn", "") >= task.get("authoredOn", "") and t["id"] != task["id"]
    ]
    loads = [task, *affected]
    writes: list[dict[str, Any]] = [task]
    pack_refs: list[str] = []
    for t in loads:
        load = output_value(t, "load")
        for i in t.get("input", []):
            ref = (i.get("valueReference") or {}).get("reference")
            if not ref or ref in pack_refs:
                continue
            dev = session.read(ref)
            if dev.get("lotNumber") != load:
                continue  # re-sterilized since in another load
            dev["status"] = "inactive"
            dev["note"] = [
                {
                    "text": f"RECALLED: biological indicator failed for load {output_value(task, 'load')} on {now_text(session)[:10]}; reprocess before use"
                }
            ]
            writes.append(dev)
            pack_refs.append(ref)
    flags: list[dict[str, Any]] = []
    procs: list[str] = []
    for proc in _procedures_using(session, pack_refs):
        patient = proc["subject"]["reference"]
        pref = f"Procedure/{proc['id']}"
        procs.append(pref)
        flag = {
            "resourceType": "Flag",
            "status": "active",
            "category": [coding(FLAG_CATEGORY, "safety", "Safety")],
            "code": {
                "text": f"{pref} used an instrument pack from a recalled sterilizer load (BI failed): infection-control follow-up"
            },
            "subject": {"reference": patient},
            "period": {"start": now_text(session)},
            "author": user_ref(session),
        }
        if proc.get("encounter"):
            flag["encounter"] = proc["encounter"]
        flags.append(flag)
        chart = read_patient(session, patient)
        writes.append(flag)
        writes.append(
            routed_task(
                session,
                patient,
                provider_of(chart),
                f"Instrument pack recall: {pref} used a pack from load {output_value(task, 'load')} whose biological indicator failed",
                focus=pref,
                priority="urgent",
            )
        )
    saved = write_entries(session, writes, operation="sterilization.recall")
    out.cycle = saved[0]
    out.packs = pack_refs
    out.procedures = procs
    out.flags = [r for r in saved if r["resourceType"] == "Flag"]
    return out


def _procedures_using(session: Session, packs: list[str]) -> list[dict[str, Any]]:
    if not packs:
        return []
    wanted = set(packs)
    found = []
    for proc in session.resources("Procedure"):
        if any((u.get("reference") in wanted) for u in proc.get("usedReference", [])):
            found.append(proc)
    return sorted(found, key=lambda p: p["id"])


def check_pack(session: Session, pack: str) -> dict[str, Any]:
    """The pack, if it may be used; a recalled, failed or unreleased pack is refused.

    Examples
    --------
    >>> s = demo_session()
    >>> p = register_pack(s, "Pack 9")
    >>> check_pack(s, f"Device/{p['id']}")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Device/...: status: expected a pack released by a passing cycle ...
    """
    dev = session.read(pack)
    if dev.get("status") != "active" or not dev.get("lotNumber"):
        raise refuse(
            RULES["sterilization.recalled-pack"],
            pack,
            "status",
            "a pack released by a passing cycle and not recalled",
            (dev.get("note") or [{}])[0].get("text", dev.get("status")),
        )
    return dev


def use_pack(
    session: Session, patient: str, pack: str, *, procedure: str, display: str
) -> dict[str, Any]:
    """Record a procedure performed with an instrument pack (``usedReference``), after :func:`check_pack`.

    ``procedure`` is a sandbox procedure code (e.g. ``NAIL-DEBRIDE``).

    Examples
    --------
    >>> s = demo_session()
    >>> p = register_pack(s, "Pack 10")
    >>> use_pack(s, "Patient/x", f"Device/{p['id']}", procedure="NAIL-DEBRIDE", display="Debridement of nails, 1 to 5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: ...
    """
    from ehr_sandbox.workflows.care import require_identified

    ref = require_identified(session, patient, "Procedure")
    check_pack(session, pack)
    proc = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": coding(SANDBOX_PROCEDURE, procedure, display),
        "subject": {"reference": ref},
        "performedDateTime": now_text(session),
        "recorder": user_ref(session),
        "usedReference": [{"reference": pack}],
    }
    return write(session, proc, operation="sterilization.use-pack")


def log_maintenance(
    session: Session, device: str, kind: str, result: str, note: str
) -> dict[str, Any]:
    """Log a maintenance or calibration check (``data/sterilization.toml`` ``[maintenance]``).

    A failed check sets the device ``inactive`` (out of service) in the same transaction.

    Examples
    --------
    >>> s = demo_session()
    >>> a = register_autoclave(s, "Autoclave C", "SN-300")
    >>> t = log_maintenance(s, f"Device/{a['id']}", "autoclave-service", "fail", "door gasket leaking")
    >>> t["businessStatus"]["text"], s.read(f"Device/{a['id']}")["status"]
    ('fail', 'inactive')
    """
    kinds = table("sterilization")["maintenance"]
    if kind not in kinds or result not in ("pass", "fail") or not note:
        raise refuse(
            RULES["sterilization.maintenance"],
            "Task (maintenance)",
            "code",
            "a kind of " + ", ".join(kinds) + ", result pass/fail and a note",
            {"kind": kind, "result": result},
        )
    when = now(session)
    due = (when + timedelta(days=kinds[kind]["days"])).date().isoformat()
    task = {
        "resourceType": "Task",
        "status": "completed",
        "intent": "order",
        "businessStatus": {"text": result},
        "code": coding(SANDBOX_OBS, f"maintenance-{kind}", kinds[kind]["text"]),
        "description": f"{kinds[kind]['text']}: {result}; next due {due}",
        "focus": {"reference": device},
        "authoredOn": now_text(session),
        "owner": user_ref(session),
        "requester": user_ref(session),
        "note": [{"text": note}],
        "output": [
            {"type": {"text": "result"}, "valueString": result},
            {"type": {"text": "next due"}, "valueDate": due},
        ],
    }
    writes: list[dict[str, Any]] = [task]
    if result == "fail":
        dev = session.read(device)
        dev["status"] = "inactive"
        dev["note"] = [{"text": f"OUT OF SERVICE {now_text(session)[:10]}: {note}"}]
        writes.append(dev)
    return write_entries(session, writes, operation="sterilization.maintenance")[0]
