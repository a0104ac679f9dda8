"""Reaching definitions inside one function (``forward`` or a function it
delegates to), enough to find residual adds and the main path.

Every assignment to a local name is a :class:`Def`; an environment maps
each name to the set of definitions that can reach a point (branches of an
``if`` are merged, loop bodies are walked once and merged with what came
before).  Each Name read records a :class:`Use` with the definitions it can
see.  This is a deliberately small analysis, independent of resnetlint's
own model, so that the recall measurement does not share its blind spots.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Set, Tuple

import libcst as cst

from .cstutil import dotted, is_add, names_read, statements, walk

Env = Dict[str, FrozenSet[int]]


@dataclass
class Def:
    id: int
    name: str
    kind: str  # "param", "assign", "augassign", "inplace", "loop", "with", "other"
    stmt: Optional[cst.CSTNode]  # the small statement (Assign, AugAssign, Expr, ...) or None for params
    line: Optional[cst.SimpleStatementLine]
    value: Optional[cst.BaseExpression]
    reads: Set[int] = field(default_factory=set)
    uses: List["Use"] = field(default_factory=list)


@dataclass
class Use:
    name: cst.Name
    defs: FrozenSet[int]
    stmt: cst.CSTNode
    line: Optional[cst.SimpleStatementLine]


@dataclass
class AddSite:
    """``a + b``, ``a += b``, ``torch.add(a, b)``, ``a.add(b)``/``a.add_(b)``."""

    kind: str  # "binop", "augassign", "torch.add", "method"
    node: cst.CSTNode  # the BinaryOperation / AugAssign / Call
    left: cst.BaseExpression
    right: cst.BaseExpression
    stmt: cst.CSTNode
    line: Optional[cst.SimpleStatementLine]
    env: Env


class Flow:
    """The definitions, uses and add sites of one function."""

    def __init__(self, function: cst.FunctionDef, skip_first: bool):
        self.function = function
        self.defs: List[Def] = []
        self.uses: List[Use] = []
        self.adds: List[AddSite] = []
        self.returns: List[Tuple[cst.Return, Env]] = []
        self.params: List[str] = []
        self.env_at: Dict[int, Env] = {}  # id(small statement) -> environment before it
        env: Env = {}
        params = list(function.params.posonly_params) + list(function.params.params)
        if skip_first and params:
            params = params[1:]
        for param in params + list(function.params.kwonly_params):
            d = self._new(param.name.value, "param", None, None, None)
            env[param.name.value] = frozenset([d.id])
            self.params.append(param.name.value)
        for star in (function.params.star_arg, function.params.star_kwarg):
            if isinstance(star, cst.Param):
                d = self._new(star.name.value, "param", None, None, None)
                env[star.name.value] = frozenset([d.id])
        self.input_name = self.params[0] if self.params else None
        self.input_def = env[self.input_name] if self.input_name else frozenset()
        self._walk(statements(function.body), env, None)

    # ------------------------------------------------------------------
    def _new(self, name, kind, stmt, line, value) -> Def:
        d = Def(len(self.defs), name, kind, stmt, line, value)
        self.defs.append(d)
        return d

    def _read(self, expr: Optional[cst.CSTNode], env: Env, stmt, line) -> Set[int]:
        seen: Set[int] = set()
        if expr is None:
            return seen
        for name in names_read(expr):
            defs = env.get(name.value, frozenset())
            use = Use(name, defs, stmt, line)
            self.uses.append(use)
            for d in defs:
                self.defs[d].uses.append(use)
            seen |= defs
        self._find_adds(expr, env, stmt, line)
        return seen

    def _find_adds(self, expr: cst.CSTNode, env: Env, stmt, line) -> None:
        for node in walk(expr):
            if isinstance(node, (cst.Lambda, cst.FunctionDef)):
                continue
            if is_add(node):
                self.adds.append(AddSite("binop", node, node.left, node.right, stmt, line, dict(env)))
            elif isinstance(node, cst.Call):
                name = dotted(node.func)
                args = [a for a in node.args if a.keyword is None and not a.star]
                if name in ("torch.add", "th.add") and len(args) >= 2:
                    self.adds.append(AddSite("torch.add", node, args[0].value, args[1].value, stmt, line, dict(env)))
                elif (isinstance(node.func, cst.Attribute) and node.func.attr.value in ("add", "add_")
                      and len(args) == 1 and not any(a.keyword for a in node.args)
                      and name not in ("torch.add", "th.add")):
                    self.adds.append(AddSite("method", node, node.func.value, args[0].value, stmt, line, dict(env)))

    def _bind(self, target: cst.BaseExpression, env: Env, kind, stmt, line, value, reads: Set[int]) -> None:
        if isinstance(target, cst.Name):
            d = self._new(target.value, kind, stmt, line, value)
            d.reads |= reads
            env[target.value] = frozenset([d.id])
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                inner = element.value.value if isinstance(element.value, cst.StarredElement) else element.value
                self._bind(inner, env, kind, stmt, line, value, reads)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value, env, kind, stmt, line, value, reads)
        elif isinstance(target, cst.Subscript):
            base = target.value
            if isinstance(base, cst.Name):  # out[...] = v modifies out
                old = env.get(base.value, frozenset())
                d = self._new(base.value, "other", stmt, line, value)
                d.reads |= reads | set(old)
                env[base.value] = frozenset([d.id])

    def _merge(self, envs: List[Env]) -> Env:
        merged: Dict[str, Set[int]] = {}
        for env in envs:
            for name, defs in env.items():
                merged.setdefault(name, set()).update(defs)
        return {name: frozenset(defs) for name, defs in merged.items()}

    def _walk(self, stmts, env: Env, _parent) -> Env:
        for stmt in stmts:
            env = self._statement(stmt, env)
        return env

    def _statement(self, stmt: cst.BaseStatement, env: Env) -> Env:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                self._small(small, env, stmt)
            return env
        if isinstance(stmt, cst.If):
            self._read(stmt.test, env, stmt, None)
            branch = self._walk(statements(stmt.body), dict(env), stmt)
            if stmt.orelse is None:
                other = env
            elif isinstance(stmt.orelse, cst.If):
                other = self._statement(stmt.orelse, dict(env))
            else:
                other = self._walk(statements(stmt.orelse.body), dict(env), stmt)
            return self._merge([branch, other])
        if isinstance(stmt, (cst.For, cst.While)):
            if isinstance(stmt, cst.For):
                reads = self._read(stmt.iter, env, stmt, None)
                inner = dict(env)
                self._bind(stmt.target, inner, "loop", stmt, None, stmt.iter, reads)
            else:
                self._read(stmt.test, env, stmt, None)
                inner = dict(env)
            after = self._walk(statements(stmt.body), inner, stmt)
            merged = self._merge([env, after])
            if stmt.orelse is not None:
                merged = self._walk(statements(stmt.orelse.body), merged, stmt)
            return merged
        if isinstance(stmt, cst.With):
            for item in stmt.items:
                reads = self._read(item.item, env, stmt, None)
                if item.asname is not None:
                    self._bind(item.asname.name, env, "with", stmt, None, item.item, reads)
            return self._walk(statements(stmt.body), env, stmt)
        if isinstance(stmt, (cst.Try, getattr(cst, "TryStar", cst.Try))):
            after_body = self._walk(statements(stmt.body), dict(env), stmt)
            branches = [after_body]
            for handler in stmt.handlers:
                branches.append(self._walk(statements(handler.body), self._merge([env, after_body]), stmt))
            merged = self._merge(branches)
            if stmt.orelse is not None:
                merged = self._walk(statements(stmt.orelse.body), merged, stmt)
            if stmt.finalbody is not None:
                merged = self._walk(statements(stmt.finalbody.body), merged, stmt)
            return merged
        if isinstance(stmt, cst.FunctionDef):
            d = self._new(stmt.name.value, "other", stmt, None, None)
            env[stmt.name.value] = frozenset([d.id])
            return env
        return env

    def _small(self, small: cst.BaseSmallStatement, env: Env, line: cst.SimpleStatementLine) -> None:
        self.env_at[id(small)] = dict(env)
        if isinstance(small, cst.Assign):
            reads = self._read(small.value, env, small, line)
            for target in small.targets:
                self._read_target_parts(target.target, env, small, line)
                self._bind(target.target, env, "assign", small, line, small.value, reads)
        elif isinstance(small, cst.AnnAssign):
            if small.value is not None:
                reads = self._read(small.value, env, small, line)
                self._bind(small.target, env, "assign", small, line, small.value, reads)
        elif isinstance(small, cst.AugAssign):
            reads = self._read(small.value, env, small, line)
            if isinstance(small.target, cst.Name):
                old = env.get(small.target.value, frozenset())
                use = Use(small.target, old, small, line)
                self.uses.append(use)
                for d in old:
                    self.defs[d].uses.append(use)
                if isinstance(small.operator, cst.AddAssign):
                    self.adds.append(AddSite("augassign", small, small.target, small.value, small, line, dict(env)))
                self._bind(small.target, env, "augassign", small, line, small.value, reads | set(old))
            else:
                self._read(small.target, env, small, line)
        elif isinstance(small, cst.Expr):
            reads = self._read(small.value, env, small, line)
            call = small.value
            # out.add_(x), out.relu_(): an in-place method redefines out
            if (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                    and isinstance(call.func.value, cst.Name) and call.func.attr.value.endswith("_")):
                name = call.func.value.value
                d = self._new(name, "inplace", small, line, call)
                d.reads |= reads
                env[name] = frozenset([d.id])
        elif isinstance(small, cst.Return):
            self._read(small.value, env, small, line)
            self.returns.append((small, dict(env)))
        else:
            for child in small.children:
                if isinstance(child, cst.BaseExpression):
                    self._read(child, env, small, line)

    def _read_target_parts(self, target, env, stmt, line) -> None:
        """Reads inside an assignment target (``self.x[i] = ...``, ``a.b = ...``)."""
        if isinstance(target, cst.Subscript):
            self._read(target.value, env, stmt, line)
        elif isinstance(target, cst.Attribute):
            self._read(target.value, env, stmt, line)

    # ------------------------------------------------------------------
    def ancestors(self, defs) -> Set[int]:
        """``defs`` and every definition they (transitively) read."""
        seen: Set[int] = set()
        stack = list(defs)
        while stack:
            d = stack.pop()
            if d in seen:
                continue
            seen.add(d)
            stack.extend(self.defs[d].reads)
        return seen

    def defs_of(self, expr: cst.BaseExpression, env: Env) -> FrozenSet[int]:
        """The definitions an operand stands for: a Name's reaching
        definitions, or those an expression reads."""
        if isinstance(expr, cst.Name):
            return env.get(expr.value, frozenset())
        out: Set[int] = set()
        for name in names_read(expr):
            out |= env.get(name.value, frozenset())
        return frozenset(out)
