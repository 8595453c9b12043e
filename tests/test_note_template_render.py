"""A visit note's template renders exactly as ``str.format_map`` renders it.

``synthetic.engine.render_template`` splits a template of plain ``{name}`` placeholders once
and joins its parts instead of parsing it on every note. The rule, for any template text and
any fields: the result is ``template.format_map(fields)``, the template as written when that
raises a format error (positional field, bad attribute or index, stray brace), and any other
error of ``format_map`` (a ``KeyError`` when a plain mapping lacks a name, a ``TypeError``
when a value cannot be indexed) raised the same; rendering again (from the split) changes
nothing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from synthetic.engine import render_template

NAMES = ["age", "sex", "systolic", "bmi", "control", "x"]
PIECES = hs.one_of(
    hs.sampled_from([f"{{{n}}}" for n in NAMES]),
    hs.sampled_from(["{", "}", "{{", "}}", "{0}", "{}", "{x.real}", "{x[0]}", "{x!r}", "{x:>4}"]),
    hs.sampled_from(["{bmi:.1f}", "{ age}", "{x!}", ":", "!", ".", "[", "]"]),
    hs.text(alphabet="abc é-/%\n", max_size=6),
)
TEMPLATES = hs.lists(PIECES, max_size=12).map("".join)
VALUES = hs.one_of(hs.text(max_size=5), hs.integers(-999, 999), hs.floats(allow_nan=False))


class _Fields(dict):  # type: ignore[type-arg]
    """Like the note's fields: an unknown placeholder renders as empty text."""

    def __missing__(self, key: str) -> str:
        return ""


def _reference(template: str, fields: Any) -> str:
    try:
        return template.format_map(fields)
    except (ValueError, IndexError, AttributeError):
        return template


def _outcome(render: Any, template: str, fields: Any) -> tuple[str, Any]:
    """("text", the text) or ("error", its type and arguments)."""
    try:
        return "text", render(template, fields)
    except Exception as e:  # noqa: BLE001 - the error itself is the outcome compared
        return "error", (type(e), e.args)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(template=TEMPLATES, values=hs.dictionaries(hs.sampled_from(NAMES), VALUES))
def test_render_is_format_map_or_the_template_first_time_and_every_time(
    template: str, values: dict[str, Any]
) -> None:
    fields = _Fields(values)
    expected = _outcome(_reference, template, fields)
    assert _outcome(render_template, template, fields) == expected
    assert _outcome(render_template, template, fields) == expected  # from the cached split


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(template=TEMPLATES, values=hs.dictionaries(hs.sampled_from(NAMES), VALUES))
def test_a_missing_name_in_a_plain_mapping_raises_as_format_map_does(
    template: str, values: dict[str, Any]
) -> None:
    expected = _outcome(_reference, template, values)
    assert _outcome(render_template, template, values) == expected
