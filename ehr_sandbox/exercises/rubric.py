"""Rubrics for free text: reasons, replies and justifications must contain required elements.

A keyword is not a reason. :func:`check_text` checks that a text is meaningful (enough real
words, not filler such as "fix" or "error") and that it contains each required element, given
as alternatives built from the variant's facts (the right value, the patient, the grounds of a
denial, the right to disagree). Forbidden elements (a reply that says "denied" for an accepted
amendment) fail it. Feedback names the missing element, never its value.

>>> check_text("fix", {"the right value": ["138"]}, what="the reason").passed
False
>>> check_text("BP 183/84 was a keying error; the reading taken was 138/84",
...            {"what was wrong": ["keying error", "typo", "transposed"], "the right value": ["138"]},
...            what="the reason").passed
True
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from ehr_sandbox.exercises.model import Check

__all__ = ["FILLER", "check_text", "meaningful", "mentions", "normalize"]

FILLER = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "at",
        "by",
        "with",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "these",
        "those",
        "fix",
        "fixed",
        "fixing",
        "error",
        "errors",
        "err",
        "update",
        "updated",
        "updating",
        "change",
        "changed",
        "changes",
        "edit",
        "edited",
        "correct",
        "corrected",
        "correction",
        "wrong",
        "mistake",
        "oops",
        "na",
        "n/a",
        "none",
        "see",
        "above",
        "below",
        "per",
        "done",
        "ok",
        "okay",
        "yes",
        "no",
        "note",
        "notes",
        "entry",
        "record",
        "chart",
        "data",
        "value",
        "values",
        "reason",
        "reasons",
        "because",
        "test",
        "asdf",
    ]
)
"""Words that carry no reason on their own."""

_WORD = re.compile(r"\d+(?:\.\d+)?|[a-z]+")


def normalize(text: str) -> str:
    """Lower case, accents and punctuation folded to spaces, numbers as written.

    >>> normalize("Ruíz, Ana — MRN: 0042! BP 138/84, 98.6")
    'ruiz ana mrn 0042 bp 138 84 98.6'
    """
    folded = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return " ".join(_WORD.findall(folded.lower()))


def _number_forms(term: str) -> set[str]:
    try:
        value = float(term)
    except ValueError:
        return set()
    forms = {term, f"{value:g}"}
    if value == int(value):
        forms.add(str(int(value)))
    return forms


def mentions(text: str, term: str) -> bool:
    """True when ``text`` contains ``term`` as whole words (numbers compare as numbers).

    >>> mentions("reading was 138.0 mmHg", "138"), mentions("1380 steps", "138")
    (True, False)
    >>> mentions("Spoke with Ana Ruiz", "ana  ruiz"), mentions("Spoke with Anastasia", "ana")
    (True, False)
    """
    hay = f" {normalize(text)} "
    needle = normalize(term)
    if not needle:
        return False
    if f" {needle} " in hay:
        return True
    numbers = _number_forms(needle)
    if numbers:
        words = hay.split()
        return any(w in numbers or _number_forms(w) & numbers for w in words)
    return False


def meaningful(text: str | None, *, min_words: int = 4) -> bool:
    """True when the text has at least ``min_words`` words that are not filler.

    >>> meaningful("fix"), meaningful("error - see above"), meaningful("Charted on the wrong patient Ana Ruiz")
    (False, False, True)
    """
    if not isinstance(text, str):
        return False
    words = [w for w in normalize(text).split() if w not in FILLER and len(w) > 1 or w.isdigit()]
    return len(words) >= min_words - 1 and len(normalize(text).split()) >= min_words


def check_text(
    text: str | None,
    required: Mapping[str, Iterable[str]],
    *,
    forbidden: Mapping[str, Iterable[str]] | None = None,
    what: str = "the text",
    min_words: int = 4,
) -> Check:
    """Check free text against a rubric.

    ``required`` maps an element's name (shown in feedback) to alternatives, any one of which
    satisfies it; ``forbidden`` maps an element's name to phrases that must not appear.
    Returns a :class:`~ehr_sandbox.exercises.model.Check` whose ``expected`` names the
    elements (never their values).

    >>> c = check_text("Denied: the physician finds the note accurate and complete", {"the grounds": ["accurate"]},
    ...                forbidden={"a denial": ["denied"]}, what="the reply")
    >>> c.passed, c.found
    (False, 'the reply says a denial, which it must not')
    """
    elements = list(required)
    expected = f"{what} with: {', '.join(elements)}" if elements else f"a meaningful {what}"
    if not isinstance(text, str) or not text.strip():
        return Check(False, f"no {what}", expected, "write what happened and why, in full")
    if not meaningful(text, min_words=min_words):
        return Check(
            False,
            f"{what} {text.strip()[:60]!r} is too short or meaningless",
            expected,
            "a reason says what was wrong and what is right, in words another reader understands",
        )
    for name, phrases in (forbidden or {}).items():
        if any(mentions(text, p) for p in phrases if p):
            return Check(False, f"{what} says {name}, which it must not", expected)
    missing = [
        name for name, alts in required.items() if not any(mentions(text, a) for a in alts if a)
    ]
    if missing:
        return Check(
            False,
            f"{what} does not say {', '.join(missing)}",
            expected,
            "name each required element explicitly",
        )
    return Check(True, f"{what} covers {', '.join(elements) or 'the task'}", expected)
