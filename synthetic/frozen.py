"""Frozen dicts and lists for the shared parts of generated resources.

The generator shares content between resources (one coding, reference, ``meta`` or amount
object used by many resources and by later records), so a caller who edited one of them in
place would silently change the others. Shared parts are frozen where they are cached: reading
is plain ``dict``/``list`` reading (C speed; ``orjson`` and ``json`` serialise them unchanged)
and any change raises :class:`~synthetic.errors.SharedContentError`, a ``TypeError``.
``copy.deepcopy`` (and ``copy.copy``) give plain, editable containers.

>>> import copy, json
>>> meta = freeze({"profile": ["http://example.org/p"]})
>>> meta["profile"][0], json.dumps(meta)
('http://example.org/p', '{"profile": ["http://example.org/p"]}')
>>> meta["security"] = []
Traceback (most recent call last):
...
synthetic.errors.SharedContentError: this part of a generated resource is shared content; copy it first (copy.deepcopy(resource))
>>> mine = copy.deepcopy(meta)
>>> mine["profile"].append("x"); type(mine), mine
(<class 'dict'>, {'profile': ['http://example.org/p', 'x']})
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from synthetic.errors import SharedContentError

MESSAGE = (
    "this part of a generated resource is shared content; copy it first (copy.deepcopy(resource))"
)


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise SharedContentError(MESSAGE)


class FrozenDict(dict):  # type: ignore[type-arg]
    """A ``dict`` whose contents cannot change (shared content of generated resources).

    >>> d = FrozenDict(system="http://loinc.org", code="8867-4")
    >>> d["code"], isinstance(d, dict), d == {"system": "http://loinc.org", "code": "8867-4"}
    ('8867-4', True, True)
    >>> d.setdefault("display", "Heart rate")
    Traceback (most recent call last):
    ...
    synthetic.errors.SharedContentError: this part of a generated resource is shared content; copy it first (copy.deepcopy(resource))
    """

    __slots__ = ()
    __setitem__ = __delitem__ = setdefault = update = pop = popitem = clear = _refuse
    __ior__ = _refuse

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return {k: copy.deepcopy(v, memo) for k, v in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list):  # type: ignore[type-arg]
    """A ``list`` whose contents cannot change (shared content of generated resources).

    >>> xs = FrozenList([1, 2])
    >>> xs[0], len(xs), xs == [1, 2], xs + [3]
    (1, 2, True, [1, 2, 3])
    >>> xs.append(3)
    Traceback (most recent call last):
    ...
    synthetic.errors.SharedContentError: this part of a generated resource is shared content; copy it first (copy.deepcopy(resource))
    """

    __slots__ = ()
    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = _refuse
    sort = reverse = __iadd__ = __imul__ = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(v, memo) for v in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


def freeze(value: Any) -> Any:
    """``value`` with every dict and list in it frozen (recursively; scalars as they are).

    Already frozen parts are reused, so freezing a structure that holds shared parts is cheap.
    A frozen dataclass instance (a compiled content definition) is frozen in place, field by
    field.

    >>> f = freeze({"coding": [{"code": "I10"}]})
    >>> type(f).__name__, type(f["coding"]).__name__, type(f["coding"][0]).__name__
    ('FrozenDict', 'FrozenList', 'FrozenDict')
    >>> freeze(f) is f
    True
    """
    t = type(value)
    if t is FrozenDict or t is FrozenList:
        return value
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList([freeze(v) for v in value])
    if t is tuple:
        return tuple(freeze(v) for v in value)
    params = getattr(value, "__dataclass_params__", None)
    if params is not None and params.frozen and not isinstance(value, type):
        for f in dataclasses.fields(value):
            object.__setattr__(value, f.name, freeze(getattr(value, f.name)))
    return value


F = TypeVar("F", bound=Callable[..., Any])


def frozen_cache(fn: F) -> F:
    """Like :func:`functools.cache`, with the result frozen (it is handed out many times).

    >>> @frozen_cache
    ... def race(code: str) -> dict:
    ...     return {"url": "race", "valueCode": code}
    >>> race("a") is race("a"), type(race("a")).__name__
    (True, 'FrozenDict')
    """

    @functools.cache
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return freeze(fn(*args, **kwargs))

    return wrapper  # type: ignore[return-value]


def unshare(value: Any) -> Any:
    """A copy of ``value`` in which every plain dict and list is new; frozen parts are kept.

    For a resource derived from another one (a corrected claim): the two then share only
    frozen parts, which no one can change.

    >>> shared = freeze({"code": "I10"})
    >>> claim = {"diagnosis": [shared], "total": {"value": 1}}
    >>> new = unshare(claim)
    >>> new["diagnosis"] is claim["diagnosis"], new["diagnosis"][0] is shared
    (False, True)
    """
    t = type(value)
    if t is dict:
        return {k: unshare(v) for k, v in value.items()}
    if t is list:
        return [unshare(v) for v in value]
    return value
