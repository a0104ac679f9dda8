"""Supervising the trace worker from the parent process (which never imports torch).

One worker per run, reused for every class so torch's import and first
operations are paid once.  The worker runs in its own process group; a class
that hangs past its timeout, or a worker that dies (``os._exit``, a segfault,
the memory cap), costs that class an ``unverified`` verdict and the worker a
restart, and the run goes on.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Optional

START_TIMEOUT = 120.0  # importing torch on a cold disk can take a while
WORKER_BOOT = ("import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
               "import runpy; runpy.run_module('resnetlint.trace.worker', run_name='__main__', alter_sys=True)")
_EOF = object()


class WorkerUnavailable(Exception):
    """torch cannot be imported by the worker (or the worker will not start)."""


class TraceRunner:
    def __init__(self, device: str = "cpu", class_timeout: float = 30.0, total_timeout: float = 600.0,
                 memory_mb: Optional[int] = None, python: Optional[str] = None):
        self.device = device
        self.class_timeout = class_timeout
        self.deadline = time.monotonic() + total_timeout
        self.memory_mb = memory_mb
        self.python = python or sys.executable
        self.process: Optional[subprocess.Popen] = None
        self.hello: Dict[str, Any] = {}
        self._buffer = b""
        self._next_id = 0
        self.restarts = 0

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> Dict[str, Any]:
        env = dict(os.environ)
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
        if self.memory_mb and self.device != "cuda":  # CUDA needs a huge address space
            env["RESNETLINT_TRACE_MEMORY_MB"] = str(self.memory_mb)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["RESNETLINT_TRACE_PARENT"] = str(os.getpid())
        self.process = subprocess.Popen(
            # Not `-m`: it would put the current directory first on sys.path, and a
            # `resnetlint/` folder there (a checkout of resnetlint) would be the worker.
            [self.python, "-c", WORKER_BOOT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )
        self._buffer = b""
        hello = self._read(min(START_TIMEOUT, self._remaining()))
        if not isinstance(hello, dict):
            self.stop()
            raise WorkerUnavailable("the trace worker did not start")
        if not hello.get("torch"):
            self.stop()
            raise WorkerUnavailable(f"torch cannot be imported ({hello.get('error', 'unknown error')})")
        self.hello = hello
        return hello

    def stop(self) -> None:
        """Kill the worker and anything it started (its whole process group)."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def __enter__(self) -> "TraceRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- requests ---------------------------------------------------------------
    def run(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """Send one class's request; a result, or a failure status
        (``timeout``, ``crashed``, ``budget``) with an explanation."""
        remaining = self._remaining()
        if remaining <= 1:
            return {"status": "budget", "error": "the trace's time budget for this run was used up"}
        if self.process is None or self.process.poll() is not None:
            try:
                self.start()
                self.restarts += 1
            except WorkerUnavailable as exc:
                return {"status": "crashed", "error": str(exc)}
        self._next_id += 1
        request = dict(request, id=self._next_id, device=self.device)
        try:
            assert self.process is not None and self.process.stdin is not None
            self.process.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._died("before the request could be sent")
        timeout = min(self.class_timeout, remaining)
        response = self._read(timeout)
        if response is _EOF:
            return self._died("while running this class")
        if response is None:
            self.stop()
            return {"status": "timeout", "error": f"the block did not finish within {timeout:g} s (killed)"}
        return response

    def _died(self, when: str) -> Dict[str, Any]:
        code = None
        if self.process is not None:
            try:
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        self.stop()
        how = f"exit status {code}" if code is not None and code >= 0 else f"signal {-code}" if code else "no status"
        return {"status": "crashed", "error": f"the worker process died {when} ({how}: os._exit, a crash or the memory cap)"}

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _read(self, timeout: float):
        """The next protocol message; None on timeout, _EOF when the worker
        closed its end (it exited)."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        end = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return _EOF
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line.decode("utf-8"))
        except ValueError:
            return None
