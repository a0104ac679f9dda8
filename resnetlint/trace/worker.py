"""The trace worker: imports the user's module and runs a block for real.

Started by :mod:`resnetlint.trace.runner` as ``python -m resnetlint.trace.worker``.
It speaks JSON lines: one request per class on stdin, one response on a
private copy of the original stdout.  File descriptors 1 and 2 are pointed at
``/dev/null`` before any user code runs, so a module that prints cannot
corrupt the protocol or fill a pipe.

For each request it imports the module (by dotted name from its package root,
so relative imports work, or else by path; never as ``__main__``), builds the
class with a few constructor configurations, and for each one records:

* the exception construction or ``forward`` raised, and which submodule was
  running when it did;
* which submodule *calls* produced outputs that no gradient reached after
  ``out.sum().backward()``, and which parameters got no gradient;
* whether ``forward`` mutated its input, and whether backward failed because
  of an in-place operation;
* the output shape, and the gradients of conv biases (zero when a norm follows).

It reports evidence only; :mod:`resnetlint.trace.verdict` decides what it means.
This module is the only one in resnetlint that imports torch.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import io
import json
import os
import re
import resource
import signal
import sys
import traceback
from typing import Any, Dict, List, Optional, Tuple

PROTOCOL_VERSION = 1
MESSAGE_LIMIT = 400

# Parameter names that are channel counts, on the input side and on the output side.
INPUT_WIDTH = re.compile(r"^(in_?(channels?|chs?|planes|features|dim|c)|inplanes|inp|c1|c_in|cin|dim|dim_in|"
                         r"channels|num_features|input_dim|in_chans|chs|width|ni)$")
OUTPUT_WIDTH = re.compile(r"^(out_?(channels?|chs?|planes|features|dim|c)|planes|oup|c2|c_out|cout|dim_out|"
                          r"output_dim|out_chans|no|hidden_?(dim|channels|features)?|mid_?(channels|chs)?)$")
STRIDE = re.compile(r"^(stride|strides|downsample_stride)$")
PROJECTION = re.compile(r"^(downsample|down_sample|shortcut|skip|proj|projection)$")
RATIO = re.compile(r"(expan|ratio|expand|mult)")


class _Timeout(Exception):
    pass


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    _silence_user_output()
    _limit_memory()
    try:
        import torch  # noqa: F401
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        _send(protocol, {"type": "hello", "torch": None, "error": f"{type(exc).__name__}: {exc}"})
        return
    _send(protocol, {"type": "hello", "torch": torch.__version__, "cuda": bool(torch.cuda.is_available()),
                     "protocol": PROTOCOL_VERSION})
    modules: Dict[str, Any] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            response = handle(request, modules)
        except BaseException as exc:  # noqa: BLE001 - user code can raise anything, SystemExit included
            response = {"status": "worker-error", "error": _describe(exc), "traceback": traceback.format_exc()[-2000:]}
        response["id"] = request.get("id")
        response["type"] = "result"
        _send(protocol, response)


def _send(stream, message: Dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def _silence_user_output() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    if not os.environ.get("RESNETLINT_TRACE_DEBUG"):
        os.dup2(devnull, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)


def _limit_memory() -> None:
    """Cap the address space so a block that allocates absurd tensors fails
    with an error instead of taking the machine down."""
    limit = os.environ.get("RESNETLINT_TRACE_MEMORY_MB")
    if not limit:
        return
    cap = int(limit) * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ValueError, OSError):
        pass


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


# ----------------------------------------------------------------------------
# Import
# ----------------------------------------------------------------------------


def import_module(request: Dict[str, Any], cache: Dict[str, Any]):
    if request.get("source") is not None:
        return _module_from_source(request)
    path = request["file"]
    if path in cache:
        return cache[path]
    module = None
    errors = []
    root, dotted = request.get("root"), request.get("module")
    if root and dotted:
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            module = importlib.import_module(dotted)
            if os.path.realpath(getattr(module, "__file__", "") or "") != os.path.realpath(path):
                errors.append(f"importing {dotted} found {getattr(module, '__file__', '?')}")
                module = None
        except BaseException as exc:  # noqa: BLE001
            errors.append(f"import {dotted}: {_describe(exc)}")
            module = None
    if module is None:
        name = "_resnetlint_traced_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
        directory = os.path.dirname(os.path.abspath(path))
        if directory not in sys.path:
            sys.path.insert(0, directory)
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except BaseException as exc:  # noqa: BLE001
            errors.append(f"loading {os.path.basename(path)}: {_describe(exc)}")
            cache[path] = errors
            return errors
    cache[path] = module
    return module


def _module_from_source(request: Dict[str, Any]):
    """A module built from text that is not on disk yet (a proposed fix),
    inside the file's package so its relative imports still work."""
    import types

    path, root, dotted = request["file"], request.get("root"), request.get("module") or ""
    if root and root not in sys.path:
        sys.path.insert(0, root)
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.append(directory)
    package = dotted.rpartition(".")[0]
    name = f"{dotted or 'module'}__resnetlint_candidate_{request.get('id', 0)}"
    module = types.ModuleType(name)
    module.__file__ = path
    module.__package__ = package
    sys.modules[name] = module
    try:
        if package:
            importlib.import_module(package)
        exec(compile(request["source"], path, "exec"), module.__dict__)
    except BaseException as exc:  # noqa: BLE001
        return [f"loading the fixed source: {_describe(exc)}"]
    return module


# ----------------------------------------------------------------------------
# Configurations
# ----------------------------------------------------------------------------


def _parameters(cls) -> List[inspect.Parameter]:
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return []
    params = list(signature.parameters.values())[1:]
    return [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def synthesize(cls, request: Dict[str, Any]) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """Constructor configurations to try: literal call sites first, then a
    small grid over widths and strides around the defaults."""
    params = _parameters(cls)
    configs: List[Dict[str, Any]] = []
    for site in request.get("call_sites", []):
        bound = _bind_site(params, site)
        if bound is not None:
            configs.append({"kwargs": bound, "origin": site.get("origin", "a call site")})
    expansion = getattr(cls, "expansion", None)
    expansion = expansion if isinstance(expansion, int) and expansion > 1 else None
    variants = [
        ("equal widths", 16, 16, 1),
        ("different widths", 16, 32, 1),
        ("stride 2", 16, 16, 2),
        ("different widths, stride 2", 16, 32, 2),
    ]
    if expansion:
        # The natural configuration of a bottleneck: its input as wide as its output.
        variants.insert(0, ("natural: bottleneck widths", 16 * expansion, 16, 1))
        variants[1] = ("equal widths", 16, 16, 1)
    else:
        variants[0] = ("natural: equal widths", 16, 16, 1)
    missing = None
    natural = request.get("natural") or {}
    if natural:
        # The widths the static model found make the residual add well formed.
        kwargs = _fill(params, natural, request)
        if kwargs is not None and not any(c["kwargs"] == kwargs for c in configs):
            configs.insert(len([c for c in configs if c["origin"].startswith("the call")]),
                           {"kwargs": kwargs, "origin": "natural: widths that match the residual add"})
            variants = [v for v in variants if not v[0].startswith("natural:")]
    projection = next((p for p in params if PROJECTION.match(p.name) and p.default is None), None)
    if projection is not None:
        # The caller's side of a torchvision-style block: a 1x1 projection
        # to the block's output width when the widths or the stride differ.
        variants += [(f"{label.replace('natural: ', '')}, with a `{projection.name}` projection", w_in, w_out, stride)
                     for label, w_in, w_out, stride in list(variants)]
    for label, width_in, width_out, stride in variants:
        kwargs: Dict[str, Any] = {}
        if projection is not None and "projection" in label:
            kwargs[projection.name] = _projection(width_in, width_out * (expansion or 1), stride)
        for param in params:
            if param.name in kwargs:
                continue
            value, known = _value_for(param, width_in, width_out, stride, request)
            if not known:
                if param.default is inspect.Parameter.empty:
                    missing = param.name
                    break
                continue  # keep the default
            kwargs[param.name] = value
        else:
            if not any(c["kwargs"] == kwargs for c in configs):
                configs.append({"kwargs": kwargs, "origin": label})
    if not configs:
        return [], f"cannot choose a value for the constructor argument `{missing}`" if missing else "no configuration"
    return configs[: request.get("max_configs", 8)], None


def _projection(width_in: int, width_out: int, stride: int):
    import torch.nn as nn

    module = nn.Sequential(nn.Conv2d(width_in, width_out, 1, stride=stride, bias=False), nn.BatchNorm2d(width_out))
    module.resnetlint_label = f"<1x1 conv {width_in}->{width_out}, stride {stride}>"
    return module


def _fill(params, fixed: Dict[str, int], hints: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """A configuration with these widths, stride 1, and the rest as usual."""
    kwargs: Dict[str, Any] = {}
    for param in params:
        if param.name in fixed:
            kwargs[param.name] = fixed[param.name]
            continue
        value, known = _value_for(param, 16, 16, 1, hints)
        if known:
            kwargs[param.name] = value
        elif param.default is inspect.Parameter.empty:
            return None
    return kwargs


def _value_for(param, width_in: int, width_out: int, stride: int, hints: Dict[str, Any]):
    """A value for one constructor parameter: what the static model saw it
    used as (a width feeding the input layer, another width, a stride) comes
    first, then its name, then its default."""
    name = param.name.lower()
    default = param.default
    if param.name in hints.get("stride_params", ()):
        return stride, True
    if param.name in hints.get("input_params", ()):
        return width_in, True
    if param.name in hints.get("width_params", ()):
        return width_out if not INPUT_WIDTH.match(name) else width_in, True
    if STRIDE.match(name):
        return stride, True
    if INPUT_WIDTH.match(name):
        return width_in, True
    if OUTPUT_WIDTH.match(name):
        return width_out, True
    if default is not inspect.Parameter.empty:
        return default, False
    if RATIO.search(name):
        return 4, True
    if name in ("kernel_size", "k", "ksize"):
        return 3, True
    if name in ("groups", "num_groups"):
        return 1, True
    if name in ("num_heads", "heads"):
        return 2, True
    if name.startswith(("use_", "with_", "has_", "is_")):
        return False, True
    if param.annotation is int:
        return 16, True
    return None, False


def _bind_site(params, site: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    kwargs = dict(site.get("kwargs", {}))
    for param, value in zip(params, site.get("args", [])):
        kwargs[param.name] = value
    names = {p.name for p in params}
    if not set(kwargs) <= names:
        return None
    for param in params:
        if param.name not in kwargs and param.default is inspect.Parameter.empty:
            return None
    return kwargs


def describe_config(cls, kwargs: Dict[str, Any]) -> str:
    inner = ", ".join(f"{k}={getattr(v, 'resnetlint_label', None) or repr(v)}" for k, v in kwargs.items())
    return f"{cls.__name__}({inner})"


# ----------------------------------------------------------------------------
# Running one configuration
# ----------------------------------------------------------------------------


def handle(request: Dict[str, Any], cache: Dict[str, Any]) -> Dict[str, Any]:
    import torch

    module = import_module(request, cache)
    if isinstance(module, list):
        return {"status": "import-error", "error": "; ".join(module)}
    cls = getattr(module, request["class"], None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        return {"status": "class-not-found", "error": f"{request['class']} is not an nn.Module in the imported module"}
    configs, problem = synthesize(cls, request)
    if not configs:
        return {"status": "no-config", "error": problem}
    device = request.get("device", "cpu")
    runs = []
    for config in configs:
        runs.append(run_config(cls, config, request, device))
    return {"status": "ok", "runs": runs}


def run_config(cls, config: Dict[str, Any], request: Dict[str, Any], device: str) -> Dict[str, Any]:
    import torch

    kwargs = config["kwargs"]
    record: Dict[str, Any] = {"config": describe_config(cls, kwargs), "origin": config["origin"], "runs": []}
    torch.manual_seed(0)
    try:
        with _soft_timeout(request.get("config_timeout", 0)):
            if device == "meta":
                with torch.device("meta"):
                    block = cls(**kwargs)
            else:
                block = cls(**kwargs).to(device)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt,)):
            raise
        record["construct_error"] = _describe(exc)
        return record
    block.train()
    shape = input_shape(block, request.get("input_hint"))
    if shape is None:
        record["input_error"] = "cannot tell the input's shape from the block's first layer"
        return record
    for spatial in request.get("spatial", [16, 15]):
        size = [2, shape[1]] + [spatial] * (shape[0] - 2) if shape[0] > 2 else [2, 8, shape[1]]
        record["runs"].append(run_once(block, size, device, request))
    return record


def input_shape(block, hint: Optional[str]) -> Optional[Tuple[int, int]]:
    """(rank, channels) of the input: from the layer the static model saw
    consuming the input, else the first layer that states a width."""
    import torch.nn as nn

    candidates = []
    if hint:
        target = block
        try:
            for part in hint.split("."):
                target = target[int(part)] if part.isdigit() else getattr(target, part)
            candidates.append(target)
        except (AttributeError, IndexError, TypeError, KeyError):
            pass
    candidates.append(block)
    for root in candidates:
        if not isinstance(root, nn.Module):
            continue
        for layer in root.modules():
            if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                                  nn.ConvTranspose3d)):
                rank = {nn.Conv1d: 3, nn.ConvTranspose1d: 3, nn.Conv3d: 5, nn.ConvTranspose3d: 5}.get(type(layer), 4)
                return rank, layer.in_channels
            if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.GroupNorm)):
                rank = {nn.BatchNorm1d: 3, nn.BatchNorm3d: 5}.get(type(layer), 4)
                return rank, getattr(layer, "num_features", getattr(layer, "num_channels", 0))
            if isinstance(layer, nn.Linear):
                return 2, layer.in_features
            if isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) == 1:
                return 2, layer.normalized_shape[0]
    return None


def run_once(block, size: List[int], device: str, request: Dict[str, Any]) -> Dict[str, Any]:
    import torch

    result: Dict[str, Any] = {"input": list(size)}
    names = {m: n for n, m in block.named_modules()}
    active: List[str] = []
    calls: List[Tuple[str, Any]] = []
    reached: set = set()
    handles = []

    def pre(module, inputs):
        active.append(names.get(module, "?"))

    def post(module, inputs, output):
        name = active.pop() if active else names.get(module, "?")
        tensor = output if isinstance(output, torch.Tensor) else None
        if tensor is not None and tensor.requires_grad and module is not block:
            index = len(calls)
            calls.append((name, module))
            tensor.register_hook(lambda grad, i=index: reached.add(i))

    for module in block.modules():
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    try:
        base = torch.randn(*size, device=device, requires_grad=True)
        x = base * 1.0  # not a leaf: in-place changes are allowed and visible in _version
        version = x._version
        with _soft_timeout(request.get("config_timeout", 0)):
            out = block(x)
        if device == "cuda":
            torch.cuda.synchronize()
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["forward_error"] = _describe(exc)
        result["raised_in"] = active[-1] if active else ""
        _remove(handles)
        return result
    result["input_mutated"] = x._version != version
    tensor = _first_tensor(out)
    if tensor is None:
        _remove(handles)
        result["output"] = type(out).__name__
        return result
    result["output_shape"] = list(tensor.shape)
    try:
        with _soft_timeout(request.get("config_timeout", 0)):
            if device == "meta":
                raise RuntimeError("backward is not run on meta tensors")
            tensor.float().sum().backward()
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["backward_error"] = _describe(exc)
        _remove(handles)
        return result
    _remove(handles)
    result["dead_calls"] = sorted({name for i, (name, _) in enumerate(calls) if i not in reached})
    live_calls = {name for i, (name, _) in enumerate(calls) if i in reached}
    result["live_calls"] = sorted(live_calls)
    result["no_grad"] = sorted({n.rsplit(".", 1)[0] if "." in n else n for n, p in block.named_parameters()
                                if p.requires_grad and p.grad is None})
    result["zero_bias"] = sorted(
        name for name, module in block.named_modules()
        if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)) and module.bias is not None
        and module.bias.grad is not None and module.weight.grad is not None
        and float(module.bias.grad.abs().max()) <= 1e-4 * max(float(module.weight.grad.abs().max()), 1e-12))
    return result


def _first_tensor(value):
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        for item in value.values():
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _remove(handles) -> None:
    for handle in handles:
        handle.remove()


class _soft_timeout:
    """SIGALRM inside the worker: a slow forward becomes an error for this
    configuration.  The parent's hard timeout still covers code that never
    returns to Python (a native loop)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        if self.seconds and hasattr(signal, "SIGALRM"):
            signal.signal(signal.SIGALRM, self._raise)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.seconds and hasattr(signal, "SIGALRM"):
            signal.setitimer(signal.ITIMER_REAL, 0)
        return False

    def _raise(self, signum, frame):
        raise _Timeout(f"did not finish within {self.seconds:g} s")


if __name__ == "__main__":
    main()
