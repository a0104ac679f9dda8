"""The project-wide model (resnetlint/model/project.py): helpers, helper
classes and base classes in other modules, re-exports, namespace packages,
installed packages read (never imported), layer classes passed as values,
and the result cache re-checking the users of an edited module."""
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from resnetlint.api import Settings, check_paths
from resnetlint.model.project import Definition, External, Project, module_context

COMMON = """
    import torch.nn as nn


    def conv3x3(in_planes, out_planes, stride=1):
        return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


    def conv_bn(in_channels, out_channels, stride=1):
        return nn.Sequential(conv3x3(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


    class ConvUnit(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.conv = conv3x3(in_channels, out_channels)
            self.bn = nn.BatchNorm2d(out_channels)

        def forward(self, x):
            return self.bn(self.conv(x))


    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = conv3x3(inplanes, planes, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = conv3x3(planes, planes)
            self.bn2 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            return self.relu(out + identity)
"""


def write(root: Path, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def found(path, **settings):
    run = check_paths([str(path)], Settings(jobs=1, **settings))
    assert not run.errors, run.errors
    return sorted((f.code, f.symbol, f.line) for f in run.findings)


def test_a_helper_from_a_sibling_module_is_followed(tmp_path):
    write(tmp_path, {"pkg/__init__.py": "", "pkg/common.py": COMMON, "pkg/blocks.py": """
        import torch.nn as nn
        from .common import conv_bn


        class Unit(nn.Module):
            def __init__(self, in_channels, out_channels):
                super().__init__()
                self.body = nn.Sequential(conv_bn(in_channels, out_channels), conv_bn(in_channels, out_channels))

            def forward(self, x):
                return self.body(x)
    """})
    assert found(tmp_path / "pkg" / "blocks.py") == [("RL201", "Unit", 9)]


def test_helpers_through_a_module_object_and_an_init_re_export(tmp_path):
    write(tmp_path, {"pkg/__init__.py": "", "pkg/layers/__init__.py": "from .common import *\n",
                     "pkg/layers/common.py": COMMON, "pkg/models/__init__.py": "", "pkg/models/net.py": """
        import torch.nn as nn
        from .. import layers
        from ..layers import ConvUnit


        class Stem(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.a = layers.conv3x3(c, c * 2)
                self.b = ConvUnit(c, c)

            def forward(self, x):
                return x + self.b(self.a(x))
    """})
    codes = found(tmp_path / "pkg" / "models" / "net.py")
    assert ("RL201", "Stem", 11) in codes  # ConvUnit expects c but conv3x3 produced c * 2


def test_a_base_class_in_a_sibling_module_brings_init_and_forward(tmp_path):
    write(tmp_path, {"pkg/__init__.py": "", "pkg/common.py": COMMON, "pkg/se.py": """
        import torch.nn as nn
        from .common import BasicBlock


        class SEBlock(BasicBlock):
            def __init__(self, inplanes, planes, stride=1, downsample=None):
                super().__init__(inplanes, planes, stride, downsample)
                self.se = nn.Identity()

            def forward(self, x):
                out = self.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(x))
                return self.se(out) + x
    """})
    codes = found(tmp_path / "pkg" / "se.py")
    assert ("RL101", "SEBlock", 13) in codes  # conv2 fed x: found through the inherited layers


def test_namespace_packages_and_scripts_that_extend_sys_path(tmp_path):
    write(tmp_path, {"pyproject.toml": "", "models/common.py": COMMON, "models/blocks.py": """
        import torch.nn as nn
        from models.common import conv3x3


        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = conv3x3(c, c * 4)

            def forward(self, x):
                return x + self.conv(x)
    """})
    assert found(tmp_path / "models" / "blocks.py") == [("RL202", "Block", 12)]


def test_an_installed_package_is_read_and_never_imported(tmp_path, monkeypatch):
    site = tmp_path / "site"
    marker = tmp_path / "imported.txt"
    write(site, {"zoo_layers/__init__.py": f"""
        open({str(marker)!r}, "w").write("imported")
        from .convs import conv3x3
    """, "zoo_layers/convs.py": COMMON})
    monkeypatch.syspath_prepend(str(site))
    write(tmp_path / "project", {"block.py": """
        import torch.nn as nn
        from zoo_layers import conv3x3


        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv1 = conv3x3(c, c * 2)
                self.conv2 = conv3x3(c, c)

            def forward(self, x):
                return x + self.conv2(self.conv1(x))
    """})
    assert found(tmp_path / "project" / "block.py") == [("RL201", "Block", 10)]
    assert not marker.exists()
    assert "zoo_layers" not in sys.modules


def test_an_import_cycle_resolves_to_unknown_instead_of_looping(tmp_path):
    write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from .b import thing\n", "pkg/b.py": "from .a import thing\n",
                     "pkg/block.py": """
        import torch.nn as nn
        from .a import thing


        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = thing(c)

            def forward(self, x):
                return x + self.conv(x)
    """})
    assert found(tmp_path / "pkg" / "block.py") == []


def test_resolution_reports_definitions_and_external_names(tmp_path):
    write(tmp_path, {"pkg/__init__.py": "from .common import BasicBlock as Block\n", "pkg/common.py": COMMON,
                     "pkg/use.py": "import torch.nn as nn\nfrom . import Block\nfrom torch.nn import Conv2d\n"})
    project = Project()
    ctx = project.context(str(tmp_path / "pkg" / "use.py"))
    resolved = project.resolve(ctx, ctx.imports["Block"])
    assert isinstance(resolved, Definition) and resolved.kind == "class" and resolved.name == "BasicBlock"
    assert resolved.ctx.path == str(tmp_path / "pkg" / "common.py")
    assert project.resolve(ctx, ctx.imports["Conv2d"]) == External("torch.nn.Conv2d")
    with project.recording() as consulted:
        project.resolve(ctx, "<local>.Block")
    assert str(tmp_path / "pkg" / "common.py") in consulted  # dependencies are recorded


def test_layer_classes_as_values(tmp_path):
    write(tmp_path, {"blocks.py": """
        from functools import partial
        import torch.nn as nn

        BN = partial(nn.BatchNorm2d, eps=1e-3)


        class DefaultNorm(nn.Module):
            def __init__(self, inplanes, planes, norm_layer=nn.BatchNorm2d):
                super().__init__()
                self.conv = nn.Conv2d(inplanes, planes, 3, padding=1, bias=False)
                self.bn = norm_layer(inplanes)

            def forward(self, x):
                return self.bn(self.conv(x))


        class OrNorm(nn.Module):
            def __init__(self, inplanes, planes, norm_layer=None):
                super().__init__()
                norm_layer = norm_layer or nn.BatchNorm2d
                self.conv = nn.Conv2d(inplanes, planes, 3, padding=1, bias=False)
                self.bn = norm_layer(inplanes)

            def forward(self, x):
                return self.bn(self.conv(x))


        class PartialNorm(nn.Module):
            def __init__(self, inplanes, planes):
                super().__init__()
                self.conv = nn.Conv2d(inplanes, planes, 3, padding=1, bias=False)
                self.bn = BN(inplanes)

            def forward(self, x):
                return self.bn(self.conv(x))


        class ContractNorm(nn.Module):
            def __init__(self, inplanes, planes, norm_layer):
                super().__init__()
                self.conv = nn.Conv2d(inplanes, planes, 3, padding=1, bias=False)
                self.bn = norm_layer(inplanes)

            def forward(self, x):
                return self.bn(self.conv(x))
    """})
    run = check_paths([str(tmp_path / "blocks.py")], Settings(jobs=1))
    by_class = {f.symbol: f for f in run.findings if f.code == "RL201"}
    assert set(by_class) == {"DefaultNorm", "OrNorm", "PartialNorm", "ContractNorm"}
    assert "assuming `norm_layer(C)` is a norm layer" in by_class["ContractNorm"].message


def test_the_cache_re_checks_the_users_of_an_edited_helper_module(tmp_path):
    write(tmp_path, {"pkg/__init__.py": "", "pkg/common.py": COMMON, "pkg/blocks.py": """
        import torch.nn as nn
        from .common import conv3x3


        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = conv3x3(c, c)

            def forward(self, x):
                return x + self.conv(x)
    """})
    old = time.time() - 3600
    for path in tmp_path.rglob("*.py"):
        os.utime(path, (old, old))
    settings = dict(cache=True, cache_dir=str(tmp_path / "cache"))
    target = tmp_path / "pkg" / "blocks.py"
    assert found(target, **settings) == []
    second = check_paths([str(target)], Settings(jobs=1, **settings))
    assert second.cached == 1  # nothing changed: from the cache
    common = tmp_path / "pkg" / "common.py"
    common.write_text(common.read_text().replace("out_planes, kernel_size=3", "out_planes * 2, kernel_size=3"))
    os.utime(common, (old + 10, old + 10))
    third = check_paths([str(target)], Settings(jobs=1, **settings))
    assert third.cached == 0 and [f.code for f in third.findings] == ["RL202"]


def test_foreign_modules_are_built_whole(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(textwrap.dedent(COMMON))
    ctx = module_context(path.read_text(), str(path), None)
    assert set(ctx.functions) == {"conv3x3", "conv_bn"} and set(ctx.classes) == {"ConvUnit", "BasicBlock"}
    assert ctx.foreign and ctx.is_module_class("BasicBlock")


@pytest.mark.parametrize("base", ["SomeUnknownBase", "mystery.Base"])
def test_a_class_with_an_unknown_base_and_its_own_forward_is_analysed(tmp_path, base):
    write(tmp_path, {"block.py": f"""
        import torch.nn as nn
        import mystery
        from elsewhere import SomeUnknownBase


        class Block({base}):
            def __init__(self, c):
                super().__init__()
                self.conv1 = nn.Conv2d(c, c, 3, padding=1)
                self.conv2 = nn.Conv2d(c, c, 3, padding=1)

            def forward(self, x):
                out = self.conv1(x)
                out = self.conv2(x)
                return out + x
    """})
    assert ("RL101", "Block", 15) in found(tmp_path / "block.py")


def test_an_attribute_counts_as_read_elsewhere_only_by_a_module_that_imports_the_class(tmp_path):
    """RL104 stays silent when another module applies the layer (a parent
    reading ``block.norm2``), but a module with a ``Block`` of its own, or one
    that only mentions the name, reads its own attribute."""
    block = """
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.norm1 = nn.LayerNorm(dim)
                self.norm2 = nn.LayerNorm(dim)
                self.fc = nn.Linear(dim, dim)

            def forward(self, x):
                return x + self.fc(self.norm1(x))
    """
    other_block = """
        import torch.nn as nn

        # see also the Block of vit.py


        class Block(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.norm2 = nn.LayerNorm(dim)

            def forward(self, x):
                return self.norm2(x)


        def last_norm(blk):
            return blk.norm2
    """
    parent = """
        import torch.nn as nn

        from .vit import Block


        class Net(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.block = Block(dim)

            def forward(self, x):
                x = self.block(x)
                return self.block.norm2(x)
    """
    write(tmp_path / "alone", {"__init__.py": "", "vit.py": block, "swin.py": other_block})
    assert ("RL104", "Block", 9) in found(tmp_path / "alone" / "vit.py")
    write(tmp_path / "applied", {"__init__.py": "", "vit.py": block, "swin.py": other_block, "net.py": parent})
    assert ("RL104", "Block", 9) not in found(tmp_path / "applied" / "vit.py")
    # a helper of another module given the block (`post_norm(self, x)`) reads it
    handed = block.replace("import torch.nn as nn", "import torch.nn as nn\n\n        from .ops import post_norm") \
        .replace("return x + self.fc(self.norm1(x))", "return post_norm(self, x + self.fc(self.norm1(x)))")
    ops = """
        def post_norm(module, x):
            return module.norm2(x)
    """
    write(tmp_path / "handed", {"__init__.py": "", "vit.py": handed, "ops.py": ops})
    assert not [f for f in found(tmp_path / "handed" / "vit.py") if f[0] == "RL104"]


def test_a_missing_projection_is_added_as_a_sibling_module_builds_it(tmp_path):
    # pytorchcv's way: a block in `resnet.py` builds its projection with a
    # helper of `common.py` under `if self.resize_identity:`; the fix for a
    # block of `seresnet.py` that lost its own writes the same statement,
    # less the keyword its constructor has no name for (`bias=bias`).
    write(tmp_path, {"pkg/__init__.py": "", "pkg/common.py": """
        import torch.nn as nn


        def conv1x1_block(in_channels, out_channels, stride=1, bias=False, activation=True):
            layers = [nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias), nn.BatchNorm2d(out_channels)]
            return nn.Sequential(*layers, nn.ReLU(inplace=True)) if activation else nn.Sequential(*layers)
    """, "pkg/resnet.py": """
        import torch.nn as nn
        from .common import conv1x1_block


        class ResUnit(nn.Module):
            def __init__(self, in_channels, out_channels, stride=1, bias=False):
                super().__init__()
                self.resize_identity = (in_channels != out_channels) or (stride != 1)
                self.body = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=bias),
                                          nn.BatchNorm2d(out_channels))
                if self.resize_identity:
                    self.identity_conv = conv1x1_block(
                        in_channels=in_channels,
                        out_channels=out_channels,
                        stride=stride,
                        bias=bias,
                        activation=None)

            def forward(self, x):
                identity = self.identity_conv(x) if self.resize_identity else x
                return self.body(x) + identity
    """, "pkg/seresnet.py": """
        import torch.nn as nn
        from .common import conv1x1_block
        from .resnet import ResUnit


        class SEResUnit(nn.Module):
            def __init__(self, in_channels, out_channels, stride=1):
                super().__init__()
                self.resize_identity = (in_channels != out_channels) or (stride != 1)
                self.body = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
                                          nn.BatchNorm2d(out_channels))
                self.activ = nn.ReLU(inplace=True)

            def forward(self, x):
                if self.resize_identity:
                    identity = x
                else:
                    identity = x
                return self.activ(self.body(x) + identity)
    """})
    target = tmp_path / "pkg" / "seresnet.py"
    assert ("RL202", "SEResUnit", 20) in found(target)
    run = check_paths([str(target)], Settings(jobs=1, fix="fix", unsafe_fixes=True))
    assert not run.errors, run.errors
    fixed = target.read_text()
    expected = (
        "                                  nn.BatchNorm2d(out_channels))\n"
        "        if self.resize_identity:\n"
        "            self.identity_conv = conv1x1_block(\n"
        "                in_channels=in_channels,\n"
        "                out_channels=out_channels,\n"
        "                stride=stride,\n"
        "                activation=None)\n"
        "        self.activ = nn.ReLU(inplace=True)\n")
    assert expected in fixed, fixed
    assert "            identity = self.identity_conv(x)\n        else:\n" in fixed, fixed
    assert [f for f in found(target) if f[0] == "RL202"] == []
