"""What a free text states: the facts a note or a reason carries in words (a clock time, a
number named by a cue such as "target", a count of a unit such as "6 weeks"), read tolerant of
how people write them, and the check that a text states the variant's value and no rival.

A fact that reaches the record only through free text (the time of a phone call a late entry
is about, a patient's target pressure, the goals of a plan of care) is graded here: the text
must state this patient's value, in any usual form, and must not state another value the
same fact takes (another variant's answer, or a list of candidates hoping one is right).
Feedback names the fact, never its value (docs/exercises.md, "What feedback may say").

>>> sorted(clock_times("Called 2:05 PM; charted at 09:10"))
[(9, 10), (14, 5)]
>>> numbers_after("IOP above 17 mmHg: right 23 mmHg", ("target", "above"))
[17.0]
>>> check_stated({(14, 5)}, (14, 5), name="the time of the call", what="the note").passed
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import TypeVar

from ehr_sandbox.exercises.model import Check

__all__ = ["check_stated", "clock_times", "counts_of", "dates_in", "numbers_after"]

T = TypeVar("T")

_SUFFIX = r"(?:\s*(?P<ampm>[ap])\.?\s?m\b\.?)?"
_CLOCK = re.compile(
    r"(?<![\d:.+\-])(?P<h>\d{1,2})(?::|h|\.(?=\d\d\b))(?P<m>\d{2})(?::\d{2}(?:\.\d+)?)?(?!\d)"
    + _SUFFIX,
    re.IGNORECASE,
)
_HOUR_ONLY = re.compile(r"(?<![\d:.])(?P<h>\d{1,2})\s*(?P<ampm>[ap])\.?\s?m\b\.?", re.IGNORECASE)
_MILITARY = re.compile(
    r"(?<![\d:.\-])(?P<h>[01]\d|2[0-3])(?P<m>[0-5]\d)\s*(?:h|hrs|hours)\b", re.IGNORECASE
)


def _to_24h(hour: int, minute: int, ampm: str | None) -> tuple[int, int] | None:
    if minute > 59:
        return None
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm.lower() == "p" else 0)
    elif hour > 23:
        return None
    return hour, minute


def clock_times(text: str | None) -> set[tuple[int, int]]:
    """The clock times a text states, as (hour, minute) on a 24-hour clock: ``14:05``,
    ``14.05``, ``14h05``, ``2:05 PM``, ``2:05pm``, ``2:05 p.m.``, ``2 PM``, ``1405 hours``, and
    the time of an ISO instant (``2025-12-31T14:05:00+00:00``; its zone offset is not a time).

    Examples
    --------
    >>> sorted(clock_times("phoned at 2:05 p.m., again 14h30; 1405 hrs; 3 PM"))
    [(14, 5), (14, 30), (15, 0)]
    >>> sorted(clock_times("event 2025-12-31T14:05:00+00:00 (12:00 AM)"))
    [(0, 0), (14, 5)]
    >>> clock_times("BP 148/88, weight 72.5 kg, 25:70, 13:05 PM") == set()
    True
    """
    if not isinstance(text, str):
        return set()
    found: set[tuple[int, int] | None] = set()
    for m in _CLOCK.finditer(text):
        found.add(_to_24h(int(m["h"]), int(m["m"]), m["ampm"]))
    for m in _HOUR_ONLY.finditer(text):
        found.add(_to_24h(int(m["h"]), 0, m["ampm"]))
    for m in _MILITARY.finditer(text):
        found.add(_to_24h(int(m["h"]), int(m["m"]), None))
    return {t for t in found if t is not None}


_CLAUSE = re.compile(r"[;,\n()\[\]]|\.(?!\d)|\s[-\u2013\u2014]\s")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+")
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ]
    )
}


def _number(token: str) -> float | None:
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    try:
        return float(token)
    except ValueError:
        return None


def numbers_after(text: str | None, cues: Iterable[str], *, window: int = 4) -> list[float]:
    """The numbers a text names by a cue word: for each cue (one word, e.g. ``target``), the
    first number within ``window`` words after it in the same clause.

    Examples
    --------
    >>> numbers_after("IOP right eye 23 mmHg, above target of 17 mmHg", ("target", "above"))
    [17.0]
    >>> numbers_after("Target IOP: 16 mmHg. Above target. Left 15 mmHg", ("target", "above"))
    [16.0]
    >>> numbers_after("IOP 24 (target pressure is 17.5)", ("target",))
    [17.5]
    """
    if not isinstance(text, str):
        return []
    wanted = {c.lower() for c in cues}
    out = []
    for clause in _CLAUSE.split(text.lower()):
        tokens = _TOKEN.findall(clause)
        named: set[int] = set()  # a number two cues point at is stated once
        for i, tok in enumerate(tokens):
            if tok not in wanted:
                continue
            for j in range(i + 1, min(i + 1 + window, len(tokens))):
                if tokens[j] in wanted:
                    continue
                value = _number(tokens[j]) if tokens[j] not in _NUMBER_WORDS else None
                if value is not None:
                    if j not in named:
                        named.add(j)
                        out.append(value)
                    break
    return out


def counts_of(text: str | None, units: Iterable[str]) -> list[float]:
    """The counts of a unit a text states: ``6 weeks``, ``six weeks``, ``6-week``, ``6 wks``
    (``units`` gives the unit's words, singular and plural and abbreviations).

    Examples
    --------
    >>> counts_of("restore motion within six weeks; re-check in 2-week steps", ("week", "weeks"))
    [6.0, 2.0]
    >>> counts_of("at 6 wks", ("week", "weeks", "wk", "wks"))
    [6.0]
    """
    if not isinstance(text, str):
        return []
    names = "|".join(sorted((re.escape(u) for u in units), key=len, reverse=True))
    number = r"\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS)
    pattern = re.compile(rf"\b({number})\s*-?\s*(?:{names})\b", re.IGNORECASE)
    return [v for m in pattern.finditer(text) if (v := _number(m[1].lower())) is not None]


_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_US_DATE = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/])")
_MONTH_FIRST = re.compile(r"\b([a-z]{3})[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I)
_DAY_FIRST = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]{3})[a-z]*\.?,?\s+(\d{4})\b", re.I)


def _date(year: str, month: str | int, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def dates_in(text: str | None) -> set[date]:
    """The calendar dates a text states: ``2025-06-16`` (and the date of an ISO instant),
    ``06/16/2025`` (US order), ``June 16, 2025``, ``Jun 16 2025``, ``16 June 2025``.

    Examples
    --------
    >>> sorted(d.isoformat() for d in dates_in("LMP 6/16/2025; EDD March 23rd, 2026; seen 2026-01-01T09:00:00Z"))
    ['2025-06-16', '2026-01-01', '2026-03-23']
    >>> dates_in("16 June 2025") == dates_in("2025-06-16"), dates_in("BP 148/88, 2025-13-40")
    (True, set())
    """
    if not isinstance(text, str):
        return set()
    found = [_date(y, m, d) for y, m, d in _ISO_DATE.findall(text)]
    found += [_date(y, m, d) for m, d, y in _US_DATE.findall(text)]
    found += [
        _date(y, _MONTHS[m.lower()], d)
        for m, d, y in _MONTH_FIRST.findall(text)
        if m.lower() in _MONTHS
    ]
    found += [
        _date(y, _MONTHS[m.lower()], d)
        for d, m, y in _DAY_FIRST.findall(text)
        if m.lower() in _MONTHS
    ]
    return {d for d in found if d is not None}


def check_stated(
    stated: Iterable[T],
    value: T,
    *,
    name: str,
    what: str,
    rivals: Iterable[T] = (),
    advice: str = "",
) -> Check:
    """Whether a text states ``value`` (among the values ``stated`` read from it) and none of
    ``rivals`` (the other values the same fact takes: another variant's answer, a guess).

    Feedback names the fact (``name``) and the text (``what``), never a value.

    Examples
    --------
    >>> ok = check_stated([17.0, 21.0], 17.0, name="the target pressure", what="the task",
    ...                   rivals=[15.0, 16.0, 18.0])
    >>> ok.passed, ok.expected
    (True, 'the task states the target pressure')
    >>> c = check_stated([16.0], 17.0, name="the target pressure", what="the task", rivals=[16.0])
    >>> c.passed, c.found
    (False, "the task states a target pressure that is not this patient's")
    >>> check_stated([16.0, 17.0], 17.0, name="the target pressure", what="the task",
    ...              rivals=[16.0]).found
    "the task states the target pressure and another that is not this patient's"
    >>> check_stated([], 17.0, name="the target pressure", what="the task").found
    'the task does not state the target pressure'
    """
    said = set(stated)
    others = said & (set(rivals) - {value})
    expected = f"{what} states {name}"
    advice = advice or f"state {name} as the record gives it for this patient"
    bare = name.removeprefix("the ")
    if value in said and not others:
        return Check(True, f"{what} states {name}", expected)
    if value in said:
        found = f"{what} states {name} and another that is not this patient's"
    elif others:
        found = f"{what} states a {bare} that is not this patient's"
    else:
        found = f"{what} does not state {name}"
    return Check(False, found, expected, advice)
