"""The persistent result cache (resnetlint/cache.py): hits, misses,
invalidation, damage, concurrent runs, and a warm start without libcst."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from resnetlint import cache as cache_mod
from resnetlint.api import Settings, check_paths
from resnetlint.trace import TraceOptions

from helpers import FIXTURES, ROOT

GOOD, BAD = "identity = self.skip(x)", "out = self.skip(x)"


@pytest.fixture
def tree(tmp_path):
    """A copy of the seed and clean fixtures, with old mtimes (not "racy")."""
    dest = tmp_path / "tree"
    for sub in ("seeds", "clean"):
        shutil.copytree(FIXTURES / sub, dest / sub)
    _age(dest)
    return dest


def _age(path: Path, seconds: float = 3600) -> None:
    old = time.time() - seconds
    for p in path.rglob("*.py"):
        os.utime(p, (old, old))


def _settings(cache_dir, **kw):
    return Settings(cache=True, cache_dir=str(cache_dir), jobs=1, **kw)


def _report(run):
    """Everything the static report shows, comparable across runs."""
    return (
        sorted(json.dumps(f.to_json(), sort_keys=True) for f in run.findings),
        sorted((f.path, f.code, f.line, tuple(f.fix.edits) if f.fix else None) for f in run.findings),
        dict(run.sources),
        run.files,
        run.classes,
        sorted((e.path, e.message) for e in run.errors),
    )


def _index_files(cache_dir: Path):
    return sorted(cache_dir.glob(cache_mod.INDEX_PREFIX + "*.json"))


def test_miss_then_hit_with_identical_results(tree, tmp_path):
    cache_dir = tmp_path / "cache"
    uncached = check_paths([str(tree)], Settings(jobs=1))
    cold = check_paths([str(tree)], _settings(cache_dir))
    warm = check_paths([str(tree)], _settings(cache_dir))
    assert cold.cached == 0
    assert warm.cached == warm.files == cold.files > 10
    assert warm.findings == cold.findings == uncached.findings  # fix edits and confirmations included
    assert _report(warm) == _report(cold) == _report(uncached)
    assert any(f.fix is not None and f.fix.edits for f in warm.findings)
    # The directory is marked as a cache and ignored by git.
    assert (cache_dir / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (cache_dir / ".gitignore").read_text().splitlines()[-1] == "*"
    assert len(_index_files(cache_dir)) == 1


def test_warm_run_on_all_fixtures_matches_cold(tmp_path):
    dest = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, dest)
    _age(dest)
    cache_dir = tmp_path / "cache"
    cold = check_paths([str(dest)], Settings(cache=True, cache_dir=str(cache_dir), jobs=2))
    warm = check_paths([str(dest)], Settings(cache=True, cache_dir=str(cache_dir), jobs=2))
    assert warm.cached == warm.files == cold.files
    assert cold.findings and warm.findings == cold.findings
    assert _report(warm) == _report(cold)


def test_edited_file_is_the_only_one_reanalysed(tree, tmp_path):
    cache_dir = tmp_path / "cache"
    first = check_paths([str(tree)], _settings(cache_dir))
    target = tree / "seeds" / "seed003_block_corrected.py"
    assert not [f for f in first.findings if f.path == str(target)]
    # Re-introduce the seed's bug: the shortcut overwrites the main path.
    target.write_text(target.read_text().replace(GOOD, BAD, 1))
    second = check_paths([str(tree)], _settings(cache_dir))
    assert second.cached == second.files - 1
    edited = [f for f in second.findings if f.path == str(target)]
    assert "RL102" in {f.code for f in edited}
    assert edited == check_paths([str(target)], Settings(jobs=1)).findings
    assert str(target) in second.sources
    # And the edit is cached in turn.
    third = check_paths([str(tree)], _settings(cache_dir))
    assert third.cached == third.files
    assert third.findings == second.findings


def test_touched_file_with_same_content_is_a_hit(tree, tmp_path):
    cache_dir = tmp_path / "cache"
    first = check_paths([str(tree)], _settings(cache_dir))
    target = tree / "seeds" / "seed003_block.py"
    now = time.time()
    os.utime(target, (now, now))
    second = check_paths([str(tree)], _settings(cache_dir))
    assert second.cached == second.files  # the stat changed, the hash did not
    assert second.findings == first.findings


def test_recently_written_file_is_rehashed_not_trusted(tmp_path):
    """A file written in the same clock tick as the run could change again
    without its stat changing: it is stored without its stat and re-hashed."""
    cache_dir = tmp_path / "cache"
    src = tmp_path / "src"
    src.mkdir()
    target = src / "block.py"
    shutil.copy(FIXTURES / "seeds" / "seed003_block_corrected.py", target)  # mtime: now
    first = check_paths([str(src)], _settings(cache_dir))
    assert first.findings == []
    st = os.stat(target)
    # Same size, same mtime, different content: only the hash can tell.
    text = target.read_text()
    changed = text.replace(GOOD, BAD.ljust(len(GOOD)), 1)
    assert len(changed) == len(text) and changed != text
    target.write_text(changed)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(target).st_size == st.st_size
    second = check_paths([str(src)], _settings(cache_dir))
    assert second.cached == 0
    assert "RL102" in {f.code for f in second.findings}


def test_select_change_uses_another_index(tree, tmp_path):
    cache_dir = tmp_path / "cache"
    default = check_paths([str(tree)], _settings(cache_dir))
    only = check_paths([str(tree)], _settings(cache_dir, select=["RL102"]))
    assert only.cached == 0
    assert only.findings and {f.code for f in only.findings} == {"RL102"}
    assert {f.code for f in default.findings} > {"RL102"}
    assert len(_index_files(cache_dir)) == 2
    again = check_paths([str(tree)], _settings(cache_dir))
    assert again.cached == again.files
    assert again.findings == default.findings
    again_only = check_paths([str(tree)], _settings(cache_dir, select=["RL102"]))
    assert again_only.cached == again_only.files
    assert again_only.findings == only.findings


def test_other_settings_change_the_key():
    base = cache_mod.cache_key(Settings())
    assert cache_mod.cache_key(Settings()) == base
    assert cache_mod.cache_key(Settings(ignore=["RL301"])) != base
    assert cache_mod.cache_key(Settings(extend_select=["RL303"])) != base
    assert cache_mod.cache_key(Settings(fast=False)) != base
    assert cache_mod.cache_key(Settings(per_file_ignores={"tests/*": ["RL104"]})) != base
    assert cache_mod.cache_key(Settings(per_file_ignores={"tests/*": ["RL104"]}, config_root="/x")) != \
        cache_mod.cache_key(Settings(per_file_ignores={"tests/*": ["RL104"]}, config_root="/y"))
    # Settings that do not change a file's static results share the index.
    assert cache_mod.cache_key(Settings(jobs=3, cache_dir="/elsewhere")) == base


def test_version_change_invalidates(tree, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    check_paths([str(tree)], _settings(cache_dir))
    assert check_paths([str(tree)], _settings(cache_dir)).cached > 0
    monkeypatch.setattr(cache_mod, "__version__", "99.0.0")
    run = check_paths([str(tree)], _settings(cache_dir))
    assert run.cached == 0


def test_source_change_of_resnetlint_invalidates(monkeypatch):
    base = cache_mod.cache_key(Settings())
    real = cache_mod.code_fingerprint

    def edited():
        stamp = real()
        stamp[0] = list(stamp[0])
        stamp[0][-1] += 1  # a module's mtime moved: a development edit
        return stamp

    monkeypatch.setattr(cache_mod, "code_fingerprint", edited)
    assert cache_mod.cache_key(Settings()) != base


def test_fingerprint_covers_the_rules():
    names = {entry[1] for entry in cache_mod.code_fingerprint() if len(entry) == 4}
    assert {"engine.py", "api.py", "block.py", "rl101_stale_input.py"} <= names


@pytest.mark.parametrize("damage", [b"", b"{not json", b"\x00\xff" * 100, b"[]", b'{"format": 1, "key": "x"}',
                                    None])
def test_corrupt_index_is_ignored_and_rebuilt(tree, tmp_path, damage):
    cache_dir = tmp_path / "cache"
    first = check_paths([str(tree)], _settings(cache_dir))
    (index,) = _index_files(cache_dir)
    if damage is None:
        # Valid JSON with damaged entries: each is a miss, never an error.
        data = json.loads(index.read_text())
        for i, key in enumerate(sorted(data["entries"])):
            data["entries"][key] = [[1], "x", None, {"findings": 3}][i % 4] if i % 2 else \
                data["entries"][key][:4] + ["h", "c", 0, {"findings": [[1, 2]], "text": 5}]
        index.write_text(json.dumps(data))
    else:
        index.write_bytes(damage)
    run = check_paths([str(tree)], _settings(cache_dir))
    assert run.cached == 0
    assert _report(run) == _report(first)
    json.loads(index.read_text())  # rewritten, readable
    assert check_paths([str(tree)], _settings(cache_dir)).cached == run.files


def test_unwritable_cache_dir_is_not_an_error(tree, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    run = check_paths([str(tree)], _settings(blocker / "cache"))
    assert run.files > 0 and run.cached == 0
    assert _report(run) == _report(check_paths([str(tree)], Settings(jobs=1)))


def test_unreadable_and_internal_errors_are_not_cached(tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    src = tmp_path / "src"
    src.mkdir()
    (src / "bad.py").write_bytes(b"x = '\xff\xfe'\n")  # not UTF-8: cannot be read
    shutil.copy(FIXTURES / "seeds" / "seed003_block.py", src / "block.py")
    _age(src)
    first = check_paths([str(src)], _settings(cache_dir))
    assert [e.path for e in first.errors] == [str(src / "bad.py")]
    second = check_paths([str(src)], _settings(cache_dir))
    assert second.cached == 1  # block.py only
    assert [e.path for e in second.errors] == [str(src / "bad.py")]
    # An internal error (RL999) is never stored.
    from resnetlint import engine

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    cache_dir2 = tmp_path / "cache2"
    monkeypatch.setattr(engine.FileAnalysis, "blocks", broken)
    crashed = check_paths([str(src / "block.py")], _settings(cache_dir2))
    assert [f.code for f in crashed.findings] == ["RL999"]
    monkeypatch.undo()
    after = check_paths([str(src / "block.py")], _settings(cache_dir2))
    assert after.cached == 0 and "RL999" not in {f.code for f in after.findings}


def test_deleted_files_are_dropped_from_the_index(tree, tmp_path):
    cache_dir = tmp_path / "cache"
    check_paths([str(tree)], _settings(cache_dir))
    (index,) = _index_files(cache_dir)
    gone = tree / "clean" / "mobile_style.py"
    key = os.path.normpath(os.path.abspath(gone))
    assert key in json.loads(index.read_text())["entries"]
    gone.unlink()
    check_paths([str(tree)], _settings(cache_dir))  # all hits: the index is not rewritten
    assert key in json.loads(index.read_text())["entries"]
    edited = tree / "clean" / "resnet_style.py"
    edited.write_text(edited.read_text() + "# edited\n")
    check_paths([str(tree / "clean" / "resnet_style.py")], _settings(cache_dir))  # a write drops it
    entries = json.loads(index.read_text())["entries"]
    assert key not in entries and len(entries) == len(list(tree.rglob("*.py")))


def test_partial_runs_keep_the_rest_of_the_index(tree, tmp_path):
    cache_dir = tmp_path / "cache"
    check_paths([str(tree / "seeds")], _settings(cache_dir))
    check_paths([str(tree / "clean")], _settings(cache_dir))
    both = check_paths([str(tree)], _settings(cache_dir))
    assert both.cached == both.files


def test_fix_and_trace_recheck_cached_files_with_findings(tree, tmp_path):
    """Hits have no syntax tree or block summaries: files with findings are
    checked again when --fix or the trace needs them."""
    cache_dir = tmp_path / "cache"
    first = check_paths([str(tree)], _settings(cache_dir))
    with_findings = {f.path for f in first.findings}
    assert with_findings
    diff = check_paths([str(tree)], _settings(cache_dir, fix="diff", unsafe_fixes=True))
    assert diff.cached == first.files - len(with_findings)
    assert diff.fixes and all(not o.written for o in diff.fixes)
    for mode in ("on", "auto"):
        cache = cache_mod.ResultCache(_settings(cache_dir, trace=TraceOptions(mode=mode)))
        hits, misses = cache.lookup(sorted(str(p) for p in tree.rglob("*.py")))
        assert set(misses) == with_findings
        assert all(not h.findings for h in hits)
    cache = cache_mod.ResultCache(_settings(cache_dir, trace=TraceOptions(mode="on", trace_all=True)))
    hits, misses = cache.lookup(sorted(str(p) for p in tree.rglob("*.py")))
    assert set(misses) > with_findings  # residual blocks without findings too
    assert all(not h.findings for h in hits)


def test_fix_writes_and_next_run_sees_the_fixed_file(tree, tmp_path):
    cache_dir = tmp_path / "cache"
    target = tree / "seeds" / "seed003_block.py"
    check_paths([str(target)], _settings(cache_dir))
    fixed = check_paths([str(target)], _settings(cache_dir, fix="fix", unsafe_fixes=True))
    assert fixed.fixes_applied > 0
    after = check_paths([str(target)], _settings(cache_dir))
    assert after.cached == 0  # the fix rewrote it
    assert after.findings == check_paths([str(target)], Settings(jobs=1)).findings
    assert len(after.findings) < len(fixed.findings)
    again = check_paths([str(target)], _settings(cache_dir))
    assert again.cached == 1 and again.findings == after.findings


def test_cache_off_leaves_the_disk_alone(tree, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_paths([str(tree)], Settings(jobs=1))
    assert not (tmp_path / ".resnetlint_cache").exists()
    check_paths([str(tree)], Settings(jobs=1, cache=True))
    assert (tmp_path / ".resnetlint_cache" / "CACHEDIR.TAG").exists()  # default location: the current directory


RUN_SCRIPT = textwrap.dedent("""
    import json, sys
    from resnetlint.api import Settings, check_paths
    run = check_paths([sys.argv[1]], Settings(cache=True, cache_dir=sys.argv[2], jobs=int(sys.argv[3])))
    print(json.dumps({
        "findings": sorted(json.dumps(f.to_json(), sort_keys=True) for f in run.findings),
        "files": run.files, "classes": run.classes, "cached": run.cached,
        "libcst": "libcst" in sys.modules, "engine": "resnetlint.engine" in sys.modules,
    }))
""")


def _run_script(tree, cache_dir, jobs=1):
    return subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, str(tree), str(cache_dir), str(jobs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))


def _result(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)


def test_all_hit_run_does_not_import_libcst(tree, tmp_path):
    cache_dir = tmp_path / "cache"
    cold = _result(_run_script(tree, cache_dir))
    assert cold["cached"] == 0 and cold["libcst"]
    warm = _result(_run_script(tree, cache_dir))
    assert warm["cached"] == warm["files"] == cold["files"]
    assert not warm["libcst"] and not warm["engine"]
    assert warm["findings"] == cold["findings"]


def test_concurrent_runs_agree_and_leave_a_readable_cache(tmp_path):
    dest = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, dest)
    _age(dest)
    cache_dir = tmp_path / "cache"
    expected = sorted(json.dumps(f.to_json(), sort_keys=True) for f in check_paths([str(dest)], Settings()).findings)
    for round_ in range(2):
        procs = [_run_script(dest, cache_dir, jobs) for jobs in (1, 2, 1)]
        results = [_result(p) for p in procs]
        for res in results:
            assert res["findings"] == expected
        if round_ == 1:
            assert all(r["cached"] == r["files"] for r in results)
    (index,) = _index_files(cache_dir)
    data = json.loads(index.read_text())
    assert len(data["entries"]) == results[0]["files"]
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]
    final = _result(_run_script(dest, cache_dir))
    assert final["cached"] == final["files"] and not final["libcst"]


def test_old_indexes_are_pruned(tree, tmp_path):
    cache_dir = tmp_path / "cache"
    from resnetlint.registry import rule_files

    codes = [rule.code for rule in rule_files()][:cache_mod.KEEP_INDEXES + 3]
    assert len(codes) == cache_mod.KEEP_INDEXES + 3
    for code in codes:  # another selection, another index
        check_paths([str(tree / "seeds" / "seed003_block.py")], _settings(cache_dir, ignore=[code]))
    assert len(_index_files(cache_dir)) == cache_mod.KEEP_INDEXES


CLI_SCRIPT = textwrap.dedent("""
    import atexit, sys
    atexit.register(lambda: sys.stderr.write("LIBCST=%s\\n" % ("libcst" in sys.modules)))
    from resnetlint.cli import main
    sys.argv = ["resnetlint"] + sys.argv[1:]
    main()
""")


def test_cli_warm_run_with_findings_does_not_import_libcst(tree, tmp_path):
    """The text report of cached findings (code frames included) needs no
    libcst either."""
    cache_dir = tmp_path / "cache"
    args = [sys.executable, "-c", CLI_SCRIPT, str(tree / "seeds"), "--no-trace", "--isolated",
            "--cache-dir", str(cache_dir)]
    env = dict(os.environ, NO_COLOR="1")
    cold = subprocess.run(args, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    warm = subprocess.run(args, capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert cold.returncode == warm.returncode == 1, cold.stderr
    assert "LIBCST=True" in cold.stderr
    assert "LIBCST=False" in warm.stderr, warm.stderr
    assert warm.stdout == cold.stdout
    assert "^^^" in warm.stdout  # code frames came from the cached text
