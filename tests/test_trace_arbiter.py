"""The trace as arbiter: findings refuted by runs that meet their conditions,
confirmations only from matching evidence, blocks of modern code that run
(extra forward arguments, head widths, channels-last, the network's own
configurations), and the verdict cache."""
from __future__ import annotations

import io
import json

import pytest

from resnetlint.api import Settings, check_paths
from resnetlint.findings import Finding
from resnetlint.trace import TraceOptions
from resnetlint.trace.conditions import Unknown, conditions_of, evaluate, holds
from resnetlint.trace.verdict import judge

from helpers import ROOT

DATA = ROOT / "tests" / "data" / "trace"


def finding(code="RL203", kind="shape-error", message="m", **expect):
    made = Finding(code, "rule", "error", "x.py", 1, 1, 1, 1, "Block", message, "h")
    made.expect = {"kind": kind, **expect}
    return made


# ----------------------------------------------------------------------------
# Conditions (no torch needed)
# ----------------------------------------------------------------------------


def test_conditions_are_evaluated_over_arguments_and_plain_attributes():
    names = {"stride": 2, "inplanes": 64, "planes": 16, "self.expansion": 4, "dilation": [1, 1]}
    assert evaluate("stride != 1", names)
    assert not evaluate("planes * 4 != inplanes", names)
    assert evaluate("planes * self.expansion == inplanes and dilation == 1", names)
    assert holds(["stride != 1", "inplanes % planes == 0"], names) is True
    assert holds(["stride != 1", "planes == inplanes"], names) is False
    assert holds(["stride != 1", "width != 3"], names) is None  # `width` is no argument: undecided
    for unsafe in ("__import__('os').system('true')", "planes.__class__", "[planes][0]", "2 ** 1000"):
        with pytest.raises(Unknown):
            evaluate(unsafe, names)


def test_conditions_come_from_expect_and_are_derived_until_rules_state_them():
    assert conditions_of(finding(conditions=["stride != 1"], stride="s")) == ["stride != 1"]
    assert conditions_of(finding(conditions=[])) == []  # stated: every configuration
    assert conditions_of(finding(stride="stride")) == ["stride != 1"]
    assert conditions_of(finding("RL202", dim=1, widths=["inplanes", "planes * 4"])) == ["inplanes != (planes * 4)"]
    assert conditions_of(finding("RL201", "channel-error", expected="c", got="c * 2")) == ["c != (c * 2)"]
    message = "`groups=hidden` does not divide `in_channels=inp`: ..."
    assert conditions_of(finding("RL205", "construction-error", message, text="t")) == ["inp % hidden != 0"]
    assert conditions_of(finding("RL203")) is None  # nothing says: never refuted
    assert conditions_of(finding("RL303", "design")) is None


# ----------------------------------------------------------------------------
# Verdicts on recorded runs
# ----------------------------------------------------------------------------

CLEAN = {"input": [2, 16, 16, 16], "output_shape": [2, 16, 8, 8], "no_grad": [], "grad": ["conv"],
         "live_calls": ["conv", "shortcut"]}


def config(text, bound, *runs, **extra):
    return {"config": text, "origin": "grid", "bound": bound, "runs": list(runs), **extra}


def test_a_clean_run_that_meets_the_conditions_refutes_and_one_that_does_not_leaves_it_open():
    stride_one = config("B(c=16, stride=1)", {"c": 16, "stride": 1}, CLEAN)
    stride_two = config("B(c=16, stride=2)", {"c": 16, "stride": 2}, CLEAN)
    claim = finding(stride="stride")
    verdict = judge(claim, {"status": "ok", "runs": [stride_one]})
    assert verdict.status == "not-confirmed" and "no configuration that was built met `stride != 1`" in verdict.detail
    verdict = judge(claim, {"status": "ok", "runs": [stride_one, stride_two]})
    assert verdict.status == "refuted" and "`stride != 1`" in verdict.detail
    assert verdict.runs == [{"config": "B(c=16, stride=2)", "origin": "grid", "input": [2, 16, 16, 16]}]
    # a run whose forward raised covers nothing
    failed = config("B(c=16, stride=2)", {"c": 16, "stride": 2},
                    {"input": [2, 16, 16, 16], "forward_error": "TypeError: x", "raised_in": "conv"})
    assert judge(claim, {"status": "ok", "runs": [failed]}).status != "refuted"


def test_channel_and_groups_findings_are_refuted_only_by_what_covers_them():
    channel = finding("RL201", "channel-error", expected="in_channels", got="out_channels")
    equal = config("B(16, 16)", {"in_channels": 16, "out_channels": 16}, CLEAN)
    differ = config("B(16, 32)", {"in_channels": 16, "out_channels": 32}, CLEAN)
    assert judge(channel, {"status": "ok", "runs": [equal]}).status == "not-confirmed"
    assert judge(channel, {"status": "ok", "runs": [equal, differ]}).status == "refuted"
    tiny = config("B(16, 32)", {"in_channels": 16, "out_channels": 32}, dict(CLEAN, input=[2, 16, 1, 1]))
    assert judge(channel, {"status": "ok", "runs": [tiny]}).status == "not-confirmed"  # no real spatial extent
    message = "`groups=hidden` does not divide `in_channels=inp`: ..."
    groups = finding("RL205", "construction-error", message, text="in_channels must be divisible by groups")
    divides = config("B(inp=32, hidden=16)", {"inp": 32, "hidden": 16}, CLEAN)
    does_not = config("B(inp=16, hidden=32)", {"inp": 16, "hidden": 32}, CLEAN)
    assert judge(groups, {"status": "ok", "runs": [divides]}).status == "not-confirmed"
    verdict = judge(groups, {"status": "ok", "runs": [divides, does_not]})
    assert verdict.status == "refuted" and "the constructor did not raise" in verdict.detail
    raised = dict(does_not, construct_error="ValueError: in_channels must be divisible by groups", runs=[])
    assert judge(groups, {"status": "ok", "runs": [divides, raised]}).status == "confirmed"


def test_an_ignored_stride_with_no_projection_is_confirmed_by_the_kept_resolution():
    # RL206 when no caller's projection makes the add fail: nothing crashes, the output keeps the resolution.
    claim = finding("RL206", "kept-resolution", conditions=["stride != 1"])
    kept = config("B(c=16, stride=2)", {"c": 16, "stride": 2}, dict(CLEAN, output_shape=[2, 16, 16, 16]))
    halved = config("B(c=16, stride=2)", {"c": 16, "stride": 2}, CLEAN)
    unit = config("B(c=16, stride=1)", {"c": 16, "stride": 1}, dict(CLEAN, output_shape=[2, 16, 16, 16]))
    verdict = judge(claim, {"status": "ok", "runs": [unit, kept]})
    assert verdict.status == "confirmed" and "(2, 16, 16, 16), the input's resolution" in verdict.detail
    assert judge(claim, {"status": "ok", "runs": [unit]}).status == "not-confirmed"  # stride 1 says nothing
    verdict = judge(claim, {"status": "ok", "runs": [unit, halved]})  # the stride is used after all
    assert verdict.status == "refuted" and "the output was smaller than the input" in verdict.detail
    channels_last = config("B(c=16, stride=2)", {"c": 16, "stride": 2},
                           dict(CLEAN, output_shape=[2, 16, 16, 16], channels_last=True))
    assert judge(claim, {"status": "ok", "runs": [channels_last]}).status == "not-confirmed"


def test_design_rules_and_warnings_are_never_refuted():
    runs = {"status": "ok", "runs": [config("B(c=16)", {"c": 16}, CLEAN)]}
    assert judge(finding("RL303", "design", conditions=[]), runs).status == "not-confirmed"
    assert judge(finding("RL302", "mutation", conditions=[]), runs).status == "not-confirmed"
    assert judge(finding("RL301", "dead-bias", conditions=[], module="conv"), runs).status == "not-confirmed"


def test_gradient_findings_are_refuted_only_when_the_named_layers_got_a_gradient():
    claim = finding("RL104", "no-grad", layers=["shortcut"])
    assert judge(claim, {"status": "ok", "runs": [config("B()", {}, CLEAN)]}).status == "refuted"
    unused = dict(CLEAN, live_calls=["conv"])  # never called: no sign either way
    assert judge(claim, {"status": "ok", "runs": [config("B()", {}, unused)]}).status == "not-confirmed"
    no_backward = {k: v for k, v in CLEAN.items() if k not in ("no_grad", "grad")}  # meta device
    assert judge(claim, {"status": "ok", "runs": [config("B()", {}, no_backward)]}).status == "not-confirmed"


GROUPNORM = "ValueError: num_channels must be divisible by num_groups"
CONV_ERROR = ("RuntimeError: Given groups=1, weight of size [{o}, {i}, 3, 3], expected input[2, {o}, 16, 16] to "
              "have {i} channels, but got {o} channels instead")


def test_a_groupnorm_error_is_no_evidence_of_a_channel_mismatch():
    claim = finding("RL201", "channel-error", expected="in_channels", got="out_channels")
    built_not = config("B(in_channels=16, out_channels=32)", {"in_channels": 16, "out_channels": 32},
                       construct_error=GROUPNORM)
    assert judge(claim, {"status": "ok", "runs": [built_not]}).status == "unverified"
    # a channel error that happens at equal widths too is not the predicted one
    equal = config("B(16, 16)", {"in_channels": 16, "out_channels": 16},
                   {"input": [2, 16, 16, 16], "forward_error": "RuntimeError: expected input to have 3 channels",
                    "raised_in": "conv2"})
    differ = config("B(16, 32)", {"in_channels": 16, "out_channels": 32},
                    {"input": [2, 16, 16, 16], "forward_error": "RuntimeError: expected input to have 3 channels",
                     "raised_in": "conv2"})
    assert judge(claim, {"status": "ok", "runs": [equal, differ]}).status != "confirmed"
    # the predicted widths, from a layer, only where they differ: evidence
    wrong = config("B(16, 32)", {"in_channels": 16, "out_channels": 32},
                   {"input": [2, 16, 16, 16], "forward_error": CONV_ERROR.format(i=16, o=32), "raised_in": "conv2"})
    assert judge(claim, {"status": "ok", "runs": [built_not, wrong]}).status == "confirmed"
    # the same error with other numbers than the finding's widths is not
    other = config("B(16, 32)", {"in_channels": 16, "out_channels": 32},
                   {"input": [2, 16, 16, 16], "forward_error": CONV_ERROR.format(i=8, o=64), "raised_in": "conv2"})
    assert judge(claim, {"status": "ok", "runs": [other]}).status != "confirmed"


def test_a_stride_finding_is_confirmed_by_the_add_on_a_spatial_dimension_only():
    claim = finding(stride="stride")
    channel_add = {"input": [2, 16, 16, 16], "raised_in": "",
                   "forward_error": "RuntimeError: The size of tensor a (32) must match the size of tensor b (16) "
                                    "at non-singleton dimension 1"}
    spatial_in_layer = {"input": [2, 16, 16, 16], "raised_in": "attn",
                        "forward_error": "RuntimeError: The size of tensor a (8) must match the size of tensor b "
                                         "(16) at non-singleton dimension 3"}
    runs = [config("B(stride=2)", {"stride": 2}, channel_add, spatial_in_layer)]
    assert judge(claim, {"status": "ok", "runs": runs}).status != "confirmed"
    spatial_add = dict(spatial_in_layer, raised_in="")
    runs = [config("B(stride=2)", {"stride": 2}, channel_add, spatial_add)]
    verdict = judge(claim, {"status": "ok", "runs": runs})
    assert verdict.status == "confirmed" and "dimension 3" in verdict.detail  # the matching failure is shown
    # a channel failure of the add at stride 1 does not explain the spatial one away
    runs.append(config("B(stride=1)", {"stride": 1}, channel_add))
    assert judge(claim, {"status": "ok", "runs": runs}).status == "confirmed"
    runs.append(config("B(stride=1)", {"stride": 1}, spatial_add))  # but the same spatial failure does
    assert judge(claim, {"status": "ok", "runs": runs}).status != "confirmed"


# ----------------------------------------------------------------------------
# End to end, with torch
# ----------------------------------------------------------------------------

torch = pytest.importorskip("torch")
nn = torch.nn


def traced(paths, **options):
    options.setdefault("mode", "on")
    settings = options.pop("settings", {})
    return check_paths([str(p) for p in paths], Settings(trace=TraceOptions(**options), **settings))


@pytest.mark.trace
def test_a_stride_guard_the_model_misses_is_refuted_and_kept_only_on_request():
    from resnetlint.report import json_

    run = traced([DATA / "stride_guard.py"])
    assert run.findings == []  # not reported: the exit code is 0
    (refuted,) = run.refuted
    assert refuted.code == "RL203" and refuted.confirmation.status == "refuted"
    assert "meeting `stride != 1`" in refuted.confirmation.detail
    assert {r["input"][2] for r in refuted.confirmation.runs} == {16, 15}
    assert run.trace.refuted == 1
    assert json_.document(run)["findings"] == []
    run = traced([DATA / "stride_guard.py"], settings={"show_refuted": True})
    (kept,) = json_.document(run)["findings"]
    assert kept["confirmation"]["status"] == "refuted" and kept["confirmation"]["runs"]
    assert json_.document(run)["summary"]["trace"]["refuted"] == 1
    from resnetlint.report import sarif

    (result,) = sarif.document(run)["runs"][0]["results"]
    assert result["level"] == "none" and result["suppressions"][0]["justification"].startswith("refuted by the trace")
    assert result["properties"]["confirmation"] == "refuted"


@pytest.mark.trace
def test_a_layer_built_under_a_flag_is_reached_by_flipping_it_and_the_finding_refuted():
    # The claim an earlier static model made here (RL103: the add bypasses
    # `conv_shortcut`), judged by the trace on the real block.
    from resnetlint.api import check_file
    from resnetlint.trace import confirm

    result = check_file(str(DATA / "flag_shortcut.py"), Settings().rules())
    claim = Finding("RL103", "shortcut-bypassed", "error", result.path, 32, 16, 32, 24, "FlagShortcutBlock", "m", "h")
    claim.expect = {"kind": "shape-or-dead", "layers": ["conv_shortcut"]}
    result.findings = [claim]
    report = confirm([result], TraceOptions(mode="on"))
    assert report.refuted == 1 and claim.confirmation.status == "refuted", claim.confirmation
    assert "conv_shortcut=True" in claim.confirmation.detail
    assert "`conv_shortcut` received a gradient" in claim.confirmation.detail


@pytest.mark.trace
def test_conditions_no_run_can_meet_leave_the_finding_not_confirmed():
    run = traced([DATA / "stride_one_only.py"])
    (claim,) = run.findings
    assert claim.code == "RL203" and claim.confirmation.status == "not-confirmed"
    assert "no configuration that was built met `stride != 1`" in claim.confirmation.detail


@pytest.mark.trace
def test_a_groupnorm_block_is_confirmed_by_its_conv_not_by_the_groupnorm():
    run = traced([DATA / "groupnorm_channels.py"])
    channel = [f for f in run.findings if f.code == "RL201"]
    assert channel, [(f.code, f.line) for f in run.findings]
    for claim in channel:
        assert claim.confirmation.status == "confirmed", claim.confirmation
        # (the first configuration, equal widths of 16, fails in GroupNorm's constructor)
        assert "conv2 raised" in claim.confirmation.detail and "divisible" not in claim.confirmation.detail


from resnetlint.trace import worker  # noqa: E402

REQUEST = {"call_sites": [], "input_hint": None, "width_params": [], "input_params": [], "stride_params": [],
           "natural": {}, "spatial": [16, 15], "config_timeout": 0, "max_configs": 8, "file": "x.py"}


def clean_runs(cls, request=None):
    request = dict(REQUEST, **(request or {}))
    configs, problem = worker.synthesize(cls, request)
    assert configs, problem
    found = []
    for entry in configs:
        records = [worker.run_config(cls, entry, request, "cpu")]
        retry = worker._retry(cls, entry, worker._failure(records[0]), request)
        if retry is not None:
            records.append(worker.run_config(cls, retry, request, "cpu"))
        found += [(r["config"], run) for r in records if "construct_error" not in r for run in r["runs"]
                  if not run.get("forward_error") and not run.get("backward_error")]
    return found


class TimeBlock(nn.Module):
    """A diffusion ResBlock: a time embedding projected and added per channel."""

    def __init__(self, in_channels, out_channels, temb_channels):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(torch.relu(self.norm1(x)))
        h = h + self.time_emb_proj(torch.nn.functional.silu(temb))[:, :, None, None]
        return self.skip(x) + self.conv2(h)


class HeadsAttention(nn.Module):
    """Pre-norm attention over tokens with a per-head width and no defaults."""

    def __init__(self, dim, heads, dim_head, context_dim=None):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim or dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x, context=None):
        h = self.norm(x)
        context = h if context is None else context
        q = self.to_q(h)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        split = lambda t: t.reshape(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)  # noqa: E731
        out = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
        return x + self.to_out(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


class ChannelsLastBlock(nn.Module):
    """ConvNeXt-style: NHWC in and out, the depthwise conv between permutes."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)

    def forward(self, x):
        B, H, W, C = x.shape
        y = self.dwconv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm(y))))


@pytest.mark.trace
def test_a_block_with_a_time_embedding_argument_runs():
    found = clean_runs(TimeBlock)
    assert found, "no configuration ran"
    assert all(run["input"][1] == int(text.split("in_channels=")[1].split(",")[0]) for text, run in found)


@pytest.mark.trace
def test_an_attention_block_with_head_widths_and_an_optional_context_runs():
    found = clean_runs(HeadsAttention)
    assert found and all("dim_head=8" in text and "heads=2" in text for text, _ in found)
    assert all(len(run["input"]) == 3 for _, run in found)  # tokens (B, N, C)


@pytest.mark.trace
def test_a_channels_last_block_runs_on_nhwc_input():
    found = clean_runs(ChannelsLastBlock)
    assert found
    assert all(run["input"][-1] == 16 and "NHWC" in run.get("layout", "") for _, run in found)


@pytest.mark.trace
def test_the_network_gives_a_block_its_real_arguments_and_input():
    run = traced([DATA / "network_blocks.py"], trace_all=True, settings={"jobs": 1})
    assert run.trace.unverified == 0 and run.trace.classes >= 1
    from resnetlint.trace import _request, _targets
    from resnetlint.trace.runner import TraceRunner
    from resnetlint.api import check_file

    result = check_file(str(DATA / "network_blocks.py"), Settings().rules())
    (key,) = [k for k in _targets([result], True) if k[1] == "Stage"]
    info = result.blocks["Stage"]
    with TraceRunner() as runner:
        runner.start()
        response = runner.run(_request(key[0], key[1], info, TraceOptions()))
    network = [c for c in response["runs"] if c["origin"] == "the network `TinyNet()`"]
    assert [c["config"] for c in network] == [
        "Stage(inplanes=8, planes=8, stride=1, downsample=None)",
        "Stage(inplanes=8, planes=24, stride=2, downsample=<Sequential>)",
    ]
    assert [c["runs"][0]["input"] for c in network] == [[2, 8, 64, 64], [2, 8, 64, 64]]
    assert all(not c["runs"][0].get("forward_error") for c in network)


@pytest.mark.trace
def test_the_trace_reports_its_progress_class_by_class():
    calls = []
    run = check_paths([str(DATA / "stride_guard.py"), str(DATA / "stride_one_only.py")],
                      Settings(trace=TraceOptions(mode="on")), lambda *call: calls.append(call))
    assert run.trace.classes == 2
    trace = [call for call in calls if call[0] == "trace"]
    assert trace[0] == ("trace", 0, 0)  # the worker is starting
    assert trace[1:] == [("trace", 0, 2), ("trace", 1, 2), ("trace", 2, 2)]


@pytest.mark.trace
def test_a_cached_verdict_does_not_start_the_worker(tmp_path, monkeypatch):
    import shutil

    from resnetlint.trace import runner

    target = tmp_path / "guard.py"
    shutil.copy(DATA / "stride_guard.py", target)
    settings = {"cache": True, "cache_dir": str(tmp_path / "cache")}
    first = traced([target], settings=settings)
    assert first.trace.cached == 0 and first.trace.refuted == 1

    def no_worker(self):
        raise AssertionError("the worker was started")

    monkeypatch.setattr(runner.TraceRunner, "start", no_worker)
    second = traced([target], settings=settings)
    assert second.trace.cached == second.trace.classes == 1
    assert [f.confirmation for f in second.refuted] == [f.confirmation for f in first.refuted]
    # an edit to the file is a miss: the worker is needed again
    target.write_text(target.read_text() + "\n# edited\n")
    with pytest.raises(AssertionError, match="the worker was started"):
        traced([target], settings=settings)


@pytest.mark.trace
def test_a_missing_dependency_is_named_and_unrunnable_blocks_are_listed_by_reason(tmp_path):
    from resnetlint.trace.summary import summary_lines

    (tmp_path / "needs_dep.py").write_text(
        "import torch.nn as nn\nimport some_missing_dependency\n\n\n"
        "class Block(nn.Module):\n    def __init__(self, c):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(c, c, 3)\n\n    def forward(self, x):\n        return x + self.conv(x)\n")
    run = traced([tmp_path])
    (block,) = run.trace.unrunnable
    assert block.reason == "import-error" and block.symbol == "Block"
    assert "could not import some_missing_dependency: install the project's dependencies" in block.detail
    assert run.trace.unverified == 1 and run.trace.by_reason() == {"import-error": 1}
    lines = summary_lines(run.trace, verbose=True)
    assert "1 could not be run (1 could not import the module)" in lines[0]
    assert lines[1].strip().startswith(str(tmp_path / "needs_dep.py") + ": Block: could not import")
    assert len(summary_lines(run.trace)) == 1  # listed with --verbose only


@pytest.mark.trace
def test_trace_path_imports_a_project_that_puts_its_sources_on_sys_path(tmp_path):
    src = tmp_path / "src"
    (src / "models").mkdir(parents=True)  # no __init__.py: the project adds src/ to sys.path
    (src / "models" / "widths.py").write_text("WIDTH = 1\n")
    (src / "models" / "block.py").write_text(
        "import torch.nn as nn\nfrom models.widths import WIDTH\n\n\n"
        "class Block(nn.Module):\n    def __init__(self, c):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(c, c * WIDTH, 3)\n\n    def forward(self, x):\n        return x + self.conv(x)\n")
    run = traced([src / "models" / "block.py"])
    assert run.trace.unrunnable and "--trace-path" in run.trace.unrunnable[0].detail
    run = traced([src / "models" / "block.py"], trace_paths=[str(src)])
    assert not run.trace.unrunnable
    assert [f.confirmation.status for f in run.findings] == ["confirmed"]


@pytest.mark.trace
def test_the_worker_is_resnetlint_s_own_whatever_the_current_directory(tmp_path, monkeypatch):
    # A `resnetlint/` folder in the current directory (a checkout) must not be the worker.
    (tmp_path / "resnetlint").mkdir()
    (tmp_path / "resnetlint" / "__init__.py").write_text("raise SystemExit('the checkout was imported')\n")
    monkeypatch.chdir(tmp_path)
    from resnetlint.trace.runner import TraceRunner

    with TraceRunner() as runner:
        assert runner.start()["torch"]


def test_a_channels_last_add_failure_is_read_on_the_dimension_it_stands_for():
    from resnetlint.trace.verdict import _as_channels_first

    # (B, N, C) tokens: N is the spatial (sequence) dimension, C the channels
    assert _as_channels_first(1, 3, channels_last=True) == 2
    assert _as_channels_first(2, 3, channels_last=True) == 1
    # (B, H, W, C)
    assert [_as_channels_first(d, 4, channels_last=True) for d in (1, 2, 3)] == [2, 3, 1]
    assert _as_channels_first(1, 4, channels_last=False) == 1


@pytest.mark.trace
def test_a_flag_chosen_stride_is_confirmed_with_the_flag_set_never_refuted_without_it(tmp_path):
    # RL203's example of Hugging Face's ResNet bottleneck, its stride placed by
    # `stride if not downsample_in_bottleneck else 1`: the static model splits
    # the configurations on the flag; the finding names it as a condition (so
    # runs with the flag the other way cannot refute it) and as the
    # configuration to try.
    from resnetlint.rule import example_source
    from rules.rl203_stride_mismatch import StrideMismatch

    (example,) = [e for e in StrideMismatch.INVALID if "downsample_in_bottleneck" in e.source]
    path = tmp_path / "flag_chosen_stride.py"
    path.write_text(example_source(example.source))
    run = traced([path])
    (claim,) = run.findings
    assert claim.code == "RL203" and "`downsample_in_bottleneck`" in claim.message
    assert "not (not downsample_in_bottleneck)" in claim.expect["conditions"]
    assert claim.confirmation.status == "confirmed", claim.confirmation
    assert "downsample_in_bottleneck=1" in claim.confirmation.detail and "stride=2" in claim.confirmation.detail
