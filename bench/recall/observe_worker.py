"""Runs original and mutant blocks with torch (a quality check of the
operators: does the planted bug change anything observable?).  Started by
``observe.py`` as ``python observe_worker.py JOB.json`` with the corpus
package on ``PYTHONPATH``; imports only torch and that package.

For each mutant the worker imports the original module, loads the mutant
text as a sibling module of the same package (so its relative imports
work), builds both classes with a few synthesized configurations, copies
the original's weights into the mutant where names and shapes agree, runs
both in training mode on the same input, then backward, and prints one
JSON line: whether the mutant fails to build or run, gives another output
(shape or values), leaves parameters without gradient, has parameters whose
gradient is zero (a bias cancelled by BatchNorm), modifies its input, or
breaks autograd.
"""
import importlib
import importlib.util
import inspect
import json
import sys
import traceback

import torch

WIDTH_IN = ("in_channels", "in_chs", "inplanes", "inp", "in_planes", "c1", "channels", "in_ch", "dim")
WIDTH_OUT = ("out_channels", "out_chs", "planes", "oup", "out_planes", "c2", "out_ch")
WIDTH_MID = ("mid_channels", "exp_channels", "hidden_dim", "mid_chs", "bottleneck_width", "hidden_channels")
CONFIGS = ({"in": 32, "out": 32, "stride": 1}, {"in": 32, "out": 64, "stride": 2}, {"in": 32, "out": 64, "stride": 1},
           {"in": 64, "out": 64, "stride": 2})


def _arguments(cls, config):
    kwargs = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in WIDTH_IN:
            kwargs[name] = config["in"]
        elif name in WIDTH_OUT:
            kwargs[name] = config["out"]
        elif name in WIDTH_MID:
            kwargs[name] = 64
        elif name == "stride" or name.endswith("_stride") and param.default is param.empty:
            kwargs[name] = config["stride"]
        elif param.default is not param.empty:
            continue
        elif name in ("kernel_size", "ksize"):
            kwargs[name] = 3
        elif name in ("padding", "dilation"):
            kwargs[name] = 1
        elif name in ("groups", "cardinality"):
            kwargs[name] = 1
        elif name in ("activation", "act_layer"):
            kwargs[name] = lambda: torch.nn.ReLU()  # pytorchcv: a generator function
        elif name in ("reduction", "expansion", "expand_ratio", "exp_factor", "ratio", "bottleneck_factor"):
            kwargs[name] = 4
        elif name.endswith(("_rate", "_prob")):
            kwargs[name] = 0.0
        elif (name.startswith(("use_", "with_", "is_", "remove_", "has_", "apply_")) or name.endswith("_first")
              or name in ("bottleneck", "conv1_stride", "bias", "resize_identity", "identity", "residual")):
            kwargs[name] = False
        else:
            raise LookupError(f"cannot synthesize `{name}`")
    return kwargs


def _resolve(module, qualname):
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _run(cls, kwargs, channels, seed=0):
    torch.manual_seed(seed)
    block = cls(**kwargs)
    block.train()
    return block


def _observe_config(original_cls, mutant_cls, kwargs, channels):
    result = {}
    torch.manual_seed(0)
    a = original_cls(**kwargs)
    try:
        torch.manual_seed(0)
        b = mutant_cls(**kwargs)
    except Exception as error:  # noqa: BLE001 - any failure is the observation
        return {"build": f"{type(error).__name__}: {str(error)[:120]}"}
    a_state = a.state_dict()
    b.load_state_dict({k: v for k, v in a_state.items()
                       if k in b.state_dict() and b.state_dict()[k].shape == v.shape}, strict=False)
    a.train()
    b.train()
    torch.manual_seed(1)
    x = torch.randn(2, channels, 32, 32)
    xa, xb = x.clone().requires_grad_(False), x.clone()
    ya = a(xa)
    try:
        yb = b(xb)
    except Exception as error:  # noqa: BLE001
        return {"forward": f"{type(error).__name__}: {str(error)[:120]}"}
    if not torch.equal(xb, x):
        result["input"] = "modified in place"
    if isinstance(ya, torch.Tensor) and isinstance(yb, torch.Tensor):
        if ya.shape != yb.shape:
            result["output"] = f"shape {tuple(yb.shape)} vs {tuple(ya.shape)}"
        elif not torch.allclose(ya, yb, atol=1e-5, rtol=1e-4):
            result["output"] = "values differ"
        try:
            (yb.float() * torch.linspace(0, 1, yb.numel()).reshape(yb.shape)).sum().backward()
        except Exception as error:  # noqa: BLE001
            result["backward"] = f"{type(error).__name__}: {str(error)[:120]}"
            return result
        (ya.float() * torch.linspace(0, 1, ya.numel()).reshape(ya.shape)).sum().backward()
        a_grads = {n: p.grad for n, p in a.named_parameters()}
        unused = [n for n, p in b.named_parameters() if p.grad is None and a_grads.get(n) is not None]
        if unused:
            result["unused"] = unused[:4]
        largest = max((float(p.grad.abs().max()) for p in b.parameters() if p.grad is not None), default=0.0)
        # a new parameter whose gradient is float noise next to the others: a bias BatchNorm cancels
        zero = [n for n, p in b.named_parameters()
                if p.grad is not None and n not in a_grads and float(p.grad.abs().max()) <= 1e-5 * max(largest, 1.0)]
        if zero:
            result["zero-grad"] = zero[:4]
    return result


def observe(item):
    original = importlib.import_module(item["module"])
    package = item["module"].rsplit(".", 1)[0]
    name = f"{package}.__recall_mutant__"
    spec = importlib.util.spec_from_file_location(name, item["mutant_file"])
    mutant = importlib.util.module_from_spec(spec)
    sys.modules[name] = mutant
    try:
        spec.loader.exec_module(mutant)
        original_cls, mutant_cls = _resolve(original, item["qualname"]), _resolve(mutant, item["qualname"])
        tried = []
        for config in CONFIGS:
            try:
                kwargs = _arguments(original_cls, config)
                block = _run(original_cls, kwargs, config["in"])
                block(torch.randn(2, config["in"], 32, 32))
            except Exception as error:  # noqa: BLE001 - this configuration is not valid for the original
                tried.append(f"{config}: {type(error).__name__}: {str(error)[:80]}")
                continue
            observed = _observe_config(original_cls, mutant_cls, kwargs, config["in"])
            tried.append({"config": kwargs, "observed": observed})
            if observed:
                return {"id": item["id"], "status": "differs", "config": str(kwargs), "observed": observed}
        ran = [t for t in tried if isinstance(t, dict)]
        if not ran:
            return {"id": item["id"], "status": "original does not run", "tried": [str(t) for t in tried][:4]}
        return {"id": item["id"], "status": "no difference", "tried": [str(t["config"]) for t in ran]}
    except Exception:  # noqa: BLE001
        return {"id": item["id"], "status": "error", "detail": traceback.format_exc()[-400:]}
    finally:
        sys.modules.pop(name, None)


def main():
    with open(sys.argv[1], encoding="utf-8") as fh:
        job = json.load(fh)
    torch.set_num_threads(1)
    for item in job["items"]:
        print(json.dumps(observe(item)), flush=True)


if __name__ == "__main__":
    main()
