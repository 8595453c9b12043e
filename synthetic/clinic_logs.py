"""The clinic's own records: exam rooms, point-of-care kits and their daily QC log, the
autoclave's sterilization log with its weekly spore tests, and the equipment maintenance log.

These belong to the practice, not to a patient, so they are part of the practice resources
(:meth:`synthetic.engine.Engine.practice_resources`). Patient-side steps ask the same object
which room a clinician uses at a given minute and which kit lot was in use on a day, so a
patient's POC result names a kit whose QC ran (and passed) earlier that day. Everything is a
pure function of (seed, reference date, years, preset, content).

>>> from synthetic.engine import engine_for
>>> logs = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").clinic
>>> sorted({r["resourceType"] for r in logs.resources()})
['Device', 'Location', 'Task']
>>> {t["code"]["coding"][0]["code"] for t in logs.resources() if t["resourceType"] == "Task"} >= {
...     "poc-qc", "sterilization-cycle", "maintenance-refrigerator-temperature"}
True
"""

from __future__ import annotations

import random
import tomllib
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from synthetic.builders.clinical_ma import (
    clinic_device,
    exam_room,
    maintenance_task,
    poc_kit,
    qc_task,
    sterilization_cycle,
)
from synthetic.dates import instant, iso_date
from synthetic.errors import ContentError
from synthetic.ids import practice_id

EPOCH = date(2000, 1, 3).toordinal()
"""Lots are opened on a fixed calendar (every ``lot_days`` from this Monday), so a day's kit is
the same whatever window an engine covers."""


class ClinicLogs:
    """Rooms, POC kit lots and QC runs of one engine's practice over its window.

    Parameters
    ----------
    eng : Engine
        The engine (practice, window, seed, content ``clinical_ma``).

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> logs = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").clinic
    >>> logs.room_for(logs.eng.practice.physicians[0], 9 * 60).startswith("Location/")
    True
    """

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        self.cm = eng.content.clinical_ma
        self.start = eng.ref - eng.window
        self.by_panel = {d.panel: d for d in self.cm.poc_device}
        per = self.cm.rooms.per_clinician
        self.rooms: dict[str, list[str]] = {}
        for i, phys in enumerate(eng.practice.physicians):
            self.rooms[phys] = [practice_id("loc", f"exam-{i * per + k + 1}") for k in range(per)]
        self._resources: list[dict[str, Any]] | None = None

    # ------------------------------------------------------------------ lookups

    def room_for(self, physician: str, minute: int) -> str:
        """The exam room (``Location/<id>``) a clinician rooms a patient in at ``minute``.

        Consecutive 15-minute starts alternate between the clinician's rooms, so one room is
        being turned over while the next patient is seen.

        >>> from synthetic.engine import engine_for
        >>> logs = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").clinic
        >>> p = logs.eng.practice.physicians[0]
        >>> logs.room_for(p, 8 * 60) != logs.room_for(p, 8 * 60 + 15)
        True
        """
        rooms = self.rooms.get(physician)
        if not rooms:
            rooms = next(iter(self.rooms.values()))
        return f"Location/{rooms[(minute // 15) % len(rooms)]}"

    def lot_index(self, device: Any, day: int) -> int:
        """Which lot of ``device`` is in use on ``day`` (lots are opened every ``lot_days``).

        >>> from synthetic.engine import engine_for
        >>> logs = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").clinic
        >>> d = logs.cm.poc_device[0]
        >>> logs.lot_index(d, logs.start + d.lot_days) - logs.lot_index(d, logs.start)
        1
        """
        return (day - EPOCH) // device.lot_days

    def kit_for(self, panel: str, day: int) -> str | None:
        """``Device/<id>`` of the kit lot that runs ``panel`` on ``day`` (None: not a POC panel).

        >>> from synthetic.engine import engine_for
        >>> logs = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").clinic
        >>> logs.kit_for("strep", 739617), logs.kit_for("lipid", 739617)
        ('Device/dev-strep-kit-105', None)
        """
        d = self.by_panel.get(panel)
        if d is None:
            return None
        return f"Device/{practice_id('dev', f'{d.id}-{self.lot_index(d, day)}')}"

    # ------------------------------------------------------------------ resources

    def resources(self) -> list[dict[str, Any]]:
        """Exam rooms, kit lots (Device) and every QC run (Task), in a stable order.

        >>> from synthetic.engine import engine_for
        >>> res = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").clinic.resources()
        >>> len({r["id"] for r in res}) == len(res)
        True
        """
        if self._resources is None:
            self._resources = self._build()
        return self._resources

    def _build(self) -> list[dict[str, Any]]:
        eng = self.eng
        pr = eng.practice
        org = f"Organization/{pr.organization_id}"
        main = f"Location/{pr.location_id}"
        out: list[dict[str, Any]] = []
        for rooms in self.rooms.values():
            for rid in rooms:
                n = rid.rsplit("-", 1)[1]
                out.append(exam_room(rid, f"Exam room {n}", main, org))
        qc = self.cm.qc
        staff = pr.assistants or pr.physicians
        qc_from = max(self.start, eng.ref - qc.retention_days)
        for d in self.cm.poc_device:
            info: dict[int, tuple[str, str, str]] = {}
            for k in range(self.lot_index(d, self.start), self.lot_index(d, eng.ref - 1) + 1):
                opened = EPOCH + k * d.lot_days
                lot = f"{d.id.split('-')[0].upper()}{date.fromordinal(opened).year}-{k:04d}"
                expiry = iso_date(opened + d.shelf_days)
                did = practice_id("dev", f"{d.id}-{k}")
                out.append(poc_kit(did, d.test, d.display, lot, expiry, main))
                info[k] = (did, lot, expiry)
            rng = random.Random(f"qc:{eng.seed}:{d.id}:{qc_from}")
            for day in range(qc_from, eng.ref):
                if not pr.is_open(day):
                    continue
                did, lot, expiry = info[self.lot_index(d, day)]
                who = f"Practitioner/{staff[day % len(staff)]}"
                runs = 1
                while True:
                    failed = rng.random() < qc.failure_share if runs == 1 else False
                    # a failed run: one level out of range; corrective action, then a repeat
                    bad = d.control_levels[rng.randrange(len(d.control_levels))] if failed else ""
                    levels = [(lv, lv != bad) for lv in d.control_levels]
                    when = instant(day, qc.minute + 5 * (runs - 1), eng.offset)
                    tid = practice_id("task", f"qc-{d.id}-{iso_date(day)}-{runs}")
                    out.append(
                        qc_task(
                            tid,
                            kit=f"Device/{did}",
                            display=d.display,
                            lot=lot,
                            expiry=expiry,
                            when=when,
                            performer=who,
                            levels=levels,
                        )
                    )
                    if not failed:
                        break
                    runs += 1
        out += self._equipment(qc_from, main, staff)
        return out

    def _equipment(self, since: int, main: str, staff: list[str]) -> list[dict[str, Any]]:
        """The autoclave, the instrument packs, the ECG cart and the vaccine refrigerator; the
        sterilization cycles (content ``sterilization.toml`` ``[generator]``) and the
        maintenance checks from ``since`` to the reference date."""
        eng, pr = self.eng, self.eng.practice
        spec = _sterilization_table()
        try:
            gen, kinds = spec["generator"], spec["maintenance"]
            limit = spec["cycle"][gen["cycle"]]
        except KeyError as exc:
            raise ContentError(f"expected {exc.args[0]!r}", file="sterilization.toml") from None
        dev = {
            "autoclave": practice_id("dev", "autoclave-1"),
            "ecg": practice_id("dev", "ecg-cart-1"),
            "refrigerator": practice_id("dev", "vaccine-fridge-1"),
        }
        out = [
            clinic_device(dev["autoclave"], name="Autoclave 1", kind="steam sterilizer (autoclave)",
                          location=main, serial=f"AC-{eng.seed % 10000:04d}"),
            clinic_device(dev["ecg"], name="ECG cart 1", kind="12-lead electrocardiograph",
                          location=main),
            clinic_device(dev["refrigerator"], name="Vaccine refrigerator 1",
                          kind="vaccine storage refrigerator", location=main),
        ]  # fmt: skip
        packs = [
            practice_id("dev", f"pack-{name.lower().replace(' ', '-')}-{k + 1}")
            for name in gen["packs"]
            for k in range(int(gen["packs_each"]))
        ]
        last_load: dict[str, tuple[str, int]] = {}
        rng = random.Random(f"autoclave:{eng.seed}:{since}")
        week_bi: set[int] = set()
        n = 0
        for day in range(since, eng.ref):
            if not pr.is_open(day) or date.fromordinal(day).weekday() not in gen["weekdays"]:
                continue
            n += 1
            load = f"L{date.fromordinal(day).year}-{n:04d}"
            chosen = packs[n % 2 :: 2]  # each pack goes through every other load
            week = (day - EPOCH) // 7
            bi = "pass" if week not in week_bi else "not run"
            week_bi.add(week)
            temp = max(limit["min_temp_c"], rng.uniform(*gen["temp_c"]))
            minutes = max(limit["min_minutes"], float(rng.randint(*gen["minutes"])))
            psi = max(limit["min_pressure_psi"], rng.uniform(*gen["pressure_psi"]))
            out.append(
                sterilization_cycle(
                    practice_id("task", f"autoclave-{iso_date(day)}"),
                    autoclave=f"Device/{dev['autoclave']}",
                    load=load,
                    cycle=gen["cycle"],
                    temp_c=round(temp, 1),
                    minutes=minutes,
                    pressure_psi=round(psi, 1),
                    packs=[f"Device/{p}" for p in chosen],
                    bi=bi,
                    when=instant(day, int(gen["minute"]), eng.offset),
                    operator=f"Practitioner/{staff[day % len(staff)]}",
                )
            )
            for p in chosen:
                last_load[p] = (load, day)
        for p in packs:
            name = p.removeprefix("dev-pack-").rsplit("-", 1)[0].replace("-", " ").capitalize()
            pack = clinic_device(p, name=name, kind="instrument pack", location=main)
            if p in last_load:
                load, day = last_load[p]
                pack["lotNumber"] = load
                pack["note"] = [{"text": f"sterilized in load {load} ({iso_date(day)})"}]
            out.append(pack)
        for kind, device in gen["logged"].items():
            every = int(kinds[kind]["days"])
            day = since
            while day < eng.ref:
                if pr.is_open(day):
                    out.append(
                        maintenance_task(
                            practice_id("task", f"maint-{kind}-{iso_date(day)}"),
                            device=f"Device/{dev[device]}",
                            kind=kind,
                            text=kinds[kind]["text"],
                            next_due=iso_date(day + every),
                            note="within limits",
                            when=instant(day, int(gen["minute"]) - 15, eng.offset),
                            performer=f"Practitioner/{staff[day % len(staff)]}",
                        )
                    )
                    day += every
                else:
                    day += 1
        return out


@cache
def _sterilization_table() -> dict[str, Any]:
    """``sterilization.toml`` (shared with the EHR's sterilization workflow), read once."""
    text = (resources.files("synthetic.content") / "data" / "sterilization.toml").read_text("utf-8")
    return tomllib.loads(text)
