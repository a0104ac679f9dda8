"""``resnetlint server``: the Language Server Protocol over stdio, with pygls.

What the editor gets:

* diagnostics when a document is opened, changed (debounced, see
  :data:`MAX_DEBOUNCE_S`) and saved; the open documents whose analysis read
  the changed module (a helper, a base class) are checked again too, a
  little later (:data:`DEPENDENTS_DELAY_S`);
* code actions: each finding's fix (safe ones preferred, unsafe ones say
  so), "fix all" (``source.fixAll.resnetlint``) and "suppress with
  ``# noqa``"; the edits come from :meth:`Workspace.fix`, the fix engine of
  ``--fix``;
* the ``--explain`` text of a rule on hover over its diagnostic;
* the trace, only on save, in a background thread, when the configuration
  turns it on; its verdicts are published when they arrive.

The analysis runs on the server's event loop (it takes milliseconds); the
slow parts (the trace, fixes proven by the trace) run in daemon threads, so
``exit`` is never held up by a block that takes long to run.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from lsprotocol import types as lsp
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .. import __version__
from ..findings import Finding
from ..results import FileResult
from . import actions, convert
from .actions import FIX_ALL_KIND
from .workspace import Workspace

# Debouncing: a change is checked at once, unless it comes less than one
# check's duration after the previous change or check of the document (fast
# typing, a paste or a formatter sent as several changes, changes that queued
# up while a check ran): then the check waits that long, and the changes
# that keep coming push it back.  So a burst costs about two checks, and a
# lone change is diagnosed after one.  The wait is capped at MAX_DEBOUNCE_S.
MAX_DEBOUNCE_S = 0.1
DEPENDENTS_DELAY_S = 0.25  # the modules that read the edited one: after it
PYTHON_SUFFIXES = (".py", ".pyi")

log = logging.getLogger(__name__)


@dataclass
class Checked:
    """A document's text as last checked, and what was found."""

    version: Optional[int]
    text: str
    result: Optional[FileResult]  # None: the configuration excludes the file

    @property
    def findings(self) -> List[Finding]:
        return self.result.findings if self.result is not None else []


class ResnetlintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("resnetlint", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.analysis = Workspace()
        self.checked: Dict[str, Checked] = {}  # uri -> its last check
        self.timers: Dict[str, asyncio.TimerHandle] = {}
        self.last_change: Dict[str, float] = {}  # uri -> event-loop time of its last change
        self.check_cost: Dict[str, float] = {}  # uri -> seconds its last check took
        self.check_end: Dict[str, float] = {}  # uri -> event-loop time its last check ended
        self.traces = TraceQueue(self)
        self.warned: set = set()  # configuration errors already shown
        self.stopping = False

    # -- documents ------------------------------------------------------------
    def is_python(self, uri: str) -> bool:
        document = self.workspace.text_documents.get(uri)
        if document is not None and document.language_id == "python":
            return True
        return uri.endswith(PYTHON_SUFFIXES)

    def open_python_documents(self) -> List[str]:
        return [uri for uri in list(self.workspace.text_documents) if self.is_python(uri)]

    @staticmethod
    def path_of(uri: str) -> str:
        """The file a document is (an unsaved one keeps its URI as its name)."""
        return (to_fs_path(uri) or uri) if uri.startswith("file:") else uri

    def text_of(self, uri: str) -> Optional[Tuple[Optional[int], str]]:
        document = self.workspace.text_documents.get(uri)
        return (document.version, document.source) if document is not None else None

    # -- diagnostics ----------------------------------------------------------
    def check(self, uri: str) -> Optional[Checked]:
        """Check the document as it is now (if it changed since its last check)."""
        current = self.text_of(uri)
        if current is None:
            return None
        version, text = current
        held = self.checked.get(uri)
        if held is not None and held.text == text and held.version == version:
            return held
        path = self.path_of(uri)
        generation = self.analysis.generation
        began = time.perf_counter()
        result = self.analysis.check(path, text)
        self.check_cost[uri] = time.perf_counter() - began
        self.check_end[uri] = asyncio.get_running_loop().time()
        self._warn_about_configuration(path)
        held = Checked(version, text, result)
        self.checked[uri] = held
        if self.analysis.generation != generation:  # a pyproject.toml changed: the others may see it too
            for other in self.open_python_documents():
                if other != uri:
                    self.checked.pop(other, None)
                    self.schedule(other, 0.0, restart=False)
        return held

    def publish(self, uri: str, recheck: bool = False) -> Optional[Checked]:
        if recheck:
            self.checked.pop(uri, None)
        try:
            held = self.check(uri)
        except Exception as exc:  # noqa: BLE001 - never take the editor's session down
            log.exception("checking %s failed", uri)
            self.window_log_message(lsp.LogMessageParams(lsp.MessageType.Error, f"resnetlint: checking {uri} "
                                                         f"failed: {type(exc).__name__}: {exc}"))
            return None
        if held is None:
            return None
        found = convert.diagnostics(held.findings, held.text, self.workspace.position_codec)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=found,
                                                                            version=held.version))
        return held

    def schedule(self, uri: str, delay: float, restart: bool = True) -> None:
        """Publish ``uri``'s diagnostics after ``delay`` seconds; ``restart``
        pushes back a check already waiting (more typing), otherwise the
        earlier of the two stands."""
        if self.stopping:
            return
        loop = asyncio.get_running_loop()
        waiting = self.timers.get(uri)
        if waiting is not None:
            if not restart and waiting.when() <= loop.time() + delay:
                return
            waiting.cancel()
        self.timers[uri] = loop.call_later(delay, self._scheduled, uri)

    def _scheduled(self, uri: str) -> None:
        self.timers.pop(uri, None)
        if not self.stopping:
            self.publish(uri)

    def changed(self, uri: str) -> None:
        """Check soon, debounced (see :data:`MAX_DEBOUNCE_S`)."""
        now = asyncio.get_running_loop().time()
        wait = min(self.check_cost.get(uri, 0.0), MAX_DEBOUNCE_S)
        latest = max(self.last_change.get(uri, float("-inf")), self.check_end.get(uri, float("-inf")))
        burst = uri in self.timers or now - latest < wait
        self.last_change[uri] = now
        self.schedule(uri, wait if burst else 0.0)

    def publish_now(self, uri: str) -> Optional[Checked]:
        waiting = self.timers.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        return self.publish(uri)

    def refresh_dependents(self, uri: str) -> None:
        """The open modules that ``uri``'s module may affect are checked again."""
        paths = {self.path_of(other): other for other in self.open_python_documents()}
        for path in self.analysis.dependents(self.path_of(uri), list(paths)):
            self.checked.pop(paths[path], None)  # analysed again, though its own text is the same
            self.schedule(paths[path], DEPENDENTS_DELAY_S, restart=False)

    def reload_configuration(self) -> None:
        self.analysis.reload()
        for uri in self.open_python_documents():
            self.publish(uri, recheck=True)

    def _warn_about_configuration(self, path: str) -> None:
        config = self.analysis.config_for(path)
        if config.error and config.error not in self.warned:
            self.warned.add(config.error)
            self.window_show_message(lsp.ShowMessageParams(
                lsp.MessageType.Warning, f"resnetlint: {config.error}; using the default settings until it is fixed"))

    # -- the trace ------------------------------------------------------------
    def trace_on_save(self, uri: str, held: Optional[Checked]) -> None:
        path = self.path_of(uri)
        if held is None or held.result is None or not os.path.isabs(path):
            return
        options = self.analysis.trace_options(path)
        if options is None or not any(f.symbol for f in held.findings):
            return
        self.window_log_message(lsp.LogMessageParams(lsp.MessageType.Info, f"resnetlint: tracing {path}"))
        self.traces.submit(path, held.result, options)

    def traced(self, path: str, verdicts: int, error: Optional[str]) -> None:
        """Called on the event loop when a trace has finished."""
        if self.stopping:
            return
        message = f"resnetlint: traced {path}: " + (f"failed: {error}" if error else f"{verdicts} verdicts")
        self.window_log_message(lsp.LogMessageParams(lsp.MessageType.Error if error else lsp.MessageType.Info,
                                                     message))
        for uri in self.open_python_documents():
            if self.path_of(uri) == path:
                self.publish(uri, recheck=True)

    # -- work in the background -------------------------------------------------
    def in_background(self, work: Callable[[], Any]) -> "asyncio.Future[Any]":
        """Run ``work`` in a daemon thread; its result (or exception) as a future of the event loop."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(value: Any, error: Optional[BaseException]) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        def run() -> None:
            try:
                value, error = work(), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting handler
                value, error = None, exc
            try:
                loop.call_soon_threadsafe(settle, value, error)
            except RuntimeError:  # the loop is closed: the server has exited
                pass

        threading.Thread(target=run, name="resnetlint-background", daemon=True).start()
        return future


class TraceQueue:
    """One trace at a time, in a daemon thread (each starts a torch worker);
    a document saved again while it waits is traced once, as last saved."""

    def __init__(self, server: ResnetlintServer):
        self.server = server
        self.pending: Dict[str, Tuple[FileResult, Any]] = {}
        self.lock = threading.Lock()
        self.busy = False
        self.loop: Optional[asyncio.AbstractEventLoop] = None

    def submit(self, path: str, result: FileResult, options) -> None:
        self.loop = asyncio.get_running_loop()
        with self.lock:
            self.pending[path] = (result, options)
            if self.busy:
                return
            self.busy = True
        threading.Thread(target=self._work, name="resnetlint-trace", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self.lock:
                if not self.pending or self.server.stopping:
                    self.busy = False
                    return
                path = next(iter(self.pending))
                result, options = self.pending.pop(path)
            error = None
            verdicts = 0
            try:
                verdicts = self.server.analysis.trace(result, options)
            except Exception as exc:  # noqa: BLE001 - reported to the editor's log
                error = f"{type(exc).__name__}: {exc}"
            try:
                assert self.loop is not None
                self.loop.call_soon_threadsafe(self.server.traced, path, verdicts, error)
            except RuntimeError:
                return


def create_server() -> ResnetlintServer:
    server = ResnetlintServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: ResnetlintServer, params: lsp.InitializeParams) -> None:
        root = ls.workspace.root_path
        if root:
            ls.analysis.root = root

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: ResnetlintServer, params: lsp.InitializedParams) -> None:
        if get_capability(ls.client_capabilities, "workspace.did_change_watched_files.dynamic_registration", False):
            watchers = [lsp.FileSystemWatcher(glob_pattern="**/pyproject.toml"),
                        lsp.FileSystemWatcher(glob_pattern="**/*.py")]
            ls.client_register_capability(lsp.RegistrationParams([lsp.Registration(
                "resnetlint-watched-files", lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                lsp.DidChangeWatchedFilesRegistrationOptions(watchers))]))

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ResnetlintServer, params: lsp.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        if ls.is_python(uri):
            ls.publish_now(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: ResnetlintServer, params: lsp.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        if ls.is_python(uri):
            current = ls.text_of(uri)
            if current is not None:
                ls.analysis.edited(ls.path_of(uri), current[1])  # what the files importing it read now
            ls.changed(uri)
            ls.refresh_dependents(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.SaveOptions(include_text=False))
    def did_save(ls: ResnetlintServer, params: lsp.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if os.path.basename(ls.path_of(uri)) == "pyproject.toml":
            ls.reload_configuration()
            return
        if ls.is_python(uri):
            held = ls.publish_now(uri)
            ls.refresh_dependents(uri)
            ls.trace_on_save(uri, held)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: ResnetlintServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        waiting = ls.timers.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        # pygls has already dropped the document: whether it was ours is in what we checked.
        was_checked = ls.checked.pop(uri, None) is not None
        ls.last_change.pop(uri, None)
        ls.check_cost.pop(uri, None)
        ls.check_end.pop(uri, None)
        ls.analysis.forget(ls.path_of(uri))
        if was_checked or uri.endswith(PYTHON_SUFFIXES):
            ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files(ls: ResnetlintServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        changed = [ls.path_of(change.uri) for change in params.changes]
        if any(os.path.basename(path) == "pyproject.toml" for path in changed):
            ls.reload_configuration()
            return
        for path in changed:
            if path.endswith(PYTHON_SUFFIXES):
                ls.refresh_dependents(from_fs_path(path) or path)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: ResnetlintServer, params: lsp.HoverParams) -> Optional[lsp.Hover]:
        uri = params.text_document.uri
        held = ls.check(uri) if ls.is_python(uri) else None
        if held is None:
            return None
        lines = convert.split_lines(held.text)
        line, column = convert.server_position(lines, params.position, ls.workspace.position_codec)
        rules = convert.rule_by_code()
        under = [f for f in held.findings if convert.contains(f, line, column) and f.code in rules]
        if not under:
            return None
        codes = list(dict.fromkeys(f.code for f in under))  # each rule once, in order
        text = "\n\n---\n\n".join(convert.explanation(rules[code]) for code in codes)
        return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text),
                         convert.finding_range(under[0], lines, ls.workspace.position_codec))

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.SourceFixAll, FIX_ALL_KIND],
        resolve_provider=True))
    async def code_action(ls: ResnetlintServer, params: lsp.CodeActionParams) -> Optional[List[lsp.CodeAction]]:
        return await actions.code_actions(ls, params)

    @server.feature(lsp.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: ResnetlintServer, action: lsp.CodeAction) -> lsp.CodeAction:
        return await actions.resolve(ls, action)

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: ResnetlintServer, params: None) -> None:
        ls.stopping = True
        for waiting in ls.timers.values():
            waiting.cancel()
        ls.timers.clear()

    return server
