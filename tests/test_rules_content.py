"""rules.toml is validated on load: every id and code it names must exist elsewhere in the content."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from synthetic.content import DEFAULT_ROOT, load_content
from synthetic.errors import ContentError


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(DEFAULT_ROOT, root)
    return root


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('cvx = "187"', 'cvx = "999"', "vaccine_product"),
        ('panel = "inr"', 'panel = "nope"', "monitoring"),
        ('allergy = "penicillin"', 'allergy = "pollen-x"', "allergy_class"),
        ('first = "Z34.81"', 'first = "Z99.99"', "trimester_code"),
    ],
)
def test_a_wrong_reference_in_rules_names_the_file_and_key(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    root = _copy(tmp_path)
    rules = root / "rules.toml"
    text = rules.read_text(encoding="utf-8")
    assert old in text
    rules.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ContentError) as err:
        load_content(root)
    assert "rules.toml" in str(err.value) and key in str(err.value)


def test_shipped_rules_load_with_sources() -> None:
    r = load_content().rules
    assert r.vaccine_product and all(p.source for p in r.vaccine_product)
    assert all(m.source for m in r.monitoring) and r.engine.source
