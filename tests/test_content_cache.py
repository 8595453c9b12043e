"""The content cache: facts derived from the shipped content are kept on disk, re-derived when
the content or the deriving code changes, never served from a damaged entry, and a fresh
process starts an exercise without loading the content's models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ehr_sandbox import content_cache
from ehr_sandbox.access.labels import compile_content_rules, content_rules
from ehr_sandbox.validation.content_adapter import shipped_lookup_facts
from ehr_sandbox.validation.vitals import content_vital_limits

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EHR_SANDBOX_CACHE", str(tmp_path))
    monkeypatch.setattr(content_cache, "_MEMO", {})
    return tmp_path


def test_a_fact_is_derived_once_and_then_read_from_disk(cache) -> None:
    calls: list[int] = []

    def fact() -> dict:
        calls.append(1)
        return {"codes": ["a", "b"]}

    assert content_cache.derived("t-fact", fact) == {"codes": ["a", "b"]}
    content_cache._MEMO.clear()  # a new process: only the file remains
    assert content_cache.derived("t-fact", fact) == {"codes": ["a", "b"]}
    assert len(calls) == 1
    assert len(list(cache.glob("content-t-fact-*.json"))) == 1


def test_changed_content_is_never_answered_from_a_stale_entry(cache, monkeypatch) -> None:
    values = iter([["old"], ["new"]])
    content_cache.derived("t-stale", lambda: next(values))
    content_cache._MEMO.clear()
    monkeypatch.setattr(content_cache, "content_fingerprint", lambda: "f" * 24)
    assert content_cache.derived("t-stale", lambda: next(values)) == ["new"]


def test_a_damaged_entry_is_derived_again(cache) -> None:
    content_cache.derived("t-damaged", lambda: [1, 2, 3])
    (entry,) = cache.glob("content-t-damaged-*.json")
    entry.write_text('{"value": [1, 2', encoding="utf-8")
    content_cache._MEMO.clear()
    assert content_cache.derived("t-damaged", lambda: [1, 2, 3]) == [1, 2, 3]
    assert json.loads(entry.read_text(encoding="utf-8")) == {"value": [1, 2, 3]}


def test_an_error_while_deriving_is_raised_and_not_cached(cache) -> None:
    def broken() -> list:
        raise RuntimeError("content did not load")

    with pytest.raises(RuntimeError, match="content did not load"):
        content_cache.derived("t-error", broken)
    assert not list(cache.glob("content-t-error-*"))
    assert content_cache.derived("t-error", lambda: [7]) == [7]


def test_caching_off_derives_in_the_process(monkeypatch) -> None:
    monkeypatch.setenv("EHR_SANDBOX_CACHE", "off")
    monkeypatch.setattr(content_cache, "_MEMO", {})
    assert content_cache.derived("t-off", lambda: {"x": 1}) == {"x": 1}


def test_the_fingerprint_covers_the_bytes_of_every_content_file() -> None:
    found = content_cache._content_files()
    assert found is not None
    root, files = found
    names = {p.relative_to(root).as_posix() for p in files}
    assert "data/sensitivity.toml" in names and "loader.py" in names


def test_cached_facts_equal_the_facts_from_the_loaded_content(cache) -> None:
    # What the cache serves is what the content says (after the JSON round trip).
    content_rules.cache_clear()
    try:
        rows = content_cache.derived("label-rules", compile_content_rules)
        assert rows == json.loads(json.dumps(compile_content_rules()))
        assert [
            [r.system, r.code, r.match, list(r.sensitivity), r.confidentiality]
            for r in content_rules()
        ] == rows
    finally:
        content_rules.cache_clear()
    facts = content_cache.derived("validation-lookups", shipped_lookup_facts)
    assert facts == json.loads(json.dumps(shipped_lookup_facts()))
    limits = content_cache.derived("vital-limits", content_vital_limits)
    assert {k: tuple(v) for k, v in limits.items()} == content_vital_limits()


START = """
import sys
from ehr_sandbox import exercises
att = exercises.start("records/correction", student="alice")
print(att.exercise.id, "synthetic.content.models" in sys.modules)
"""


def test_a_fresh_process_starts_an_exercise_without_loading_the_content(tmp_path) -> None:
    env = {**os.environ, "EHR_SANDBOX_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT)}

    def run() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", START], capture_output=True, text=True, cwd=ROOT, env=env
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()

    first = run()  # builds the clinic and the content facts
    second = run()
    assert first[0] == second[0] == "records/correction"
    assert second[1] == "False", "the second process loaded the content models"
