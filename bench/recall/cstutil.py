"""Small libcst helpers shared by the block finder and the operators."""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import libcst as cst

_EMPTY = cst.Module(body=[])


def code(node: cst.CSTNode) -> str:
    """The source text of an expression (or statement), as written."""
    return _EMPTY.code_for_node(node)


def dotted(node: Optional[cst.CSTNode]) -> Optional[str]:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


def last_name(node: Optional[cst.CSTNode]) -> Optional[str]:
    """The last component of a callee: ``Conv2d`` for ``nn.Conv2d``."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def self_attr(node: Optional[cst.CSTNode], self_name: str = "self") -> Optional[str]:
    """``x`` for ``self.x``, else None."""
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == self_name:
        return node.attr.value
    return None


def positional(call: cst.Call) -> List[cst.Arg]:
    return [a for a in call.args if a.keyword is None and not a.star]


def keyword(call: cst.Call, *names: str) -> Optional[cst.Arg]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in names:
            return arg
    return None


def argument(call: cst.Call, index: Optional[int], names: Sequence[str]) -> Optional[cst.Arg]:
    """The argument passed as ``names`` (keyword) or at ``index``."""
    found = keyword(call, *names)
    if found is not None:
        return found
    args = positional(call)
    if index is not None and index < len(args):
        # a *args before the position makes it unknowable
        before = call.args[: call.args.index(args[index])]
        if any(a.star for a in before):
            return None
        return args[index]
    return None


def statements(block: cst.BaseSuite) -> Sequence[cst.BaseStatement]:
    if isinstance(block, cst.IndentedBlock):
        return block.body
    if isinstance(block, cst.SimpleStatementSuite):
        return [cst.SimpleStatementLine(body=block.body)]
    return []


_FIELDS: Dict[type, Tuple[str, ...]] = {}


def children(node: cst.CSTNode) -> List[cst.CSTNode]:
    """The child nodes, in order: read from the dataclass fields (libcst's
    own ``children`` runs a visitor, several times slower)."""
    names = _FIELDS.get(type(node))
    if names is None:
        names = _FIELDS[type(node)] = tuple(f.name for f in dataclasses.fields(node))
    out: List[cst.CSTNode] = []
    for name in names:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            out.append(value)
        elif isinstance(value, (list, tuple)):
            out.extend(item for item in value if isinstance(item, cst.CSTNode))
    return out


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under ``node`` (pre-order), itself included."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


META_ATTRIBUTES = {"shape", "size", "dtype", "device", "ndim", "dim", "is_cuda", "requires_grad", "numel"}


def names_read(expr: cst.CSTNode) -> Iterator[cst.Name]:
    """The Name nodes an expression reads (not attribute names, keyword
    names, lambda parameters or comprehension targets; not ``x`` in
    ``x.shape``/``x.size()``, which reads no data)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            yield node
            continue
        if isinstance(node, cst.Attribute):
            if node.attr.value in META_ATTRIBUTES and isinstance(node.value, cst.Name):
                continue  # x.shape, x.size(...): the value's metadata, not its data
            stack.append(node.value)
            continue
        if isinstance(node, cst.Arg):
            stack.append(node.value)
            continue
        if isinstance(node, (cst.Lambda, cst.FunctionDef, cst.ClassDef)):
            continue
        if isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            targets = {n.value for f in _comp_fors(node.for_in) for n in walk(f.target) if isinstance(n, cst.Name)}
            for name in names_read_children(node):
                if name.value not in targets:
                    yield name
            continue
        stack.extend(reversed(children(node)))


def _comp_fors(for_in: cst.CompFor) -> List[cst.CompFor]:
    out = []
    while for_in is not None:
        out.append(for_in)
        for_in = for_in.inner_for_in
    return out


def names_read_children(node: cst.CSTNode) -> Iterator[cst.Name]:
    for child in children(node):
        if isinstance(child, cst.CompFor):
            for f in _comp_fors(child):
                yield from names_read(f.iter)
                for condition in f.ifs:
                    yield from names_read(condition.test)
        else:
            yield from names_read(child)


def is_add(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add)
