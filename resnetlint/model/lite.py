"""The lite front end: libcst node objects built straight from CPython's ``ast``.

``libcst.parse_module`` creates a node for every token, whitespace run and
parenthesis, and validates each one; on a model zoo that costs ~60 µs per
statement and dominated a run.  The model only reads a few fields of each
node, so this module creates instances of the *same libcst classes* with only
those fields set (the ones listed in :data:`resnetlint.model.syntax.FIELDS`,
plus scalars such as ``Name.value``), bypassing validation, and records each
node's position from the ``ast`` in a :class:`~resnetlint.model.syntax.LiteIndex`.

Such nodes must never be handed to libcst's code generator or visitors: the
model only walks them through :mod:`resnetlint.model.syntax`.  ``--fix`` and
``--full-parse`` use libcst's own parser instead, and a test runs both front
ends over the fixtures and a corpus and requires identical findings.
"""
from __future__ import annotations

import ast
from typing import Dict, List, Optional, Sequence

import libcst as cst

from .syntax import LiteIndex, Position

_new = object.__new__
_set = object.__setattr__
# Slot setters of the most frequent nodes (what ``make`` does, minus the
# keyword-argument dictionary and the attribute lookup by name).
_set_name_value = cst.Name.value.__set__
_set_attribute_value = cst.Attribute.value.__set__
_set_attribute_attr = cst.Attribute.attr.__set__
_set_arg_value = cst.Arg.value.__set__
_set_arg_keyword = cst.Arg.keyword.__set__
_set_arg_star = cst.Arg.star.__set__


def make(cls, **fields):
    """A libcst node of class ``cls`` with just these fields (no validation)."""
    node = _new(cls)
    for name, value in fields.items():
        _set(node, name, value)
    return node


_BINARY = {
    ast.Add: cst.Add, ast.Sub: cst.Subtract, ast.Mult: cst.Multiply, ast.Div: cst.Divide,
    ast.FloorDiv: cst.FloorDivide, ast.Mod: cst.Modulo, ast.Pow: cst.Power, ast.MatMult: cst.MatrixMultiply,
    ast.LShift: cst.LeftShift, ast.RShift: cst.RightShift, ast.BitOr: cst.BitOr, ast.BitAnd: cst.BitAnd,
    ast.BitXor: cst.BitXor,
}
_AUGMENTED = {
    ast.Add: cst.AddAssign, ast.Sub: cst.SubtractAssign, ast.Mult: cst.MultiplyAssign, ast.Div: cst.DivideAssign,
    ast.FloorDiv: cst.FloorDivideAssign, ast.Mod: cst.ModuloAssign, ast.Pow: cst.PowerAssign,
    ast.MatMult: cst.MatrixMultiplyAssign, ast.LShift: cst.LeftShiftAssign, ast.RShift: cst.RightShiftAssign,
    ast.BitOr: cst.BitOrAssign, ast.BitAnd: cst.BitAndAssign, ast.BitXor: cst.BitXorAssign,
}
_UNARY = {ast.Not: cst.Not, ast.USub: cst.Minus, ast.UAdd: cst.Plus, ast.Invert: cst.BitInvert}
_COMPARE = {
    ast.Eq: cst.Equal, ast.NotEq: cst.NotEqual, ast.Lt: cst.LessThan, ast.LtE: cst.LessThanEqual,
    ast.Gt: cst.GreaterThan, ast.GtE: cst.GreaterThanEqual, ast.Is: cst.Is, ast.IsNot: cst.IsNot,
    ast.In: cst.In, ast.NotIn: cst.NotIn,
}
_SIMPLE_STATEMENTS = {ast.Pass: cst.Pass, ast.Break: cst.Break, ast.Continue: cst.Continue}


class LiteBuilder:
    """Builds a (partial) libcst Module from an ast Module."""

    def __init__(self, lines: Sequence[str]):
        self.lines = lines
        self.index = LiteIndex(list(lines))

    # -- positions ------------------------------------------------------------
    # Each node records the ast node it was built from; the index turns that
    # into a position only when asked (for the few nodes that are reported).
    def _mk(self, cls, source: Optional[ast.AST], **fields):
        node = make(cls, **fields)
        if source is not None:
            self.index.record(node, source)
        return node

    def _name(self, value: str, source: Optional[ast.AST] = None, position: Optional[Position] = None):
        node = make(cst.Name, value=value)
        if source is not None:
            self.index.record(node, source)
        elif position is not None:
            self.index.record(node, position)
        return node

    def _defined_name(self, stmt, keyword: str):
        """The name of a def/class, positioned after its keyword."""
        line = stmt.lineno
        text = self.lines[line - 1] if line <= len(self.lines) else ""
        column = text.find(stmt.name, text.find(keyword))
        position = (line, max(column, 0), line, max(column, 0) + len(stmt.name))
        return self._name(stmt.name, position=position)

    # -- module and statements -------------------------------------------------
    def module(self, statements: Sequence[ast.stmt], members: Dict[int, List[ast.stmt]]) -> cst.Module:
        self._members = members
        return make(cst.Module, body=[self.statement(s) for s in statements])

    def block(self, statements: Sequence[ast.stmt]):
        return make(cst.IndentedBlock, body=[self.statement(s) for s in statements])

    def _else(self, statements: Sequence[ast.stmt]):
        return make(cst.Else, body=self.block(statements)) if statements else None

    def statement(self, node: ast.stmt):
        method = _STATEMENTS.get(type(node).__name__)
        if method is not None:
            return method(self, node)
        small = self.small(node)
        return self._mk(cst.SimpleStatementLine, node, body=[small])

    def small(self, node: ast.stmt):
        kind = type(node)
        if kind in _SIMPLE_STATEMENTS:
            return self._mk(_SIMPLE_STATEMENTS[kind], node)
        method = _SMALL_STATEMENTS.get(kind.__name__)
        if method is None:
            return self._mk(cst.Pass, node)  # global/nonlocal and newer forms: nothing for the model
        return method(self, node)

    def small_Assign(self, node: ast.Assign):
        targets = [make(cst.AssignTarget, target=self.expr(t)) for t in node.targets]
        return self._mk(cst.Assign, node, targets=targets, value=self.expr(node.value))

    def small_AnnAssign(self, node: ast.AnnAssign):
        value = self.expr(node.value) if node.value is not None else None
        return self._mk(cst.AnnAssign, node, target=self.expr(node.target), annotation=None, value=value)

    def small_AugAssign(self, node: ast.AugAssign):
        return self._mk(cst.AugAssign, node, target=self.expr(node.target), operator=make(_AUGMENTED[type(node.op)]),
                        value=self.expr(node.value))

    def small_Expr(self, node: ast.Expr):
        return self._mk(cst.Expr, node, value=self.expr(node.value))

    def small_Return(self, node: ast.Return):
        return self._mk(cst.Return, node, value=self.expr(node.value) if node.value is not None else None)

    def small_Raise(self, node: ast.Raise):
        return self._mk(cst.Raise, node, exc=self._opt(node.exc), cause=None)

    def small_Assert(self, node: ast.Assert):
        return self._mk(cst.Assert, node, test=self.expr(node.test), msg=self._opt(node.msg))

    def small_Delete(self, node: ast.Delete):
        targets = [self.expr(t) for t in node.targets]
        target = targets[0] if len(targets) == 1 else make(cst.Tuple, elements=[make(cst.Element, value=t) for t in targets])
        return self._mk(cst.Del, node, target=target)

    def small_Import(self, node: ast.Import):
        names = [make(cst.ImportAlias, name=self._dotted(a.name),
                      asname=make(cst.AsName, name=self._name(a.asname)) if a.asname else None) for a in node.names]
        return self._mk(cst.Import, node, names=names)

    def small_ImportFrom(self, node: ast.ImportFrom):
        if len(node.names) == 1 and node.names[0].name == "*":
            names = make(cst.ImportStar)
        else:
            names = [make(cst.ImportAlias, name=self._name(a.name),
                          asname=make(cst.AsName, name=self._name(a.asname)) if a.asname else None) for a in node.names]
        module = self._dotted(node.module) if node.module else None
        return self._mk(cst.ImportFrom, node, module=module, names=names, relative=[make(cst.Dot)] * (node.level or 0))

    def _dotted(self, dotted: str):
        parts = dotted.split(".")
        node = self._name(parts[0])
        for part in parts[1:]:
            node = make(cst.Attribute, value=node, attr=self._name(part))
        return node

    def stmt_If(self, node: ast.If):
        if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If):
            orelse = self.stmt_If(node.orelse[0])
        else:
            orelse = self._else(node.orelse)
        return self._mk(cst.If, node, test=self.expr(node.test), body=self.block(node.body), orelse=orelse)

    def stmt_For(self, node):
        return self._mk(cst.For, node, target=self.expr(node.target), iter=self.expr(node.iter),
                        body=self.block(node.body), orelse=self._else(node.orelse), asynchronous=None)

    stmt_AsyncFor = stmt_For

    def stmt_While(self, node: ast.While):
        return self._mk(cst.While, node, test=self.expr(node.test), body=self.block(node.body),
                        orelse=self._else(node.orelse))

    def stmt_With(self, node):
        items = [make(cst.WithItem, item=self.expr(i.context_expr),
                      asname=make(cst.AsName, name=self.expr(i.optional_vars)) if i.optional_vars is not None else None)
                 for i in node.items]
        return self._mk(cst.With, node, items=items, body=self.block(node.body), asynchronous=None)

    stmt_AsyncWith = stmt_With

    def stmt_Try(self, node, cls=cst.Try, handler_cls=cst.ExceptHandler):
        handlers = [make(handler_cls, type=self._opt(h.type),
                         name=make(cst.AsName, name=self._name(h.name)) if h.name else None, body=self.block(h.body))
                    for h in node.handlers]
        finalbody = make(cst.Finally, body=self.block(node.finalbody)) if node.finalbody else None
        return self._mk(cls, node, body=self.block(node.body), handlers=handlers, orelse=self._else(node.orelse),
                        finalbody=finalbody)

    def stmt_TryStar(self, node):
        return self.stmt_Try(node, cst.TryStar, cst.ExceptStarHandler)

    def stmt_Match(self, node):
        cases = [make(cst.MatchCase, pattern=None, guard=self._opt(c.guard), body=self.block(c.body)) for c in node.cases]
        return self._mk(cst.Match, node, subject=self.expr(node.subject), cases=cases)

    def stmt_FunctionDef(self, node):
        return self._mk(cst.FunctionDef, node, name=self._defined_name(node, "def"), params=self.parameters(node.args),
                        body=self.block(node.body), decorators=self._decorators(node),
                        asynchronous=make(cst.Asynchronous) if isinstance(node, ast.AsyncFunctionDef) else None)

    stmt_AsyncFunctionDef = stmt_FunctionDef

    def stmt_ClassDef(self, node: ast.ClassDef):
        body = self._members.get(id(node), node.body) if hasattr(self, "_members") else node.body
        bases = [make(cst.Arg, value=self.expr(b), keyword=None, star="") for b in node.bases]
        keywords = [make(cst.Arg, value=self.expr(k.value), keyword=self._name(k.arg) if k.arg else None,
                         star="" if k.arg else "**") for k in node.keywords]
        return self._mk(cst.ClassDef, node, name=self._defined_name(node, "class"), bases=bases, keywords=keywords,
                        body=self.block(body), decorators=self._decorators(node))

    def _decorators(self, node):
        return [make(cst.Decorator, decorator=self.expr(d)) for d in node.decorator_list]

    def parameters(self, args: ast.arguments):
        positional = list(args.posonlyargs) + list(args.args)
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)

        def param(arg: ast.arg, default, star=""):
            return make(cst.Param, name=self._name(arg.arg, arg), default=self._opt(default),
                        annotation=_simple_annotation(arg.annotation), star=star)

        params = [param(a, d) for a, d in zip(positional, defaults)]
        count = len(args.posonlyargs)
        if args.vararg is not None:
            star_arg = param(args.vararg, None, "*")
        elif args.kwonlyargs:
            star_arg = make(cst.ParamStar)
        else:
            star_arg = cst.MaybeSentinel.DEFAULT
        return make(
            cst.Parameters,
            posonly_params=params[:count],
            params=params[count:],
            star_arg=star_arg,
            kwonly_params=[param(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults)],
            star_kwarg=param(args.kwarg, None, "**") if args.kwarg is not None else None,
        )

    # -- expressions -------------------------------------------------------------
    def _opt(self, node: Optional[ast.AST]):
        return self.expr(node) if node is not None else None

    def expr(self, node: ast.AST):
        method = _EXPRESSIONS.get(type(node).__name__)
        if method is None:
            # Anything newer than the model knows: a name that resolves to nothing.
            return self._mk(cst.Name, node, value="<unsupported>")
        return method(self, node)

    # The most frequent nodes skip ``make``'s keyword arguments and set their
    # slots directly (names alone are a third of all nodes).
    def expr_Name(self, node: ast.Name):
        name = _new(cst.Name)
        _set_name_value(name, node.id)
        self.index.record(name, node)
        return name

    def expr_Constant(self, node: ast.Constant):
        value = node.value
        if value is None or isinstance(value, bool):
            return self._mk(cst.Name, node, value=repr(value))
        if isinstance(value, int):
            return self._mk(cst.Integer, node, value=repr(value))
        if isinstance(value, float):
            return self._mk(cst.Float, node, value=repr(value))
        if isinstance(value, complex):
            return self._mk(cst.Imaginary, node, value=repr(value))
        if value is Ellipsis:
            return self._mk(cst.Ellipsis, node)
        return self._mk(cst.SimpleString, node, value=repr(value))

    def expr_JoinedStr(self, node: ast.JoinedStr):
        parts = [make(cst.FormattedStringExpression, expression=self.expr(v.value))
                 for v in node.values if isinstance(v, ast.FormattedValue)]
        return self._mk(cst.FormattedString, node, parts=parts)

    def expr_Attribute(self, node: ast.Attribute):
        attribute = _new(cst.Attribute)
        _set_attribute_value(attribute, self.expr(node.value))
        attr = _new(cst.Name)
        _set_name_value(attr, node.attr)
        _set_attribute_attr(attribute, attr)
        self.index.record(attribute, node)
        return attribute

    def expr_Call(self, node: ast.Call):
        args = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                args.append(make(cst.Arg, value=self.expr(arg.value), keyword=None, star="*"))
            else:
                positional = _new(cst.Arg)
                _set_arg_value(positional, self.expr(arg))
                _set_arg_keyword(positional, None)
                _set_arg_star(positional, "")
                args.append(positional)
        for keyword in node.keywords:
            name = self._name(keyword.arg) if keyword.arg is not None else None
            args.append(make(cst.Arg, value=self.expr(keyword.value), keyword=name,
                             star="" if keyword.arg is not None else "**"))
        return self._mk(cst.Call, node, func=self.expr(node.func), args=args)

    def expr_BinOp(self, node: ast.BinOp):
        return self._mk(cst.BinaryOperation, node, left=self.expr(node.left), operator=make(_BINARY[type(node.op)]),
                        right=self.expr(node.right))

    def expr_UnaryOp(self, node: ast.UnaryOp):
        return self._mk(cst.UnaryOperation, node, operator=make(_UNARY[type(node.op)]), expression=self.expr(node.operand))

    def expr_BoolOp(self, node: ast.BoolOp):
        operator = cst.And if isinstance(node.op, ast.And) else cst.Or
        values = [self.expr(v) for v in node.values]
        result = values[0]
        for source, value in zip(node.values[1:], values[1:]):
            result = make(cst.BooleanOperation, left=result, operator=make(operator), right=value)
        self.index.record(result, node)
        return result

    def expr_Compare(self, node: ast.Compare):
        targets = [make(cst.ComparisonTarget, operator=make(_COMPARE[type(op)]), comparator=self.expr(c))
                   for op, c in zip(node.ops, node.comparators)]
        return self._mk(cst.Comparison, node, left=self.expr(node.left), comparisons=targets)

    def expr_IfExp(self, node: ast.IfExp):
        return self._mk(cst.IfExp, node, test=self.expr(node.test), body=self.expr(node.body),
                        orelse=self.expr(node.orelse))

    def expr_NamedExpr(self, node: ast.NamedExpr):
        return self._mk(cst.NamedExpr, node, target=self.expr(node.target), value=self.expr(node.value))

    def expr_Subscript(self, node: ast.Subscript):
        slices = node.slice.elts if isinstance(node.slice, ast.Tuple) and any(
            isinstance(e, ast.Slice) for e in node.slice.elts) else [node.slice]
        elements = [make(cst.SubscriptElement, slice=self._slice(s)) for s in slices]
        return self._mk(cst.Subscript, node, value=self.expr(node.value), slice=elements)

    def _slice(self, node: ast.AST):
        if isinstance(node, ast.Slice):
            return make(cst.Slice, lower=self._opt(node.lower), upper=self._opt(node.upper), step=self._opt(node.step))
        return make(cst.Index, value=self.expr(node))

    def _elements(self, nodes):
        out = []
        for element in nodes:
            if isinstance(element, ast.Starred):
                out.append(self._mk(cst.StarredElement, element, value=self.expr(element.value)))
            else:
                out.append(make(cst.Element, value=self.expr(element)))
        return out

    def expr_Tuple(self, node: ast.Tuple):
        return self._mk(cst.Tuple, node, elements=self._elements(node.elts))

    def expr_List(self, node: ast.List):
        return self._mk(cst.List, node, elements=self._elements(node.elts))

    def expr_Set(self, node: ast.Set):
        return self._mk(cst.Set, node, elements=self._elements(node.elts))

    def expr_Starred(self, node: ast.Starred):
        return self._mk(cst.StarredElement, node, value=self.expr(node.value))

    def expr_Dict(self, node: ast.Dict):
        elements = []
        for key, value in zip(node.keys, node.values):
            if key is None:
                elements.append(make(cst.StarredDictElement, value=self.expr(value)))
            else:
                elements.append(make(cst.DictElement, key=self.expr(key), value=self.expr(value)))
        return self._mk(cst.Dict, node, elements=elements)

    def expr_Lambda(self, node: ast.Lambda):
        return self._mk(cst.Lambda, node, params=self.parameters(node.args), body=self.expr(node.body))

    def _comp_for(self, generators: Sequence[ast.comprehension]):
        result = None
        for generator in reversed(generators):
            ifs = [make(cst.CompIf, test=self.expr(test)) for test in generator.ifs]
            result = make(cst.CompFor, target=self.expr(generator.target), iter=self.expr(generator.iter), ifs=ifs,
                          inner_for_in=result, asynchronous=None)
        return result

    def expr_ListComp(self, node):
        return self._mk(cst.ListComp, node, elt=self.expr(node.elt), for_in=self._comp_for(node.generators))

    def expr_GeneratorExp(self, node):
        return self._mk(cst.GeneratorExp, node, elt=self.expr(node.elt), for_in=self._comp_for(node.generators))

    def expr_SetComp(self, node):
        return self._mk(cst.SetComp, node, elt=self.expr(node.elt), for_in=self._comp_for(node.generators))

    def expr_DictComp(self, node):
        return self._mk(cst.DictComp, node, key=self.expr(node.key), value=self.expr(node.value),
                        for_in=self._comp_for(node.generators))

    def expr_Await(self, node):
        return self._mk(cst.Await, node, expression=self.expr(node.value))

    def expr_Yield(self, node):
        return self._mk(cst.Yield, node, value=self._opt(node.value))

    def expr_YieldFrom(self, node):
        return self._mk(cst.Yield, node, value=make(cst.From, item=self.expr(node.value)))


_STATEMENTS = {name[len("stmt_"):]: f for name, f in vars(LiteBuilder).items() if name.startswith("stmt_")}
_SMALL_STATEMENTS = {name[len("small_"):]: f for name, f in vars(LiteBuilder).items() if name.startswith("small_")}
_EXPRESSIONS = {name[len("expr_"):]: f for name, f in vars(LiteBuilder).items() if name.startswith("expr_")}


def build(lines: Sequence[str], statements: Sequence[ast.stmt], members: Dict[int, List[ast.stmt]]):
    """A lite libcst Module of these top-level statements (classes trimmed to
    ``members``) and the index of its nodes' positions."""
    builder = LiteBuilder(lines)
    module = builder.module(statements, members)
    return module, builder.index


def _simple_annotation(annotation: Optional[ast.expr]) -> Optional[cst.Annotation]:
    """A parameter's annotation when it is a plain name (``shortcut: bool``
    says a flag, not a module); richer annotations mean nothing to the model
    and are not built."""
    if isinstance(annotation, ast.Name):
        return make(cst.Annotation, annotation=make(cst.Name, value=annotation.id))
    return None
