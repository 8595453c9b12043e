"""Benchmark the SQL on FHIR view engine against hand-written DuckDB SQL.

Three views (patient demographics, observation flattening, condition codes with forEach over
``code.coding``) run over NDJSON files with the DuckDB fast path; each is compared with a
hand-written DuckDB query doing the same flattening over the same files. Reports rows/s, peak
RSS during the run and the time ratio (target: <= 1.5x the hand-written SQL). Optionally
(``--python``) also times the Python reference evaluator on a slice.

Data: ``--data DIR`` of Bulk Data NDJSON, or generated: ``synthetic.write_dataset`` when the
generator provides it, otherwise a small built-in writer of generated-like records (same shapes
as the project's generator: US Core vitals, ICD-10-CM conditions).

    python bench/views.py --patients 10000
    python bench/views.py --data path/to/ndjson --repeat 3

Speed is measured here only; tests never assert wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import psutil  # noqa: E402

from ehr_sandbox.views import run_arrow  # noqa: E402
from ehr_sandbox.views.definition import compile_view  # noqa: E402
from ehr_sandbox.views.reference import iter_rows  # noqa: E402
from ehr_sandbox.views.source import ResourceSource  # noqa: E402

VIEWS: dict[str, dict[str, Any]] = {
    "patient_demographics": {
        "resource": "Patient",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id", "type": "id"},
                    {"name": "gender", "path": "gender", "type": "code"},
                    {"name": "birth_date", "path": "birthDate", "type": "date"},
                    {"name": "family", "path": "name.family.first()", "type": "string"},
                    {"name": "given", "path": "name.given.first()", "type": "string"},
                    {"name": "postal_code", "path": "address.postalCode.first()", "type": "string"},
                ]
            }
        ],
    },
    "observation_flat": {
        "resource": "Observation",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id", "type": "id"},
                    {
                        "name": "patient",
                        "path": "subject.getReferenceKey(Patient)",
                        "type": "string",
                    },
                    {"name": "status", "path": "status", "type": "code"},
                    {"name": "code", "path": "code.coding.code.first()", "type": "code"},
                    {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
                    {"name": "unit", "path": "value.ofType(Quantity).unit", "type": "string"},
                    {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
                ]
            }
        ],
    },
    "condition_codes": {
        "resource": "Condition",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id", "type": "id"},
                    {
                        "name": "patient",
                        "path": "subject.getReferenceKey(Patient)",
                        "type": "string",
                    },
                ]
            },
            {
                "forEach": "code.coding",
                "column": [
                    {"name": "system", "path": "system", "type": "uri"},
                    {"name": "code", "path": "code", "type": "code"},
                ],
            },
        ],
    },
}

# What a person would write by hand for the same flattening (same files, same columns).
HAND_SQL: dict[str, str] = {
    "patient_demographics": """
        SELECT json_extract_string(json, '$.id') AS id,
               json_extract_string(json, '$.gender') AS gender,
               json_extract_string(json, '$.birthDate') AS birth_date,
               json_extract_string(json, '$.name[0].family') AS family,
               json_extract_string(json, '$.name[0].given[0]') AS given,
               json_extract_string(json, '$.address[0].postalCode') AS postal_code
        FROM read_ndjson_objects({files})
        WHERE json_extract_string(json, '$.resourceType') = 'Patient'""",
    "observation_flat": """
        SELECT json_extract_string(json, '$.id') AS id,
               split_part(json_extract_string(json, '$.subject.reference'), '/', 2) AS patient,
               json_extract_string(json, '$.status') AS status,
               json_extract_string(json, '$.code.coding[0].code') AS code,
               CAST(json_extract(json, '$.valueQuantity.value') AS DOUBLE) AS value,
               json_extract_string(json, '$.valueQuantity.unit') AS unit,
               json_extract_string(json, '$.effectiveDateTime') AS effective
        FROM read_ndjson_objects({files})
        WHERE json_extract_string(json, '$.resourceType') = 'Observation'""",
    "condition_codes": """
        SELECT json_extract_string(json, '$.id') AS id,
               split_part(json_extract_string(json, '$.subject.reference'), '/', 2) AS patient,
               json_extract_string(c, '$.system') AS system,
               json_extract_string(c, '$.code') AS code
        FROM (SELECT json, unnest(json_extract(json, '$.code.coding[*]')) AS c
              FROM read_ndjson_objects({files})
              WHERE json_extract_string(json, '$.resourceType') = 'Condition')""",
}

# The same, written by someone who knows DuckDB parses a JSON document once per
# json_extract call: every path in one list (what the view compiler generates too).
HAND_SQL_BATCHED: dict[str, str] = {
    "patient_demographics": """
        SELECT x[1] AS id, x[2] AS gender, x[3] AS birth_date, x[4] AS family, x[5] AS given,
               x[6] AS postal_code
        FROM (SELECT json_extract_string(json, ['$.id', '$.gender', '$.birthDate', '$.name[0].family',
                     '$.name[0].given[0]', '$.address[0].postalCode', '$.resourceType']) AS x
              FROM read_ndjson_objects({files}))
        WHERE x[7] = 'Patient'""",
    "observation_flat": """
        SELECT x[1] AS id, split_part(x[2], '/', 2) AS patient, x[3] AS status, x[4] AS code,
               CAST(x[5] AS DOUBLE) AS value, x[6] AS unit, x[7] AS effective
        FROM (SELECT json_extract_string(json, ['$.id', '$.subject.reference', '$.status',
                     '$.code.coding[0].code', '$.valueQuantity.value', '$.valueQuantity.unit',
                     '$.effectiveDateTime', '$.resourceType']) AS x
              FROM read_ndjson_objects({files}))
        WHERE x[8] = 'Observation'""",
    "condition_codes": """
        SELECT x[1] AS id, split_part(x[2], '/', 2) AS patient,
               json_extract_string(c, '$.system') AS system, json_extract_string(c, '$.code') AS code
        FROM (SELECT x, unnest(json_extract(codings, '$[*]')) AS c
              FROM (SELECT json_extract_string(json, ['$.id', '$.subject.reference', '$.resourceType']) AS x,
                           json_extract(json, '$.code.coding') AS codings
                    FROM read_ndjson_objects({files}))
              WHERE x[3] = 'Condition')""",
}

VITALS = [
    ("8867-4", "Heart rate", 50, 110, "/min"),
    ("9279-1", "Respiratory rate", 12, 22, "/min"),
    ("8310-5", "Body temperature", 36.0, 38.5, "Cel"),
    ("29463-7", "Body weight", 40.0, 120.0, "kg"),
    ("8302-2", "Body height", 140.0, 195.0, "cm"),
    ("39156-5", "Body mass index (BMI) [Ratio]", 17.0, 40.0, "kg/m2"),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", 92, 100, "%"),
]
ICD = ["I10", "E11.9", "E78.5", "J45.909", "M54.50", "F41.1", "K21.9", "N39.0", "J06.9", "E66.9"]


def write_generated_like(out: Path, patients: int, seed: int, obs_per_patient: int = 10) -> None:
    """Write Patient/Observation/Condition NDJSON shaped like the project's generator output."""
    rng = random.Random(seed)
    with (
        open(out / "Patient.ndjson", "w", encoding="utf-8") as pf,
        open(out / "Observation.ndjson", "w", encoding="utf-8") as of,
        open(out / "Condition.ndjson", "w", encoding="utf-8") as cf,
    ):
        for i in range(patients):
            pid = f"pat-{seed}-{i:07d}"
            pf.write(
                json.dumps(
                    {
                        "resourceType": "Patient",
                        "id": pid,
                        "identifier": [
                            {"system": "http://ehr-sandbox.org/fhir/mrn", "value": f"MRN{i:08d}"}
                        ],
                        "name": [
                            {
                                "use": "official",
                                "family": f"Family{i % 997}",
                                "given": [f"Given{i % 313}"],
                            }
                        ],
                        "gender": rng.choice(["female", "male"]),
                        "birthDate": f"{rng.randint(1930, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                        "address": [{"postalCode": f"{rng.randint(10000, 99999)}", "state": "MA"}],
                    }
                )
                + "\n"
            )
            for j in range(obs_per_patient):
                when = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T09:{rng.randint(0, 59):02d}:00-05:00"
                if j % 8 == 0:
                    s, d = rng.randint(100, 170), rng.randint(60, 100)
                    obs = {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
                        "component": [
                            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": s, "unit": "mm[Hg]"}},
                            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": d, "unit": "mm[Hg]"}},
                        ],
                    }  # fmt: skip
                else:
                    code, display, lo, hi, unit = rng.choice(VITALS)
                    value = (
                        rng.randint(lo, hi)
                        if isinstance(lo, int)
                        else round(rng.uniform(lo, hi), 1)
                    )
                    obs = {
                        "code": {
                            "coding": [
                                {"system": "http://loinc.org", "code": code, "display": display}
                            ]
                        },
                        "valueQuantity": {
                            "value": value,
                            "unit": unit,
                            "system": "http://unitsofmeasure.org",
                            "code": unit,
                        },
                    }
                obs.update(
                    {
                        "resourceType": "Observation",
                        "id": f"obs-{seed}-{i:07d}-{j:03d}",
                        "status": "final",
                        "category": [{"coding": [{"code": "vital-signs"}]}],
                        "subject": {"reference": f"Patient/{pid}"},
                        "effectiveDateTime": when,
                    }
                )
                of.write(json.dumps(obs) + "\n")
            for k in range(rng.randint(0, 3)):
                codings = [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": rng.choice(ICD)}]
                if rng.random() < 0.5:
                    codings.append(
                        {"system": "http://snomed.info/sct", "code": str(rng.randint(10**7, 10**8))}
                    )
                cond = {
                    "resourceType": "Condition",
                    "id": f"cond-{seed}-{i:07d}-{k}",
                    "subject": {"reference": f"Patient/{pid}"},
                    "code": {"coding": codings},
                }
                cf.write(json.dumps(cond) + "\n")


def generate(out: Path, patients: int, seed: int, workers: int, years: int) -> str:
    """Write NDJSON with the project's generator when it is available, else the built-in writer."""
    try:
        from synthetic import write_dataset
    except ImportError:
        write_dataset = None
    if write_dataset is not None:
        try:
            write_dataset(out, patients, seed=seed, workers=workers, years=years)
            return f"synthetic.write_dataset (workers={workers}, years={years})"
        except Exception as exc:  # noqa: BLE001 - the generator is still being built; say why
            print(
                f"synthetic.write_dataset failed ({type(exc).__name__}: {exc}); using the built-in writer"
            )
            for p in out.iterdir():
                p.unlink()
    write_generated_like(out, patients, seed)
    return "built-in generated-like writer"


class PeakRss:
    """Sample this process's RSS every 20 ms while a block runs."""

    def __init__(self) -> None:
        self.proc = psutil.Process(os.getpid())
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, int, Any]:
    best = float("inf")
    peak = 0
    result = None
    for _ in range(repeat):
        with PeakRss() as rss:
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        peak = max(peak, rss.peak)
    return best, peak, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--patients", type=int, default=100_000, help="patients to generate (~10 Observations each)"
    )
    parser.add_argument("--data", type=Path, help="use this NDJSON directory instead of generating")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="generator processes"
    )
    parser.add_argument(
        "--years", type=int, default=1, help="years of history per generated patient"
    )
    parser.add_argument(
        "--builtin", action="store_true", help="use the built-in generated-like writer"
    )
    parser.add_argument("--repeat", type=int, default=5, help="best of N interleaved runs")
    parser.add_argument(
        "--python",
        type=int,
        default=0,
        metavar="N",
        help="also time the Python reference evaluator on N resources",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ehr-bench-") as tmp:
        data = args.data
        if data is None:
            data = Path(tmp)
            start = time.perf_counter()
            if args.builtin:
                write_generated_like(data, args.patients, args.seed)
                how = "built-in generated-like writer"
            else:
                how = generate(data, args.patients, args.seed, args.workers, args.years)
            print(
                f"generated {args.patients} patients with {how} in {time.perf_counter() - start:.1f}s"
            )
        source = ResourceSource.from_any(data)
        print(f"duckdb {duckdb.__version__}, {os.cpu_count()} CPUs, data {data}")
        header = (
            f"{'view':22} {'rows':>9} {'engine s':>9} {'rows/s':>11} {'hand s':>8} {'hand rows/s':>12} "
            f"{'ratio':>6} {'batched s':>9} {'ratio':>6} {'peak RSS MB':>11}"
        )
        print(header)
        print("-" * len(header))
        worst = worst_batched = 0.0
        for name, view in VIEWS.items():
            files = (
                "["
                + ", ".join(
                    "'" + str(p).replace("'", "''") + "'"
                    for p in source.files_for(view["resource"])
                )
                + "]"
            )

            def engine(view: dict[str, Any] = view) -> Any:
                return run_arrow(view, source, engine="duckdb")

            def hand(
                name: str = name, files: str = files, queries: dict[str, str] = HAND_SQL
            ) -> Any:
                con = duckdb.connect()
                try:
                    return con.sql(queries[name].format(files=files)).to_arrow_table()
                finally:
                    con.close()

            # Interleave the runs so cache warmth and machine load affect all alike.
            engine_s = hand_s = batched_s = float("inf")
            engine_rss = 0
            for _ in range(args.repeat):
                t, rss, table = timed(engine, 1)
                engine_s, engine_rss = min(engine_s, t), max(engine_rss, rss)
                t, _, hand_table = timed(hand, 1)
                hand_s = min(hand_s, t)
                t, _, batched_table = timed(lambda hand=hand: hand(queries=HAND_SQL_BATCHED), 1)
                batched_s = min(batched_s, t)
            if batched_table.num_rows != hand_table.num_rows:
                print(f"  warning: {name}: the two hand-written queries disagree on the row count")
            if hand_table.num_rows != table.num_rows:
                print(
                    f"  warning: {name}: hand-written SQL gave {hand_table.num_rows} rows, the view {table.num_rows}"
                )
            ratio = engine_s / hand_s
            batched_ratio = engine_s / batched_s
            worst = max(worst, ratio)
            worst_batched = max(worst_batched, batched_ratio)
            print(
                f"{name:22} {table.num_rows:>9} {engine_s:>9.3f} {table.num_rows / engine_s:>11,.0f} "
                f"{hand_s:>8.3f} {hand_table.num_rows / hand_s:>12,.0f} {ratio:>6.2f} "
                f"{batched_s:>9.3f} {batched_ratio:>6.2f} {engine_rss / 2**20:>11.0f}"
            )
            if args.python:
                plan = compile_view(view)
                sample = []
                for r in source.resources(view["resource"]):
                    sample.append(r)
                    if len(sample) >= args.python:
                        break
                start = time.perf_counter()
                n = sum(1 for _ in iter_rows(plan, sample))
                py_s = time.perf_counter() - start
                print(
                    f"  python reference on {len(sample)} resources: {n / py_s:,.0f} rows/s (parsing excluded)"
                )
        print(f"worst ratio to hand-written SQL: {worst:.2f} (target <= 1.5)")
        print(f"worst ratio to batched hand-written SQL: {worst_batched:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
