"""How the project itself writes what a fix has to write.

A fix that adds a projection should add it the way the project's other
blocks do: pytorchcv builds every projection as ``conv1x1_block(...,
activation=None)`` under ``if self.resize_identity:``, torchvision as a
``downsample`` Sequential its caller builds.  A repair written in the
block's own idiom is one a reviewer recognises, and the code that was there
before the bug comes back.

:func:`projection_idioms` reads the module classes of the checked file and
of the project modules it imports from (their source, through the project;
nothing is imported) and returns each projection one of them builds in one
statement, with the widths and stride the model gives it in terms of that
class's constructor parameters: a fix may reuse its text verbatim only for a
block whose own widths render the same (the names mean the same there).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, FrozenSet, Iterator, List, Optional, Tuple

import libcst as cst

from .init_exec import _is_self
from .residual import SHORTCUT_ATTRIBUTE, residual_adds, strip_elementwise
from .syntax import walk

if TYPE_CHECKING:
    from .block import FileAnalysis

# Classes read for idioms, this file's and its imports' together: enough for
# a model zoo's sibling blocks, bounded for a file that imports a framework.
MAX_IDIOM_CLASSES = 60


@dataclass(frozen=True)
class ProjectionIdiom:
    """One projection a sibling block builds in one ``__init__`` statement."""

    owner: str  # the sibling class, for the fix's description
    attr: str  # "identity_conv"
    statement: cst.BaseStatement  # building it: ``if self.resize_identity:`` and its body, or the assignment
    guard: Optional[str]  # the flag attribute the statement tests, None when built unconditionally
    after: Optional[str]  # the attribute the statement before it sets (None: the first statement)
    widths: Tuple[str, str, str]  # input width, output width, stride, rendered in the owner's parameters
    # the construction call's keyword arguments other than the widths and
    # stride, each with the names it reads: one this block cannot pass is left
    # to the callee's default (`bias=bias` where the block has no `bias`)
    options: Tuple[Tuple[cst.Arg, FrozenSet[str]], ...] = ()


def projection_idioms(analysis: "FileAnalysis") -> List[ProjectionIdiom]:
    """The projections of this file's and its imported modules' blocks
    (computed once per analysis)."""
    cached = analysis.queries.get("projection-idioms")
    if cached is None:
        cached = analysis.queries["projection-idioms"] = list(_find_idioms(analysis))
    return cached


def _find_idioms(analysis: "FileAnalysis") -> Iterator[ProjectionIdiom]:
    for ctx, cls in _sibling_classes(analysis):
        model = analysis.block_in(cls, ctx)
        init = model.init.init
        if init is None:
            continue
        found = set()
        for _, flow in model.flows():
            for skip in _shortcuts(flow):
                summary = skip.spec.summary
                if skip.attr in found or summary.in_channels is None or summary.out_channels is None \
                        or summary.stride is None:
                    continue
                idiom = _idiom(cls.name.value, init, skip.attr,
                               (summary.in_channels.render(), summary.out_channels.render(), summary.stride.render()))
                if idiom is not None:
                    found.add(skip.attr)
                    yield idiom


def _shortcuts(flow) -> Iterator:
    """The layers a sibling adds back as its shortcut: the skip side of a
    residual add, or an operand of an add named for a shortcut
    (``body(x) + identity_conv(x)``: two modules, neither the input)."""
    candidates = [residual.skip for residual in residual_adds(flow)]
    candidates += [side for event in flow.adds for side in (event.left, event.right)]
    for value in candidates:
        value = strip_elementwise(value)
        if value.kind == "layer" and value.spec is not None and value.attr and value.attr.isidentifier() and \
                (SHORTCUT_ATTRIBUTE.search(value.attr) or any(value is r.skip for r in residual_adds(flow))):
            yield value


def _sibling_classes(analysis: "FileAnalysis") -> Iterator[Tuple[object, cst.ClassDef]]:
    from .project import Definition

    ctx = analysis.ctx
    contexts = [ctx]
    if analysis.project is not None:
        for qualname in ctx.imports.values():
            resolved = analysis.project.resolve(ctx, qualname)
            if isinstance(resolved, Definition) and all(resolved.ctx.path != c.path for c in contexts):
                contexts.append(resolved.ctx)
    count = 0
    for module in contexts:
        for cls in module.iter_module_classes():
            count += 1
            if count > MAX_IDIOM_CLASSES:
                return
            yield module, cls


def _idiom(owner: str, init: cst.FunctionDef, attr: str, widths: Tuple[str, str, str]) -> Optional[ProjectionIdiom]:
    """The top-level statement of ``__init__`` that builds ``self.<attr>``
    alone: ``self.<attr> = call(...)``, or ``if self.<flag>:`` around only
    that (no ``else``)."""
    statements = list(init.body.body)
    for index, statement in enumerate(statements):
        guard = None
        built = statement
        if isinstance(statement, cst.If) and statement.orelse is None and _is_self_attribute(statement.test) \
                and len(statement.body.body) == 1:
            guard = statement.test.attr.value
            built = statement.body.body[0]
        if _assigned_attribute(built) != attr:
            continue
        after = _assigned_attribute(statements[index - 1]) if index else None
        options = tuple((arg, _reads(arg)) for arg in _call_of(built).args
                        if arg.keyword is not None and not arg.star and arg.keyword.value not in _WIDTH_KEYWORDS)
        return ProjectionIdiom(owner, attr, statement, guard, after, widths, options)
    return None


# Keywords that carry a projection's widths or stride: never left out.
_WIDTH_KEYWORDS = frozenset({"in_channels", "out_channels", "stride", "in_chs", "out_chs", "inplanes", "planes",
                             "in_planes", "out_planes", "inp", "oup", "kernel_size"})


def _call_of(statement) -> cst.Call:
    return statement.body[0].value


def _assigned_attribute(statement) -> Optional[str]:
    """``self.X = <call>`` alone on its line: X."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    assign = statement.body[0]
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1 or not isinstance(assign.value, cst.Call):
        return None
    target = assign.targets[0].target
    return target.attr.value if _is_self_attribute(target) else None


def _is_self_attribute(node) -> bool:
    return isinstance(node, cst.Attribute) and _is_self(node.value)


def _reads(statement) -> FrozenSet[str]:
    """The names a piece of code reads: not ``self``, a call's keywords
    (``stride=``) or an attribute's name."""
    not_reads = set()
    for node in walk(statement):
        if isinstance(node, cst.Arg) and node.keyword is not None:
            not_reads.add(id(node.keyword))
        elif isinstance(node, cst.Attribute):
            not_reads.add(id(node.attr))
    return frozenset(node.value for node in walk(statement)
                     if isinstance(node, cst.Name) and id(node) not in not_reads
                     and node.value not in ("self", "None", "True", "False"))
