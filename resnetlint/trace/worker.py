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

import ast
import importlib
import importlib.machinery
import importlib.util
import inspect
import io
import json
import os
import re
import resource
import signal
import sys
import textwrap
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .inputs import SIDE_ARG, SIZE_ARG, forward_extras

PROTOCOL_VERSION = 1
MESSAGE_LIMIT = 400

# Parameter names that are channel counts, on the input side and on the output side.
INPUT_WIDTH = re.compile(r"^(in_?(channels?|chs?|planes|features|dim|c)|inplanes|inp|c1|c_in|cin|dim|dim_in|"
                         r"channels|num_features|input_dim|in_chans|chs|width|ni)$")
OUTPUT_WIDTH = re.compile(r"^(out_?(channels?|chs?|planes|features|dim|c)|planes|oup|c2|c_out|cout|dim_out|"
                          r"output_dim|out_chans|no|hidden_?(dim|channels|features)?|mid_?(channels|chs)?)$")
STRIDE = re.compile(r"^(stride|strides|downsample_stride)$")
PROJECTION = re.compile(r"^(downsample|down_sample|shortcut|skip|proj|projection)$")
RATIO = re.compile(r"(expan|ratio|expand|mult|^exp_|factor)")


class _Timeout(Exception):
    pass


def main() -> None:
    _die_with_parent()
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


def _die_with_parent() -> None:
    """If resnetlint is killed (SIGKILL, SIGTERM: no chance to stop us), do
    not live on running a block that never returns (Linux)."""
    parent = os.environ.get("RESNETLINT_TRACE_PARENT")
    if not sys.platform.startswith("linux") or not parent:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # it died before the prctl
        os._exit(1)


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
    for folder in reversed(request.get("trace_paths") or ()):
        if folder not in sys.path:
            sys.path.insert(0, folder)  # as the project does itself
    module = None
    errors = []
    root, dotted = request.get("root"), request.get("module")
    if root and dotted:
        _expose(root, dotted)
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
            sys.path.append(directory)  # last: its siblings never shadow an installed module
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


class _TracedPackages:
    """A meta-path finder for the traced packages' top-level names only.

    Putting a package's parent folder first on ``sys.path`` would let every
    sibling folder there shadow installed modules (an unbuilt ``torchvision/``
    beside ``timm/`` breaks ``import torchvision`` inside timm).  This finder
    resolves just the traced top-level name from its folder; submodules and
    relative imports follow the package's ``__path__`` as usual."""

    def __init__(self) -> None:
        self.roots: Dict[str, str] = {}

    def find_spec(self, fullname, path=None, target=None):
        root = self.roots.get(fullname)
        if root is None:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [root])

    def invalidate_caches(self) -> None:
        pass


_TRACED = _TracedPackages()


def _expose(root: str, dotted: str) -> None:
    """Make ``dotted``'s top-level package importable from ``root`` without
    shadowing anything else: the folder itself goes last on ``sys.path`` (for
    absolute imports of modules that live only there)."""
    _TRACED.roots[dotted.partition(".")[0]] = root
    if _TRACED not in sys.meta_path:
        sys.meta_path.insert(0, _TRACED)
    if root not in sys.path:
        sys.path.append(root)


def _module_from_source(request: Dict[str, Any]):
    """A module built from text that is not on disk yet (a proposed fix),
    inside the file's package so its relative imports still work.

    When this worker has not imported the module yet, the text is loaded *as*
    the module, by its own name: what the package does once at import
    (registering its classes in a model registry, which refuses a name
    twice) happens once, with the proposed text.  A module imported already
    gets the text as a separate module beside it."""
    import types

    path, root, dotted = request["file"], request.get("root"), request.get("module") or ""
    if root and dotted:
        _expose(root, dotted)
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.append(directory)
    if dotted and dotted not in sys.modules:
        _SUBSTITUTED.sources[dotted] = (os.path.abspath(path), request["source"])
        if _SUBSTITUTED not in sys.meta_path:
            sys.meta_path.insert(0, _SUBSTITUTED)
        try:
            return importlib.import_module(dotted)
        except BaseException as exc:  # noqa: BLE001
            return [f"loading the fixed source: {_describe(exc)}"]
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


class _SubstitutedSources:
    """A meta-path finder that loads given modules from given text instead
    of their file (``__file__`` stays the file's path)."""

    def __init__(self) -> None:
        self.sources: Dict[str, Tuple[str, str]] = {}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.sources:
            return None
        filename, text = self.sources[fullname]
        return importlib.util.spec_from_file_location(fullname, filename, loader=_TextLoader(fullname, filename, text))

    def invalidate_caches(self) -> None:
        pass


class _TextLoader(importlib.machinery.SourceFileLoader):
    """A source loader whose file holds the given text (compiled from the
    text itself: no bytecode cache, no encoding cookie to honour)."""

    def __init__(self, fullname: str, path: str, text: str) -> None:
        super().__init__(fullname, path)
        self.text = text

    def get_source(self, fullname):
        return self.text

    def get_code(self, fullname):
        return compile(self.text, self.path, "exec", dont_inherit=True)


_SUBSTITUTED = _SubstitutedSources()


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
    spatial = (request.get("spatial") or [16])[0]
    window = next((p.default for p in params if "window" in p.name.lower() and isinstance(p.default, int)
                   and not isinstance(p.default, bool) and p.default > 1), None)
    if window and spatial % window:
        # A block built for one feature-map size (`input_resolution`) that it cuts
        # into windows: a size the windows tile.
        request = dict(request, spatial=[window * max(1, spatial // window)])
    request = dict(request, _params=[p.name for p in params], _class=cls.__name__,
                   _globals=vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {})
    configs: List[Dict[str, Any]] = []
    for site in request.get("call_sites", []):
        bound = _bind_site(params, site)
        if bound is None and str(site.get("origin", "")).startswith("the configuration ") and \
                set(site.get("kwargs", {})) <= {p.name for p in params}:
            # A finding's configuration names only what it predicts fails on
            # (`stride=2`, a flag): the other arguments as for the grid.
            bound = _fill(params, dict(site.get("kwargs", {})), request)
        if bound is not None:
            configs.append({"kwargs": bound, "origin": site.get("origin", "a call site")})
    for recorded in request.get("_network", []):
        # Built by the network that uses the block: its real arguments and input.
        configs.append({key: recorded[key] for key in ("kwargs", "origin", "input", "extra_kwargs", "extra_args")
                        if key in recorded})
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
        if kwargs is not None and not any(_same(c["kwargs"], kwargs) for c in configs):
            origin = _guessed("natural: widths that match the residual add", kwargs)
            configs.insert(len([c for c in configs if c["origin"].startswith(("the call", "the network"))]),
                           {"kwargs": kwargs, "origin": origin})
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
            if not any(_same(c["kwargs"], kwargs) for c in configs) and _keeps_contract(kwargs, request):
                configs.append({"kwargs": kwargs, "origin": _guessed(label, kwargs)})
    if not configs:
        return [], f"cannot choose a value for the constructor argument `{missing}`" if missing else "no configuration"
    for config in configs:
        config["spatial"] = _spatial_of(config["kwargs"], request)
        side = _patch_grid_side(config["kwargs"])
        if side:
            config["token_side"] = side
    limit = request.get("max_configs", 8)
    dropout = _with_dropout(params, configs)
    if dropout is not None:
        return configs[: limit - 1] + [dropout], None
    return configs[:limit], None


def _keeps_contract(kwargs: Dict[str, Any], request: Dict[str, Any]) -> bool:
    """A guessed configuration gives the widths the static model knows are
    equal (every call site in the project passes the same value for both)
    the same value: one that does not is a block no one builds."""
    return all(kwargs.get(a) == kwargs.get(b) for a, b in request.get("equal_widths", ())
               if a in kwargs and b in kwargs)


def _same(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """Equal configurations (a user ``__eq__`` that raises: different)."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - user code
        return False


def _spatial_of(kwargs: Dict[str, Any], hints: Dict[str, Any]) -> Optional[List[int]]:
    """The one input size a block built for a fixed feature-map size takes
    (``input_resolution=(16, 16)``), else None: the usual sizes."""
    widths = set(hints.get("width_params", ())) | set(hints.get("input_params", ()))
    for name, value in kwargs.items():
        try:
            size = getattr(value, "image_size", None) if not isinstance(value, (int, float, str, tuple, list)) \
                else None
        except Exception:  # noqa: BLE001 - a configuration object whose attributes raise
            size = None
        if isinstance(size, int) and not isinstance(size, bool) and 1 < size <= 512:
            return [size]  # a configuration object's image size (a ViT's patch embedding needs it)
        if not SPATIAL_PARAM.match(name.lower()) or name in widths:
            continue
        sizes = list(value) if isinstance(value, (tuple, list)) else [value]
        if sizes and all(isinstance(v, int) and not isinstance(v, bool) for v in sizes) \
                and len(set(sizes)) == 1 and 1 < sizes[0] <= 64:
            return [sizes[0]]
    return None


def _patch_grid_side(kwargs: Dict[str, Any]) -> Optional[int]:
    """The side of the patch grid a configuration object describes
    (``image_size // patch_size``): a transformer layer built from it sees
    that many tokens per side, not one per pixel (224 x 224 pixels would be
    50176 tokens, too many to attend over on a CPU)."""
    for value in kwargs.values():
        if isinstance(value, (int, float, str, tuple, list, dict)) or value is None:
            continue
        try:
            size, patch = getattr(value, "image_size", None), getattr(value, "patch_size", None)
        except Exception:  # noqa: BLE001 - a configuration object whose attributes raise
            continue
        size = size[0] if isinstance(size, (tuple, list)) and size else size
        patch = patch[0] if isinstance(patch, (tuple, list)) and patch else patch
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (size, patch)) and 1 < patch < size:
            return max(1, size // patch)
    return None


def _guessed(origin: str, kwargs: Dict[str, Any]) -> str:
    """The origin, saying which arguments are layers resnetlint chose (a
    configuration with guessed layers is no caller's: no trace-only finding
    comes from it)."""
    guessed = [name for name, value in kwargs.items()
               if getattr(value, GUESSED, False) or any(value is layer for layer in _layer_classes())]
    return origin + "".join(f", with a guessed `{name}`" for name in guessed)


def _layer_classes():
    import torch.nn as nn

    return (nn.BatchNorm2d, nn.ReLU, nn.Conv2d)


def _with_dropout(params, configs) -> Optional[Dict[str, Any]]:
    """The first synthesized configuration again with every dropout and
    drop-path rate at 0.1: an in-place dropout after a saved activation only
    shows when it really drops.  Its runs are random, so verdicts take only
    in-place evidence from it (``stochastic``)."""
    import copy

    drops = [p.name for p in params if _is_rate(p)]
    if not drops:
        return None
    base = next((c for c in configs if not c["origin"].startswith("the call")), configs[0])
    try:
        kwargs = copy.deepcopy(base["kwargs"])
    except Exception:  # noqa: BLE001 - an argument that cannot be copied: no dropout configuration
        return None
    kwargs.update({name: 0.1 for name in drops})
    return {"kwargs": kwargs, "origin": f"dropout 0.1, else as {base['origin']}", "stochastic": True,
            "spatial": base.get("spatial"), "token_side": base.get("token_side")}


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


# Names that are never channel counts, whatever the static model saw them feed.
HEADS = re.compile(r"^(num_?heads|n_?heads?|heads|nhead|num_head|num_attention_heads|attention_heads)$")
# The width of one attention head: a multiple of 8 keeps every split whole.
HEAD_DIM = re.compile(r"^(dim_?head|head_?dim|d_head|attention_head_dim|num_head_channels|head_channels|"
                      r"dim_per_head|channels_per_head)$")
# Other names of a width (`context_dim`, `time_embed_dim`, `hidden_features`).
WIDTH_NAME = re.compile(r"(_dim|_channels|_features|_chs|_ch|_chans|_size|^d_model|^embed_dim|^n_embd)$")
PADDING = re.compile(r"^(padding|pad)$")
KERNEL = re.compile(r"(kernel|window|^ks?$|ksize|pool_size)")
SHIFT = re.compile(r"^shift(_size)?$")
COUNT = re.compile(r"(level|depth|reps|repeat|num_blocks|num_layers|n_layers|iters)")
DROP = re.compile(r"(drop(?!_?block)|stochastic)")
LAYER_SCALE = re.compile(r"(layer_?scale|^ls_|_ls_|init_values?$|layerscale)")
SPATIAL_PARAM = re.compile(r"^(feat_size|feature_size|fmap_size|input_resolution|input_size|resolution|image_size|"
                           r"img_size)$")
# A block that wraps a module it is given: `Residual(fn)`.
WRAPPED = re.compile(r"^(fn|m|module|main|block|body|branch|layer|sublayer|net)$")
# `norm_layer`, `act_layer`...: the class the block instantiates.
LAYER_PARAM = re.compile(r"^(?:\w+_)?(norm|act|activation|nonlinearity|conv)_layer$")
GUESSED = "resnetlint_guess"
# The number of spatial dimensions a block is built for (monai's `spatial_dims`).
DIMENSIONS = re.compile(r"^(spatial_dims|dimensions|n_?dims|num_spatial_dims|dims)$")
# A layer given by its name (a string: `norm_name="batch"`).
NAMED_LAYER = re.compile(r"^(norm|act|activation)_(name|type)$")
# A layer (a class or a function returning one) named by its role alone.
LAYER_ROLE = re.compile(r"^(activation|act|normalization|norm|nonlinearity|act_fn|norm_fn|activation_fn)$")
# Lists of widths or rates per branch (`out_channels_list`, `dilations`).
LIST_PARAM = re.compile(r"(_list$|^dilations$|^channels_list|_per_branch$)")
# The widths of the feature maps a head or a neck takes (`ch: list[int]`, ultralytics).
MAP_WIDTHS = re.compile(r"^(ch|chs|in_ch|in_chs|channels|in_channels|feat_channels|in_channels_list)$")


def _annotation(param) -> str:
    """The annotation as text: a type, or a string (``from __future__ import annotations``)."""
    annotation = param.annotation
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)  # typing.Optional[...]


def _is_sequence(annotation: str) -> bool:
    """A tuple or list and no plain int: ``Optional[Tuple[int, int]]``, not ``int | tuple[int, int]``."""
    text = re.sub(r"^(Optional|Union)\[(.*)\]$", r"\2", annotation.replace("typing.", "").strip())
    while re.search(r"\[[^\[\]]*\]", text):
        text = re.sub(r"\[[^\[\]]*\]", "", text)  # keep the outer names only
    names = [part.strip().rsplit(".", 1)[-1].lower() for part in re.split(r"[|,]", text)]
    return "int" not in names and any(n in ("tuple", "list", "sequence") for n in names)


def _by_name(param, name: str):
    """A value for the parameters whose name says what they are: these
    names win over what the static model saw (a window or a head count
    feeding a layer is not a channel count).  None: not one of them."""
    default = param.default
    required = default is inspect.Parameter.empty  # a None default often means "none": it is kept
    annotation = _annotation(param)
    if (LAYER_ROLE.match(name) or NAMED_LAYER.match(name)) and required and re.search(r"\bstr\b", annotation):
        return ("batch" if "norm" in name else "relu"), True  # a layer by name (monai's `norm="batch"`)
    if NAMED_LAYER.match(name) and required:
        return ("batch" if "norm" in name else "relu"), True
    if LAYER_ROLE.match(name) and required and not re.search(r"\b(bool|str|int|float)\b", annotation):
        return _layer_class(name), True  # pytorchcv's `activation`, `normalization`: a layer factory
    if DIMENSIONS.match(name) and (required or default is None):
        return 2, True  # images: the grid the other values are made for
    if LIST_PARAM.search(name) and required:
        return ([1, 1] if "dilation" in name else [16, 16]), True
    if LAYER_PARAM.match(name) and not ("norm" in name and "act" in name):
        if required:
            return _layer_class(name), True
        return default, False  # a None default is filled in only when the constructor needs it
    if HEADS.match(name):
        return 2, True
    if PROJECTION.match(name) and required and not annotation:
        return None, True  # no projection: the identity shortcut (a projection is tried separately)
    if HEAD_DIM.match(name):
        return (8, True) if required or default is None else (default, False)
    if _is_rate(param):
        # `drop_path=None` in timm stands for a layer: a None default is a rate only when annotated so.
        return (0.0, True) if required or default is None else (default, False)
    if LAYER_SCALE.search(name) and not isinstance(default, bool):
        return (1e-6, True) if required else (default, False)
    if PADDING.match(name):
        return (1, True) if required else (default, False)
    if SHIFT.match(name):
        return ([0, 0] if _is_sequence(annotation) else 0, True) if required else (default, False)
    if KERNEL.search(name) and not isinstance(default, bool):
        return ([3, 3] if _is_sequence(annotation) else 3, True) if required else (default, False)
    if COUNT.search(name) and not isinstance(default, bool):
        return (2, True) if required else (default, False)
    if (required and name in ("dilation", "reduction", "scale")) or re.match(r"^(life|survival|keep)_prob", name):
        value = {"dilation": 1, "reduction": 4}.get(name, 1.0)  # a probability to keep: always keep
        return (value, True) if required else (default, False)
    return None


def _is_rate(param) -> bool:
    """A dropout or drop-path probability (not a dropout layer)."""
    name, default = param.name.lower(), param.default
    if not DROP.search(name) or name.endswith("_layer") or isinstance(default, bool):
        return False
    if default is None:
        return re.search(r"\b(float|int)\b", _annotation(param)) is not None
    if default is inspect.Parameter.empty:
        return not re.search(r"Module|Callable|Type", _annotation(param))
    return isinstance(default, (int, float))


def _spatial_value(param, spatial: int):
    default = param.default
    if isinstance(default, (tuple, list)):
        return type(default)([spatial] * len(default))
    if isinstance(default, int) and not isinstance(default, bool):
        return spatial
    annotation = _annotation(param)
    return spatial if annotation == "int" else (spatial, spatial)


def _layer_class(name: str):
    import torch.nn as nn

    if "norm" in name:
        return nn.BatchNorm2d
    if "conv" in name:
        return nn.Conv2d
    return nn.ReLU


def _wrapped(width: int):
    """A module for a wrapper block to wrap: a 3x3 conv that keeps the width."""
    import torch.nn as nn

    module = nn.Conv2d(width, width, 3, padding=1)
    module.resnetlint_label = f"<3x3 conv {width}->{width}>"
    setattr(module, GUESSED, True)
    return module


def _value_for(param, width_in: int, width_out: int, stride: int, hints: Dict[str, Any]):
    """A value for one constructor parameter: what its name says when it is
    never a width (heads, kernels, dropout...), then what the static model
    saw it used as (a width feeding the input layer, another width, a
    stride), then its name, then its default."""
    name = param.name.lower()
    default = param.default
    empty = isinstance(default, (tuple, list)) and not default
    if MAP_WIDTHS.match(name) and (empty or (default is inspect.Parameter.empty and _is_sequence(_annotation(param)))):
        return [width_in, width_out], True  # one width per map: two levels
    by_name = _by_name(param, name)
    if by_name is not None:
        return by_name
    if param.name in hints.get("stride_params", ()) or STRIDE.match(name):
        return ((stride, stride) if _is_sequence(_annotation(param)) else stride), True
    if param.name in hints.get("input_params", ()):
        return width_in, True
    if param.name in hints.get("width_params", ()):
        return width_out if not INPUT_WIDTH.match(name) else width_in, True
    if INPUT_WIDTH.match(name) or (name == "n" and param.default is inspect.Parameter.empty):
        return width_in, True  # (`n`: FrozenBatchNorm2d's width)
    if OUTPUT_WIDTH.match(name):
        return width_out, True
    if name == "input_size" and "hidden_size" in hints.get("_params", ()):
        return width_in, True  # a recurrent cell's input width, as in nn.GRU
    if SPATIAL_PARAM.match(name):
        return _spatial_value(param, (hints.get("spatial") or [16])[0]), True
    if default is not inspect.Parameter.empty:
        return default, False
    annotation = _annotation(param)
    if RATIO.search(name):
        return 4, True
    if name in ("groups", "num_groups"):
        return 1, True
    if name.startswith(("use_", "with_", "has_", "is_")) or annotation == "bool":
        return False, True
    if (WRAPPED.match(name) or re.search(r"\bModule\b", annotation)) and not re.search(r"Type|Callable", annotation):
        return _wrapped(width_in), True  # a module to wrap, not a class to instantiate
    if annotation == "int" or (not annotation and WIDTH_NAME.search(name)):
        return 16, True
    if name in ("eps", "epsilon") or name.endswith("_eps"):
        return 1e-5, True
    config = _config_object(param, hints, (width_in, width_out, stride))
    if config is not None:
        return config, True
    return None, False


def _config_object(param, hints: Dict[str, Any], grid: Tuple[int, int, int] = (16, 16, 1)):
    """A configuration object for an argument annotated with a class: built
    with its defaults (a dataclass with defaults, a ``PretrainedConfig``), else
    with each of its own arguments chosen as a block's are, for the same
    widths and stride (torchvision's ``FusedMBConvConfig(expand_ratio,
    kernel, stride, input_channels, out_channels, num_layers)``)."""
    annotation = param.annotation
    if isinstance(annotation, str):
        name = re.sub(r"^(Optional|typing\.Optional)\[(.*)\]$", r"\2", annotation.strip()).strip("'\"")
        annotation = (hints.get("_globals") or {}).get(name)
    if annotation is inspect.Parameter.empty and re.match(r"^(config|cfg|conf|args|hparams|params)$", param.name):
        annotation = _config_class(hints)
    if not isinstance(annotation, type) or annotation in (int, float, bool, str, tuple, list, dict,
                                                           inspect.Parameter.empty):
        return None
    import torch.nn as nn

    if issubclass(annotation, nn.Module):
        return None
    try:
        return annotation()
    except Exception:  # noqa: BLE001 - it needs arguments
        pass
    if hints.get("_in_config"):
        return None  # a configuration inside a configuration: not guessed
    own = dict(hints, _in_config=True, width_params=(), input_params=(), stride_params=(),
               _params=[p.name for p in _parameters(annotation)])
    kwargs = {}
    for field in _parameters(annotation):
        value, known = _value_for(field, *grid, own)
        if known:
            kwargs[field.name] = value
        elif field.default is inspect.Parameter.empty:
            return None
    try:
        config = annotation(**kwargs)
    except Exception:  # noqa: BLE001 - not a configuration these values make
        return None
    try:  # named by what was chosen: a run's configuration then says which widths it had
        config.resnetlint_label = f"{annotation.__name__}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    except Exception:  # noqa: BLE001 - slots, a frozen dataclass: the type's name will do
        pass
    return config


def _config_class(hints: Dict[str, Any], skip: Sequence[str] = ()):
    """For an unannotated ``config``: the module's configuration class, by
    convention a ``...Config`` class it imports (``BertEmbeddings`` ->
    ``BertConfig``), the one sharing the longest prefix with the block's name
    (``skip``: classes that did not do)."""
    found = _config_classes(hints, skip)
    return found[0] if found else None


def _config_classes(hints: Dict[str, Any], skip: Sequence[str] = ()) -> List[type]:
    block = hints.get("_class", "")
    found = [(name, value) for name, value in (hints.get("_globals") or {}).items()
             if isinstance(value, type) and re.search(r"(Config|Cfg|Args|Options|Settings)$", name)]

    def shared(name: str) -> int:
        return len(os.path.commonprefix([name, block]))

    found.sort(key=lambda item: (-shared(item[0]), len(item[0])))
    return [value for name, value in found if name not in skip]


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
    def label(value) -> str:
        if isinstance(value, type):
            return value.__name__
        found = getattr(value, "resnetlint_label", None)
        if found:
            return found
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - user code
            text = "\n"
        return text if len(text) <= 60 and "\n" not in text else f"<{type(value).__name__}>"

    inner = ", ".join(f"{k}={label(v)}" for k, v in kwargs.items())
    return f"{cls.__name__}({inner})"


# ----------------------------------------------------------------------------
# Running one configuration
# ----------------------------------------------------------------------------


def handle(request: Dict[str, Any], cache: Dict[str, Any]) -> Dict[str, Any]:
    import torch

    module = import_module(request, cache)
    if isinstance(module, list):
        return {"status": "import-error", "error": import_problem(module, request)}
    cls = getattr(module, request["class"], None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        return {"status": "class-not-found", "local_modules": local_modules(request),
                "error": f"{request['class']} is not an nn.Module in the imported module"}
    networks = cache.setdefault(("networks", request["file"]), {})
    with _soft_timeout(0):
        recorded = network_records(module, cls, request, networks)
    configs, problem = synthesize(cls, dict(request, _network=recorded))
    if not configs:
        return {"status": "no-config", "error": problem, "local_modules": local_modules(request)}
    device = request.get("device", "cpu")
    ran: List[Tuple[Dict[str, Any], Dict[str, Any]]] = []  # (configuration, its record)
    for config in configs:
        record = run_config(cls, config, request, device)
        ran.append((config, record))
        if record.get("construct_error", "").startswith(_Timeout.__name__):
            break  # a constructor too slow at these sizes is as slow at the next ones
        # The failed configuration stays: its error may be a finding's evidence.
        for _ in range(MAX_RETRIES):
            retry = _retry(cls, config, _failure(record), request)
            if retry is None:
                break
            config, record = retry, run_config(cls, retry, request, device)
            ran.append((config, record))
    runs = [record for _, record in ran]
    runs += _reaching(cls, ran, request, device)
    return {"status": "ok", "runs": runs, "local_modules": local_modules(request)}


MAX_REACHING = 4  # runs spent trying to reach layers a finding calls dead


def _reached_all(record: Dict[str, Any], layers: List[str]) -> bool:
    names = [n for run in record.get("runs", []) for n in run.get("live_calls", [])]
    return all(any(n == layer or n.startswith(layer + ".") for n in names) for layer in layers)


def _reaching(cls, ran, request: Dict[str, Any], device: str) -> List[Dict[str, Any]]:
    """When no run reached the layers a finding calls dead (a shortcut built
    only under a flag: `conv_shortcut=True`), the first configuration again
    with each boolean argument flipped, until one reaches them (at most 3)."""
    layers = request.get("reach") or []
    if not layers or any(_reached_all(r, layers) for _, r in ran):
        return []
    # The configurations that ran, by how many distinct widths they have (a
    # shortcut is often built only when the widths differ).
    built = [c for c, r in ran if "construct_error" not in r and not c.get("stochastic")
             and any(not run.get("forward_error") for run in r.get("runs", []))]
    built.sort(key=lambda c: -len({v for v in c["kwargs"].values() if isinstance(v, int) and not isinstance(v, bool)}))
    extra: List[Dict[str, Any]] = []
    for base in built[:2]:
        flags = [p for p in _parameters(cls) if isinstance(p.default, bool) and p.name not in base["kwargs"]]
        for param in flags[:3]:
            if len(extra) >= MAX_REACHING:
                return extra
            flipped = not param.default
            config = dict(base, kwargs={**base["kwargs"], param.name: flipped},
                          origin=f"{base['origin']}, `{param.name}={flipped}` (to reach {', '.join(layers)})")
            record = run_config(cls, config, request, device)
            extra.append(record)
            if _reached_all(record, layers):
                return extra
    return extra


MAX_RETRIES = 3  # a configuration retried with what its failure asked for (each retry may ask again)


def network_records(module, cls, request: Dict[str, Any], state: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The block's configurations as its module's network builds it (see
    :mod:`resnetlint.trace.networks`); none when that fails."""
    from . import networks

    if request.get("source") is not None or not request.get("networks", True):
        return []
    budget = max(1.0, request.get("config_timeout", 10.0) / 2)
    try:
        return networks.record(module, cls, request.get("device", "cpu"), budget, _soft_timeout, state)
    except Exception:  # noqa: BLE001 - user code: the block's own configurations still run
        return []


def import_problem(errors: List[str], request: Dict[str, Any]) -> str:
    """What went wrong importing the module, naming a missing module and
    what to do about it."""
    text = "; ".join(errors)
    match = re.search(r"No module named '([^']+)'", text)
    if match is None:
        return text
    missing = match.group(1)
    top = missing.partition(".")[0]
    try:
        installed = importlib.util.find_spec(top) if missing != top else None
    except (ImportError, ValueError):
        installed = None
    if installed is not None:
        where = os.path.dirname(installed.origin or "") or (list(installed.submodule_search_locations or [""])[0])
        return (f"could not import {missing}: `{top}` is installed ({where}) but has no `{missing[len(top) + 1:]}` "
                f"(an incomplete build?): install the project's dependencies in this environment ({text})")
    directory = os.path.dirname(os.path.abspath(request["file"]))
    while True:
        if os.path.isdir(os.path.join(directory, top)) or os.path.isfile(os.path.join(directory, top + ".py")):
            return (f"could not import {missing}: it is the project's own `{top}` in {directory}; add "
                    f"`--trace-path {directory}` (or `trace-path` in the configuration) ({text})")
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return f"could not import {missing}: install the project's dependencies in this environment ({text})"


def local_modules(request: Dict[str, Any]) -> List[str]:
    """The files of the project's modules imported so far (under the
    package root, the file's folder or a trace path): what the runs of the
    request depend on besides the file."""
    roots = {request.get("root"), os.path.dirname(os.path.abspath(request["file"]))}
    roots |= set(request.get("trace_paths") or ())
    prefixes = tuple(os.path.join(os.path.abspath(r), "") for r in roots if r)
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py") and path.startswith(prefixes):
            found.add(os.path.abspath(path))
    return sorted(found)


# A forward that refuses the widths it was given (a group or head count that
# must divide them): worth a wider configuration.
WIDTH_CONTRACT = re.compile(r"divisible|AssertionError|multiple of|negative dimension|num_heads|groups", re.IGNORECASE)


def _failure(record: Dict[str, Any]) -> str:
    """The constructor's error, else forward's when every run failed (and
    with a width contract), else ""."""
    if record.get("construct_error"):
        return record["construct_error"]
    errors = [run.get("forward_error", "") for run in record.get("runs", [])]
    if errors and all(errors) and WIDTH_CONTRACT.search(errors[0]):
        return errors[0]
    return ""


def _wider_factor(kwargs: Dict[str, Any], cls) -> int:
    """x8 (widths of 128) unless a head or group count of the configuration
    (or its defaults) does not divide that: then x24 (384 = 2^7 * 3)."""
    counts = []
    for param in _parameters(cls):
        value = kwargs.get(param.name, param.default)
        if isinstance(value, int) and not isinstance(value, bool) and value > 1 and \
                re.search(r"head|group", param.name.lower()) and "dim" not in param.name.lower():
            counts.append(value)
    return 8 if all(128 % count == 0 for count in counts) else 24


def _retry(cls, config: Dict[str, Any], error: str, request: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """One more configuration when construction failed for want of a value
    the grid does not try: a layer class for a ``*_layer=None`` argument the
    constructor calls anyway, or widths divisible by a head or group size."""
    kwargs = config["kwargs"]
    lacking = re.search(r"'(\w+)' object has no attribute", error)
    if lacking and config.get("tried_configs", 0) < 3:
        # A configuration object of the wrong class (`AltCLIPConfig` for a text
        # embedding): the module's next configuration class.
        for name, value in kwargs.items():
            if type(value).__name__ == lacking.group(1) and re.search(r"(Config|Cfg)$", lacking.group(1)):
                hints = {"_class": cls.__name__, "_globals": vars(sys.modules.get(cls.__module__)) or {}}
                tried = list(config.get("skipped_configs", ())) + [lacking.group(1)]
                for candidate in _config_classes(hints, tried):
                    try:
                        replacement = candidate()
                    except Exception:  # noqa: BLE001 - needs arguments
                        tried.append(candidate.__name__)
                        continue
                    return dict(config, kwargs={**kwargs, name: replacement}, skipped_configs=tried,
                                tried_configs=config.get("tried_configs", 0) + 1,
                                origin=f"{config['origin']}, `{name}` a {candidate.__name__}")
    if "NoneType" in error and "'NoneType' object is not callable" not in error:
        # An option left at None that the constructor uses anyway (`context_dim=None`): a value by its role.
        filled = {}
        for param in _parameters(cls):
            if param.default is None and param.name not in kwargs:
                value, known = _value_for(param.replace(default=inspect.Parameter.empty), 16, 16, 1, request)
                if known and value is not None and not isinstance(value, type):
                    filled[param.name] = value
        if filled:
            return dict(config, kwargs={**kwargs, **filled}, origin=f"{config['origin']}, with "
                        + ", ".join(f"`{k}`" for k in filled) + " set (the constructor needs a value)")
    if "'NoneType' object is not callable" in error:
        layers = {p.name: _layer_class(p.name.lower()) for p in _parameters(cls)
                  if p.default is None and p.name not in kwargs and LAYER_PARAM.match(p.name.lower())
                  and not ("norm" in p.name.lower() and "act" in p.name.lower())}
        if layers:
            return dict(config, kwargs={**kwargs, **layers}, origin=_guessed(config["origin"], layers))
    if error and WIDTH_CONTRACT.search(error) and not config.get("wider"):
        import torch.nn as nn

        if any(isinstance(v, nn.Module) for v in kwargs.values()):
            return None  # a projection built for the old widths
        widths = set(request.get("width_params", ())) | set(request.get("input_params", ()))
        factor = _wider_factor(kwargs, cls)
        wider = {k: v * factor for k, v in kwargs.items()
                 if isinstance(v, int) and not isinstance(v, bool) and v > 1
                 and (k in widths or INPUT_WIDTH.match(k.lower()) or OUTPUT_WIDTH.match(k.lower()))}
        if wider:
            return dict(config, kwargs={**kwargs, **wider}, wider=True,
                        origin=f"{config['origin']}, widths x{factor} (the block needs wider or divisible widths)")
    return None


def _build(cls, kwargs: Dict[str, Any], request: Dict[str, Any], device: str):
    import torch

    torch.manual_seed(0)
    try:
        with _soft_timeout(request.get("config_timeout", 0)):
            if device == "meta":
                with torch.device("meta"):
                    return cls(**kwargs), None
            return cls(**kwargs).to(device), None
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt,)):
            raise
        return None, _describe(exc)


# Errors that say the input has the wrong number of dimensions (or their order).
RANK_ERROR = re.compile(r"not enough values to unpack|too many values to unpack|permute|Dimension out of range|"
                        r"\b[2-5]D\b|\b[2-5]-dimensional", re.IGNORECASE)
# Layouts whose channels are the last dimension.
CHANNELS_LAST = frozenset({"tokens", "tokens+cls", "NHWC"})
# Constructor arguments that are the number of tokens a block expects.
TOKENS = re.compile(r"^(seq_len|seq_length|num_tokens|n_tokens|num_patches|tokens)$")
# Errors of a call whose extra arguments did not suit: try the other values.
RESOURCE_ERROR = re.compile(r"can't allocate memory|out of memory|MemoryError|_Timeout", re.IGNORECASE)
ARGUMENT_ERROR = re.compile(r"NoneType|argument|positional|TypeError|AttributeError|\bNone\b|\brequired\b", re.IGNORECASE)


def run_config(cls, config: Dict[str, Any], request: Dict[str, Any], device: str) -> Dict[str, Any]:
    kwargs = config["kwargs"]
    record: Dict[str, Any] = {"config": describe_config(cls, kwargs), "origin": config["origin"], "runs": []}
    if config.get("stochastic"):
        record["stochastic"] = True
    record["bound"] = bound_arguments(cls, kwargs)
    block, error = _build(cls, kwargs, request, device)
    if error is not None:
        record["construct_error"] = error
        return record
    record["attrs"] = plain_attributes(block)
    block.train()
    # What a checkpoint of this configuration holds (a safe fix must keep it).
    record["state"] = {name: list(tensor.shape) for name, tensor in block.state_dict().items()}
    layer, exact = _input_layer(block, request.get("input_hint"))
    shape = input_shape(block, request.get("input_hint"), layer)
    width_arg = next((k for k, v in kwargs.items() if isinstance(v, int) and not isinstance(v, bool)
                      and (INPUT_WIDTH.match(k.lower()) or k in request.get("input_params", ()))), None)
    guess = ""  # why the input is not simply what the block's first layer says
    if shape is None:
        # No layer states a width (a norm with raw parameters, a pooling): an image.
        shape, guess = (4, kwargs[width_arg] if width_arg else 16), "guessed NCHW"
    elif not exact and width_arg and shape[1] != kwargs[width_arg]:
        # The first layer found inside the block reads part of the input (a split
        # branch, a position-bias MLP): the block's input width argument says more.
        shape, guess = (shape[0], kwargs[width_arg]), f"width of `{width_arg}`"
    dims = next((v for k, v in kwargs.items() if DIMENSIONS.match(k.lower()) and isinstance(v, int)
                 and not isinstance(v, bool) and 1 <= v <= 3), None)
    if dims is not None and shape[0] != dims + 2:
        # Built for `spatial_dims` dimensions (monai): an image or a volume whatever layer comes first.
        shape = (dims + 2, kwargs[width_arg] if width_arg else shape[1])  # the block's own word: no guess
    layout = {1: "ids", 2: "tokens", 4: "NCHW"}.get(shape[0], "")
    if request.get("channels_last") and shape[0] in (3, 4):
        # The block moves the input's axes before its first layer (tokens
        # transposed into a Conv1d): its own word, not a guess.
        layout = "tokens" if shape[0] == 3 else "NHWC"
    if layout == "ids":
        request = dict(request, _ids=shape[1])
    if config.get("input"):
        record["runs"].append(_run_recorded(block, config, device, request))
        return record
    alternatives = forward_extras(block, device, shape[1])
    extras = alternatives[0]
    tokens = next((v for k, v in kwargs.items() if TOKENS.match(k.lower()) and isinstance(v, int)), None)
    sized = any(SIZE_ARG.match(name.lower()) or SIDE_ARG.match(name) for name in extras)
    if tokens is None and (config.get("spatial") or sized):
        tokens = 0  # the tokens of an s x s feature map
    spatials = list(config.get("spatial") or request.get("spatial", [16, 15]))
    if layout.startswith("tokens") and config.get("token_side"):
        spatials = [config["token_side"]]
    takes_maps = _maps_input(block)
    maps = _map_widths(kwargs, shape[1]) if takes_maps == "annotated" else None
    if maps and maps[1] and not config.get("spatial"):
        spatials = [16, 24]  # sizes every level of a pyramid halves evenly
    for index, spatial in enumerate(spatials):
        size = _maps_size(*maps, spatial) if maps else _size(layout, shape, spatial, tokens)
        result = run_once(block, size, device, request, _made(extras, spatial, size))
        if index == 0 and len(alternatives) > 1 and ARGUMENT_ERROR.search(result.get("forward_error", "")):
            # Optional arguments left out (or a mask as None) did not do: the other values.
            for alternative in alternatives[1:]:
                attempt = run_once(block, size, device, request, _made(alternative, spatial, size))
                if not attempt.get("forward_error") or RESOURCE_ERROR.search(attempt["forward_error"]):
                    # Forward ran (backward may still fail), or got past its arguments to run
                    # out of memory or time: that is the failure to report (a shape error with
                    # made-up arguments is not).
                    extras, result = alternative, attempt
                    break
        if index == 0 and not maps and takes_maps and not _ran(result):
            # A forward that indexes its input (HRNet's branches): a list of maps instead.
            maps = _map_widths(kwargs, shape[1])
            size = _maps_size(*maps, 16 if maps[1] else spatial)
            attempt = run_once(block, size, device, request, _made(extras, spatial, size))
            if _ran(attempt):
                result, spatials[index + 1:] = attempt, ([24] if maps[1] else spatials[index + 1:])
            else:
                maps = None
        if index == 0 and not maps and RANK_ERROR.search(result.get("forward_error", "")):
            # The block does not take the layout its first layer suggests: try the others once.
            for other in _other_layouts(layout, layer, result.get("forward_error", "")):
                # Judged at a size unlike the width: (2, 16, 16, 16) reads the same either way.
                probe = spatial - 1 if spatial == shape[1] and not config.get("spatial") else spatial
                size = _size(other, shape, probe, tokens or 0)
                attempt, used = run_once(block, size, device, request, _made(extras, probe, size)), probe
                if probe != spatial and _ran(attempt):
                    size, used = _size(other, shape, spatial, tokens or 0), spatial
                    attempt = run_once(block, size, device, request, _made(extras, spatial, size))
                side = _side_multiple(attempt.get("forward_error", ""), used)
                if side:  # the layout it takes, at a size its windows tile
                    size = _size(other, shape, side, tokens or 0)
                    attempt = run_once(block, size, device, request, _made(extras, side, size))
                    spatials[index + 1:] = [] if _ran(attempt) else spatials[index + 1:]
                if _ran(attempt):
                    layout, tokens, result = other, tokens or 0, attempt
                    guess = ", ".join(filter(None, [guess, f"{other} (tried after the first layout failed)"]))
                    break
        side = _side_multiple(result.get("forward_error", ""), spatial) if index == 0 else None
        if side and layout != "ids" and not maps:
            # Windows or patches that must tile the map ("height (16) must be divisible by
            # window (5)"): one size they tile, and no other.
            size = _size(layout, shape, side, tokens)
            attempt = run_once(block, size, device, request, _made(extras, side, size))
            if _ran(attempt):
                result, spatials[index + 1:] = attempt, []
        if guess:
            result["layout"] = guess  # verdicts and trace-only findings know it was a guess
        if layout in CHANNELS_LAST:
            result["channels_last"] = True  # the add's dimensions mean other things
        record["runs"].append(result)
    return record


SIDE_MULTIPLE = re.compile(r"(?:divisible by|multiple of)\D{0,40}?(\d+)", re.IGNORECASE)


def _side_multiple(error: str, spatial: int) -> Optional[int]:
    """The feature-map side a forward that wants its size divisible by N
    takes: the multiple of N nearest the usual size (None: not such an error)."""
    match = SIDE_MULTIPLE.search(error)
    multiple = int(match.group(1)) if match else 0
    if multiple < 2 or multiple > 64 or spatial % multiple == 0:
        return None
    return multiple * max(1, round(spatial / multiple))


def _made(extras: Dict[str, Any], spatial: int, size: List[Any]) -> Dict[str, Any]:
    """The extra forward arguments for one input (a list of maps: its first)."""
    size = size[0] if size and isinstance(size[0], list) else size
    return {name: make(spatial, size) for name, make in extras.items()}


def _run_recorded(block, config: Dict[str, Any], device: str, request: Dict[str, Any]) -> Dict[str, Any]:
    """One run on the input the network gave the block (batch 2, so batch
    statistics exist), its extra tensors at their recorded shapes."""
    import torch

    def batched(shape):
        return [2] + list(shape[1:]) if shape and shape[0] == 1 else list(shape)

    def remade(described):
        if "shape" in described:
            dtype = getattr(torch, described.get("dtype", "float32"), torch.float32)
            if dtype.is_floating_point:
                return torch.randn(*batched(described["shape"]), device=device, dtype=dtype)
            return torch.zeros(*batched(described["shape"]), device=device, dtype=dtype)
        value = described.get("value")
        return tuple(value) if described.get("tuple") else value

    extra = {name: remade(described) for name, described in config.get("extra_kwargs", {}).items()}
    params = []
    try:
        params = list(inspect.signature(block.forward).parameters)[1:]
    except (TypeError, ValueError):
        pass
    for name, described in zip(params, config.get("extra_args", [])):
        extra[name] = remade(described)
    return run_once(block, batched(config["input"]), device, request, extra)


def bound_arguments(cls, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Every constructor argument of this configuration, defaults included,
    as JSON values (what a finding's conditions are evaluated over; other
    values are named by their type)."""
    try:
        signature = inspect.signature(cls.__init__)
        bound = signature.bind(None, **kwargs)
        bound.apply_defaults()
    except (TypeError, ValueError):
        return {name: _plain(value) for name, value in kwargs.items()}
    names = list(signature.parameters)
    return {name: _plain(value) for name, value in list(bound.arguments.items())[1:]
            if name != names[0] and signature.parameters[name].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                             inspect.Parameter.VAR_KEYWORD)}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and len(value) <= 8 and all(
            v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    return f"<{type(value).__name__}>"


def plain_attributes(block) -> Dict[str, Any]:
    """The block's numeric attributes (``self.expansion``, ``self.stride``):
    a condition may name them."""
    found: Dict[str, Any] = {}
    names = set(getattr(block, "__dict__", {})) | {n for n in dir(type(block)) if not n.startswith("_")}
    for name in sorted(names):
        if name.startswith("_") or name in ("training", "dump_patches", "call_super_init"):
            continue
        try:
            value = getattr(block, name)
        except Exception:  # noqa: BLE001 - a property that raises
            continue
        if isinstance(value, (bool, int, float)) or (isinstance(value, tuple) and len(value) <= 4
                                                     and all(isinstance(v, int) for v in value)):
            found[name] = list(value) if isinstance(value, tuple) else value
    return found


def _ran(result: Dict[str, Any]) -> bool:
    return not result.get("forward_error") and not result.get("backward_error")


def _size(layout: str, shape: Tuple[int, int], spatial: int, tokens: Optional[int]) -> List[int]:
    rank, channels = shape
    if layout == "ids":
        return [2, 8]  # token ids (the vocabulary size is the "channels")
    if layout == "tokens":
        return [2, tokens or (spatial * spatial if tokens == 0 else 8), channels]
    if layout == "tokens+cls":  # a class token before the s x s patch tokens (CoaT, CaiT)
        return [2, spatial * spatial + 1, channels]
    if layout == "NHWC":
        return [2, spatial, spatial, channels]
    if layout == "NCDHW":  # a volume (kept small: s/2 on each side)
        return [2, channels] + [max(4, spatial // 2)] * 3
    if layout == "NCL":  # a sequence of feature vectors (B, C, T)
        return [2, channels, spatial]
    if layout == "NCHW":
        return [2, channels, spatial, spatial]
    return [2, channels] + [spatial] * (rank - 2)


# A forward whose input is a list of feature maps (`x: list[torch.Tensor]`).
MAPS_INPUT = re.compile(r"(list|sequence|tuple|iterable)\[.*tensor", re.IGNORECASE)


def _maps_input(block) -> Optional[str]:
    """Whether forward takes a list of feature maps: "annotated" (``x:
    list[Tensor]``), "indexed" (its input is iterated, measured with len or
    indexed by a number or a loop variable: HRNet's branches), else None."""
    try:
        first = next(iter(inspect.signature(block.forward).parameters.values()))
    except (TypeError, ValueError, StopIteration):
        return None
    if MAPS_INPUT.search(_annotation(first)):
        return "annotated"
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(type(block).forward)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    name = first.name

    def is_input(node) -> bool:
        return isinstance(node, ast.Name) and node.id == name

    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.comprehension)) and is_input(node.iter):
            return "indexed"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("len", "enumerate", "zip") \
                and any(is_input(arg) for arg in node.args):
            return "indexed"
        if isinstance(node, ast.Subscript) and is_input(node.value) and isinstance(node.slice, (ast.Name, ast.Constant)) \
                and not (isinstance(node.slice, ast.Constant) and node.slice.value is Ellipsis):
            return "indexed"
    return None


def _map_widths(kwargs: Dict[str, Any], width: int) -> Tuple[List[int], bool]:
    """The widths of the feature maps a forward taking a list of them gets,
    and whether they form a pyramid: the configuration's list of widths
    (``ch=(16, 32)``, ``in_channels_list``: levels, each half the size of the
    one before), else the input width cut in two (a tree's children,
    concatenated: the same size)."""
    for name, value in kwargs.items():
        if (MAP_WIDTHS.match(name) or LIST_PARAM.search(name)) and isinstance(value, (list, tuple)) \
                and len(value) >= 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            return list(value), True
    return [max(1, width // 2), max(1, width - width // 2)], False


def _maps_size(widths: List[int], pyramid: bool, spatial: int) -> List[List[int]]:
    return [[2, width, max(2, spatial >> (level * pyramid)), max(2, spatial >> (level * pyramid))]
            for level, width in enumerate(widths)]


def _other_layouts(layout: str, layer, error: str = "") -> List[str]:
    import torch.nn as nn

    volumes = ["NCDHW"] if re.search(r"\b5D\b|5-dimensional|3-d|volume", error, re.IGNORECASE) else []
    sequences = ["NCL"] if re.search(r"\b3D\b|3-dimensional|1-d", error, re.IGNORECASE) else []
    if layout == "tokens":
        # A plain LayerNorm first normalizes the last dimension: channels last.
        return (["NHWC", "NCHW"] if type(layer) is nn.LayerNorm else ["NCHW", "NHWC"]) + ["tokens+cls"] + volumes
    if layout.startswith("NCHW"):
        return ["tokens", "tokens+cls", "NHWC"] + volumes + sequences
    return volumes + sequences


def _input_layer(block, hint: Optional[str]):
    """(layer, exact): the layer the static model saw consuming the input,
    else the first layer that states a width; exact when it is the one the
    static model named."""
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
    widths = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
              nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.GroupNorm, nn.Linear,
              nn.Embedding)
    for root in candidates:
        if not isinstance(root, nn.Module):
            continue
        for layer in root.modules():
            if isinstance(layer, widths) or (isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) == 1):
                return layer, layer is candidates[0] and len(candidates) > 1
    return None, False


def input_shape(block, hint: Optional[str], layer=None) -> Optional[Tuple[int, int]]:
    """(rank, channels) of the input, from its first layer (see ``_input_layer``)."""
    import torch.nn as nn

    layer = layer if layer is not None else _input_layer(block, hint)[0]
    if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                          nn.ConvTranspose3d)):
        rank = {nn.Conv1d: 3, nn.ConvTranspose1d: 3, nn.Conv3d: 5, nn.ConvTranspose3d: 5}.get(type(layer), 4)
        return rank, layer.in_channels
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.GroupNorm)):
        rank = {nn.BatchNorm1d: 3, nn.BatchNorm3d: 5}.get(type(layer), 4)
        return rank, getattr(layer, "num_features", getattr(layer, "num_channels", 0))
    if isinstance(layer, nn.Linear):
        return 2, layer.in_features
    if isinstance(layer, nn.LayerNorm):
        return 2, layer.normalized_shape[0]
    if isinstance(layer, nn.Embedding):
        return 1, layer.num_embeddings  # token ids below the vocabulary size
    return None


def run_once(block, size: List[int], device: str, request: Dict[str, Any],
             extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    import torch

    maps = size if size and isinstance(size[0], list) else None
    result: Dict[str, Any] = {"input": list(maps[0] if maps else size)}
    if maps:
        result["inputs"] = [list(m) for m in maps]  # a list of feature maps: "input" is the first
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
        if request.get("_ids") and not maps:
            tensors = [torch.randint(0, request["_ids"], size, device=device)]  # token ids: no gradient
        else:
            # Not leaves: in-place changes are allowed and visible in _version.
            tensors = [torch.randn(*m, device=device, requires_grad=True) * 1.0 for m in (maps or [size])]
        x = tensors if maps else tensors[0]
        version = [t._version for t in tensors]
        with _soft_timeout(request.get("config_timeout", 0)):
            out = block(x, **(extra or {}))
        if device == "cuda":
            torch.cuda.synchronize()
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["forward_error"] = _describe(exc)
        result["raised_in"] = active[-1] if active else ""
        _remove(handles)
        return result
    result["input_mutated"] = [t._version for t in tensors] != version
    tensor = _first_tensor(out)
    if tensor is None:
        _remove(handles)
        result["output"] = type(out).__name__
        return result
    result["output_shape"] = list(tensor.shape)
    if tensor.is_floating_point() and device != "meta":
        # Same seed, same weights, same input: equal code gives an equal sum.
        result["output_sum"] = float(tensor.detach().double().sum())
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
    owner = lambda n: n.rsplit(".", 1)[0] if "." in n else n  # noqa: E731 - `conv.weight` -> `conv`
    result["no_grad"] = sorted({owner(n) for n, p in block.named_parameters() if p.requires_grad and p.grad is None})
    result["grad"] = sorted({owner(n) for n, p in block.named_parameters() if p.grad is not None})
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
