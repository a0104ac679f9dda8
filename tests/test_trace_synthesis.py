"""The trace's configurations and imports: what a block is built with and
fed, and that the traced package (only it) is imported from its folder."""
from __future__ import annotations

import inspect
import textwrap
import typing
from typing import Optional, Tuple

import pytest

from resnetlint.api import Settings, check_paths
from resnetlint.findings import Confirmation, Finding
from resnetlint.trace import TraceOptions, _trace_only_findings
from resnetlint.trace.verdict import judge

from helpers import ROOT

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.trace

from resnetlint.trace import worker  # noqa: E402  (imports torch lazily, but only with torch installed)

DATA = ROOT / "tests" / "data" / "trace"
REQUEST = {"call_sites": [], "input_hint": None, "width_params": [], "input_params": [], "stride_params": [],
           "natural": {}, "spatial": [16, 15], "config_timeout": 0, "max_configs": 8}


def traced(paths, **options):
    options.setdefault("mode", "on")
    return check_paths([str(p) for p in paths], Settings(trace=TraceOptions(**options)))


def value(signature: str, name: str, hints=None, width_in=16, width_out=32, stride=1):
    """_value_for of parameter ``name`` of ``def f(signature)``."""
    namespace = {"Optional": Optional, "Tuple": Tuple, "nn": nn}
    exec(f"def f({signature}): pass", namespace)
    param = inspect.signature(namespace["f"]).parameters[name]
    return worker._value_for(param, width_in, width_out, stride, dict(REQUEST, **(hints or {})))


def run(cls, request=None):
    """Every configuration of ``cls``, built and run in this process."""
    request = dict(REQUEST, **(request or {}))
    configs, problem = worker.synthesize(cls, request)
    assert configs, problem
    records = []
    for config in configs:
        records.append(worker.run_config(cls, config, request, "cpu"))
        retry = worker._retry(cls, config, worker._failure(records[-1]), request)
        if retry is not None:
            records.append(worker.run_config(cls, retry, request, "cpu"))
    return records


def clean(records):
    return [(r["config"], run["input"]) for r in records if "construct_error" not in r
            for run in r["runs"] if not run.get("forward_error") and not run.get("backward_error")]


# ----------------------------------------------------------------------------
# Import isolation
# ----------------------------------------------------------------------------

BLOCK = """
    import colorsys  # a stdlib module the worker has not imported yet

    import torch.nn as nn

    from .helpers import WIDTH


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c * WIDTH, 3)  # no padding: the add fails

        def forward(self, x):
            return x + self.conv(x)
"""


def test_a_sibling_folder_does_not_shadow_installed_modules(tmp_path):
    # An unbuilt copy of a library beside the traced package (torchvision/ beside
    # timm/) used to win over the installed one: every import failed.
    (tmp_path / "colorsys").mkdir()
    (tmp_path / "colorsys" / "__init__.py").write_text("raise ImportError('the shadowing copy was imported')\n")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("WIDTH = 1\n")
    (package / "block.py").write_text(textwrap.dedent(BLOCK))
    run = traced([package / "block.py"])
    statuses = [(f.code, f.confirmation.status, f.confirmation.detail) for f in run.findings]
    assert statuses and all(status == "confirmed" for _, status, _ in statuses), statuses  # relative import too


def test_a_loose_file_still_loads_by_path_with_its_siblings(tmp_path):
    (tmp_path / "widths.py").write_text("WIDTH = 1\n")
    (tmp_path / "loose.py").write_text(textwrap.dedent(BLOCK).replace("from .helpers import", "from widths import"))
    run = traced([tmp_path / "loose.py"])
    assert run.findings and all(f.confirmation.status == "confirmed" for f in run.findings), \
        [f.confirmation for f in run.findings]


# ----------------------------------------------------------------------------
# Values for constructor arguments
# ----------------------------------------------------------------------------


def test_head_counts_kernels_and_padding_are_never_widths():
    assert value("dim, num_heads", "num_heads", {"width_params": ["num_heads"]}) == (2, True)
    assert value("dim, heads=8", "heads") == (2, True)
    assert value("dim, focal_window: int, focal_level: int", "focal_window", {"width_params": ["focal_window"]}) \
        == (3, True)
    assert value("dim, focal_window: int, focal_level: int", "focal_level") == (2, True)
    assert value("dim, kernel_size, padding", "padding") == (1, True)
    assert value("dim, window_size=7", "window_size") == (7, False)  # a default is kept
    assert value("dim, window_size: List[int]", "window_size") == ([3, 3], True)


def test_dropout_rates_and_layer_scale():
    assert value("dim, dropout: float", "dropout") == (0.0, True)
    assert value("dim, drop_path", "drop_path") == (0.0, True)
    assert value("dim, drop_path: Optional[float] = None", "drop_path") == (0.0, True)
    # timm's `drop_path=None` is a DropPath module: the default stays
    assert value("dim, drop_path: Optional[nn.Module] = None", "drop_path") == (None, False)
    assert value("dim, drop_block=None", "drop_block") == (None, False)
    assert value("dim, layer_scale: float", "layer_scale") == (1e-6, True)
    assert value("dim, ls_init_value=None", "ls_init_value") == (None, False)


def test_layer_arguments_get_a_layer_class():
    assert value("dim, norm_layer", "norm_layer") == (nn.BatchNorm2d, True)
    assert value("dim, act_layer", "act_layer") == (nn.ReLU, True)
    assert value("dim, activation_layer", "activation_layer") == (nn.ReLU, True)
    assert value("dim, conv_layer", "conv_layer") == (nn.Conv2d, True)
    assert value("dim, norm_layer=None", "norm_layer") == (None, False)  # filled in only when called anyway


def test_string_annotations_and_spatial_sizes():
    # (this module has `from __future__ import annotations`: they are all strings)
    assert value("dim, feat_size", "feat_size") == ((16, 16), True)
    assert value("dim, input_resolution: Tuple[int, int]", "input_resolution") == ((16, 16), True)
    assert value("dim, resolution=14", "resolution") == (16, True)
    assert value("dim, q_stride: Optional[Tuple[int, int]] = None", "q_stride", {"stride_params": ["q_stride"]},
                 stride=2) == ((2, 2), True)
    assert value("dim, flag: bool", "flag") == (False, True)
    assert value("dim, count: int", "count") == (16, True)
    # a recurrent cell's input_size is a width, as in nn.GRU
    assert value("input_size, hidden_size", "input_size", {"_params": ["input_size", "hidden_size"]}) == (16, True)


# ----------------------------------------------------------------------------
# Building and running
# ----------------------------------------------------------------------------


class NoneNorm(nn.Module):
    def __init__(self, dim, norm_layer=None, act_layer=None):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.norm = norm_layer(dim)
        self.act = act_layer()

    def forward(self, x):
        return x + self.act(self.norm(self.conv(x)))


class Grouped(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.norm = nn.GroupNorm(32, dim)

    def forward(self, x):
        return x + self.norm(self.conv(x))


def test_a_layer_argument_the_constructor_calls_anyway_is_retried_with_a_layer():
    records = run(NoneNorm)
    assert "NoneType" in records[0]["construct_error"]
    retried = records[1]
    assert retried["config"] == "NoneNorm(dim=16, norm_layer=BatchNorm2d, act_layer=ReLU)"
    assert "guessed `norm_layer`" in retried["origin"]  # no caller's: no trace-only finding from it
    assert clean(records)


def test_widths_that_must_be_divisible_are_retried_wider_and_the_failure_stays():
    records = run(Grouped)
    assert "divisible" in records[0]["construct_error"]  # still there: it may be a finding's evidence
    assert records[1]["config"] == "Grouped(dim=128)" and clean([records[1]])


class WrapsModule(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class TakesSize(nn.Module):
    """Tokens with their H and W (xcit, twins, coat)."""

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        feat = x.transpose(1, 2).reshape(B, C, H, W)
        return x + self.proj(feat).flatten(2).transpose(1, 2)


class ChannelsLast(nn.Module):
    """NHWC with a LayerNorm first (swin, convnext blocks)."""

    def __init__(self, dim, input_resolution):
        super().__init__()
        self.input_resolution = input_resolution
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Linear(dim, dim)

    def forward(self, x):
        B, H, W, C = x.shape
        assert (H, W) == tuple(self.input_resolution)
        return x + self.mlp(self.norm(x))


class Image(nn.Module):
    """NCHW although the first layer found is a LayerNorm over channels."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x):
        B, C, H, W = x.shape
        return x + self.conv(self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


class RotaryAttention(nn.Module):
    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.head_dim = hidden_size // num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.o_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states, attention_mask=None, position_embeddings=None):
        cos, sin = position_embeddings
        batch, tokens, _ = hidden_states.shape
        shape = (batch, tokens, -1, self.head_dim)
        q, k, v = (proj(hidden_states).view(shape).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))
        q = q * cos.unsqueeze(1) + q.flip(-1) * sin.unsqueeze(1)
        k = k * cos.unsqueeze(1) + k.flip(-1) * sin.unsqueeze(1)
        weights = (q @ k.transpose(-1, -2) / self.head_dim ** 0.5).softmax(-1)
        return self.o_proj((weights @ v).transpose(1, 2).reshape(batch, tokens, -1))


class RotaryDecoderLayer(nn.Module):
    """A decoder layer handed the network's rotary (cos, sin) (Llama and its kin)."""

    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(hidden_size)
        self.self_attn = RotaryAttention(hidden_size, num_heads)
        self.post_attention_layernorm = nn.LayerNorm(hidden_size)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, 2 * hidden_size), nn.GELU(), nn.Linear(2 * hidden_size, hidden_size))

    def forward(self, hidden_states, attention_mask: Optional[torch.Tensor] = None,
                position_ids: Optional[torch.Tensor] = None,
                position_embeddings: Optional[Tuple[torch.Tensor, torch.Tensor]] = None):
        residual = hidden_states
        hidden_states = self.self_attn(self.input_layernorm(hidden_states), attention_mask=attention_mask,
                                       position_embeddings=position_embeddings)
        hidden_states = residual + hidden_states
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


class PatchGridConfig:
    def __init__(self, hidden_size=32, image_size=224, patch_size=16):
        self.hidden_size, self.image_size, self.patch_size = hidden_size, image_size, patch_size


class PatchGridLayer(nn.Module):
    """A ViT encoder layer built from its model's configuration."""

    def __init__(self, config: PatchGridConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.hidden_size)
        self.fc = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states):
        return hidden_states + self.fc(self.norm(hidden_states))


def test_a_rotary_pair_argument_gets_cos_and_sin_as_wide_as_a_head():
    records = run(RotaryDecoderLayer)
    assert clean(records)
    # The mask stays None: first only what the network would hand it is made (the pair, the positions).
    layer = RotaryDecoderLayer(16, 4)
    extras = worker.forward_extras(layer, "cpu", 16)
    assert [sorted(e) for e in extras] == [[], ["position_embeddings", "position_ids"],
                                          ["attention_mask", "position_embeddings", "position_ids"]]
    cos, sin = extras[1]["position_embeddings"](16, [2, 8, 16])
    assert list(cos.shape) == list(sin.shape) == [2, 8, 4]
    assert extras[1]["position_ids"](16, [2, 8, 16]).tolist() == [list(range(8))] * 2


def test_a_layer_built_from_a_vision_configuration_sees_its_patch_grid_not_its_pixels():
    records = run(PatchGridLayer)
    assert records[0]["runs"][0]["input"] == [2, 14 * 14, 32]  # 224 / 16 patches a side, not 224 x 224 tokens
    assert clean(records)


class StageSpec:
    """A block's configuration with no defaults (torchvision's MBConv configurations)."""

    def __init__(self, expand_ratio: float, kernel: int, stride: int, input_channels: int, out_channels: int):
        self.expand_ratio, self.kernel, self.stride = expand_ratio, kernel, stride
        self.input_channels, self.out_channels = input_channels, out_channels


class SpecBlock(nn.Module):
    def __init__(self, cnf: StageSpec):
        super().__init__()
        mid = int(cnf.input_channels * cnf.expand_ratio)
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        self.block = nn.Sequential(
            nn.Conv2d(cnf.input_channels, mid, cnf.kernel, cnf.stride, cnf.kernel // 2, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, cnf.out_channels, 1, bias=False))

    def forward(self, x):
        out = self.block(x)
        return out + x if self.use_res_connect else out


def test_a_configuration_object_without_defaults_is_built_from_its_own_signature():
    records = run(SpecBlock)
    configs = [r["config"] for r in records]
    assert configs[0] == ("SpecBlock(cnf=StageSpec(expand_ratio=4, kernel=3, stride=1, input_channels=16, "
                          "out_channels=16))")
    assert any("stride=2" in c and "out_channels=32" in c for c in configs)  # the grid reaches into it
    assert len(clean(records)) == 2 * len([r for r in records if "construct_error" not in r])


class LabelMapNorm(nn.Module):
    """SPADE: a norm modulated by a label map it resizes to the features."""

    def __init__(self, label_nc, channels):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(label_nc, 8, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(8, channels, 3, padding=1)

    def forward(self, x, segmap):
        segmap = nn.functional.interpolate(segmap, size=x.shape[2:], mode="nearest")
        return self.norm(x) * (1 + self.gamma(self.shared(segmap)))


class LabelMapResBlock(nn.Module):
    def __init__(self, channels, label_nc=5):
        super().__init__()
        self.norm1 = LabelMapNorm(label_nc, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, seg):
        return x + self.conv1(torch.relu(self.norm1(x, seg)))


def test_a_conditioning_argument_is_shaped_for_the_first_layer_that_reads_it():
    records = run(LabelMapResBlock)
    assert clean(records)
    extras = worker.forward_extras(LabelMapResBlock(16), "cpu", 16)
    assert list(extras[0]["seg"](16, [2, 16, 16, 16]).shape) == [2, 5, 16, 16]  # the label map's 5 channels


class TiledPartitions(nn.Module):
    """Channels-last windows of a size its configuration fixes (MaxViT's partitions)."""

    def __init__(self, dim, partition=5):
        super().__init__()
        self.partition = partition
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Linear(dim, dim)

    def forward(self, x):
        batch, height, width, channels = x.shape
        assert height % self.partition == 0, f"height ({height}) must be divisible by window ({self.partition})"
        windows = x.view(batch, height // self.partition, self.partition, width // self.partition,
                         self.partition, channels)
        return x + self.mlp(self.norm(windows)).view_as(x)


def test_a_map_its_windows_must_tile_is_run_at_a_size_they_tile():
    records = run(TiledPartitions)
    assert [run["input"] for run in records[0]["runs"]] == [[2, 15, 15, 16]]  # 16 is no multiple of 5
    assert clean(records)


class PyramidHead(nn.Module):
    """A head over a pyramid of maps, one width per level (ultralytics' `ch`)."""

    def __init__(self, ch: tuple = (), c_: int = 32):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, c_, 1) for c in ch)
        self.smooth = nn.Conv2d(c_, c_, 3, padding=1)

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        out = self.lateral[0](x[0])
        for level, feature in enumerate(x[1:], 1):
            out = out + nn.functional.interpolate(self.lateral[level](feature), size=out.shape[2:])
        return out + self.smooth(out)


class ChildrenRoot(nn.Module):
    """A tree's root: its children concatenated (DLA)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, children: typing.List[torch.Tensor]):
        return torch.relu(self.bn(self.conv(torch.cat(children, 1))) + children[0][:, :1])


class Branches(nn.Module):
    """Parallel branches, one per resolution, each with its own residual (HRNet); not annotated."""

    def __init__(self, in_channels_list):
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for c in in_channels_list)

    def forward(self, x):
        return [x[i] + branch(x[i]) for i, branch in enumerate(self.branches)]


def test_a_forward_taking_a_list_of_maps_gets_one_map_per_width():
    records = run(PyramidHead)
    first = records[0]["runs"][0]
    assert records[0]["config"].startswith("PyramidHead(ch=[16, 16]")
    assert first["inputs"] == [[2, 16, 16, 16], [2, 16, 8, 8]] and first["input"] == [2, 16, 16, 16]
    assert clean(records)
    # Children concatenated: the input width cut in two, at one size.
    records = run(ChildrenRoot)
    assert records[0]["runs"][0]["inputs"] == [[2, 8, 16, 16], [2, 8, 16, 16]] and clean(records)


def test_a_forward_that_indexes_its_input_is_retried_with_a_list_of_maps():
    records = run(Branches, {"call_sites": [{"kwargs": {"in_channels_list": [8, 16]}, "origin": "the call"}]})
    first = records[0]["runs"][0]
    assert first["inputs"] == [[2, 8, 16, 16], [2, 16, 8, 8]] and clean(records)


def test_a_wrapper_block_wraps_a_conv():
    records = run(WrapsModule)
    assert records[0]["config"] == "WrapsModule(fn=<3x3 conv 16->16>)" and clean(records)


def test_forward_size_arguments_get_the_spatial_size():
    records = run(TakesSize)
    assert clean(records)
    assert records[0]["runs"][0]["input"] == [2, 256, 16]  # 16 x 16 tokens for H = W = 16


def test_a_block_built_for_one_size_runs_at_that_size_channels_last():
    records = run(ChannelsLast)
    assert records[0]["config"] == "ChannelsLast(dim=16, input_resolution=(16, 16))"
    assert [run["input"] for run in records[0]["runs"]] == [[2, 16, 16, 16]]  # one size, NHWC after tokens
    assert "NHWC" in records[0]["runs"][0]["layout"]
    assert clean(records)


def test_a_refused_layout_is_retried_once_in_another():
    records = run(Image)
    first = records[0]["runs"]
    assert [run["input"] for run in first] == [[2, 16, 16, 16], [2, 16, 15, 15]]
    assert all("NCHW" in run["layout"] and not run.get("forward_error") for run in first)


# ----------------------------------------------------------------------------
# The dropout configuration and what verdicts take from it
# ----------------------------------------------------------------------------


def test_an_inplace_dropout_after_softmax_is_confirmed_by_the_dropout_configuration():
    run = traced([DATA / "inplace_dropout.py"])
    (finding,) = [f for f in run.findings if f.code == "RL302"]
    assert finding.confirmation.status == "confirmed", finding.confirmation
    assert "attn_drop=0.1" in finding.confirmation.detail
    assert "modified by an inplace operation" in finding.confirmation.detail


def test_the_dropout_configuration_is_one_more_and_random():
    class Drops(nn.Module):
        def __init__(self, dim, drop_path: float = 0.0, proj_drop=0.0, drop_layer=nn.Dropout):
            super().__init__()
            self.conv = nn.Conv2d(dim, dim, 3, padding=1)

        def forward(self, x):
            return x + self.conv(x)

    configs, _ = worker.synthesize(Drops, dict(REQUEST))
    dropout = [c for c in configs if c.get("stochastic")]
    assert len(dropout) == 1 and configs[-1] is dropout[0]
    assert dropout[0]["kwargs"] == {"dim": 16, "drop_path": 0.1, "proj_drop": 0.1}
    assert not dropout[0]["origin"].startswith(("the call", "natural"))


def _finding(kind, **expect):
    finding = Finding("RL104", "unused-module", "warning", "x.py", 1, 1, 1, 1, "Block", "m", "h")
    finding.expect = {"kind": kind, **expect}
    return finding


def test_verdicts_take_only_in_place_evidence_from_random_runs():
    dropped = {"config": "Block(p=0.1)", "origin": "dropout 0.1, else as natural", "stochastic": True,
               "runs": [{"input": [2, 16, 16, 16], "no_grad": ["branch"], "input_mutated": True}]}
    steady = {"config": "Block()", "origin": "natural: equal widths",
              "runs": [{"input": [2, 16, 16, 16], "no_grad": []}]}
    response = {"status": "ok", "runs": [steady, dropped]}
    assert judge(_finding("no-grad", layers=["branch"]), response).status == "not-confirmed"
    assert judge(_finding("mutation"), response).status == "confirmed"


def test_runs_in_a_guessed_layout_give_no_trace_only_shape_findings():
    class Info:
        line = 1

    error = "RuntimeError: The size of tensor a (16) must match the size of tensor b (8) at non-singleton dimension 3"
    config = {"config": "Block(dim=16)", "origin": "natural: widths that match the residual add",
              "runs": [{"input": [2, 16, 16, 16], "forward_error": error, "layout": "NHWC (tried after ...)"}]}
    assert _trace_only_findings("x.py", "Block", Info, {"status": "ok", "runs": [config]}) == []
    del config["runs"][0]["layout"]
    (finding,) = _trace_only_findings("x.py", "Block", Info, {"status": "ok", "runs": [config]})
    assert finding.code == "RL203" and isinstance(finding.confirmation, Confirmation)


def test_widths_every_call_site_passes_equal_stay_equal(tmp_path):
    """A block whose call sites all pass one expression for two widths
    (``Mix(dims[i], dims[i])``) is only ever built with them equal: the
    static model says so to the trace, which then tries no configuration
    with different widths (a fix would otherwise be judged on a block no one
    builds)."""
    source = textwrap.dedent("""
        import torch.nn as nn


        class Mix(nn.Module):
            def __init__(self, in_channels, out_channels):
                super().__init__()
                self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

            def forward(self, x):
                return x + self.conv(x)


        class Net(nn.Module):
            def __init__(self, dims=(16, 32)):
                super().__init__()
                self.stages = nn.Sequential(*[Mix(dims[i], dims[i]) for i in range(len(dims))])
    """)
    path = tmp_path / "mix.py"
    path.write_text(source)
    from resnetlint.engine import check_text

    info = check_text(source, str(path), []).blocks["Mix"]
    assert info.equal_widths == [["in_channels", "out_channels"]]

    class Mix(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    request = dict(REQUEST, width_params=["in_channels", "out_channels"])
    unconstrained, _ = worker.synthesize(Mix, request)
    assert any(c["kwargs"]["in_channels"] != c["kwargs"]["out_channels"] for c in unconstrained)
    configs, _ = worker.synthesize(Mix, dict(request, equal_widths=info.equal_widths))
    assert configs and all(c["kwargs"]["in_channels"] == c["kwargs"]["out_channels"] for c in configs)
