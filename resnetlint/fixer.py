"""``--fix``, ``--unsafe-fixes`` and ``--diff``: rewriting files, with proof.

For one file:

1. check it with the libcst front end (exact spans), take the fixes allowed
   by the safety level, at most one per class (fixes in one class can
   interact: an RL201 fix may make an RL205 finding disappear), apply them as
   text edits;
2. re-parse the result with ``ast`` and libcst; a fix that breaks the syntax
   (or changes nothing) is dropped and remembered;
3. repeat until no fix applies (at most :data:`MAX_PASSES` passes); fixes
   that bring the text back to an earlier state undo one another (a layer
   used two ways): that rule is not fixed in that class, and the file is
   fixed again from the start without it, so fixing is idempotent;
4. when tracing is on, run the fixed classes before and after: a fix whose
   class now fails where it did not, or fails differently, is rolled back
   and reported as ``fix rejected``;
5. write the file atomically (temporary file in the same directory, then
   ``os.replace``), in its own encoding, BOM and line endings, keeping its
   permissions and owner (a symbolic link stays a link: its target is
   rewritten), and only if it did not change on disk meanwhile.  Ctrl-C or
   SIGTERM during the write takes effect once the file is replaced, so an
   interrupted ``--fix`` leaves each file either as it was or fully fixed,
   and no temporary file behind (SIGKILL can leave a ``.x.py.*.resnetlint``
   temporary, never a ``*.py``).
"""
from __future__ import annotations

import ast
import contextlib
import re
import difflib
import os
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from collections import Counter
from typing import Dict, List, Optional, Sequence, Set, Tuple

import libcst as cst

from .engine import REPORT_REQUEST, check_text, reraise_interrupt
from .findings import Finding
from .fixes import SAFE, apply_edits, overlaps
from .prefilter import split_lines
from .rule import Rule
from .source import SourceError, SourceFile, decode_source, read_source

MAX_PASSES = 16  # one fix per class per pass: a class with many problems needs many


@dataclass
class Applied:
    finding: Finding  # as found in the text the fix was applied to
    rejected: str = ""  # why the fix was rolled back (or, in ``unproven``, why it was not proven)
    step: int = 0  # applied to the text after this many rewrites (fixes of one pass share it)
    # The finding of the text as read that this one is (a fix chosen in a
    # later pass is reported under the finding the user saw), if any.
    seen: Optional[Finding] = None

    @property
    def shown(self) -> Finding:
        """The finding to name in messages: the one the user saw."""
        return self.seen if self.seen is not None else self.finding


@dataclass
class FixOutcome:
    path: str
    original: str
    fixed: str
    applied: List[Applied] = field(default_factory=list)
    rejected: List[Applied] = field(default_factory=list)
    remaining: List[Finding] = field(default_factory=list)  # findings of the fixed text
    found: List[Finding] = field(default_factory=list)  # findings of the text as read
    # Unsafe fixes not applied because nothing proved them (no trace, and the
    # static model could not show the fixed block is well formed).
    unproven: List[Applied] = field(default_factory=list)
    # Classes the trace could not run (class -> why): their fixes need the
    # static proof (set by the prover).
    untraced: Dict[str, str] = field(default_factory=dict)
    error: Optional[str] = None  # could not fix or write (read-only, changed on disk...)
    written: bool = False
    passes: int = 0  # analyses that chose fixes (MAX_PASSES: stopped by the limit)

    @property
    def changed(self) -> bool:
        return self.fixed != self.original

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            split_lines(self.original), split_lines(self.fixed), fromfile=f"a/{self.path}", tofile=f"b/{self.path}"))


def allowed(finding: Finding, unsafe: bool) -> bool:
    fix = finding.fix
    return fix is not None and bool(fix.edits) and (fix.safety == SAFE or unsafe)


def fix_text(text: str, path: str, rules: Sequence[Rule], unsafe: bool,
             blocked: Optional[Set[Tuple[str, str]]] = None) -> FixOutcome:
    """Apply fixes to source text until none applies (no trace, no writing).
    ``blocked`` lists (class, rule code) pairs not to fix."""
    blocked = blocked or set()
    outcome = FixOutcome(path, text, text)
    refused: Set[Tuple] = set()  # fixes (class, code, description, edits) that broke the syntax or did nothing
    seen = {text}
    failures = None  # internal errors on the text as read: a fix must not add any
    for _ in range(MAX_PASSES):
        findings = check_text(outcome.fixed, path, rules, fast=False).findings
        if any(f.code == "RL000" for f in findings):
            break
        current = {(f.symbol, f.message) for f in findings if f.code == "RL999"}
        if failures is None:
            failures = current
            outcome.found = findings
        elif current - failures:
            # The analysis of a fixed text failed: what it would still fix is
            # unknown, so no partly fixed text may be written.
            outcome.fixed = text
            outcome.applied = []
            outcome.error = f"internal error while re-checking the fixed code; {REPORT_REQUEST}"
            return outcome
        chosen = _choose(findings, unsafe, blocked, refused)
        if not chosen:
            break
        outcome.passes += 1
        lines = split_lines(outcome.fixed)
        idle = [f for f in chosen if apply_edits(outcome.fixed, lines, f.fix.edits) == outcome.fixed]
        if idle:  # a fix that changes nothing is no fix (and would be offered again and again)
            refused.update(_key(f) for f in idle)
            chosen = [f for f in chosen if f not in idle]
            if not chosen:
                continue
        candidate = apply_edits(outcome.fixed, lines, [e for f in chosen for e in f.fix.edits])
        if _syntax_problem(candidate) is not None:
            # Find the culprits one at a time; never write code that does not parse.
            good = []
            for finding in chosen:
                problem = _syntax_problem(apply_edits(outcome.fixed, lines, finding.fix.edits))
                if problem is None:
                    good.append(finding)
                else:
                    refused.add(_key(finding))
                    outcome.rejected.append(Applied(finding, f"it produced code that does not parse ({problem})"))
            if not good:
                continue
            chosen = good[:1]
            candidate = apply_edits(outcome.fixed, lines, chosen[0].fix.edits)
        if candidate in seen:
            # Back to an earlier text: these fixes undo one another (one layer
            # used in two ways); start again without fixing those rules there.
            cycle = {(f.symbol, f.code) for f in chosen}
            retry = fix_text(text, path, rules, unsafe, set(blocked) | cycle)
            retry.rejected.extend(Applied(f, "its fixes undo one another here; fix it by hand")
                                  for f in chosen if f.symbol and not any(r.finding.code == f.code and r.finding.symbol
                                                                          == f.symbol for r in retry.rejected))
            return retry
        outcome.applied.extend(Applied(f, step=len(seen) - 1, seen=_seen(f, outcome.found)) for f in chosen)
        seen.add(candidate)
        outcome.fixed = candidate
    outcome.remaining = check_text(outcome.fixed, path, rules, fast=False).findings
    # A fix refused at one place may have worked later, on the text other fixes made.
    done = {_key(a.finding)[:3] for a in outcome.applied}
    outcome.rejected = [r for r in outcome.rejected if _key(r.finding)[:3] not in done]
    return outcome


def _masked(finding: Finding) -> Tuple[str, str, str]:
    """A finding by class, code and message with the numbers blanked: the
    same problem after edits moved it."""
    return finding.symbol, finding.code, re.sub(r"\d+", "#", finding.message)


def _seen(finding: Finding, found: Sequence[Finding]) -> Optional[Finding]:
    key = _masked(finding)
    return next((f for f in found if _masked(f) == key), None)


def _key(finding: Finding) -> Tuple:
    """A fix, by its class, rule, description and exact edits: refusing one
    never refuses the same fix elsewhere or on text other fixes changed."""
    fix = finding.fix
    return (finding.symbol, finding.code, fix.description if fix else "", tuple(fix.edits) if fix else ())


def _choose(findings: List[Finding], unsafe: bool, blocked, refused) -> List[Finding]:
    """One fix per class per pass, in rule-code order, never two that overlap."""
    chosen: List[Finding] = []
    classes = set()
    for finding in sorted(findings, key=lambda f: (f.code, f.line, f.column)):
        if not allowed(finding, unsafe):
            continue
        if finding.symbol in classes and finding.code != "RL100":  # comment-only edits never interact
            continue
        if (finding.symbol, finding.code) in blocked or _key(finding) in refused:
            continue
        if any(overlaps(finding.fix.edits, other.fix.edits) for other in chosen):
            continue
        chosen.append(finding)
        classes.add(finding.symbol)
    return chosen


def _syntax_problem(text: str) -> Optional[str]:
    try:
        ast.parse(text)
        cst.parse_module(text)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except cst.ParserSyntaxError as exc:
        return f"line {exc.raw_line}: {exc.message}"
    except (RecursionError, ValueError) as exc:
        return str(exc)
    return None


def fix_file(path: str, rules: Sequence[Rule], unsafe: bool, trace=None,
             blocked: Optional[Set[Tuple[str, str]]] = None) -> FixOutcome:
    """Fix one file in memory, with proof (see :func:`fix_proven`)."""
    try:
        source = read_source(path)
    except SourceError as exc:
        outcome = FixOutcome(path, "", "")
        outcome.error = str(exc)
        return outcome
    try:
        outcome = fix_proven(source.text, path, rules, unsafe, trace, blocked)
    except Exception as exc:  # noqa: BLE001 - a bug of ours costs this file its fixes, not the run
        reraise_interrupt(exc)
        outcome = FixOutcome(path, source.text, source.text)
        outcome.error = f"internal error in the fixer: {type(exc).__name__}: {exc}".splitlines()[0][:300] + \
            f"; {REPORT_REQUEST}"
    outcome.source = source  # type: ignore[attr-defined]
    return outcome


MAX_PROOF_ROUNDS = 8


def fix_proven(text: str, path: str, rules: Sequence[Rule], unsafe: bool, trace=None,
               blocked: Optional[Set[Tuple[str, str]]] = None) -> FixOutcome:
    """:func:`fix_text`, then prove the fixes; fixes that do not hold up are
    taken back and the text is fixed again without them.

    ``trace`` (a prover: ``trace(outcome)`` runs the fixed classes before
    and after, returns ``{class: (codes, why)}`` for those whose fixes do
    not hold up, or None when it cannot run at all) proves the fixes of the
    classes it runs.  An unsafe fix of a class it cannot run, or any unsafe
    fix when there is no trace (``--no-trace``, no torch: the pre-commit
    hook), must be proven statically: the fixed class has no new finding and
    none of the rules it fixed, and its widths and strides check out
    (:mod:`resnetlint.model.proof`); otherwise it is not applied and is
    listed in ``outcome.unproven`` ("needs the trace to prove").  Safe fixes
    need no proof beyond the re-analysis every fix gets."""
    blocked = set(blocked or set())
    rejected: List[Applied] = []
    unproven: List[Applied] = []
    outcome = fix_text(text, path, rules, unsafe, blocked)
    for _ in range(MAX_PROOF_ROUNDS):
        if not outcome.changed or outcome.error:
            break
        needing = {a.finding.symbol for a in outcome.applied if a.finding.fix.safety != SAFE}
        verdicts = trace(outcome) if trace is not None else None
        if verdicts is None:
            untraced = needing
            verdicts = {}
        else:
            untraced = {name for name in needing if name in outcome.untraced and name not in verdicts}
        failed = static_proof(outcome, path, rules, untraced) if untraced else {}
        if not verdicts and not failed:
            break
        for symbol, (codes, why) in verdicts.items():
            culprits = _latest(a for a in outcome.applied if a.finding.symbol == symbol and a.finding.code in codes)
            blocked |= {(symbol, a.finding.code) for a in culprits}
            rejected.extend(Applied(a.finding, why, seen=a.seen) for a in culprits)
        for symbol, (codes, why) in failed.items():
            # Take back the class's first fix only (the later ones may have
            # followed from it, or be fine on their own): a static round is cheap.
            first = min((a for a in outcome.applied if a.finding.symbol == symbol and a.finding.code in codes),
                        key=lambda a: (a.step, a.finding.code))
            blocked.add((symbol, first.finding.code))
            unproven.extend(Applied(a.finding, why, seen=a.seen) for a in outcome.applied
                            if a.finding.symbol == symbol and a.finding.code == first.finding.code)
        outcome = fix_text(text, path, rules, unsafe, blocked)
    else:
        if outcome.changed:  # still not proven after every round: nothing is applied
            rejected.extend(Applied(a.finding, "its fixes could not be proven together", seen=a.seen)
                            for a in outcome.applied)
            outcome = fix_text(text, path, rules, unsafe, blocked | {(a.finding.symbol, a.finding.code)
                                                                     for a in outcome.applied})
    outcome.rejected.extend(rejected)
    outcome.unproven.extend(unproven)
    return outcome


def _latest(applied) -> List[Applied]:
    """Of a class's fixes the trace rejected together, those of the last
    pass: a fix chosen later, for a finding the earlier fixes uncovered (a
    missing projection once the main path is back), may be what broke the
    block; the earlier ones are proven again without it."""
    applied = list(applied)
    last = max((a.step for a in applied), default=0)
    return [a for a in applied if a.step == last]


def static_proof(outcome: FixOutcome, path: str, rules: Sequence[Rule],
                 classes: Set[str]) -> Dict[str, Tuple[List[str], str]]:
    """The classes among ``classes`` whose unsafe fixes the static model does
    not prove: ``{class: (unsafe codes fixed there, why)}``."""
    checked = check_text(outcome.fixed, path, rules, fast=False, prove=True)
    before = Counter(_masked(f) for f in outcome.found)
    after = Counter(_masked(f) for f in checked.findings)
    new = after - before
    failed: Dict[str, Tuple[List[str], str]] = {}
    for name in sorted(classes):
        applied = [a.finding for a in outcome.applied if a.finding.symbol == name]
        codes = sorted({f.code for f in applied if f.fix.safety != SAFE})
        if not codes:
            continue
        fixed_codes = {f.code for f in applied}
        appeared = [f for f in checked.findings if f.symbol == name and new.get(_masked(f), 0) > 0]
        still = [f for f in checked.findings if f.symbol == name and f.code in fixed_codes]
        if appeared:
            why = f"the fixed code has a new finding: {appeared[0].code} {appeared[0].message}"
        elif still:
            why = f"{still[0].code} is still reported after the fix: {still[0].message}"
        else:
            why = checked.proofs.get(name, "the fixed class is not modelled")
        if why is not None:
            untraced = outcome.untraced.get(name)
            failed[name] = (codes, f"{untraced}, and the static model cannot prove it: {why}" if untraced
                            else f"needs the trace to prove: {why}")
    return failed


class FileChanged(Exception):
    pass


class ReadOnly(Exception):
    pass


def write_fixed(outcome: FixOutcome) -> None:
    """Atomically replace the file with the fixed text, in its own encoding
    and BOM; refuse when it is read-only or changed since it was read."""
    source: SourceFile = getattr(outcome, "source")
    path = os.path.realpath(outcome.path)  # through a symbolic link: the link stays a link
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise FileChanged("the file was deleted while it was being fixed; not written") from None
    if not os.access(path, os.W_OK) or not status.st_mode & 0o222:
        # No write bit at all means read-only, even for root who could write it.
        raise ReadOnly("the file is read-only; not fixed")
    with open(path, "rb") as handle:
        if handle.read() != source.raw:
            raise FileChanged("the file changed on disk while it was being fixed; not written")
    data = outcome.fixed.encode(source.encoding)
    if source.bom:
        data = b"\xef\xbb\xbf" + data
    decode_source(data, path)  # what we write must read back as Python source
    directory = os.path.dirname(path)
    with _signals_deferred():
        # Never left half done: an interrupt (Ctrl-C, SIGTERM) waits until the
        # file is replaced and the temporary gone, then takes effect.
        handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".resnetlint",
                                             dir=directory)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, status.st_mode & 0o7777)
            if hasattr(os, "chown") and (status.st_uid, status.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.chown(temporary, status.st_uid, status.st_gid)  # root fixing someone else's file
                except OSError:
                    pass
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    outcome.written = True


_DEFERRED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
                          if hasattr(signal, name))


@contextlib.contextmanager
def _signals_deferred():
    """Block the signals that end a run while the body runs (main thread,
    POSIX); a signal that arrives meanwhile is delivered when it ends."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
