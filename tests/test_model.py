"""The static model on tricky constructions: what each layer is, in which
world, and how forward's values flow."""
import textwrap

import libcst as cst
import pytest

from resnetlint.model.block import FileAnalysis, channels_of, input_channels, stride_of
from resnetlint.model.residual import residual_adds
from resnetlint.model.layers import sequential_children, summary_of
from resnetlint.model.values import AltV, LayerV, NoneV, ParamV, as_num

from helpers import PRELUDE


def analyse(source: str, name: str):
    module = cst.parse_module(PRELUDE + textwrap.dedent(source))
    analysis = FileAnalysis(module)
    return analysis.block(analysis.ctx.classes[name])


def layer(world, attr):
    value = world.attrs[attr].loc.value
    assert isinstance(value, LayerV), value
    return value.spec


def render(loc):
    num = as_num(loc)
    return num.render() if num is not None else None


def test_positional_and_keyword_arguments_are_normalised():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, cin, cout):
                super().__init__()
                self.a = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
                self.b = nn.Conv2d(in_channels=cout, kernel_size=1, out_channels=cin)
    """, "B")
    (world,) = [w.world for w in block.worlds]
    a, b = layer(world, "a"), layer(world, "b")
    assert (render(a.arg("in_channels")), render(a.arg("out_channels")), render(a.arg("stride"))) == ("cin", "cout", "2")
    assert render(a.arg("padding")) == "1" and a.arg("bias").value.cond is False
    assert (render(b.arg("in_channels")), render(b.arg("out_channels"))) == ("cout", "cin")
    assert b.arg("bias").value.cond is True and b.arg("bias").node is None  # the default, not written


def test_class_attributes_and_local_variables_are_substituted():
    block = analyse("""
        class B(nn.Module):
            expansion = 4
            def __init__(self, inplanes, planes, ratio):
                super().__init__()
                hidden = int(inplanes * ratio)
                self.a = nn.Conv2d(inplanes, hidden, 1)
                hidden = planes
                self.b = nn.Conv2d(hidden, planes * self.expansion, 1)
    """, "B")
    world = block.worlds[0].world
    assert render(layer(world, "a").arg("out_channels")) == "inplanes * ratio"
    assert render(layer(world, "b").arg("in_channels")) == "planes"
    assert render(layer(world, "b").arg("out_channels")) == "planes * 4"


def test_if_else_assignments_are_alternative_worlds_not_merged():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, cin, cout, stride=1):
                super().__init__()
                if stride != 1 or cin != cout:
                    self.skip = nn.Conv2d(cin, cout, 1, stride)
                else:
                    self.skip = None
    """, "B")
    worlds = [w.world for w in block.worlds]
    assert len(worlds) == 2
    projection = [w for w in worlds if isinstance(w.attrs["skip"].loc.value, LayerV)]
    identity = [w for w in worlds if isinstance(w.attrs["skip"].loc.value, NoneV)]
    assert len(projection) == len(identity) == 1
    # In the else world the facts know stride == 1 and cin == cout.
    facts = identity[0].facts
    assert facts.norm(as_num(ParamV("stride"))).render() == "1"
    assert facts.norm(as_num(ParamV("cout"))) == facts.norm(as_num(ParamV("cin")))


def test_conditional_expression_keeps_both_alternatives():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, cin, cout):
                super().__init__()
                self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
    """, "B")
    value = block.worlds[0].world.attrs["skip"].loc.value
    assert isinstance(value, AltV) and len(value.options) == 2


def test_helper_function_and_helper_classes_are_resolved():
    block = analyse("""
        def conv3x3(cin, cout, stride=1):
            return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)

        class ConvBNReLU(nn.Sequential):
            def __init__(self, cin, cout, k=3, stride=1):
                super().__init__(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        class BasicConv(nn.Module):
            def __init__(self, cin, cout):
                super().__init__()
                self.conv = nn.Conv2d(cin, cout, 1)
                self.bn = nn.BatchNorm2d(cout)
            def forward(self, x):
                return torch.relu(self.bn(self.conv(x)))

        class B(nn.Module):
            def __init__(self, a, b):
                super().__init__()
                self.c1 = conv3x3(a, b, stride=2)
                self.c2 = ConvBNReLU(b, a * 2)
                self.c3 = BasicConv(a * 2, b)
    """, "B")
    world = block.worlds[0].world
    c1 = layer(world, "c1")
    assert c1.family == "conv" and render(c1.arg("stride")) == "2" and c1.arg("bias").value.cond is False
    assert c1.arg("in_channels").local  # points at `a` in the call, not inside conv3x3
    c2 = layer(world, "c2")
    assert [summary_of(i.loc) .axis for i in sequential_children(c2)] == ["c", "c", None]
    assert (c2.summary.in_channels.render(), c2.summary.out_channels.render()) == ("b", "a * 2")
    c3 = layer(world, "c3")
    assert c3.family == "composite"
    assert (c3.summary.in_channels.render(), c3.summary.out_channels.render()) == ("a * 2", "b")


def test_a_module_class_whose_stride_hangs_on_a_flag_has_the_stride_its_caller_gives():
    """``stride if conv1_stride else 1`` on one conv and the reverse on the
    next: the class's summary cannot say where the stride is, but the
    instance its caller builds (with the flag set) strides by ``stride``;
    and a gate computed from what it scales (``x * gate(x)``) keeps its
    resolution."""
    block = analyse("""
        class Bottleneck(nn.Module):
            def __init__(self, cin, cout, stride, conv1_stride=False):
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout // 4, 1, stride=(stride if conv1_stride else 1))
                self.conv2 = nn.Conv2d(cout // 4, cout // 4, 3, stride=(1 if conv1_stride else stride), padding=1)
                self.conv3 = nn.Conv2d(cout // 4, cout, 1)
            def forward(self, x):
                return self.conv3(self.conv2(self.conv1(x)))

        class SpatialGate(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(2, 1, 7, padding=3)
            def forward(self, x):
                pooled = torch.cat((x.max(dim=1)[0].unsqueeze(1), x.mean(dim=1).unsqueeze(1)), dim=1)
                return x * torch.sigmoid(self.conv(pooled))

        class Unit(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.body = Bottleneck(cin, cout, stride, conv1_stride=False)
                self.gate = SpatialGate()
            def forward(self, x):
                return self.gate(self.body(x))
    """, "Unit")
    world = block.worlds[0].world
    assert layer(world, "body").summary.stride.render() == "stride"
    assert layer(world, "gate").summary.stride.render() == "1"
    flow = block.worlds[0].flow
    assert stride_of(flow, flow.returns[0]).render() == "stride"


def test_layers_built_through_a_dataclass_of_layer_factories():
    """timm byobnet's ``layers = layers or LayerFn()``: with the defaults the
    dataclass's classes, with the caller's the contract of each factory's
    name (``conv_norm_act`` is a conv first: it changes the width)."""
    block = analyse("""
        from dataclasses import dataclass

        class ConvNormAct(nn.Module):
            def __init__(self, cin, cout, k=1, stride=1):
                super().__init__()
                self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
                self.bn = nn.BatchNorm2d(cout)
            def forward(self, x):
                return self.bn(self.conv(x))

        @dataclass(frozen=True)
        class LayerFn:
            conv_norm_act: object = ConvNormAct
            act: object = nn.ReLU

        class B(nn.Module):
            def __init__(self, a, b, layers=None):
                super().__init__()
                custom = LayerFn(act=nn.GELU)
                layers = layers or LayerFn()
                self.conv = layers.conv_norm_act(a, b, 3, stride=2)
                self.act = custom.act()
    """, "B")
    world = block.worlds[0].world
    conv = world.attrs["conv"].loc.value
    assert isinstance(conv, AltV)
    given, default = (option.value.spec for _, option in conv.options)
    assert given.family == "conv" and given.from_parameter == "layers.conv_norm_act"
    assert default.family == "composite" and default.class_name == "ConvNormAct"
    for spec in (given, default):
        summary = spec.summary
        assert (summary.in_channels.render(), summary.out_channels.render(), summary.stride.render()) == ("a", "b", "2")
    assert layer(world, "act").label == "nn.GELU"  # a dataclass field the call set


def test_the_first_role_a_compound_factory_name_gives_is_the_layer_s():
    from resnetlint.model.layers import layer_role

    assert [layer_role(n) for n in ("conv_norm_act", "norm_act", "act_layer", "conv_bn", "bn_act", "attn")] == \
        ["conv", "norm", "act", "conv", "norm", None]


def test_sequential_built_from_a_list_with_append_and_extend():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, inp, oup, ratio):
                super().__init__()
                hidden = inp * ratio
                layers = []
                if ratio != 1:
                    layers.append(nn.Conv2d(inp, hidden, 1))
                layers.extend([nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden), nn.Conv2d(hidden, oup, 1)])
                self.conv = nn.Sequential(*layers)
    """, "B")
    sizes = sorted(len(sequential_children(layer(w.world, "conv"))) for w in block.worlds)
    assert sizes == [2, 3]
    for wf in block.worlds:
        spec = layer(wf.world, "conv")
        assert wf.world.facts.norm(spec.summary.in_channels).render() == "inp"  # hidden == inp when ratio == 1


def test_unknown_helpers_stay_unknown():
    block = analyse("""
        from timm.layers import create_conv2d

        class B(nn.Module):
            def __init__(self, cin, cout):
                super().__init__()
                self.conv = create_conv2d(cin, cout, 3)
                self.bn = nn.BatchNorm2d(make_divisible(cout))
    """, "B")
    world = block.worlds[0].world
    assert not isinstance(world.attrs["conv"].loc.value, LayerV) or layer(world, "conv").family == "unknown"
    assert layer(world, "bn").summary.in_channels is None or not layer(world, "bn").summary.in_channels.is_opaque_free()


def test_forward_dataflow_through_nested_and_functional_calls():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv1 = nn.Conv2d(c, c * 2, 3, padding=1)
                self.bn1 = nn.BatchNorm2d(c * 2)
                self.conv2 = nn.Conv2d(c * 2, c, 3, stride=2, padding=1)
                self.down = nn.Conv2d(c, c, 1, stride=2)

            def forward(self, x):
                out = F.relu(self.bn1(self.conv1(x)))
                out = self.conv2(out).relu()
                out += self.down(x)
                return out
    """, "B")
    (wf,) = block.worlds
    flow = wf.flow
    assert flow.complete
    (residual,) = residual_adds(flow)
    facts = wf.world.facts
    assert channels_of(flow, residual.main, facts).render() == "c"
    assert stride_of(flow, residual.main).render() == "2" and stride_of(flow, residual.skip).render() == "2"
    assert input_channels(flow, facts).render() == "c"
    assert not any(flow.is_dead(v) for v in flow.layer_calls())


def test_forward_follows_conditions_of_the_world():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, cin, cout):
                super().__init__()
                self.conv = nn.Conv2d(cin, cout, 3, padding=1)
                self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

            def forward(self, x):
                identity = x if self.skip is None else self.skip(x)
                return self.conv(x) + identity
    """, "B")
    flow = block.worlds[0].flow
    skips = {type(r.skip.spec).__name__ if r.skip.kind == "layer" else r.skip.kind for r in residual_adds(flow)}
    assert skips == {"LayerSpec", "input"}  # one path per alternative, each under its condition


def test_loops_run_twice_and_reveal_overwrites():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.layers = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(3)])

            def forward(self, x):
                for layer in self.layers:
                    out = layer(x)
                return out
    """, "B")
    flow = block.worlds[0].flow
    calls = list(flow.layer_calls())
    assert len(calls) == 2
    assert [flow.is_dead(v) for v in calls] == [True, False]


def test_too_many_paths_means_no_conclusion():
    ifs = "\n".join(f"                if self.f{i}:\n                    x = x * 2" for i in range(10))  # 1,024 paths
    block = analyse(f"""
        class B(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = nn.Conv2d(c, c, 1)

            def forward(self, x):
{ifs}
                return self.conv(x)
    """, "B")
    assert not block.complete


def test_alternatives_a_call_cannot_tell_apart_are_one_path():
    """A factory that builds the same pooling on several branches, or one of
    several modules we cannot see into, gives one path per distinct layer:
    four such layers and three optional ones stay well under the bound on
    paths (each of 8 alternatives taken on its own would give 8**4 * 8)."""
    block = analyse("""
        def make_pool(kind, c, stride):
            if kind == "avg":
                return nn.AvgPool2d(stride, stride)
            if kind == "avg2":
                return nn.AvgPool2d(stride, stride)
            if kind == "avgpool":
                return nn.AvgPool2d(stride, stride)
            if kind is None:
                return nn.Identity()
            return REGISTRY[kind](c, stride)

        def make_attn(kind, c):
            if kind == "se":
                return SE(c)
            if kind == "eca":
                return ECA(c)
            if kind == "cbam":
                return CBAM(c)
            return None

        class B(nn.Module):
            def __init__(self, c, stride=1, pool=None, attn=None, drop=None):
                super().__init__()
                self.conv = nn.Conv2d(c, c, 3, 1, 1)
                self.p1 = make_pool(pool, c, stride)
                self.p2 = make_pool(pool, c, 1)
                self.p3 = make_pool(pool, c, 1)
                self.p4 = make_pool(pool, c, stride)
                self.attn = make_attn(attn, c)
                self.drop = drop

            def forward(self, x):
                out = self.p4(self.p3(self.p2(self.p1(self.conv(x)))))
                if self.attn is not None:
                    out = self.attn(out)
                if self.drop is not None:
                    out = self.drop(out)
                return out
    """, "B")
    assert block.complete
    assert all(wf.flow.paths <= 3 ** 4 * 4 for wf in block.worlds)


def test_a_range_index_is_known_in_each_pass_of_a_loop():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, c, n):
                super().__init__()
                self.convs = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(n)])
                self.n = n

            def forward(self, x):
                for i, conv in enumerate(self.convs):
                    if i == 0:
                        out = conv(x)
                    else:
                        out = out + conv(x)
                for j in range(self.n):
                    if j > 0:
                        out = torch.relu(out)
                return out
    """, "B")
    # i and j are 0 in the first modelled pass and 1 in the second: no fork
    assert [wf.flow.paths for wf in block.worlds] == [1]


def test_the_ways_a_module_class_is_built_are_one_path_when_they_act_alike():
    block = analyse("""
        import os

        def fused_kernels():
            return os.environ.get("FUSED", "0") == "1"

        class Norm(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.impl = "fused" if fused_kernels() else "eager"
                self.weight = nn.Parameter(torch.ones(dim))

            def forward(self, x):
                return x * self.weight

        class B(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.norm1, self.norm2, self.norm3 = Norm(dim), Norm(dim), Norm(dim)
                self.fc = nn.Linear(dim, dim)

            def forward(self, x):
                return x + self.norm3(self.fc(self.norm2(self.norm1(x))))
    """, "B")
    (wf,) = block.worlds
    norm = wf.world.attrs["norm1"].loc.value
    assert isinstance(norm, AltV) and len(norm.options) == 2  # fused or eager
    assert wf.flow.complete and wf.flow.paths == 1  # not 2 ** 3


def test_a_computed_tensor_is_never_none_in_forward():
    # timm's attention: the gate is a tensor method's result or None, and the
    # world already knows which; testing it again must not fork the paths.
    block = analyse("""
        class B(nn.Module):
            def __init__(self, dim, gated=False):
                super().__init__()
                self.gate = nn.Linear(dim, dim) if gated else None
                self.fc = nn.Linear(dim, dim)

            def forward(self, x):
                gate = self.gate(x).sigmoid() if self.gate is not None else None
                y = self.fc(x)
                if gate is not None:
                    y = y * gate
                return x + y
    """, "B")
    (wf,) = block.worlds
    assert wf.flow.complete and wf.flow.paths == 2  # gated or not; not 3


def test_a_condition_assumed_in_init_is_known_in_forward():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.resize = (cin != cout) or (stride != 1)
                self.conv = nn.Conv2d(cin, cout, 3, stride, 1)
                if self.resize:
                    self.proj = nn.Conv2d(cin, cout, 1, stride)

            def forward(self, x):
                identity = self.proj(x) if self.resize else x
                return self.conv(x) + identity
    """, "B")
    # one path per world: forward never explores "not resize" where resize was assumed
    assert [wf.flow.paths for wf in block.worlds] == [1, 1]


def test_not_greater_than_one_means_one_for_strides():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, c, stride):
                super().__init__()
                self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
                self.conv = nn.Conv2d(c, c, 1)

            def forward(self, x):
                return x + self.conv(self.pool(x))
    """, "B")
    flow = block.worlds[0].flow
    strides = {stride_of(flow, r.main).render() for r in residual_adds(flow)}
    assert strides == {"stride", "1"}
    for residual in residual_adds(flow):
        facts = residual.facts
        assert facts.norm(stride_of(flow, residual.main)) == facts.norm(stride_of(flow, residual.skip)) or \
            stride_of(flow, residual.main).render() == "stride"


def test_list_element_replacement_is_modelled():
    block = analyse("""
        class B(nn.Module):
            def __init__(self, c):
                super().__init__()
                rep = [nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1)]
                rep[0] = nn.ReLU(inplace=False)
                self.rep = nn.Sequential(*rep)
    """, "B")
    spec = layer(block.worlds[0].world, "rep")
    assert not spec.inplace_first
    assert spec.children[0].loc.value.spec.arg("inplace").value.cond is False


def test_call_sites_that_pass_equal_widths_make_them_equal():
    import ast

    from resnetlint.api import Settings, check_source
    from resnetlint.prefilter import collect_facts

    block = textwrap.dedent("""
        class P(nn.Module):
            def __init__(self, cin, dim):
                super().__init__()
                self.proj = nn.Conv2d(cin, dim, 3, padding=1, groups=dim)
    """)
    users = textwrap.dedent("""
        class M(nn.Module):
            def __init__(self, dims):
                super().__init__()
                self.ps = nn.ModuleList([P(d, d, **extra) for d in dims])
    """)
    rl205 = Settings(select=["RL205"])
    assert [f.code for f in check_source(PRELUDE + block, settings=rl205)] == ["RL205"]
    assert check_source(PRELUDE + block + users, settings=rl205) == []
    passed_around = users + "\nfactory = P\n"
    assert [f.code for f in check_source(PRELUDE + block + passed_around, settings=rl205)] == ["RL205"]
    facts = collect_facts(ast.parse(PRELUDE + block + users))
    assert facts.call_sites["P"] == [(("Name(id='d', ctx=Load())",) * 2, {})]


def test_records_are_frozen_dataclasses_with_the_same_construction_rules():
    import dataclasses
    import pickle

    from resnetlint.model.records import record
    from resnetlint.model.symbolic import Cmp, Num

    @record
    class Point:
        x: int
        y: int = 2
        tags: list = dataclasses.field(default_factory=list)

    first, second = Point(1), Point(1, 3, ["a"])
    assert (first.x, first.y, first.tags, second.y, second.tags) == (1, 2, [], 3, ["a"])
    assert first.tags is not Point(1).tags  # a fresh default per instance
    assert dataclasses.replace(second, x=5).x == 5 and repr(first).endswith("Point(x=1, y=2, tags=[])")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.x = 3
    with pytest.raises(TypeError):
        Point()  # a required field stays required
    condition = Cmp("==", Num.atom("c"), Num.const(1))
    same = Cmp("==", Num.atom("c"), Num.const(1))
    assert condition == same and hash(condition) == hash(same) and len({condition, same}) == 1
    assert "_record_hash" not in pickle.loads(pickle.dumps(condition)).__dict__


def test_the_prefilter_walks_the_same_children_as_ast_in_the_same_order():
    import ast
    from pathlib import Path

    from resnetlint.prefilter import _children

    snippet = textwrap.dedent("""\
        @decorator(x)
        class A(B, metaclass=M):
            def f(self, a, *b, c=1, **d) -> int:
                global counter, total
                match a:
                    case [1, *rest] if rest:
                        return {**d, "k": f"{a!r:>{c}}"}
                    case {"k": v, **other}:
                        pass
                return [y async for y in b] if a else lambda q: q
    """)
    sources = [snippet] + [p.read_text() for p in sorted(Path(__file__).parent.parent.glob("resnetlint/**/*.py"))]
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            expected = [c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.expr_context)]
            assert _children(node) == expected, ast.dump(node)[:200]


def test_a_batch_thaws_what_it_froze_and_leaves_a_callers_frozen_objects_alone(tmp_path):
    import gc

    from resnetlint.parallel import _run_batch
    from resnetlint.results import FileResult

    paths = [str(tmp_path / f"f{i}.py") for i in range(130)]  # two collections
    assert _run_batch(FileResult, paths)[-1].path == paths[-1]
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        _run_batch(FileResult, paths)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_rules_ask_the_query_module_and_nothing_else_of_the_model():
    """A rule is one file that asks typed questions of resnetlint.model.query;
    it never imports the interpreters or their private helpers, and never
    compares the dataflow's internal kinds."""
    import ast as python_ast

    from helpers import ROOT

    for path in sorted((ROOT / "rules").glob("rl*.py")):
        tree = python_ast.parse(path.read_text())
        for node in python_ast.walk(tree):
            if isinstance(node, python_ast.ImportFrom) and node.module and node.module.startswith("resnetlint.model"):
                assert node.module == "resnetlint.model.query", f"{path.name} imports {node.module}"
                assert not any(alias.name.startswith("_") for alias in node.names), path.name
            if isinstance(node, python_ast.Attribute) and node.attr == "kind" and isinstance(node.value, python_ast.Name):
                assert node.value.id in ("directive", "event"), f"{path.name}:{node.lineno} reads {node.value.id}.kind"


def test_a_finding_said_twice_for_two_alternatives_of_a_call_is_reported_once():
    """The class a factory defaults to and the contract of the caller's both
    find the wrong width: one finding, at the argument.  Two findings on one
    line that predict different widths stay two."""
    from resnetlint.engine import _dedupe
    from resnetlint.findings import Finding

    def finding(column, end_column, expected):
        return Finding("RL201", "channel-mismatch", "error", "b.py", 7, column, 7, end_column, "Block",
                       f"expects {expected}", expect={"kind": "channel-error", "expected": expected, "got": "mid"})

    whole_call, argument = finding(22, 60, "chs"), finding(43, 46, "chs")
    assert _dedupe([whole_call, argument]) == [argument]
    other_claim = finding(22, 60, "hidden")
    assert _dedupe([other_claim, argument]) == [other_claim, argument]
