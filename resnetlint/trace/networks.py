"""The network as the source of truth (worker side only).

A block's real constructor arguments and inputs are those of the network
that uses it.  When the block's module defines a network built from it (a
``resnet18()`` factory, a ``ResNet`` or ``UNet`` class whose constructor
needs no arguments), the worker builds that network with its defaults,
records the arguments of every block constructed along the way (by wrapping
the block classes' ``__init__``), runs it once on a small input with forward
pre-hooks, and records the input each block received.  These become the
first configurations of each block (origin ``the network `resnet18()```).

Which callables count as networks is read from their code objects: a
module-level function or class of the module whose code names the block
class (directly, or through a module-level helper it calls: ``resnet18`` ->
``_resnet`` -> ``ResNet(BasicBlock, ...)``).  Smaller variants first
(``resnet18`` before ``resnet152``); at most two are built per module, each
under a time limit.
"""
from __future__ import annotations

import copy
import inspect
import re
import types
from typing import Any, Dict, List, Optional, Set

MAX_NETWORKS = 2
MAX_RECORDS = 3  # configurations per block class
NETWORK_SPATIAL = 64


def _names_in(code: types.CodeType, depth: int = 0) -> Set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and depth < 4:
            names |= _names_in(const, depth + 1)
    return names


def _code_of(obj) -> Optional[types.CodeType]:
    if inspect.isfunction(obj):
        try:
            obj = inspect.unwrap(obj)  # a registered or decorated factory: its own code
        except ValueError:
            pass
        return getattr(obj, "__code__", None)
    if inspect.isclass(obj):
        init = obj.__dict__.get("__init__")
        return init.__code__ if inspect.isfunction(init) else None
    return None


def _callable_without_arguments(obj) -> bool:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    return all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in signature.parameters.values())


def candidates(module, cls) -> List[str]:
    """Names of the module's callables that build a network with ``cls``
    in it and need no arguments, smallest-looking first."""
    import torch.nn as nn

    local = {name: obj for name, obj in vars(module).items()
             if getattr(obj, "__module__", None) == module.__name__ and _code_of(obj) is not None}
    direct = {name: _names_in(_code_of(obj)) for name, obj in local.items()}

    def builds(name: str, seen: Set[str]) -> bool:
        names = direct.get(name, set())
        if cls.__name__ in names:
            return True
        return any(other in local and other not in seen and builds(other, seen | {other}) for other in names)

    module_classes = {name for name, obj in local.items() if inspect.isclass(obj) and issubclass(obj, nn.Module)}
    naming, others = [], []
    for name, obj in local.items():
        if obj is cls or name.startswith("_") or not _callable_without_arguments(obj):
            continue
        if inspect.isclass(obj) and (not issubclass(obj, nn.Module) or issubclass(cls, obj)):
            continue
        if builds(name, {name}):
            naming.append(name)
        elif inspect.isfunction(obj) and direct.get(name, set()) & (module_classes | set(local)):
            # A factory of the module that builds some network of it (the block may
            # be reached through a configuration class: torchvision's `MBConvConfig`).
            others.append(name)
    return sorted(naming, key=_size_key) + sorted(others, key=_size_key)


def _size_key(name: str):
    numbers = [int(n) for n in re.findall(r"\d+", name)]
    return (numbers[0] if numbers else 0, len(name), name)


def record(module, cls, device: str, timeout: float, soft_timeout,
           state: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The recorded configurations of ``cls`` (``{"kwargs", "input",
    "extra_kwargs", "extra_args", "origin"}``), from the first networks of
    its module that build; ``state`` keeps what was recorded (for every
    class of the module) and which networks were tried, per module."""
    import torch
    import torch.nn as nn

    records: Dict[str, List[Dict[str, Any]]] = state.setdefault("records", {})
    tried: Set[str] = state.setdefault("tried", set())
    if cls.__name__ in records:
        return records[cls.__name__]
    classes = {obj for obj in vars(module).values()
               if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__}
    for name in [n for n in candidates(module, cls) if n not in tried][:MAX_NETWORKS]:
        tried.add(name)
        origin = f"the network `{name}()`"
        instances: Dict[int, Dict[str, Any]] = {}
        originals = {}
        for block_cls in classes:
            originals[block_cls] = block_cls.__dict__.get("__init__")
            _wrap_init(block_cls, instances, origin)
        try:
            with soft_timeout(timeout):
                torch.manual_seed(0)
                network = getattr(module, name)()
                if not isinstance(network, nn.Module):
                    continue
                network = network.to(device).eval()
                _run_with_hooks(network, instances, device)
        except BaseException as exc:  # noqa: BLE001 - a network that does not build or run still named its blocks
            if isinstance(exc, KeyboardInterrupt):
                raise
        finally:
            for block_cls, init in originals.items():
                if init is None:
                    if "__init__" in block_cls.__dict__:
                        delattr(block_cls, "__init__")
                else:
                    block_cls.__init__ = init
        for entry in instances.values():
            found = records.setdefault(entry["class"], [])
            described = repr(sorted((k, _label(v)) for k, v in entry["kwargs"].items()))
            if len(found) < MAX_RECORDS and all(r["_key"] != described for r in found):
                entry["_key"] = described
                found.append(entry)
        if cls.__name__ in records:
            break
    return records.get(cls.__name__, [])


def _label(value) -> str:
    return type(value).__name__ if hasattr(value, "forward") else repr(value)


def _wrap_init(block_cls, instances: Dict[int, Dict[str, Any]], origin: str) -> None:
    init = block_cls.__init__
    signature = inspect.signature(init)

    def recording_init(self, *args, **kwargs):
        if type(self) is block_cls and id(self) not in instances:
            try:
                bound = signature.bind(self, *args, **kwargs)
                arguments = dict(list(bound.arguments.items())[1:])
                extra = [p for p in signature.parameters.values() if p.kind == p.VAR_KEYWORD]
                if extra and extra[0].name in arguments:
                    arguments.update(arguments.pop(extra[0].name))
                if not any(p.kind == p.VAR_POSITIONAL and p.name in arguments for p in signature.parameters.values()):
                    instances[id(self)] = {"class": block_cls.__name__, "kwargs": _copy(arguments),
                                           "origin": origin, "module": None}
            except (TypeError, ValueError):
                pass
        init(self, *args, **kwargs)
        if id(self) in instances:
            instances[id(self)]["module"] = self

    block_cls.__init__ = recording_init


def _copy(arguments: Dict[str, Any]) -> Dict[str, Any]:
    try:
        return copy.deepcopy(arguments)
    except Exception:  # noqa: BLE001 - an argument that cannot be copied is shared
        return dict(arguments)


def _described(value) -> Dict[str, Any]:
    """A forward argument as the worker can make it again: a tensor's shape
    and dtype, or a plain value (a size, a flag)."""
    import torch

    if isinstance(value, torch.Tensor):
        return {"shape": list(value.shape), "dtype": str(value.dtype).replace("torch.", "")}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    if isinstance(value, (tuple, list)) and all(isinstance(v, (bool, int, float)) for v in value):
        return {"value": list(value), "tuple": isinstance(value, tuple)}
    return {"value": None}


def _run_with_hooks(network, instances: Dict[int, Dict[str, Any]], device: str) -> None:
    import torch

    from .worker import _input_layer, input_shape

    by_module = {id(e["module"]): e for e in instances.values() if e.get("module") is not None}
    handles = []

    def pre(module, args, kwargs):
        entry = by_module.get(id(module))
        if entry is not None and "input" not in entry and args and isinstance(args[0], torch.Tensor):
            entry["input"] = list(args[0].shape)
            entry["extra_kwargs"] = {k: _described(v) for k, v in kwargs.items()}
            entry["extra_args"] = [_described(a) for a in args[1:]]

    for module in network.modules():
        if id(module) in by_module:
            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
    try:
        layer, _ = _input_layer(network, None)
        shape = input_shape(network, None, layer) or (4, 3)
        rank, channels = shape
        size = [1, channels] + [NETWORK_SPATIAL] * (rank - 2) if rank > 2 else [1, 16, channels]
        with torch.no_grad():
            network(torch.randn(*size, device=device))
    finally:
        for handle in handles:
            handle.remove()
        for entry in instances.values():
            entry.pop("module", None)
