"""Parallel generation: workers write part files, the parent concatenates them in order."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import synthetic
from synthetic.runners import PartitionSpec, iter_partitions, run_partition, split


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_spilled_partition_holds_the_same_bytes_as_an_in_memory_one(tmp_path: Path) -> None:
    spec = PartitionSpec(3, "2026-01-01", 2, "family-practice", 4, 9)
    memory = run_partition(spec)
    spilled = run_partition(replace(spec, spill_dir=str(tmp_path)))
    assert memory.chunks and not spilled.chunks
    assert {t: Path(p).read_bytes() for t, p in spilled.spilled.items()} == memory.chunks
    assert spilled.counts == memory.counts


def test_pool_results_carry_paths_and_the_parts_folder_is_removed(tmp_path: Path) -> None:
    base = PartitionSpec(3, "2026-01-01", 1, "family-practice", 0, 6)
    specs = [replace(base, start=a, stop=b) for a, b in split(0, 6, 2)]
    seen = []
    for res in iter_partitions(specs, workers=2, spill_dir=tmp_path):
        assert res.spilled and not res.chunks
        seen.append(res.start)
        assert all(Path(p).is_file() for p in res.spilled.values())
    assert seen == [0, 2, 4]  # in the order given
    assert list(tmp_path.iterdir()) == []


def test_two_workers_with_defects_write_the_same_bytes(tmp_path: Path) -> None:
    for w in (1, 2):
        synthetic.write_dataset(
            tmp_path / f"w{w}",
            9,
            seed=4,
            years=2,
            workers=w,
            partition_size=3,
            defects={"missing_data": 0.3, "duplicate_patients": 0.3},
        )
    one, two = _tree(tmp_path / "w1"), _tree(tmp_path / "w2")
    assert one == two and "defects-manifest.jsonl" in one


def test_the_fhir_model_names_list_matches_the_installed_models() -> None:
    from fhir.resources.R4B import fhirtypes
    from fhir_core.types import FhirBase

    from synthetic.fhir import is_resource_type
    from synthetic.fhir_names import MODEL_NAMES

    live = {
        n[:-4]
        for n in dir(fhirtypes)
        if n.endswith("Type")
        and isinstance(getattr(fhirtypes, n), type)
        and issubclass(getattr(fhirtypes, n), FhirBase)
    }
    assert live == MODEL_NAMES
    assert is_resource_type("Observation") and not is_resource_type("String")
