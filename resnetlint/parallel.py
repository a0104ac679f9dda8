"""Checking many files on all cores.

Files are sorted by size and dealt round-robin into a few batches per worker,
so that the large model files do not all land in one batch.  Workers return
plain findings (no syntax trees).  Small runs stay in this process: starting
workers costs more than checking a handful of files.
"""
from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING, Callable, Iterator, List, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .results import FileResult

PARALLEL_MIN_FILES = 24
BATCHES_PER_WORKER = 4


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def map_files(check: Callable[[str], FileResult], paths: Sequence[str], jobs: int) -> Iterator[FileResult]:
    """``check`` each path, in parallel when it pays off; results come back
    in no particular order."""
    if jobs <= 1 or len(paths) < PARALLEL_MIN_FILES:
        yield from _run_batch(check, list(paths))
        return
    # Imported here: a run that checks a few files (or none: all from the
    # cache) does not pay for multiprocessing's import.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    batches = _batches(paths, jobs * BATCHES_PER_WORKER)
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        for results in pool.map(_run_batch, [check] * len(batches), batches):
            yield from results


def _die_with_parent(parent: int) -> None:
    """Killed (SIGTERM, SIGKILL), resnetlint cannot shut its pool down, and
    idle workers would wait for work forever: on Linux they die with it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the prctl
        os._exit(1)


def _batches(paths: Sequence[str], count: int) -> List[List[str]]:
    def size(path: str) -> int:
        try:
            return os.path.getsize(path)
        except OSError:
            return 0

    ordered = sorted(paths, key=size, reverse=True)
    batches: List[List[str]] = [[] for _ in range(min(count, len(ordered)))]
    for index, path in enumerate(ordered):
        batches[index % len(batches)].append(path)
    return batches


def _run_batch(check: Callable[[str], FileResult], paths: List[str]) -> List[FileResult]:
    # The model allocates many short-lived objects; reference counting frees
    # them, and the cyclic collector would only rescan them over and over.
    # A collection now and then catches the few cycles; what survives it
    # (the results so far) is frozen, so the next one does not scan it again.
    # Not when the caller (this may be an application's process) froze
    # objects of its own: unfreezing at the end would thaw those too.
    enabled = gc.isenabled()
    freeze = gc.get_freeze_count() == 0
    gc.disable()
    results = []
    try:
        for index, path in enumerate(paths):
            result = check(path)
            result.module = None  # syntax trees stay in the worker
            results.append(result)
            if index % 64 == 63:
                gc.collect()
                if freeze:
                    gc.freeze()
    finally:
        if freeze:
            gc.unfreeze()
        if enabled:
            gc.enable()
    return results
