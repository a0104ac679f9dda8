"""The editor server's analysis context: configuration, checking, fixing.

Nothing here knows about the Language Server Protocol (that is
:mod:`resnetlint.server.lsp`): it takes paths and text and returns the same
:class:`~resnetlint.results.FileResult` and
:class:`~resnetlint.fixer.FixOutcome` objects the command line produces,
through the same engine and fix engine, so an editor and ``resnetlint
--fix`` can never disagree.

One :class:`Workspace` lives as long as the server, with one project model
(:class:`~resnetlint.model.project.Project`: the sibling modules, base
classes and helpers a file's analysis reads) shared by every document.  The
model sees the editor's unsaved buffers, not only the files on disk
(:class:`EditorProject`), and every check records which modules it read, so
an edit to a helper module re-checks exactly the open files that use it
(:meth:`Workspace.dependents`).
"""
from __future__ import annotations

import copy
import os
import threading
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set, Tuple

from ..api import Settings, check_text
from ..config import ConfigError, find_config
from ..errors import UsageError
from ..findings import Confirmation, Finding
from ..fixes import SAFE
from ..model.project import Project, module_context
from ..results import FileResult
from ..source import SourceError, content_digest, read_source
from ..trace import TraceOptions, torch_available


class EditorProject(Project):
    """The project model, reading an open document's buffer instead of its
    file: what a module imports from a helper being edited follows the edit
    before it is saved."""

    def __init__(self) -> None:
        super().__init__()
        # path -> (buffer text, (digest, parsed module) once something read it)
        self._buffers: Dict[str, Tuple[str, Optional[tuple]]] = {}

    def set_buffer(self, path: str, text: str) -> None:
        path = os.path.abspath(path)
        held = self._buffers.get(path)
        if held is None or held[0] != text:
            self._buffers[path] = (text, None)  # parsed when a check reads it
            self.forget_text_searches(path)

    def drop_buffer(self, path: str) -> None:
        self._buffers.pop(os.path.abspath(path), None)

    def context(self, path: str):
        path = os.path.abspath(path)
        held = self._buffers.get(path)
        if held is None:
            return super().context(path)
        text, parsed = held
        if parsed is None:
            # The digest of the same text on disk (UTF-8), so what the model
            # memoises per module content serves the buffer and the file alike.
            digest = content_digest(text.encode("utf-8", errors="surrogatepass"))
            parsed = (digest, module_context(text, path, self, digest))
            self._buffers[path] = (text, parsed)
        self._consult(path, parsed[0])  # recorded as a dependency, as a file read from disk is
        return parsed[1]


# A trace verdict is remembered by what it is about; the text around the
# finding may change (a line inserted above) without changing the verdict.
VerdictKey = Tuple[str, str, str]  # (code, class, message)


def verdict_key(finding: Finding) -> VerdictKey:
    return (finding.code, finding.symbol, finding.message)


@dataclass
class DocumentConfig:
    """The ``[tool.resnetlint]`` that applies to a file, ready to use."""

    settings: Settings
    rules: list  # instances of every selected rule
    path: Optional[str] = None  # the pyproject.toml it came from (None: defaults)
    stamp: Optional[Tuple[int, int]] = None  # (mtime_ns, size) of that file when read
    error: Optional[str] = None  # why the file could not be used (defaults apply)

    def rules_for(self, path: str) -> list:
        return list(self.settings.rules_for(path, self.rules))

    def trace_wanted(self) -> bool:
        """``trace = "on"``, or ``"auto"`` (the default) with torch importable."""
        mode = self.settings.trace.mode
        return mode == "on" or (mode == "auto" and torch_available())

    def excludes(self, path: str) -> bool:
        """The file matches ``exclude``/``extend-exclude`` (as with
        ``--force-exclude``: an editor names every file explicitly)."""
        patterns = list(self.settings.exclude)
        if not patterns or not os.path.isfile(path):
            return False
        from ..discovery import discover

        return not discover([path], patterns, None, self.settings.config_root, force_exclude=True).files


def settings_for(config_path: Optional[str]) -> Settings:
    """What ``resnetlint FILE`` with no flags uses when ``config_path`` is
    its configuration (None: none), resolved by the command line's own code
    (:func:`resnetlint.resolution.resolve`).  Raises
    :class:`~resnetlint.errors.UsageError` for a bad configuration."""
    from ..options import CliOptions
    from ..resolution import resolve

    options = CliOptions(config=config_path) if config_path else CliOptions(isolated=True)
    return resolve(options, [config_path or "."]).settings


def _stamp(path: str) -> Optional[Tuple[int, int]]:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


@dataclass
class TraceVerdicts:
    """What the last trace of a file said, and about which text."""

    text: str
    verdicts: Dict[VerdictKey, Confirmation] = field(default_factory=dict)


class Workspace:
    """Configuration, analysis and fixes for the documents of one editor session."""

    def __init__(self, root: Optional[str] = None):
        self.root = root or os.getcwd()  # where an unsaved ("untitled") document's configuration is looked up
        self._config_file_of: Dict[str, Optional[str]] = {}  # directory -> nearest pyproject with our table
        self._configs: Dict[Optional[str], DocumentConfig] = {}  # pyproject path (None: defaults) -> config
        self._verdicts: Dict[str, TraceVerdicts] = {}  # path -> the last trace's verdicts
        self.project = EditorProject()
        self._read_by: Dict[str, Set[str]] = {}  # open document's path -> the modules its last check read
        self._lock = threading.Lock()  # verdicts arrive from the trace's thread
        self.generation = 0  # configuration reloads so far

    # -- configuration --------------------------------------------------------
    def config_for(self, path: str) -> DocumentConfig:
        """The configuration for ``path`` (found by walking up from it);
        re-read when its file changed on disk."""
        directory = os.path.dirname(os.path.abspath(path)) if os.path.isabs(path) else self.root
        if directory not in self._config_file_of:
            try:
                self._config_file_of[directory] = find_config([directory])
            except ConfigError as exc:  # a pyproject with our table that is not valid TOML
                return self._defaults(str(exc))
        found = self._config_file_of[directory]
        cached = self._configs.get(found)
        if cached is not None and (found is None or cached.stamp == _stamp(found)):
            return cached
        if cached is not None:
            # Changed or deleted since it was read (the editor may not watch
            # files for us): everything is looked up again.
            self.reload()
            return self.config_for(path)
        config = self._load(found)
        self._configs[found] = config
        return config

    def reload(self) -> None:
        """Forget every configuration (a ``pyproject.toml`` was created,
        changed or deleted): the next check finds and reads them again.
        ``generation`` counts the reloads, so that the server knows to check
        its open documents again."""
        self._config_file_of.clear()
        self._configs.clear()
        self.generation += 1

    def _load(self, path: Optional[str]) -> DocumentConfig:
        stamp = _stamp(path) if path is not None else None
        try:
            settings = settings_for(path)
            return DocumentConfig(settings, settings.rules(), path, stamp)
        except UsageError as exc:  # the file's own message names it and the key
            config = self._defaults(str(exc))
            config.path, config.stamp = path, stamp
            return config

    @staticmethod
    def _defaults(error: Optional[str] = None) -> DocumentConfig:
        settings = settings_for(None)
        return DocumentConfig(settings, settings.rules(), error=error)

    # -- checking ---------------------------------------------------------------
    def check(self, path: str, text: str) -> Optional[FileResult]:
        """The findings for ``text`` (the editor's buffer of ``path``), with
        the verdicts of the last trace; None when the configuration
        excludes the file.  Every diagnostic the server publishes comes
        from here."""
        config = self.config_for(path)
        self.edited(path, text)
        if config.excludes(path):
            return None
        result = check_text(text, path, config.rules_for(path), fast=config.settings.fast, project=self.project)
        self._read_by[os.path.abspath(path)] = set(result.dependencies)
        self._attach_verdicts(path, text, result)
        return result

    def edited(self, path: str, text: str) -> None:
        """An open document's text (opened or changed, saved or not): what
        other documents' checks read of it from now on."""
        if os.path.isabs(path):
            self.project.set_buffer(path, text)

    def dependents(self, path: str, open_paths: Iterable[str]) -> List[str]:
        """The open documents whose last check read module ``path`` (a
        helper, a base class, a package's ``__init__``): their findings may
        change when it does."""
        path = os.path.abspath(path)
        return [other for other in open_paths
                if os.path.abspath(other) != path and path in self._read_by.get(os.path.abspath(other), ())]

    # -- the trace -------------------------------------------------------------
    def trace_options(self, path: str) -> Optional[TraceOptions]:
        """How to trace ``path`` on save, or None when the configuration
        leaves the trace off (or ``auto`` without torch)."""
        config = self.config_for(path)
        return config.settings.trace if config.trace_wanted() else None

    def trace(self, result: FileResult, options: TraceOptions) -> int:
        """Run the trace on the classes with findings of ``result`` (the
        saved text; call from a background thread: it takes seconds) and
        remember the verdicts.  Returns how many findings got one."""
        from ..trace import confirm

        # confirm() sets each finding's verdict: on copies, so the findings
        # already published are never changed under the server's feet.
        traced = copy.copy(result)
        traced.findings = [copy.copy(f) for f in result.findings]
        confirm([traced], options)
        # Findings the trace did not look at keep the default, empty "not-run".
        verdicts = {verdict_key(f): f.confirmation for f in traced.findings
                    if f.confirmation.status != "not-run" or f.confirmation.detail}
        with self._lock:
            self._verdicts[result.path] = TraceVerdicts(result.text, verdicts)
        return len(verdicts)

    def forget(self, path: str) -> None:
        """The document was closed: drop what was remembered about it (other
        documents read its file from disk again)."""
        with self._lock:
            self._verdicts.pop(path, None)
        self._read_by.pop(os.path.abspath(path), None)
        if os.path.isabs(path):
            self.project.drop_buffer(path)

    def _attach_verdicts(self, path: str, text: str, result: FileResult) -> None:
        with self._lock:
            held = self._verdicts.get(path)
        if held is None:
            return
        for finding in result.findings:
            verdict = held.verdicts.get(verdict_key(finding))
            if verdict is None:
                continue
            detail = verdict.detail
            if held.text != text:
                detail = f"{detail} (at the last save)" if detail else "at the last save"
            finding.confirmation = Confirmation(verdict.status, detail)

    # -- fixes -----------------------------------------------------------------
    def proof_needs_save(self, path: str, text: str, unsafe: bool) -> bool:
        """True when an unsafe fix must be proven by the trace but cannot be:
        the trace imports the module from disk, and the buffer is not saved."""
        return unsafe and self.trace_options(path) is not None and not is_saved(path, text)

    def fix(self, path: str, text: str, finding: Optional[Finding] = None, unsafe: bool = False):
        """Fix ``text`` the way ``--fix`` would: every fix (``unsafe``: unsafe
        ones too) when ``finding`` is None ("fix all"), or only
        ``finding``'s rule in its class (a quick fix, unsafe or not: the user
        chose it).  The fixed text must parse and is analysed again until no
        fix applies; when the trace is on and the buffer is saved, the fixed
        classes are also run before and after, and a fix that does not hold
        up is rolled back (``outcome.rejected``).  Returns a
        :class:`~resnetlint.fixer.FixOutcome` whose ``original`` is the text
        the edits apply to."""
        from ..fixer import FixOutcome, fix_file, fix_proven, fix_text

        config = self.config_for(path)
        rules = config.rules_for(path)
        blocked: Set[Tuple[str, str]] = set()
        if finding is not None:
            rules = [rule for rule in rules if rule.code == finding.code]
            others = check_text(text, path, rules, fast=config.settings.fast).findings
            blocked = {(f.symbol, f.code) for f in others if f.symbol != finding.symbol}
            unsafe = finding.fix is not None and finding.fix.safety != SAFE
        options = self.trace_options(path)
        prover = _Prover(rules, options) if options is not None and is_saved(path, text) else None
        try:
            if prover is not None:
                outcome = fix_file(path, rules, unsafe, trace=prover, blocked=blocked)
            elif finding is None:
                # "fix all", as `--fix --no-trace` does it: unsafe fixes only when the static model proves them
                outcome = fix_proven(text, path, rules, unsafe, blocked=blocked)
            else:
                outcome = fix_text(text, path, rules, unsafe, blocked)
        except Exception as exc:  # noqa: BLE001 - a bug of ours costs the fix, not the server
            outcome = FixOutcome(path, text, text)
            outcome.error = f"internal error in the fixer: {type(exc).__name__}: {exc}".splitlines()[0][:300]
        finally:
            if prover is not None:
                prover.close()
        return outcome

    def suppress(self, text: str, finding: Finding) -> str:
        """``text`` with ``# noqa: CODE`` for ``finding`` on its line (merged
        into a ``# noqa`` already there), as ``--add-noqa`` writes it."""
        from ..noqa import add_noqa

        return add_noqa(text, [finding])[0]


class _Prover:
    """Runs the fixed classes before and after (a fresh trace worker per
    request: the worker keeps the modules it imported)."""

    def __init__(self, rules, options: TraceOptions):
        from ..trace.runner import TraceRunner

        self.rules = rules
        self.options = options
        self.runner = TraceRunner("cpu" if options.device == "auto" else options.device, options.class_timeout,
                                  options.total_timeout, options.memory_mb)
        self.started = False

    def __call__(self, outcome):
        from ..trace import prove_fixes
        from ..trace.runner import WorkerUnavailable

        if not self.started:
            try:
                self.runner.start()
            except WorkerUnavailable:
                return None  # as with --fix: no torch, no trace proof; the static proof decides
            self.started = True
        return prove_fixes(outcome, self.runner, self.options, self.rules)

    def close(self) -> None:
        self.runner.stop()


def is_saved(path: str, text: str) -> bool:
    """The file on disk holds exactly ``text``."""
    try:
        return read_source(path).text == text
    except (SourceError, OSError):
        return False
