"""Request limits of the server: body size, JSON depth and a token-bucket rate limiter.

>>> check_depth({"a": [{"b": 1}]}, 3)
>>> check_depth({"a": [{"b": [1]}]}, 3)
Traceback (most recent call last):
...
ehr_sandbox.errors.ValidationError: request: body: expected JSON nested at most 3 levels deep
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from ehr_sandbox.errors import ValidationError

MAX_BODY_BYTES = 2_000_000
"""Largest request body the server reads (a transaction of a few hundred resources)."""

MAX_JSON_DEPTH = 40
"""Deepest JSON nesting accepted (FHIR resources are far shallower)."""


class BodyTooLarge(ValidationError):
    """The request body exceeds :data:`MAX_BODY_BYTES` (HTTP 413).

    >>> BodyTooLarge.http_status, BodyTooLarge.issue_code
    (413, 'too-long')
    """

    http_status = 413
    issue_code = "too-long"


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit`` (iteratively: no recursion to exhaust).

    Parameters
    ----------
    value : Any
        Decoded JSON.
    limit : int
        Maximum depth.

    Raises
    ------
    ValidationError
        Too deep.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth + 1 > limit:
                raise ValidationError("request", "body", f"JSON nested at most {limit} levels deep")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1) for c in children)


def parse_json(body: bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """Decode a JSON request body with the size and depth limits.

    Examples
    --------
    >>> parse_json(b'{"resourceType": "Patient"}')
    {'resourceType': 'Patient'}
    >>> parse_json(b"[" * 5000 + b"]" * 5000)
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: request: body: expected JSON nested at most 40 levels deep
    >>> parse_json(b"{not json")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: request: body: expected a JSON document (found 'Expecting property name enclosed in double quotes')
    """
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge("request", "body", f"at most {MAX_BODY_BYTES} bytes", found=len(body))
    opens = body.count(b"[") + body.count(b"{")
    if opens > limit and _max_bracket_depth(body) > limit:
        raise ValidationError("request", "body", f"JSON nested at most {limit} levels deep")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "unreadable JSON"
        raise ValidationError("request", "body", "a JSON document", found=msg) from None
    check_depth(value, limit)
    return value


def _max_bracket_depth(body: bytes) -> int:
    """Nesting depth of brackets outside strings (a cheap pre-check before decoding)."""
    depth = best = 0
    in_string = escaped = False
    for ch in body:
        if in_string:
            if escaped:
                escaped = False
            elif ch == 0x5C:
                escaped = True
            elif ch == 0x22:
                in_string = False
        elif ch == 0x22:
            in_string = True
        elif ch in (0x5B, 0x7B):
            depth += 1
            best = max(best, depth)
        elif ch in (0x5D, 0x7D):
            depth -= 1
    return best


class RateLimiter:
    """A token bucket per key (client address): ``rate`` requests per ``per`` seconds.

    Examples
    --------
    >>> rl = RateLimiter(rate=2, per=60)
    >>> [rl.allow("a", now=0.0) for _ in range(3)]
    [True, True, False]
    >>> rl.allow("b", now=0.0)
    True
    """

    def __init__(self, rate: int, per: float) -> None:
        self.rate = rate
        self.per = per
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def exhausted(self, key: str, *, now: float | None = None) -> bool:
        """True when ``key``'s bucket is empty (nothing is taken).

        >>> rl = RateLimiter(rate=1, per=60)
        >>> rl.exhausted("a", now=0.0), rl.allow("a", now=0.0), rl.exhausted("a", now=0.0)
        (False, True, True)
        """
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.rate), t))
            return min(float(self.rate), tokens + (t - last) * self.rate / self.per) < 1

    def allow(self, key: str, *, now: float | None = None) -> bool:
        """Take one request from ``key``'s bucket; False when it is empty."""
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.rate), t))
            tokens = min(float(self.rate), tokens + (t - last) * self.rate / self.per)
            if tokens < 1:
                self._buckets[key] = (tokens, t)
                return False
            self._buckets[key] = (tokens - 1, t)
            return True

    def refund(self, key: str) -> None:
        """Give back one request taken with :meth:`allow` (it turned out not to count).

        >>> rl = RateLimiter(rate=1, per=60)
        >>> rl.allow("a", now=0.0), rl.allow("a", now=0.0)
        (True, False)
        >>> rl.refund("a"); rl.allow("a", now=0.0)
        True
        """
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.rate), 0.0))
            self._buckets[key] = (min(float(self.rate), tokens + 1), last)


class Slots:
    """At most ``size`` concurrent holders per key (others wait): bounds how many secret
    checks of one client address run at once, so a rate limit reserved per check stays exact.

    >>> slots = Slots(2)
    >>> with slots.hold("a"):
    ...     slots.active("a")
    1
    >>> slots.active("a")
    0
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._active: dict[str, int] = {}
        self._cond = threading.Condition()

    def active(self, key: str) -> int:
        """How many hold ``key`` now."""
        with self._cond:
            return self._active.get(key, 0)

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Wait for a free slot of ``key``; hold it for the ``with`` block."""
        with self._cond:
            self._cond.wait_for(lambda: self._active.get(key, 0) < self.size)
            self._active[key] = self._active.get(key, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                left = self._active[key] - 1
                if left:
                    self._active[key] = left
                else:
                    del self._active[key]
                self._cond.notify_all()
