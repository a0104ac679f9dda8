#!/usr/bin/env python3
"""Property-based fuzzing of the analyzer and the fixer (hypothesis).

Programs come from three sources:

* ``grammar``: arbitrary syntactically valid Python from hypothesmith's
  grammar strategy (needs ``pip install hypothesmith``; skipped without it);
* ``mutant``: the fixtures in ``fixtures/`` with a few random mutations:
  argument names swapped (``self.conv2(out)`` -> ``(x)``), ``out`` replaced
  by ``x``, lines of ``forward`` deleted, duplicated or swapped,
  stride/padding/kernel/groups literals changed, widths swapped
  (``in_channels`` <-> ``out_channels``), adds made in-place;
* ``block``: residual blocks built from random layers and a random
  ``forward`` dataflow, where most findings and fixes are.

Properties (each example checked with every rule, RL303 included):

``no-crash``      analysing never raises and never reports RL999, with the
                  fast and the full (libcst) front end;
``same-findings`` both front ends report the same findings;
``parses``        the text ``fix_text`` returns parses (ast and libcst);
``idempotent``    fixing the fixed text changes nothing;
``fixed``         a finding a fix claimed to remove (same rule, class and
                  message) is reported fewer times on the fixed text than on
                  the text the fix was applied to: the fix worked, and fixes
                  did not undo one another.

    .venv/bin/python scripts/fuzz.py --examples 5000          # every source
    .venv/bin/python scripts/fuzz.py --source block --examples 2000 --seed 3

Failing programs (not shrunk) are saved under ``--out`` (default
``$TMPDIR/resnetlint-fuzz-failures/``), with what failed beside each.  Exit
code 1 when any property failed.  ``tests/test_fuzz.py`` runs the same
properties, bounded.
"""
from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import sys
import tempfile
import time
import tokenize
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import libcst as cst  # noqa: E402

from resnetlint.api import Settings  # noqa: E402
from resnetlint.engine import check_text  # noqa: E402
from resnetlint.fixer import MAX_PASSES, fix_text  # noqa: E402
from resnetlint.fixes import apply_edits  # noqa: E402
from resnetlint.prefilter import split_lines  # noqa: E402

FIXTURE_DIRS = ("seeds", "bugs", "clean", "fixed/seeds", "fixed/bugs")
PROPERTIES = ("no-crash", "same-findings", "parses", "idempotent", "fixed")


def all_rules():
    return Settings(select=["ALL"]).rules()


def fixture_texts() -> Dict[str, str]:
    texts = {}
    for folder in FIXTURE_DIRS:
        for path in sorted((REPO / "fixtures" / folder).glob("*.py")):
            texts[f"{folder}/{path.name}"] = path.read_text(encoding="utf-8")
    return texts


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


class PropertyFailed(AssertionError):
    def __init__(self, prop: str, message: str):
        super().__init__(f"[{prop}] {message}")
        self.prop = prop


def _key(finding) -> Tuple:
    return (finding.code, finding.symbol, finding.line, finding.column, finding.end_line, finding.end_column,
            finding.message)


def _parse_problem(text: str) -> Optional[str]:
    try:
        ast.parse(text)
    except SyntaxError as exc:
        return f"ast: line {exc.lineno}: {exc.msg}"
    except (RecursionError, MemoryError, ValueError) as exc:
        return f"ast: {type(exc).__name__}"
    try:
        cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        return f"libcst: line {exc.raw_line}: {exc.message}"
    except RecursionError:
        return "libcst: RecursionError"
    return None


def check_properties(text: str, rules=None, fix: bool = True, stats: Optional[Counter] = None) -> None:
    """Raise :class:`PropertyFailed` for the first property ``text`` breaks."""
    rules = rules if rules is not None else all_rules()
    stats = stats if stats is not None else Counter()
    parseable = _parse_problem(text) is None
    stats["parseable" if parseable else "unparseable"] += 1
    results = {}
    for fast in (True, False):
        try:
            result = check_text(text, "fuzz.py", rules, fast=fast)
        except BaseException as exc:  # noqa: BLE001
            raise PropertyFailed("no-crash", f"check_text(fast={fast}) raised {type(exc).__name__}: {exc}\n"
                                 f"{traceback.format_exc()}") from None
        internal = [f for f in result.findings if f.code == "RL999"]
        if internal:
            raise PropertyFailed("no-crash", f"RL999 with fast={fast}: {internal[0].message}\n"
                                 f"{''.join(result.tracebacks)}")
        results[fast] = result
    stats["findings"] += len(results[True].findings)
    for finding in results[True].findings:
        stats[f"code {finding.code}"] += 1
    if parseable:
        fast_keys = sorted(_key(f) for f in results[True].findings)
        full_keys = sorted(_key(f) for f in results[False].findings)
        if fast_keys != full_keys:
            only_fast = sorted(set(fast_keys) - set(full_keys))
            only_full = sorted(set(full_keys) - set(fast_keys))
            raise PropertyFailed("same-findings", f"only fast: {only_fast}; only full: {only_full}")
    if not fix or not parseable:
        return
    try:
        outcome = fix_text(text, "fuzz.py", rules, unsafe=True)
    except BaseException as exc:  # noqa: BLE001
        raise PropertyFailed("no-crash", f"fix_text raised {type(exc).__name__}: {exc}\n"
                             f"{traceback.format_exc()}") from None
    if not outcome.changed:
        return
    stats["fixed programs"] += 1
    stats["fixes applied"] += len(outcome.applied)
    for applied in outcome.applied:
        stats[f"fix {applied.finding.code}"] += 1
    problem = _parse_problem(outcome.fixed)
    if problem is not None:
        raise PropertyFailed("parses", f"the fixed text does not parse ({problem}):\n{outcome.fixed}")
    internal = [f for f in outcome.remaining if f.code == "RL999"]
    if internal:
        raise PropertyFailed("no-crash", f"RL999 on the fixed text: {internal[0].message}")
    again = fix_text(outcome.fixed, "fuzz.py", rules, unsafe=True)
    if again.fixed != outcome.fixed:
        applied = [(a.finding.code, a.finding.symbol, a.finding.line) for a in again.applied]
        if outcome.passes < MAX_PASSES:  # not merely stopped by the pass limit
            raise PropertyFailed("idempotent", f"fixing the fixed text applied {applied}:\n{outcome.fixed}")
        stats["pass limit reached"] += 1
    # The text each pass started from, and what it reported.
    texts = [text]
    for step in range(max(a.step for a in outcome.applied) + 1):
        edits = [e for a in outcome.applied if a.step == step for e in a.finding.fix.edits]
        texts.append(apply_edits(texts[-1], split_lines(texts[-1]), edits))
    if texts[-1] != outcome.fixed:
        raise PropertyFailed("fixed", "the applied fixes do not add up to the fixed text")
    reported = {}
    final = Counter((f.code, f.symbol, f.message) for f in outcome.remaining)
    for applied in outcome.applied:
        finding = applied.finding
        if applied.step not in reported:
            reported[applied.step] = Counter((f.code, f.symbol, f.message) for f in
                                             check_text(texts[applied.step], "fuzz.py", rules, fast=False).findings)
        key = (finding.code, finding.symbol, finding.message)
        if final[key] >= reported[applied.step][key]:
            raise PropertyFailed("fixed", f"{finding.code} in {finding.symbol} was fixed but is still reported "
                                 f"({final[key]}x, {reported[applied.step][key]}x before the fix): {finding.message}"
                                 f"\n--- fixed text ---\n{outcome.fixed}")


# ---------------------------------------------------------------------------
# Program sources
# ---------------------------------------------------------------------------


def _names(text: str) -> List[Tuple[int, int, int, str]]:
    """(start offset, end offset, type, string) of NAME and NUMBER tokens."""
    out = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return out
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    for token in tokens:
        if token.type in (tokenize.NAME, tokenize.NUMBER):
            (row, col), (erow, ecol) = token.start, token.end
            if row - 1 < len(starts) and erow - 1 < len(starts):
                out.append((starts[row - 1] + col, starts[erow - 1] + ecol, token.type, token.string))
    return out


def _replace_token(text: str, k: int, wanted: Callable[[str], bool], new: Callable[[str], str]) -> str:
    candidates = [t for t in _names(text) if wanted(t[3])]
    if not candidates:
        return text
    start, end, _, string = candidates[k % len(candidates)]
    return text[:start] + new(string) + text[end:]


def _forward_lines(text: str) -> List[int]:
    """Indices of the lines inside ``def forward`` bodies (or all lines)."""
    lines = text.splitlines(keepends=True)
    inside, indent, found = False, 0, []
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        depth = len(line) - len(stripped)
        if stripped.startswith("def "):
            inside, indent = stripped.startswith("def forward"), depth
            continue
        if inside and stripped.strip() and depth <= indent:
            inside = False
        if inside and stripped.strip():
            found.append(index)
    return found or list(range(len(lines)))


def _line_op(kind: str):
    def op(text: str, k: int, value: int) -> str:
        lines = text.splitlines(keepends=True)
        body = _forward_lines(text)
        if not body:
            return text
        i = body[k % len(body)]
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = body[value % len(body)]
            lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines)
    return op


SWAPS = {"out": "x", "x": "out", "identity": "x", "residual": "x", "shortcut": "x",
         "in_channels": "out_channels", "out_channels": "in_channels", "inplanes": "planes", "planes": "inplanes",
         "in_planes": "planes", "conv1": "conv2", "conv2": "conv1", "bn1": "bn2", "bn2": "bn1"}
KEYWORDS = ("stride", "padding", "kernel_size", "groups", "dilation", "bias", "inplace", "expansion")


def _literal_op(text: str, k: int, value: int) -> str:
    """Change the literal after ``stride=`` / ``padding=`` ... or a small
    integer argument."""
    pattern = re.compile(r"\b(%s)\s*=\s*(\d+|True|False)" % "|".join(KEYWORDS))
    matches = list(pattern.finditer(text))
    if not matches:
        return text
    match = matches[k % len(matches)]
    old = match.group(2)
    new = ("False" if old == "True" else "True") if old in ("True", "False") else str(value % 5)
    return text[:match.start(2)] + new + text[match.end(2):]


def _number_op(text: str, k: int, value: int) -> str:
    return _replace_token(text, k, lambda s: s.isdigit() and len(s) <= 3, lambda s: str(value % 5))


def _swap_name_op(text: str, k: int, value: int) -> str:
    return _replace_token(text, k, lambda s: s in SWAPS, lambda s: SWAPS[s])


def _inplace_op(text: str, k: int, value: int) -> str:
    pattern = re.compile(r"^(\s*)(\w+) = (\2) \+ (\w+)", re.M)
    matches = list(pattern.finditer(text))
    if matches:
        match = matches[k % len(matches)]
        return text[:match.start()] + f"{match.group(1)}{match.group(2)} += {match.group(4)}" + text[match.end():]
    pattern = re.compile(r"\b(\w+) \+= (\w+)")
    matches = list(pattern.finditer(text))
    if not matches:
        return text
    match = matches[k % len(matches)]
    return text[:match.start()] + f"{match.group(1)} = {match.group(1)} + {match.group(2)}" + text[match.end():]


MUTATIONS = {
    "swap-name": _swap_name_op,
    "literal": _literal_op,
    "number": _number_op,
    "delete-line": _line_op("delete"),
    "duplicate-line": _line_op("duplicate"),
    "swap-lines": _line_op("swap"),
    "inplace": _inplace_op,
}


@st.composite
def mutants(draw, texts: Optional[Dict[str, str]] = None):
    texts = texts or FIXTURES
    text = texts[draw(st.sampled_from(sorted(texts)))]
    for _ in range(draw(st.integers(1, 4))):
        op = MUTATIONS[draw(st.sampled_from(sorted(MUTATIONS)))]
        text = op(text, draw(st.integers(0, 1000)), draw(st.integers(0, 1000)))
    return text


# Random residual blocks ------------------------------------------------------

WIDTHS = ("in_channels", "out_channels", "mid", "in_channels * 2", "out_channels * 4", "16", "32")


@st.composite
def layers(draw, index: int):
    kind = draw(st.sampled_from(["conv", "conv", "conv", "bn", "relu", "seq", "identity", "linear-ish"]))
    w_in, w_out = draw(st.sampled_from(WIDTHS)), draw(st.sampled_from(WIDTHS))
    if kind == "conv":
        kernel = draw(st.sampled_from([1, 3, 5]))
        padding = draw(st.sampled_from([None, 0, 1, 2, "kernel // 2"]))
        stride = draw(st.sampled_from([None, 1, 2, "stride"]))
        groups = draw(st.sampled_from([None, None, 2, w_in]))
        bias = draw(st.sampled_from([None, False, True]))
        args = [w_in, w_out, str(kernel)]
        for name, value in (("stride", stride), ("padding", padding), ("groups", groups), ("bias", bias)):
            if value is not None:
                args.append(f"{name}={value}")
        return f"nn.Conv2d({', '.join(args)})"
    if kind == "bn":
        return f"nn.BatchNorm2d({w_out})"
    if kind == "relu":
        return f"nn.ReLU(inplace={draw(st.booleans())})"
    if kind == "identity":
        return "nn.Identity()"
    if kind == "linear-ish":
        return f"nn.Conv2d({w_in}, {w_out}, 1, bias=False)"
    inner = [f"nn.Conv2d({w_in}, {w_out}, 3, padding=1, bias=False)", f"nn.BatchNorm2d({w_out})"]
    if draw(st.booleans()):
        inner.append("nn.ReLU(inplace=True)")
    return f"nn.Sequential({', '.join(inner)})"


@st.composite
def blocks(draw):
    count = draw(st.integers(1, 5))
    names = [f"layer{i}" for i in range(count)]
    init = [f"        self.{name} = {draw(layers(i))}" for i, name in enumerate(names)]
    shortcut = draw(st.sampled_from(["none", "conv", "guarded"]))
    if shortcut == "conv":
        init.append("        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, "
                    "bias=False), nn.BatchNorm2d(out_channels))")
    elif shortcut == "guarded":
        init.append("        self.shortcut = nn.Identity()")
        init.append("        if stride != 1 or in_channels != out_channels:")
        init.append("            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride)")
    variables = ["x"]
    body = []
    for _ in range(draw(st.integers(1, 7))):
        action = draw(st.sampled_from(["call", "call", "call", "add", "inplace", "alias", "branch"]))
        target = draw(st.sampled_from(["out", "out", "x", "identity", "y"]))
        source = draw(st.sampled_from(variables))
        if action == "call":
            body.append(f"        {target} = self.{draw(st.sampled_from(names))}({source})")
        elif action == "add":
            other = draw(st.sampled_from(variables + (["self.shortcut(x)"] if shortcut != "none" else [])))
            body.append(f"        {target} = {source} + {other}")
        elif action == "inplace":
            body.append(f"        {source} += {draw(st.sampled_from(variables))}")
            continue
        elif action == "alias":
            body.append(f"        {target} = {source}")
        else:
            body.append("        if self.training:")
            body.append(f"            {target} = self.{draw(st.sampled_from(names))}({source})")
            body.append("        else:")
            body.append(f"            {target} = {source}")
        if target not in variables:
            variables.append(target)
    result = draw(st.sampled_from(variables))
    final = draw(st.sampled_from(["plain", "residual", "shortcut", "relu"]))
    if final == "residual":
        body.append(f"        return {result} + x")
    elif final == "shortcut" and shortcut != "none":
        body.append(f"        return {result} + self.shortcut(x)")
    elif final == "relu":
        body.append(f"        return F.relu({result} + x)")
    else:
        body.append(f"        return {result}")
    params = draw(st.sampled_from(["in_channels, out_channels, stride=1", "in_channels, out_channels, stride=1, mid=64",
                                   "in_channels, out_channels, stride=1, kernel=3"]))
    if "mid" not in params:
        init.insert(0, "        mid = out_channels // 4")
    if "kernel" not in params:
        init.insert(0, "        kernel = 3")
    expansion = draw(st.sampled_from(["", "    expansion = 4\n\n"]))
    return ("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
            f"class Block(nn.Module):\n{expansion}    def __init__(self, {params}):\n"
            "        super().__init__()\n" + "\n".join(init) + "\n\n"
            "    def forward(self, x):\n" + "\n".join(body) + "\n")


def grammar_programs():
    try:
        import hypothesmith
    except ImportError:
        return None
    return hypothesmith.from_grammar()


FIXTURES = fixture_texts()


def programs(source: str):
    if source == "mutant":
        return mutants()
    if source == "block":
        return blocks()
    if source == "grammar":
        strategy = grammar_programs()
        if strategy is None:
            raise SystemExit("fuzz: hypothesmith is not installed (pip install hypothesmith)")
        return strategy
    raise ValueError(source)


# ---------------------------------------------------------------------------
# The long run
# ---------------------------------------------------------------------------


@dataclass
class Report:
    source: str
    examples: int = 0
    seconds: float = 0.0
    stats: Counter = field(default_factory=Counter)
    failures: Dict[str, List[str]] = field(default_factory=dict)  # property -> programs


def run_source(source: str, examples: int, seed: int, rules, out: Path, keep_going: bool = True) -> Report:
    report = Report(source)
    seen_failures: Dict[str, int] = Counter()

    def test(text):
        report.examples += 1
        try:
            check_properties(text, rules, stats=report.stats)
        except PropertyFailed as exc:
            seen_failures[exc.prop] += 1
            programs = report.failures.setdefault(exc.prop, [])
            if len(programs) < 20:
                programs.append(text)
                out.mkdir(parents=True, exist_ok=True)
                name = out / f"{source}-{exc.prop}-{len(programs):02}.py"
                name.write_text(text)
                name.with_suffix(".txt").write_text(str(exc))
            if not keep_going:
                raise

    wrapped = settings(max_examples=examples, deadline=None, derandomize=False, database=None,
                       suppress_health_check=list(HealthCheck),
                       phases=[Phase.generate] if keep_going else list(Phase))(given(programs(source))(test))
    random_seed = __import__("hypothesis").seed(seed)
    started = time.monotonic()
    try:
        random_seed(wrapped)()
    except PropertyFailed:
        pass
    report.seconds = time.monotonic() - started
    report.stats["failures"] = sum(seen_failures.values())
    for prop, count in seen_failures.items():
        report.stats[f"failed {prop}"] = count
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples per source (default 1000)")
    parser.add_argument("--source", action="append", choices=("grammar", "mutant", "block"),
                        help="program source (repeatable; default all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "resnetlint-fuzz-failures"),
                        help="where failing programs are saved (default: in the temporary directory)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    sources = args.source or ["mutant", "block", "grammar"]
    rules = all_rules()
    reports = []
    for source in sources:
        if source == "grammar" and grammar_programs() is None:
            print("grammar: skipped (hypothesmith is not installed)", file=sys.stderr)
            continue
        print(f"{source}: {args.examples} examples ...", file=sys.stderr, flush=True)
        report = run_source(source, args.examples, args.seed, rules, Path(args.out))
        reports.append(report)
        stats = report.stats
        print(f"{source}: {report.examples} programs in {report.seconds:.0f} s; "
              f"{stats['parseable']} parseable, {stats['findings']} findings, "
              f"{stats['fixed programs']} fixed ({stats['fixes applied']} fixes); "
              f"{stats['failures']} property failures", flush=True)
        codes = sorted((k, v) for k, v in stats.items() if k.startswith(("code ", "fix ")))
        if codes:
            print("    " + ", ".join(f"{k}: {v}" for k, v in codes))
        for prop, texts in report.failures.items():
            print(f"  FAILED {prop}: {stats['failed ' + prop]} programs (first saved in {args.out})")
    if args.json:
        Path(args.json).write_text(json.dumps([{"source": r.source, "examples": r.examples, "seconds": r.seconds,
                                                "stats": dict(r.stats)} for r in reports], indent=2))
    return 1 if any(r.failures for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
