"""Real-world data: resources of the Synthea R4 sample pass the import-mode write check."""

from __future__ import annotations

import json
from typing import Any

from ehr_sandbox.validation import problems
from tests.conftest import shared_path


def _resolve(node: Any, urls: dict[str, str]) -> None:
    """Replace bundle-local urn:uuid references by relative ones, as the importer does."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in urls:
            node["reference"] = urls[ref]
        for value in node.values():
            _resolve(value, urls)
    elif isinstance(node, list):
        for value in node:
            _resolve(value, urls)


def test_synthea_sample_passes_import_mode_checks() -> None:
    folder = shared_path("data", "synthea-r4-sample")
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_size)[:4]
    checked = 0
    found: list[str] = []
    for path in files:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        entries = bundle["entry"]
        urls = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries
        }
        stored = set(urls.values())
        for entry in entries:
            resource = entry["resource"]
            _resolve(resource, urls)
            for p in problems(resource, exists=stored.__contains__, strict=False):
                found.append(
                    f"{path.name}: {resource['resourceType']}/{resource['id']}: {p.path}: {p.expected}"
                )
            checked += 1
    assert checked > 200
    assert found == []
