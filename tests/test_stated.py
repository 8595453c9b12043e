"""What a free text states (``ehr_sandbox.exercises.stated``): a fact written in any usual form
is read as that fact, another value is not, and a text that states a rival fails the check
whatever else it states."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ehr_sandbox import exercises
from ehr_sandbox.exercises import stated
from ehr_sandbox.exercises.builtin.common import blood_pressure

times = st.tuples(st.integers(0, 23), st.integers(0, 59))


def _forms(hour: int, minute: int) -> list[str]:
    h12 = hour % 12 or 12
    ampm = "AM" if hour < 12 else "PM"
    out = [
        f"{hour:02d}:{minute:02d}",
        f"{hour}:{minute:02d}",
        f"{hour:02d}h{minute:02d}",
        f"{hour:02d}:{minute:02d}:00",
        f"{h12}:{minute:02d} {ampm}",
        f"{h12}:{minute:02d}{ampm.lower()}",
        f"{h12}:{minute:02d} {ampm[0].lower()}.m.",
        f"{hour:02d}{minute:02d} hrs",
        f"2025-12-31T{hour:02d}:{minute:02d}:00+00:00",
    ]
    if minute == 0:
        out.append(f"{h12} {ampm}")
    return out


@given(times)
def test_every_usual_form_of_a_time_is_read_as_that_time(t):
    for form in _forms(*t):
        text = f"Phone call on 2025-12-31 at {form}, BP 148/88 reported"
        assert stated.clock_times(text) == {t}, form


@given(times, times)
def test_a_text_stating_another_time_fails_and_one_stating_both_fails(own, other):
    if own == other:
        return
    rivals = [own, other]
    for form in _forms(*other):
        said = stated.clock_times(f"called at {form}")
        assert not stated.check_stated(said, own, name="t", what="w", rivals=rivals).passed
    both = stated.clock_times(f"called at {_forms(*own)[0]} or {_forms(*other)[4]}")
    assert not stated.check_stated(both, own, name="t", what="w", rivals=rivals).passed
    alone = stated.clock_times(f"called at {_forms(*own)[4]}")
    assert stated.check_stated(alone, own, name="t", what="w", rivals=rivals).passed


@given(st.integers(10, 30), st.integers(10, 30))
def test_a_cued_number_is_the_first_after_its_cue(target, measured):
    text = f"IOP right eye {measured} mmHg, above target of {target} mmHg"
    assert stated.numbers_after(text, ("target",)) == [float(target)]
    assert stated.numbers_after(
        f"IOP above {target} mmHg: right {measured}", ("above",), window=1
    ) == [float(target)]


@given(st.integers(1, 12))
def test_a_count_is_read_in_digits_and_words(n):
    words = [
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
    for form in (f"{n} weeks", f"{words[n]} weeks", f"{n}-week", f"{n} wks"):
        assert stated.counts_of(f"goals within {form}", ("week", "weeks", "wk", "wks")) == [
            float(n)
        ], form


def test_a_late_entry_giving_the_call_time_in_12_hour_form_scores_full_marks():
    """The late entry's words are read tolerant of format: the reference's reason and note with
    the call time written as '2:05 PM' score full marks; the same with another call time of
    the exercise does not (and the feedback names the fact, not the time)."""
    att = exercises.start("records/late-entry", "student-04")
    try:
        f = att.facts
        hour, minute = (int(x) for x in f["call_time"].split(":"))
        twelve = f"{hour % 12 or 12}:{minute:02d} {'PM' if hour >= 12 else 'AM'}"
        other = f"{hour % 12 + (1 if hour < 17 else -1)}:{minute:02d} PM"
        for said, full in ((twelve, True), (other, False)):
            att.reset()
            obs = blood_pressure(
                f"Patient/{f['patient_id']}", f["systolic"], f["diastolic"], f["event_time"]
            )
            obs["note"] = [{"text": f"Home reading reported by phone yesterday at {said}."}]
            att.session.late_entry(
                obs,
                event_time=f["event_time"],
                reason=f"Phone call of yesterday {said} was not charted at the time",
            )
            result = att.check()
            assert (result.score == att.exercise.max_score) is full, (said, result)
            if not full:
                text = " ".join(c.feedback for c in result.criteria)
                assert "the time of the call" in text and other not in text
    finally:
        att.sandbox.close()
