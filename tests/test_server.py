"""``resnetlint server`` driven over stdio by a real LSP client (pytest-lsp),
as an editor drives it: initialize, open, edit, save, code actions, hover,
shutdown and exit.  Each test starts its own server process in a fresh
workspace (a temporary directory) and waits for the notifications it expects
(never for a fixed time, except to show that something did *not* happen)."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

pytest.importorskip("pytest_lsp")

import pytest_lsp  # noqa: E402
from lsprotocol import types as lsp  # noqa: E402
from pygls.uris import from_fs_path  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features  # noqa: E402
from pygls.protocol import default_converter  # noqa: E402


ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fixtures" / "seeds"
pytestmark = pytest.mark.asyncio(loop_scope="function")
WAIT_S = 30.0  # generous: a loaded CI machine; the waits end as soon as the notification arrives


def make_client() -> LanguageClient:
    """pytest-lsp's client, also keeping every publishDiagnostics with its
    document version (its own handler keeps only the last list per URI)."""
    client = LanguageClient(converter_factory=default_converter)
    client.published = []

    def publish(client: LanguageClient, params: lsp.PublishDiagnosticsParams) -> None:
        client.diagnostics[params.uri] = params.diagnostics
        client.published.append(params)

    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: publish})
    return client


SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "resnetlint", "server"], client_factory=make_client)


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    yield
    if lsp_client._server is not None and lsp_client._server.returncode is None:  # not shut down by the test
        await lsp_client.shutdown_session()


CAPABILITIES = lsp.ClientCapabilities(
    workspace=lsp.WorkspaceClientCapabilities(
        workspace_edit=lsp.WorkspaceEditClientCapabilities(document_changes=True)),
    text_document=lsp.TextDocumentClientCapabilities(
        code_action=lsp.CodeActionClientCapabilities(
            disabled_support=True,
            resolve_support=lsp.ClientCodeActionResolveOptions(properties=["edit"]),
        ),
        hover=lsp.HoverClientCapabilities(content_format=[lsp.MarkupKind.Markdown]),
    ),
)


async def start(client: LanguageClient, root: Path, capabilities=CAPABILITIES) -> lsp.InitializeResult:
    return await client.initialize_session(lsp.InitializeParams(
        capabilities=capabilities, root_uri=from_fs_path(str(root)),
        workspace_folders=[lsp.WorkspaceFolder(uri=from_fs_path(str(root)), name="ws")]))


def open_file(client: LanguageClient, path: Path, version: int = 1) -> str:
    uri = from_fs_path(str(path))
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri=uri, language_id="python", version=version, text=path.read_text())))
    return uri


def replace_text(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        [lsp.TextDocumentContentChangeWholeDocument(text=text)]))


async def until(condition: Callable[[], object], what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


async def diagnostics(client: LanguageClient, uri: str, version: Optional[int] = None,
                      after: int = 0) -> List[lsp.Diagnostic]:
    """The first diagnostics published for ``uri`` (at ``version``) after
    the ``after``-th notification."""
    def found():
        for params in client.published[after:]:
            if params.uri == uri and (version is None or params.version == version):
                return [list(params.diagnostics)]
        return None

    return (await until(found, f"diagnostics for {uri} version {version}"))[0]


def apply_edit(text: str, edit: lsp.WorkspaceEdit, uri: str) -> str:
    """Apply a workspace edit as an editor would (edits of one document do
    not overlap and refer to the text before any of them)."""
    if edit.document_changes:
        edits = [e for change in edit.document_changes if change.text_document.uri == uri for e in change.edits]
    else:
        edits = list((edit.changes or {}).get(uri, []))
    lines = text.splitlines(True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(position: lsp.Position) -> int:  # the test texts are ASCII: UTF-16 units are characters
        return min(offsets[min(position.line, len(lines))] + position.character, len(text))

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text


def workspace(tmp_path: Path, config: Optional[str] = None, *seeds: str) -> List[Path]:
    if config is not None:
        (tmp_path / "pyproject.toml").write_text(f"[tool.resnetlint]\n{config}\n")
    copies = []
    for seed in seeds:
        copies.append(Path(shutil.copy(SEEDS / seed, tmp_path / seed)))
    return copies


async def test_a_buggy_block_gets_diagnostics_and_its_fix_clears_them(client: LanguageClient, tmp_path: Path):
    # The static proof only (trace off): with the trace on, the unsafe fix is also run; see the trace test.
    (path,) = workspace(tmp_path, 'trace = "off"', "seed000_resskip_depthwise.py")
    result = await start(client, tmp_path)
    assert result.server_info.name == "resnetlint"
    uri = open_file(client, path)
    found = await diagnostics(client, uri, version=1)
    assert [(d.code, d.range.start.line + 1, d.range.start.character + 1) for d in found] == [("RL301", 14, 26)]
    (diagnostic,) = found
    assert diagnostic.source == "resnetlint"
    assert diagnostic.severity == lsp.DiagnosticSeverity.Warning
    assert diagnostic.message.startswith("[bias-before-norm] `nn.Conv2d` has a bias")
    assert "\nhelp: " in diagnostic.message
    assert diagnostic.code_description.href.endswith("/rules/rl301_bias_before_norm.py")

    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), diagnostic.range, lsp.CodeActionContext(diagnostics=[diagnostic])))
    fixes = [a for a in actions if a.title.startswith("Fix RL301")]
    assert len(fixes) == 1 and fixes[0].kind == lsp.CodeActionKind.QuickFix
    assert fixes[0].title.endswith("(unsafe fix)") and not fixes[0].is_preferred
    assert fixes[0].edit is None  # computed when chosen (the client resolves it)
    resolved = await client.code_action_resolve_async(fixes[0])
    fixed = apply_edit(path.read_text(), resolved.edit, uri)
    # The same text `resnetlint --fix --unsafe-fixes` writes for this seed.
    assert fixed == (ROOT / "fixtures" / "fixed" / "seeds" / "seed000_resskip_depthwise.py").read_text()
    assert resolved.edit.document_changes[0].text_document.version == 1

    replace_text(client, uri, 2, fixed)
    assert await diagnostics(client, uri, version=2) == []


async def test_an_unsaved_new_document_is_checked_too(client: LanguageClient, tmp_path: Path):
    await start(client, tmp_path)
    uri = "untitled:Untitled-1"
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=(SEEDS / "seed000_resskip_depthwise.py").read_text())))
    assert [d.code for d in await diagnostics(client, uri, version=1)] == ["RL301"]
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
    mark = len(client.published)
    assert await diagnostics(client, uri, after=mark) == []  # closing clears them

async def test_fix_all_writes_what_the_command_line_writes(client: LanguageClient, tmp_path: Path):
    (path,) = workspace(tmp_path, 'trace = "off"\nunsafe-fixes = true', "seed003_block.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    before = await diagnostics(client, uri, version=1)
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)),
        lsp.CodeActionContext(diagnostics=[], only=[lsp.CodeActionKind.SourceFixAll])))
    assert [(a.title, a.kind) for a in actions] == [("resnetlint: fix all problems (unsafe fixes included)",
                                                     "source.fixAll.resnetlint")]
    resolved = await client.code_action_resolve_async(actions[0])
    fixed = apply_edit(path.read_text(), resolved.edit, uri)

    cli_copy = tmp_path / "cli" / path.name
    cli_copy.parent.mkdir()
    shutil.copy(path, cli_copy)
    subprocess.run([sys.executable, "-m", "resnetlint", str(cli_copy), "--fix", "--unsafe-fixes", "--no-trace",
                    "--no-cache", "--isolated"], capture_output=True, check=False)
    assert fixed == cli_copy.read_text() != path.read_text()

    replace_text(client, uri, 2, fixed)
    after = await diagnostics(client, uri, version=2)
    assert len(before) == 7 and after == []  # every fix proven statically, as the command line applies them


async def test_a_syntax_error_mid_edit_is_RL000_and_the_server_goes_on(client: LanguageClient, tmp_path: Path):
    (path,) = workspace(tmp_path, 'trace = "off"', "seed000_resskip_depthwise.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    await diagnostics(client, uri, version=1)
    text = path.read_text()
    broken = text.replace("def forward(self, x):", "def forward(self, x:")
    replace_text(client, uri, 2, broken)
    found = await diagnostics(client, uri, version=2)
    assert [d.code for d in found] == ["RL000"]
    assert found[0].message.startswith("[syntax-error] SyntaxError")
    assert found[0].range.start.line + 1 == broken.splitlines().index("    def forward(self, x:") + 1
    # Code actions and hover on the broken text answer, and fixing the text brings the finding back.
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), found[0].range, lsp.CodeActionContext(diagnostics=found)))
    assert list(actions) == []
    hover = await client.text_document_hover_async(lsp.HoverParams(lsp.TextDocumentIdentifier(uri),
                                                                   found[0].range.start))
    assert hover is None  # RL000 is no rule: nothing to explain
    replace_text(client, uri, 3, text)
    assert [d.code for d in await diagnostics(client, uri, version=3)] == ["RL301"]


async def test_changes_that_come_together_are_checked_together(client: LanguageClient, tmp_path: Path):
    (path,) = workspace(tmp_path, 'trace = "off"', "seed003_block.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    first = await diagnostics(client, uri, version=1)
    text = path.read_text()
    mark = len(client.published)
    for version in range(2, 12):  # ten keystrokes, sent as fast as the client can
        text += "#"
        replace_text(client, uri, version, text)
    last = await diagnostics(client, uri, version=11, after=mark)
    assert [d.code for d in last] == [d.code for d in first]
    checks = [p.version for p in client.published[mark:] if p.uri == uri]
    assert checks[-1] == 11 and len(checks) < 6, checks

async def test_the_workspace_pyproject_applies_and_is_reloaded_when_it_changes(client: LanguageClient,
                                                                              tmp_path: Path):
    (path,) = workspace(tmp_path, 'ignore = ["RL104"]\ntrace = "off"', "seed003_block.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    codes = {d.code for d in await diagnostics(client, uri, version=1)}
    assert "RL104" not in codes and {"RL102", "RL201"} <= codes

    (tmp_path / "pyproject.toml").write_text('[tool.resnetlint]\nselect = ["RL2"]\ntrace = "off"\n')
    mark = len(client.published)
    client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams([lsp.FileEvent(
        from_fs_path(str(tmp_path / "pyproject.toml")), lsp.FileChangeType.Changed)]))
    assert {d.code for d in await diagnostics(client, uri, after=mark)} == {"RL201", "RL203"}


async def test_without_a_file_watcher_a_changed_pyproject_applies_at_the_next_check(client: LanguageClient,
                                                                                     tmp_path: Path):
    first, second = workspace(tmp_path, 'trace = "off"', "seed003_block.py", "seed000_resskip_depthwise.py")
    await start(client, tmp_path)
    first_uri, second_uri = open_file(client, first), open_file(client, second)
    await diagnostics(client, first_uri, version=1)
    assert [d.code for d in await diagnostics(client, second_uri, version=1)] == ["RL301"]

    (tmp_path / "pyproject.toml").write_text('[tool.resnetlint]\nignore = ["RL3"]\ntrace = "off"\n')
    mark = len(client.published)
    replace_text(client, first_uri, 2, first.read_text() + "\n")  # any edit of any open file
    assert not any(d.code.startswith("RL3") for d in await diagnostics(client, first_uri, version=2))
    assert await diagnostics(client, second_uri, after=mark) == []

async def test_a_broken_pyproject_is_reported_and_the_defaults_apply(client: LanguageClient, tmp_path: Path):
    (path,) = workspace(tmp_path, 'selct = ["RL2"]', "seed000_resskip_depthwise.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    assert [d.code for d in await diagnostics(client, uri, version=1)] == ["RL301"]
    message = await until(lambda: client.messages, "a message about the configuration")
    assert "unknown key `selct`" in message[0].message and "did you mean `select`" in message[0].message


async def test_hover_on_a_diagnostic_shows_the_rules_explanation(client: LanguageClient, tmp_path: Path):
    (path,) = workspace(tmp_path, 'trace = "off"', "seed000_resskip_depthwise.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    (found,) = await diagnostics(client, uri, version=1)
    hover = await client.text_document_hover_async(lsp.HoverParams(lsp.TextDocumentIdentifier(uri),
                                                                   found.range.start))
    assert hover.contents.kind == lsp.MarkupKind.Markdown
    assert hover.contents.value.startswith("**RL301** `bias-before-norm`")
    assert "## Why is this bad?" in hover.contents.value
    nothing = await client.text_document_hover_async(lsp.HoverParams(lsp.TextDocumentIdentifier(uri),
                                                                     lsp.Position(0, 0)))
    assert nothing is None


async def test_suppressing_a_finding_adds_noqa(client: LanguageClient, tmp_path: Path):
    (path,) = workspace(tmp_path, 'trace = "off"', "seed000_resskip_depthwise.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    (found,) = await diagnostics(client, uri, version=1)
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), found.range, lsp.CodeActionContext(diagnostics=[found])))
    (suppress,) = [a for a in actions if a.title.startswith("Suppress")]
    assert suppress.kind == lsp.CodeActionKind.QuickFix and suppress.edit is None
    suppress = await client.code_action_resolve_async(suppress)
    fixed = apply_edit(path.read_text(), suppress.edit, uri)
    line = fixed.splitlines()[found.range.start.line]
    assert line.endswith("  # noqa: RL301")
    replace_text(client, uri, 2, fixed)
    assert await diagnostics(client, uri, version=2) == []


async def test_an_unsafe_fix_of_an_unsaved_buffer_waits_for_a_save_when_the_trace_proves_fixes(
        client: LanguageClient, tmp_path: Path):
    # trace = "on": unsafe fixes are proven by running the block, from the file on disk.
    (path,) = workspace(tmp_path, 'trace = "on"', "seed000_resskip_depthwise.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    await diagnostics(client, uri, version=1)
    edited = path.read_text() + "\n# edited, not saved\n"
    replace_text(client, uri, 2, edited)
    (found,) = await diagnostics(client, uri, version=2)
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), found.range, lsp.CodeActionContext(diagnostics=[found])))
    (fix,) = [a for a in actions if a.title.startswith("Fix RL301")]
    assert fix.disabled is not None and fix.disabled.reason.startswith("save the file first")
    assert fix.edit is None and fix.data is None


async def test_a_client_without_resolve_gets_the_edits_with_the_actions(client: LanguageClient, tmp_path: Path):
    (path,) = workspace(tmp_path, 'trace = "off"', "seed000_resskip_depthwise.py")
    await start(client, tmp_path, capabilities=lsp.ClientCapabilities())
    uri = open_file(client, path)
    (found,) = await diagnostics(client, uri, version=1)
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), found.range, lsp.CodeActionContext(diagnostics=[found])))
    (fix,) = [a for a in actions if a.title.startswith("Fix RL301")]
    assert apply_edit(path.read_text(), fix.edit, uri) == \
        (ROOT / "fixtures" / "fixed" / "seeds" / "seed000_resskip_depthwise.py").read_text()
    (suppress,) = [a for a in actions if a.title.startswith("Suppress")]
    assert "# noqa: RL301" in apply_edit(path.read_text(), suppress.edit, uri)


async def test_an_edit_of_a_helper_module_refreshes_the_open_files_that_use_it(client: LanguageClient,
                                                                             tmp_path: Path):
    from test_server_parts import WIDENING_HELPER, package_with_a_helper

    helper, block, other = package_with_a_helper(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.resnetlint]\ntrace = "off"\n')
    await start(client, tmp_path)
    helper_uri, block_uri, other_uri = (open_file(client, p) for p in (helper, block, other))
    assert await diagnostics(client, block_uri, version=1) == []
    await diagnostics(client, helper_uri, version=1)
    await diagnostics(client, other_uri, version=1)

    mark = len(client.published)
    replace_text(client, helper_uri, 2, WIDENING_HELPER)  # not saved: the buffer is what counts
    codes = [d.code for d in await diagnostics(client, block_uri, after=mark)]
    assert "RL201" in codes and "RL202" in codes
    await asyncio.sleep(1.0)  # long enough for a refresh of the other file, had there been one
    assert [p.uri for p in client.published[mark:]].count(other_uri) == 0

    mark = len(client.published)
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(helper_uri)))
    replace_text(client, block_uri, 2, block.read_text())  # closed unsaved: the file on disk counts again
    assert await diagnostics(client, block_uri, version=2, after=mark) == []


@pytest.mark.trace
async def test_the_trace_runs_on_save_only_and_its_verdicts_arrive_later(client: LanguageClient, tmp_path: Path):
    pytest.importorskip("torch")
    (path,) = workspace(tmp_path, 'trace = "on"', "seed003_block.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    first = await diagnostics(client, uri, version=1)
    assert first and not any("\ntrace:" in d.message for d in first)
    replace_text(client, uri, 2, path.read_text() + "\n")
    await diagnostics(client, uri, version=2)
    await asyncio.sleep(1.0)
    assert not any("tracing" in m.message for m in client.log_messages)  # not on keystrokes

    path.write_text(path.read_text() + "\n")  # the editor writes the buffer, then says so
    mark = len(client.published)
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
    await until(lambda: any("tracing" in m.message for m in client.log_messages), "the trace to start")

    def confirmed():
        for params in client.published[mark:]:
            if params.uri == uri and any("\ntrace: confirmed" in d.message for d in params.diagnostics):
                return params.diagnostics
        return None

    traced = await until(confirmed, "the trace's verdicts", timeout=120)
    overwritten = [d for d in traced if d.code == "RL102"]
    assert overwritten and all("\ntrace: confirmed" in d.message for d in overwritten)


@pytest.mark.trace
async def test_exit_is_not_held_up_by_a_trace_in_progress(client: LanguageClient, tmp_path: Path):
    pytest.importorskip("torch")
    (path,) = workspace(tmp_path, 'trace = "on"', "seed003_block.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    await diagnostics(client, uri, version=1)
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
    await until(lambda: any("tracing" in m.message for m in client.log_messages), "the trace to start")
    began = time.monotonic()
    await client.shutdown_session()
    assert client._server.returncode == 0
    assert time.monotonic() - began < 5.0  # not the trace's seconds

async def test_shutdown_and_exit_are_clean(client: LanguageClient, tmp_path: Path):
    (path,) = workspace(tmp_path, 'trace = "off"', "seed000_resskip_depthwise.py")
    await start(client, tmp_path)
    uri = open_file(client, path)
    await diagnostics(client, uri, version=1)
    await client.shutdown_session()
    assert client._server.returncode == 0
    assert client.error is None

