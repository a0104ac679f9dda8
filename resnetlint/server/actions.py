"""Code actions: a finding's fix, "fix all", and "suppress with ``# noqa``".

Listing the actions is cheap (it reads the last check); computing their
edits is not (``# noqa`` tokenizes the file; the fix engine parses with
libcst and analyses again after each fix, and with the trace on it runs the
block), so clients that can resolve an action later (VS Code, Neovim) get
the edits only for the action the user picks.  Fixes are computed in a background thread; the edit names
the document version it was computed for, so an editor never applies it to
text that has changed since.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from lsprotocol import types as lsp
from pygls.capabilities import get_capability

from ..findings import Finding
from ..fixes import SAFE
from ..noqa import UNSUPPRESSIBLE
from ..prefilter import split_lines
from . import convert

if TYPE_CHECKING:  # pragma: no cover
    from .lsp import Checked, ResnetlintServer

FIX_ALL_KIND = "source.fixAll.resnetlint"
UNSAVED = "save the file first: with the trace on, an unsafe fix is proven by running the block, which reads the file"


async def code_actions(ls: ResnetlintServer, params: lsp.CodeActionParams) -> Optional[List[lsp.CodeAction]]:
    uri = params.text_document.uri
    if not ls.is_python(uri):
        return None
    held = ls.check(uri)
    if held is None or held.result is None:
        return None
    codec = ls.workspace.position_codec
    lines = split_lines(held.text)
    start = convert.server_position(lines, params.range.start, codec)
    end = convert.server_position(lines, params.range.end, codec)
    rules = convert.rule_by_code()
    path = ls.path_of(uri)
    actions: List[lsp.CodeAction] = []
    seen = set()
    for finding in held.findings:
        if not convert.overlaps(finding, start, end):
            continue
        diagnostic = convert.diagnostic(finding, lines, codec, rules)
        fix = finding.fix
        if fix is not None and fix.edits and ("fix", finding.symbol, finding.code) not in seen:
            seen.add(("fix", finding.symbol, finding.code))
            action = _fix_action(ls, uri, path, held, finding, diagnostic)
            if action is not None:
                actions.append(action)
        if finding.code not in UNSUPPRESSIBLE and ("noqa", finding.line, finding.code) not in seen:
            seen.add(("noqa", finding.line, finding.code))
            actions.append(_noqa_action(ls, uri, held, finding, diagnostic))
    fix_all = _fix_all_action(ls, uri, path, held)
    if fix_all is not None:
        actions.append(fix_all)
    actions = [a for a in actions if _wanted(a.kind, params.context.only)]
    if not _client_resolves_edits(ls):
        actions = [await resolve(ls, action) if action.data else action for action in actions]
    return actions


def _wanted(kind: Optional[str], only: Optional[List[str]]) -> bool:
    """Kinds are hierarchical: asking for ``source.fixAll`` includes ``source.fixAll.resnetlint``."""
    if not only:
        return True
    return kind is not None and any(kind == str(o) or kind.startswith(f"{o}.") for o in only)


def _fix_action(ls, uri: str, path: str, held: Checked, finding: Finding,
                diagnostic: lsp.Diagnostic) -> Optional[lsp.CodeAction]:
    assert finding.fix is not None
    safe = finding.fix.safety == SAFE
    where = f" in `{finding.symbol}`" if finding.symbol else ""
    title = f"Fix {finding.code}{where}: {finding.fix.description}" + ("" if safe else " (unsafe fix)")
    action = lsp.CodeAction(title=title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                            is_preferred=safe,
                            data={"uri": uri, "action": "fix", "code": finding.code, "symbol": finding.symbol,
                                  "line": finding.line})
    if ls.analysis.proof_needs_save(path, held.text, unsafe=not safe):
        if not get_capability(ls.client_capabilities, "text_document.code_action.disabled_support", False):
            return None  # the client would offer it and then apply nothing
        action.disabled = lsp.CodeActionDisabled(UNSAVED)
        action.data = None
    return action


def _fix_all_action(ls, uri: str, path: str, held: Checked) -> Optional[lsp.CodeAction]:
    """Everything ``--fix`` would fix (``unsafe-fixes = true`` in the
    configuration: the unsafe fixes too, when they can be proven)."""
    unsafe = ls.analysis.config_for(path).settings.unsafe_fixes
    if unsafe and ls.analysis.proof_needs_save(path, held.text, unsafe=True):
        unsafe = False
    fixable = [f for f in held.findings if f.fix is not None and f.fix.edits and (unsafe or f.fix.safety == SAFE)]
    if not fixable:
        return None
    title = "resnetlint: fix all problems (unsafe fixes included)" if unsafe else "resnetlint: fix all safe problems"
    return lsp.CodeAction(title=title, kind=FIX_ALL_KIND,
                          data={"uri": uri, "action": "fix-all", "unsafe": unsafe})


def _noqa_action(ls, uri: str, held: Checked, finding: Finding, diagnostic: lsp.Diagnostic) -> lsp.CodeAction:
    return lsp.CodeAction(title=f"Suppress {finding.code} on line {finding.line} with `# noqa: {finding.code}`",
                          kind=lsp.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                          data={"uri": uri, "action": "noqa", "code": finding.code, "symbol": finding.symbol,
                                "line": finding.line})


async def resolve(ls: ResnetlintServer, action: lsp.CodeAction) -> lsp.CodeAction:
    """Compute the edits of a fix action (in the background: it may run the trace)."""
    data: Dict[str, Any] = action.data if isinstance(action.data, dict) else {}
    uri = data.get("uri")
    if not uri or data.get("action") not in ("fix", "fix-all", "noqa"):
        return action
    held = ls.check(uri)
    if held is None or held.result is None:
        return action
    path = ls.path_of(uri)
    if data["action"] == "noqa":
        # The finding on that line now (the comment goes where the finding is reported).
        here = [f for f in held.findings if f.code == data.get("code") and f.line == data.get("line")]
        if here:
            action.edit = _workspace_edit(ls, uri, held.version, held.text, ls.analysis.suppress(held.text, here[0]))
        return action
    finding = None
    if data["action"] == "fix":
        finding = _same_finding(held.findings, data)
        if finding is None:
            _tell(ls, f"the {data.get('code')} finding is gone; nothing to fix")
            return action
    unsafe = bool(data.get("unsafe"))
    outcome = await ls.in_background(lambda: ls.analysis.fix(path, held.text, finding, unsafe))
    for rejected in outcome.rejected:
        _tell(ls, f"fix rejected for {rejected.shown.code} in {rejected.shown.symbol}: {rejected.rejected}")
    for unproven in outcome.unproven:
        _tell(ls, f"fix not applied for {unproven.shown.code} in {unproven.shown.symbol}: {unproven.rejected}")
    if outcome.error:
        _tell(ls, f"not fixed: {outcome.error}")
        return action
    if outcome.original != held.text or ls.text_of(uri) != (held.version, held.text):
        _tell(ls, "the file changed while the fix was being computed; try again")
        return action
    if not outcome.changed:
        if not outcome.rejected and not outcome.unproven:
            _tell(ls, "no fix could be applied (each one produced code that does not parse, or changed nothing)")
        return action
    action.edit = _workspace_edit(ls, uri, held.version, outcome.original, outcome.fixed)
    return action


def _same_finding(findings: List[Finding], data: Dict[str, Any]) -> Optional[Finding]:
    """The finding the action was listed for, in the current text: same
    code and class, with a fix; the nearest to the line it was on."""
    candidates = [f for f in findings if f.code == data.get("code") and f.symbol == data.get("symbol")
                  and f.fix is not None and f.fix.edits]
    line = data.get("line", 0)
    return min(candidates, key=lambda f: abs(f.line - line), default=None)


def _workspace_edit(ls, uri: str, version: Optional[int], original: str, fixed: str) -> lsp.WorkspaceEdit:
    edits = convert.text_edits(original, fixed, ls.workspace.position_codec)
    if get_capability(ls.client_capabilities, "workspace.workspace_edit.document_changes", False):
        document = lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
        return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(document, edits)])
    return lsp.WorkspaceEdit(changes={uri: edits})


def _client_resolves_edits(ls) -> bool:
    support = get_capability(ls.client_capabilities, "text_document.code_action.resolve_support", None)
    return support is not None and "edit" in (support.properties or [])


def _tell(ls, message: str) -> None:
    ls.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Warning, f"resnetlint: {message}"))
