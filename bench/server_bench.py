"""How fast ``resnetlint server`` answers an edit, and how much memory it holds.

    .venv/bin/python bench/server_bench.py [--corpus DIR ...] [--edits N] [--files N] [--skip-memory]

It starts the server as an editor does (``python -m resnetlint server`` over
stdio, driven by pygls's client) and measures:

* **latency**: for files of about 300 lines (the pinned corpus's files of
  280 to 320 lines that define a module class, and a 300-line file of the
  bundled buggy seed blocks, which has many findings), the time from sending
  a ``didChange`` (one character typed) to receiving the diagnostics for that
  version, warm (after a few edits), one edit at a time; and, for the same
  texts, the analysis alone (:meth:`Workspace.check` in this process), so the
  rest (protocol, conversion, pipes) shows;
* **memory**: the server's resident memory (``VmRSS``) after ``initialize``
  and after every ``*.py`` file of the corpus was opened, diagnosed and
  closed, and its peak (``VmHWM``), from ``/proc`` (Linux).

The corpus is the five pinned packages that ``bench/bench.py`` unpacks into
``.bench-cache/corpus/`` (run it once) or any directories given with
``--corpus``.  Prints a Markdown report; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lsprotocol import types as lsp  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402
from pygls.uris import from_fs_path  # noqa: E402

PINNED = ("timm", "torchvision", "pytorchcv", "segmentation_models_pytorch", "mmpretrain")
DEFAULT_CORPORA = (ROOT / ".bench-cache" / "corpus", Path("/work/corpora/src"))
MODULE_CLASS = re.compile(r"^class \w+\(.*(Module|BaseModule|nn\.Sequential)\b", re.MULTILINE)
TARGET_MS = 50.0


class Client:
    """The server in a subprocess, and the diagnostics it publishes."""

    def __init__(self) -> None:
        self.client = LanguageClient("server-bench", "1")
        self.arrived: Dict[Tuple[str, Optional[int]], float] = {}
        self.event = asyncio.Event()

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: lsp.PublishDiagnosticsParams) -> None:
            self.arrived[(params.uri, params.version)] = time.perf_counter()
            self.event.set()

    async def start(self, root: Path) -> float:
        began = time.perf_counter()
        await self.client.start_io(sys.executable, "-m", "resnetlint", "server")
        await self.client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=from_fs_path(str(root)), process_id=os.getpid()))
        self.client.initialized(lsp.InitializedParams())
        return time.perf_counter() - began

    @property
    def pid(self) -> int:
        return self.client._server.pid  # the subprocess pygls started

    async def wait(self, uri: str, version: Optional[int], timeout: float = 60.0) -> float:
        deadline = time.perf_counter() + timeout
        while (uri, version) not in self.arrived:
            self.event.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"no diagnostics for {uri} version {version}")
            try:
                await asyncio.wait_for(self.event.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return self.arrived.pop((uri, version))

    def open(self, path: Path, text: str) -> str:
        uri = from_fs_path(str(path))
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        return uri

    def type_character(self, uri: str, version: int, line: int, column: int, char: str) -> None:
        at = lsp.Position(line, column)
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [lsp.TextDocumentContentChangePartial(range=lsp.Range(at, at), text=char)]))

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(uri)))

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def memory_kib(pid: int) -> Dict[str, int]:
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


def corpus_roots(given: List[str]) -> List[Path]:
    if given:
        return [Path(p) for p in given]
    for base in DEFAULT_CORPORA:
        roots = [base / name for name in PINNED]
        if all(r.is_dir() for r in roots):
            return roots
    sys.exit("no corpus: run bench/bench.py once (it unpacks the pinned five into .bench-cache/corpus/) "
             "or pass --corpus DIR ...")


def python_files(roots: List[Path]) -> List[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py") if p.is_file())


def three_hundred_line_files(files: List[Path], limit: int) -> List[Path]:
    chosen = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if 280 <= text.count("\n") <= 320 and MODULE_CLASS.search(text):
            chosen.append(path)
    # Spread over the packages, not the first few of one.
    step = max(len(chosen) // limit, 1)
    return chosen[::step][:limit]


def seeds_file(directory: Path, lines: int = 300) -> Path:
    """The bundled buggy seed blocks, one after another (classes renamed
    apart), cut at a file boundary near ``lines`` lines: many findings."""
    parts = []
    count = 0
    index = 0
    seeds = sorted(p for p in (ROOT / "fixtures" / "seeds").glob("seed*.py") if "corrected" not in p.name)
    while count < lines:
        seed = seeds[index % len(seeds)]
        text = re.sub(r"^class (\w+)", rf"class \g<1>_{index}", seed.read_text(), flags=re.MULTILINE)
        parts.append(text)
        count += text.count("\n")
        index += 1
    path = directory / "seed_blocks_300.py"
    path.write_text("".join(parts))
    return path


def analysis_ms(path: Path, texts: List[str]) -> List[float]:
    """The server's analysis alone, in this process, on the same texts."""
    from resnetlint.server.workspace import Workspace

    workspace = Workspace(str(path.parent))
    workspace.check(str(path), texts[0])
    times = []
    for text in texts:
        began = time.perf_counter()
        workspace.check(str(path), text)
        times.append((time.perf_counter() - began) * 1000)
    return times


async def latency(client: Client, path: Path, edits: int, warmup: int, pause: float,
                  burst: int) -> Tuple[List[float], List[float], List[float], List[str], int]:
    """Type a comment at the end of the middle line: ``edits`` single
    characters ``pause`` seconds apart (each timed to its diagnostics), then
    ``edits // 4`` bursts of ``burst`` characters sent back to back (timed
    from the last one's sending to the diagnostics of its version); then 20
    hover requests where there is nothing to show (the round trip alone)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    uri = client.open(path, text)
    await client.wait(uri, 1)
    lines = text.split("\n")
    row = len(lines) // 2
    column = len(lines[row])
    typed = "  # " + "resnet block edit " * (1 + (warmup + edits + burst * edits) // 18)
    position = 0
    version = 1

    def type_one() -> Tuple[int, float]:
        nonlocal position, version
        version += 1
        char = typed[position]
        client.type_character(uri, version, row, column + position, char)
        lines[row] = lines[row][:column + position] + char + lines[row][column + position:]
        position += 1
        return version, time.perf_counter()

    texts, single, bursts = [], [], []
    for i in range(warmup + edits):
        sent, began = type_one()
        arrived = await client.wait(uri, sent)
        if i >= warmup:
            single.append((arrived - began) * 1000)
            texts.append("\n".join(lines))
        await asyncio.sleep(pause)
    for _ in range(max(edits // 4, 1)):
        for _ in range(burst):
            sent, began = type_one()
        arrived = await client.wait(uri, sent)
        bursts.append((arrived - began) * 1000)
        client.arrived.clear()  # the burst's other versions, published or not
        await asyncio.sleep(pause)
    trips = []
    for _ in range(20):  # a request that does no work: what the protocol and the pipes cost
        began = time.perf_counter()
        await client.client.text_document_hover_async(lsp.HoverParams(lsp.TextDocumentIdentifier(uri),
                                                                       lsp.Position(0, 0)))
        trips.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(pause)
    client.close(uri)
    return single, bursts, trips, texts, text.count("\n")


async def run(args) -> int:
    roots = corpus_roots(args.corpus)
    files = python_files(roots)
    chosen = three_hundred_line_files(files, args.files)
    scratch = ROOT / ".bench-cache" / "server-bench"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "pyproject.toml").write_text("[tool.resnetlint]\n")  # this repository's settings stay out
    chosen.append(seeds_file(scratch))

    client = Client()
    started = await client.start(scratch)
    baseline = memory_kib(client.pid)
    rows = []
    every = []
    for path in chosen:
        print(f"latency: {path}", file=sys.stderr)
        samples, bursts, trips, texts, line_count = await latency(client, path, args.edits, args.warmup,
                                                                  args.pause, args.burst)
        alone = analysis_ms(path, texts)
        every.extend(samples)
        rows.append((path, line_count, statistics.median(samples), _p90(samples), max(samples),
                     statistics.median(alone), statistics.median(trips), statistics.median(bursts)))

    corpus_rows = None
    if not args.skip_memory:
        print(f"memory: opening {len(files)} files", file=sys.stderr)
        began = time.perf_counter()
        for number, path in enumerate(files, 1):
            uri = client.open(path, path.read_text(encoding="utf-8", errors="replace"))
            await client.wait(uri, 1, timeout=300)
            client.close(uri)
            if number % 250 == 0:
                print(f"  {number}/{len(files)}", file=sys.stderr)
        seconds = time.perf_counter() - began
        corpus_rows = (len(files), seconds, memory_kib(client.pid))
    await client.stop()

    report(rows, every, started, baseline, corpus_rows, roots, args)
    return 0


def _p90(samples: List[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    load = " · load average at the end {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") \
        else ""
    return (f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} · {cpu} · {os.cpu_count()} CPUs · "
            f"Python {platform.python_version()} · resnetlint at {commit or '?'}{load}")


def report(rows, every, started, baseline, corpus_rows, roots, args) -> None:
    print("# resnetlint server: latency and memory\n")
    print(_machine() + "\n")
    print(f"Server start to `initialize` answered: {started:.2f} s; resident memory then "
          f"{baseline.get('VmRSS', 0) / 1024:.0f} MB.\n")
    print(f"Latency: {args.edits} edits per file (after {args.warmup} warm-up edits), one character typed per "
          f"`didChange`, {args.pause * 1000:.0f} ms apart, each timed from sending it to receiving that version's "
          f"diagnostics; \"analysis alone\" is the server's check of the same texts in the bench's process; "
          f"\"round trip\": a hover request with nothing to show (the protocol and the pipes); "
          f"\"burst\": {args.burst} characters sent back to back, timed from the last one.\n")
    print("| file | lines | median ms | p90 ms | max ms | analysis alone, median ms | round trip, median ms "
          "| burst, median ms |")
    print("|---|---|---|---|---|---|---|---|")
    for path, lines, median, p90, worst, alone, trip, burst in rows:
        name = path.relative_to(path.parents[2]) if len(path.parents) > 2 else path.name
        print(f"| {name} | {lines} | {median:.1f} | {p90:.1f} | {worst:.1f} | {alone:.1f} | {trip:.1f} "
              f"| {burst:.1f} |")
    overall = statistics.median(every)
    worst_file = max(row[2] for row in rows)
    print(f"\nAll edits: median {overall:.1f} ms, p90 {_p90(every):.1f} ms; the slowest file's median "
          f"{worst_file:.1f} ms. Target: median <= {TARGET_MS:.0f} ms: "
          f"{'met' if worst_file <= TARGET_MS else 'NOT met'} (for every file).\n")
    if corpus_rows is not None:
        count, seconds, memory = corpus_rows
        print(f"Memory after opening, diagnosing and closing every file of the corpus ({count} files, "
              f"{', '.join(r.name for r in roots)}; {seconds:.1f} s, {count / seconds:.0f} files/s): "
              f"resident {memory.get('VmRSS', 0) / 1024:.0f} MB, peak {memory.get('VmHWM', 0) / 1024:.0f} MB.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="*", default=[], help="directories of Python files (default: the pinned five)")
    parser.add_argument("--files", type=int, default=8, help="corpus files of about 300 lines to time (default 8)")
    parser.add_argument("--edits", type=int, default=40, help="timed edits per file (default 40)")
    parser.add_argument("--warmup", type=int, default=5, help="edits before timing (default 5)")
    parser.add_argument("--pause", type=float, default=0.15,
                        help="seconds between timed edits (default 0.15: a typist's 7 characters a second)")
    parser.add_argument("--burst", type=int, default=5, help="characters per burst (default 5)")
    parser.add_argument("--skip-memory", action="store_true", help="do not open the whole corpus")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
