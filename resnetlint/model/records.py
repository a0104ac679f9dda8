"""Immutable records that are cheap to create.

The model creates millions of small immutable values (``Loc``, conditions,
events).  ``@dataclass(frozen=True)`` is the right contract, but its
generated ``__init__`` sets every field through ``object.__setattr__`` (to
get past the frozen ``__setattr__``), which made record creation ~5% of a
whole run.  :func:`record` keeps the frozen dataclass (fields, ``repr``,
``replace``, the ``FrozenInstanceError`` on assignment) and swaps in an
``__init__`` that writes the instance ``__dict__`` directly, twice as fast.
With ``eq=True`` the hash is computed once per instance and kept, since
conditions are hashed over and over as dictionary keys.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional

_CACHED_HASH = "_record_hash"


def record(cls: Optional[type] = None, *, eq: bool = False) -> Any:
    """``@record`` / ``@record(eq=True)``: a frozen dataclass with a fast
    ``__init__`` (and, with ``eq``, a cached hash)."""
    def wrap(target: type) -> type:
        own_init = "__init__" in target.__dict__
        # init=False: dataclasses need not generate (exec) an __init__ that
        # is replaced at once; import time counts for the pre-commit case.
        made = dataclasses.dataclass(frozen=True, eq=eq, init=False)(target)
        if not own_init:
            made.__init__ = _fast_init(made)
        if eq:
            made.__hash__ = _cached_hash(made.__hash__)
            made.__getstate__ = _without_cached_hash  # string hashes differ between processes
        return made

    return wrap if cls is None else wrap(cls)


def _fast_init(cls: type) -> Callable[..., None]:
    fields = [f for f in dataclasses.fields(cls) if f.init]
    namespace: Dict[str, Any] = {}
    params, body = ["self"], ["d = self.__dict__"]
    for f in fields:
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            body.append(f"d[{f.name!r}] = {f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            namespace["_MISSING"] = dataclasses.MISSING
            params.append(f"{f.name}=_MISSING")
            body.append(f"d[{f.name!r}] = _factory_{f.name}() if {f.name} is _MISSING else {f.name}")
        else:
            params.append(f.name)
            body.append(f"d[{f.name!r}] = {f.name}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n    " + "\n    ".join(body) + "\n"
    exec(source, namespace)  # noqa: S102 - code generated from the class's own field names, as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _without_cached_hash(self) -> Dict[str, Any]:
    return {k: v for k, v in self.__dict__.items() if k != _CACHED_HASH}


def _cached_hash(compute: Callable[[Any], int]) -> Callable[[Any], int]:
    def __hash__(self) -> int:
        d = self.__dict__
        value = d.get(_CACHED_HASH)
        if value is None:
            value = d[_CACHED_HASH] = compute(self)
        return value

    return __hash__
