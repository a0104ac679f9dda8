"""One file through the pipeline: parse -> block models -> rules -> findings.

The engine knows nothing about terminals, files on disk or the trace: it takes
source text and returns plain :class:`~resnetlint.findings.Finding` objects.
A rule that raises is contained: the file gets an ``RL999`` finding naming the
rule and the exception, and every other rule still runs.
"""
from __future__ import annotations

import ast
import gc
import os
import traceback
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import libcst as cst

from .findings import Finding, FixInfo
from .results import BlockInfo, FileResult
from .fixes import FixError, FixPlan, materialize
from .model import lite
from .model.project import Project
from .model.block import BlockModel, FileAnalysis, channels_moved_into, channels_of, consumes_directly, first_input_width
from .model.residual import residual_adds, strip_elementwise
from .model.symbolic import Num
from .model.syntax import LibcstIndex, SourceIndex
from .model.values import as_num
from . import noqa
from .nodes import using_index
from .prefilter import FileScan, select_statements, split_lines
from .rule import Rule, Violation

SYNTAX_ERROR = ("RL000", "syntax-error")
INTERNAL_ERROR = ("RL999", "internal-error")
REPORT_REQUEST = "please report this at https://github.com/resnetlint/resnetlint/issues with the file if you can"


# Plain-data results live in .results (importable without libcst); re-exported here.


@dataclass
class _Reported:
    rule: Optional[Rule]
    block: Optional[BlockModel]
    violation: Violation


def check_text(text: str, path: str, rules: Sequence[Rule], fast: bool = True,
               project: Optional[Project] = None, prove: bool = False) -> FileResult:
    """Check Python source text; ``fast`` parses with libcst only what the
    model can need (see :mod:`resnetlint.prefilter`); ``prove`` also works
    out, for each class, whether its widths and strides check out
    (``result.proofs``, for the fixer).  Never raises: a failure of
    resnetlint itself anywhere on the way becomes an ``RL999`` finding
    (rules and the block model are contained more finely below)."""
    try:
        return _check_text(text, path, rules, fast, project if project is not None else Project(), prove)
    except Exception as exc:  # noqa: BLE001 - contained, reported as RL999
        reraise_interrupt(exc)
        result = FileResult(path, text=text)
        result.findings.append(_internal_error(exc, path, 1, "resnetlint", ""))
        result.tracebacks.append(_traceback(path, "resnetlint"))
        return result


def reraise_interrupt(exc: BaseException) -> None:
    """An error raised while handling Ctrl-C (a failed import, a lock
    released mid-way) is the interrupt, not a bug of ours to report: a
    fix must not go on with a file whose analysis was cut short."""
    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            raise KeyboardInterrupt from exc
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def _traceback(path: str, where: str) -> str:
    return f"{path}: internal error in {where}:\n{traceback.format_exc().rstrip()}"


def _check_text(text: str, path: str, rules: Sequence[Rule], fast: bool, project: Project,
                prove: bool = False) -> FileResult:
    result = FileResult(path, text=text)
    try:
        tree = _parse_ast(text)
    except SyntaxError as exc:
        result.findings.append(_syntax_error(exc, path))
        return result
    lines = split_lines(text)
    scan = FileScan(tree)
    facts = scan.facts()
    try:
        module, index = _front_end(text, scan, lines, fast)
    except cst.ParserSyntaxError as exc:
        # Python accepted it but libcst did not (a newer grammar feature).
        result.findings.append(_libcst_error(exc, path))
        return result
    except RecursionError:
        result.findings.append(_finding(*SYNTAX_ERROR, path, 1, 1, 1, 1, "", "the code is nested too deeply to analyse",
                                        "resnetlint skipped this file"))
        return result
    result.module = module
    reported: List[_Reported] = []
    with using_index(index, project.text_of), project.recording() as consulted:
        analysis = None
        try:
            analysis = FileAnalysis(module, facts, path, project)
            _run_rules(analysis, rules, index, scan, path, result, reported)
            if prove:
                _prove(analysis, result)
        except RecursionError:
            return result  # pathologically nested code: nothing to say about it
        except Exception as exc:  # noqa: BLE001 - contained, reported as RL999
            reraise_interrupt(exc)
            result.findings.append(_internal_error(exc, path, 1, "the block model", ""))
            result.tracebacks.append(_traceback(path, "the block model"))
            return result
        finally:
            if analysis is not None:
                analysis.release()
            result.dependencies = {p: d for p, d in consulted.items() if p != os.path.abspath(path)}
    if reported:
        newline = next((line[len(line.rstrip("\r\n")):] for line in lines if line.endswith(("\n", "\r"))), "\n")
        result.findings.extend(_locate(reported, index, path, lines, newline))
    result.findings = _dedupe(_suppress(result.findings, text, rules, path))
    return result


def _run_rules(analysis: FileAnalysis, rules: Sequence[Rule], index: SourceIndex, scan: FileScan, path: str,
               result: FileResult, reported: List[_Reported]) -> None:
    """Model every module class, then run each rule on each block; a rule
    that fails becomes an RL999 finding and the others go on."""
    blocks = analysis.blocks()
    result.classes = len(blocks)
    for block in blocks:
        for rule in rules:
            try:
                for violation in rule.check(block, analysis):
                    reported.append(_Reported(rule, block, violation))
            except RecursionError:
                continue
            except Exception as exc:  # noqa: BLE001
                reraise_interrupt(exc)
                line = _class_line(block, index)
                result.findings.append(_internal_error(exc, path, line, f"rule {rule.code}", block.name))
                result.tracebacks.append(_traceback(path, f"rule {rule.code} (class {block.name})"))
    flagged = {item.block.name for item in reported if item.block is not None}
    for block in blocks:
        result.blocks[block.name] = _block_info(block, index, scan, block.name in flagged)


def _prove(analysis: FileAnalysis, result: FileResult) -> None:
    """Whether each class's widths and strides check out (the static proof
    of a fix, :mod:`resnetlint.model.proof`); a failure proves nothing."""
    from .model.proof import shapes_check_out

    for block in analysis.blocks():
        try:
            result.proofs[block.name] = shapes_check_out(block)
        except RecursionError:
            result.proofs[block.name] = "the block is too deeply nested to prove"
        except Exception as exc:  # noqa: BLE001 - an unproven fix is not applied; the run goes on
            reraise_interrupt(exc)
            result.proofs[block.name] = f"the proof failed ({type(exc).__name__})"


def _suppress(findings: List[Finding], text: str, rules: Sequence[Rule], path: str) -> List[Finding]:
    """Drop what ``# noqa`` comments suppress; RL100 reports those that
    suppressed nothing (see :mod:`resnetlint.noqa`)."""
    unused_rule = next((rule for rule in rules if getattr(rule, "file_level", False) and rule.code == "RL100"), None)
    if not findings and (unused_rule is None or not noqa.may_name_our_codes(text)):
        return findings  # nothing to suppress and no directive RL100 could report
    outcome = noqa.apply(findings, text)
    if not outcome.directives:
        return findings
    kept = outcome.kept
    if unused_rule is not None:
        enabled = {rule.code for rule in rules}
        unused = unused_rule.report(outcome.directives, enabled, path, split_lines(text))
        kept = kept + noqa.apply(unused, text, outcome.directives).kept  # `# noqa: RL100` silences RL100
    return kept


def _block_info(block: BlockModel, index: SourceIndex, scan: FileScan, flagged: bool) -> BlockInfo:
    """What the trace needs to run the class.  It runs only classes with
    findings (``flagged``) and residual blocks (``--trace-all``): for the
    others (most classes) only that they are not residual is worked out."""
    residual = any(residual_adds(flow) for _, flow in block.flows())
    if not (residual or flagged):
        return BlockInfo(block.name, 0, False, None, [])
    position = index.position(block.cls.name)
    hint = None
    input_atoms: Set[str] = set()
    channels_last = False
    for _, flow in block.flows():
        if flow.input is None:
            continue
        for value in flow.values:
            moved = value.kind == "layer" and hint is None and channels_moved_into(value, flow.input)
            if moved and value.attr and value.attr.isidentifier():
                hint, channels_last = value.attr, True
            if value.kind == "layer" and (moved or consumes_directly(value, flow.input)):
                if hint is None and value.attr and value.attr.isidentifier():
                    hint = value.attr
                if not input_atoms and value.spec is not None and value.spec.summary.in_channels is not None:
                    # The first layer that states a width defines the input's.
                    input_atoms = set(value.spec.summary.in_channels.atoms())
    widths: Set[str] = set()
    strides: Set[str] = set()
    for wf in block.worlds:
        for spec in block.layer_specs(wf.world):
            for name in WIDTH_ARGS:
                num = as_num(spec.arg(name))
                if num is not None and len(num.terms) == 1 and len(num.terms[0][0]) == 1:
                    # `planes`, `planes * 4`: a width; not the `scale` of `width * scale`
                    widths |= num.atoms()
            num = as_num(spec.arg("stride"))
            if num is not None:
                strides |= num.atoms()
    params = _init_params(block)
    natural = _natural_widths(block, params)
    return BlockInfo(block.name, position[0] if position else 1, residual, hint,
                     list(scan.literal_sites.get(block.name, [])),
                     width_params=sorted(widths & params), input_params=sorted(input_atoms & params),
                     stride_params=sorted(strides & params - widths), natural=natural, channels_last=channels_last,
                     equal_widths=_equal_widths(block, sorted(widths & params)))


def _equal_widths(block: BlockModel, widths: List[str]) -> List[List[str]]:
    """Pairs of width parameters equal in every world (the call sites'
    contract, ``PosConv(dims[i], dims[i])``, or an assert)."""
    worlds = [wf.world.facts for wf in block.worlds]
    return [[a, b] for i, a in enumerate(widths) for b in widths[i + 1:]
            if worlds and all(facts.equal(Num.atom(a), Num.atom(b)) is True for facts in worlds)]


WIDTH_ARGS = ("in_channels", "out_channels", "num_features", "num_channels", "in_features", "out_features")
BASE_WIDTH = 16


def _natural_widths(block: BlockModel, params: Set[str]) -> Dict[str, int]:
    """Solve ``input width == output width`` for the add of the raw input
    when both are one parameter times a constant."""
    for _, flow in block.flows():
        for residual in residual_adds(flow):
            if strip_elementwise(residual.skip) is not flow.input:
                continue
            facts = residual.facts
            width_out = channels_of(flow, residual.main, facts)
            if not isinstance(width_out, Num):
                continue
            width_in = first_input_width(flow)
            if width_in is None:
                continue
            solved = _solve(facts.norm(width_in), facts.norm(width_out), params)
            if solved:
                return solved
    return {}


def _solve(a: Num, b: Num, params: Set[str]) -> Dict[str, int]:
    def scaled_atom(num: Num):
        if len(num.terms) == 1 and len(num.terms[0][0]) == 1 and num.terms[0][0][0][1] == 1:
            return num.terms[0][0][0][0], num.terms[0][1]
        return None

    left, right = scaled_atom(a), scaled_atom(b)
    if left is None or right is None or not {left[0], right[0]} <= params:
        return {}
    (atom_a, k_a), (atom_b, k_b) = left, right
    if atom_a == atom_b:
        return {atom_a: BASE_WIDTH} if k_a == k_b else {}
    value_a = BASE_WIDTH * k_b / k_a  # k_a * a == k_b * b with b = BASE_WIDTH
    if value_a.denominator != 1 or value_a <= 0:
        return {}
    return {atom_a: int(value_a), atom_b: BASE_WIDTH}


def _init_params(block: BlockModel) -> Set[str]:
    init = block.init.init
    if init is None:
        return set()
    return {p.name.value for p in list(init.params.posonly_params) + list(init.params.params) +
            list(init.params.kwonly_params)}


def _front_end(text: str, scan: FileScan, lines: List[str], fast: bool) -> Tuple[cst.Module, SourceIndex]:
    """The model's nodes: built from the ast (fast) or parsed by libcst."""
    if fast:
        selection = select_statements(scan)
        return lite.build(lines, selection.statements, selection.members)
    module = cst.parse_module(text)
    return module, LibcstIndex(module)


def _parse_ast(text: str) -> ast.Module:
    # Parsing allocates many objects; the cyclic GC would otherwise scan them
    # over and over (3x slower on a large corpus).
    nul = text.find("\0")
    if nul >= 0:  # Python refuses them, with a position or none depending on the version
        start = text.rfind("\n", 0, nul) + 1
        raise SyntaxError("source code cannot contain null bytes", ("", text.count("\n", 0, nul) + 1, nul - start + 1, ""))
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(text)
    except ValueError as exc:  # other invalid source on some Pythons
        raise SyntaxError(str(exc)) from None
    except (RecursionError, MemoryError) as exc:
        # Nesting deeper than Python's parser allows (thousands of operators
        # or brackets): Python itself cannot compile the file either.
        why = "RecursionError" if isinstance(exc, RecursionError) else "MemoryError: its parser stack overflowed"
        raise SyntaxError(f"too deeply nested for Python's parser ({why})") from None
    finally:
        if enabled:
            gc.enable()


def _locate(reported: List[_Reported], index: SourceIndex, path: str, lines: List[str], newline: str) -> List[Finding]:
    out = []
    for item in reported:
        position = index.position(item.violation.node)
        if position is None:
            continue
        line, column, end_line, end_column = position
        rule = item.rule
        assert rule is not None and item.block is not None
        finding = _finding(rule.code, rule.name, path, line, column + 1, end_line, end_column + 1, item.block.name,
                           item.violation.message, item.violation.help, severity=rule.severity)
        finding.expect = item.violation.expect
        finding.fix = _fix_info(item.violation.fix, index, lines, newline)
        out.append(finding)
    return out


def _fix_info(plan: Optional[FixPlan], index: SourceIndex, lines: List[str], newline: str) -> Optional[FixInfo]:
    if plan is None:
        return None
    try:
        edits = materialize(plan, index, lines, newline)
    except FixError:
        return _fix_info(plan.fallback, index, lines, newline)
    return FixInfo(plan.safety, plan.description, edits=edits)


def _class_line(block: BlockModel, index: SourceIndex) -> int:
    position = index.position(block.cls.name)
    return position[0] if position is not None else 1


def _finding(code, rule, path, line, column, end_line, end_column, symbol, message, help_text="", severity="error") -> Finding:
    return Finding(code, rule, severity, path, line, column, end_line, end_column, symbol, message, help_text)


def _syntax_error(exc: SyntaxError, path: str) -> Finding:
    line = exc.lineno or 1
    column = exc.offset or 1
    message = exc.msg if hasattr(exc, "msg") else str(exc)
    return _finding(*SYNTAX_ERROR, path, line, max(column, 1), line, max(column, 1), "", f"SyntaxError: {message}",
                    "resnetlint only checks files that Python can parse")


def _libcst_error(exc: cst.ParserSyntaxError, path: str) -> Finding:
    line = exc.raw_line
    message = str(exc.message) if hasattr(exc, "message") else str(exc).splitlines()[0]
    return _finding(*SYNTAX_ERROR, path, line, exc.raw_column + 1, line, exc.raw_column + 1, "",
                    f"libcst cannot parse this file: {message}",
                    "the code may use syntax newer than the installed libcst supports; upgrade libcst")


def _internal_error(exc: BaseException, path: str, line: int, where: str, symbol: str) -> Finding:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return _finding(*INTERNAL_ERROR, path, line, 1, line, 1, symbol, f"internal error in {where}: {text}",
                    REPORT_REQUEST)


def _dedupe(findings: Iterable[Finding]) -> List[Finding]:
    """One finding per place, and of a finding said twice the one that
    points closest: two alternatives of one layer (the class a factory
    defaults to, and the contract of the caller's) each report the call,
    one at the argument, the other, built by a helper, at the whole call."""
    seen = set()
    out = []
    for finding in sorted(findings, key=Finding.sort_key):
        key = (finding.code, finding.line, finding.column, finding.end_line, finding.end_column)
        if key in seen:
            continue
        seen.add(key)
        out.append(finding)
    return [f for f in out if not any(_narrower_twin(other, f) for other in out)]


def _narrower_twin(inner: Finding, outer: Finding) -> bool:
    """``inner`` is ``outer`` said again inside the same call: the same code
    in the same class, starting on the same line, within its range, and
    predicting the same evidence (the same widths, the same strides)."""
    if inner is outer or (inner.code, inner.symbol, inner.line) != (outer.code, outer.symbol, outer.line) or \
            not inner.expect or inner.expect != outer.expect:
        return False
    return (outer.line, outer.column) <= (inner.line, inner.column) and \
        (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column)
