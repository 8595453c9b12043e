"""The sandbox clock: deterministic time that starts on the reference date.

Real EHRs stamp every write with the time; a teaching sandbox must also be reproducible, so its
clock starts at a fixed instant on the reference date and moves forward one second per reading
(or as far as an exercise advances it). Wall-clock time is never read.

>>> c = SandboxClock.starting("2026-01-05")
>>> c.now().isoformat(), c.now().isoformat()
('2026-01-05T08:00:00+00:00', '2026-01-05T08:00:01+00:00')
>>> c.advance(days=1); c.now().date().isoformat()
'2026-01-06'
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


class SandboxClock:
    """A monotonic, deterministic clock; ``ticks`` seconds after ``start``.

    Every sandbox owns one (``Sandbox.clock``); sessions stamp writes and audit events with
    it, so the same script gives the same times on every run.

    Parameters
    ----------
    start : datetime
        The first instant (timezone-aware).
    ticks : int, default 0
        Seconds already elapsed since ``start``.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> c = SandboxClock(datetime(2026, 1, 5, 8, tzinfo=UTC), ticks=90)
    >>> c.peek().isoformat()
    '2026-01-05T08:01:30+00:00'
    """

    def __init__(self, start: datetime, ticks: int = 0) -> None:
        self.start = start
        self.ticks = ticks

    @classmethod
    def starting(cls, reference_date: date | str, *, hour: int = 8) -> SandboxClock:
        """A clock at ``hour``:00 UTC on ``reference_date``.

        Parameters
        ----------
        reference_date : date or str
            The day (a ``date`` or an ISO ``YYYY-MM-DD`` string).
        hour : int, default 8
            The hour of day (UTC) the clock starts at.

        Returns
        -------
        SandboxClock
            A clock with no ticks yet.

        Raises
        ------
        ValueError
            ``reference_date`` is a string that is not an ISO date.

        Examples
        --------
        >>> SandboxClock.starting("2026-03-02", hour=13).peek().isoformat()
        '2026-03-02T13:00:00+00:00'
        """
        d = (
            date.fromisoformat(reference_date)
            if isinstance(reference_date, str)
            else reference_date
        )
        return cls(datetime(d.year, d.month, d.day, hour, tzinfo=UTC))

    def now(self) -> datetime:
        """The current sandbox instant; each call moves the clock one second on.

        Returns
        -------
        datetime
            The instant (UTC); never the same twice, always later than the last.

        Examples
        --------
        >>> c = SandboxClock.starting("2026-01-05")
        >>> first, second = c.now(), c.now()
        >>> (second - first).total_seconds(), c.ticks
        (1.0, 2)
        """
        t = self.start + timedelta(seconds=self.ticks)
        self.ticks += 1
        return t

    def peek(self) -> datetime:
        """The current instant without moving the clock.

        >>> SandboxClock.starting("2026-01-05").peek().hour
        8
        """
        return self.start + timedelta(seconds=self.ticks)

    def advance(self, *, days: float = 0, hours: float = 0, minutes: float = 0) -> None:
        """Move the clock forward (exercises use this: 'sixty days later...').

        Parameters
        ----------
        days, hours, minutes : float, default 0
            How far to move; they add up. Fractions of a second are dropped.

        Raises
        ------
        ValueError
            The total is negative: the sandbox clock only moves forward.

        Examples
        --------
        >>> c = SandboxClock.starting("2026-01-05")
        >>> c.advance(days=60, hours=1.5); c.peek().isoformat()
        '2026-03-06T09:30:00+00:00'
        >>> c.advance(minutes=-1)
        Traceback (most recent call last):
        ...
        ValueError: the sandbox clock only moves forward
        """
        delta = timedelta(days=days, hours=hours, minutes=minutes)
        if delta < timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        self.ticks += int(delta.total_seconds())


def instant(dt: datetime) -> str:
    """FHIR instant text for ``dt`` (seconds precision, explicit offset).

    >>> instant(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    '2026-01-05T08:00:00+00:00'
    """
    return dt.replace(microsecond=0).isoformat()
