"""The corpora: which packages, where their unpacked sources are, which
files count.

Sources are looked up under ``--src`` (default ``/work/corpora/src``) in
either layout: ``<src>/<distribution>/<package>/`` (the development
machine: one folder per unpacked wheel) or ``<src>/<package>/`` (what
``tests/test_corpus.py`` and ``bench/bench.py`` unpack).  ``--wheels DIR``
unpacks the wheels of a folder first, with ``bench/bench.py``'s
``extract_python_sources``.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SRC = Path("/work/corpora/src")


@dataclass(frozen=True)
class Package:
    distribution: str  # the wheel's name (mmsegmentation)
    version: str
    top: str  # the import name (mmseg)
    subdir: str = ""  # only this folder of the package is searched for blocks (transformers: models)


PINNED = (
    Package("timm", "1.0.31", "timm"),
    Package("torchvision", "0.29.1", "torchvision"),
    Package("pytorchcv", "0.0.74", "pytorchcv"),
    Package("segmentation_models_pytorch", "0.6.0", "segmentation_models_pytorch"),
    Package("mmpretrain", "1.2.0", "mmpretrain"),
)
SECOND = (
    Package("monai", "1.6.1", "monai"),
    Package("mmdet", "3.3.0", "mmdet"),
    Package("mmsegmentation", "1.2.2", "mmseg"),
    Package("transformers", "5.23.0", "transformers", "models"),
    Package("ultralytics", "8.4.190", "ultralytics"),
    Package("kornia", "0.9.0", "kornia"),
)
CORPORA = {"pinned": PINNED, "second": SECOND, "all": PINNED + SECOND}


def select_packages(corpus: str, names: Optional[Sequence[str]]) -> List[Package]:
    known = {p.distribution: p for p in PINNED + SECOND}
    if names:
        unknown = [n for n in names if n not in known and n not in {p.top for p in known.values()}]
        if unknown:
            raise SystemExit(f"unknown package(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return [p for p in PINNED + SECOND if p.distribution in names or p.top in names]
    return list(CORPORA[corpus])


def package_root(src: Path, package: Package) -> Optional[Path]:
    """The folder that holds ``<top>/`` for this package, or None."""
    for candidate in (src / package.distribution, src):
        if (candidate / package.top).is_dir():
            return candidate
    return None


def package_files(root: Path, package: Package) -> List[Path]:
    """The ``*.py`` files searched for blocks, sorted."""
    base = root / package.top / package.subdir if package.subdir else root / package.top
    return sorted(p for p in base.rglob("*.py") if p.is_file())


def _bench_module():
    """bench/bench.py, loaded by path (``bench`` is also this namespace)."""
    spec = importlib.util.spec_from_file_location("resnetlint_bench_script", REPO / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unpack_wheels(wheels: Path, target: Path, packages: Sequence[Package]) -> Dict[str, str]:
    """Unpack each package's wheel from ``wheels`` into ``target/<distribution>/``
    (once: a stamp records the wheel), return distribution -> wheel name."""
    extract = _bench_module().extract_python_sources
    done = {}
    for package in packages:
        matches = sorted(wheels.glob(f"{package.distribution}-{package.version}-*.whl"))
        if not matches:
            continue
        wheel = matches[0]
        destination = target / package.distribution
        stamp = target / f".{package.distribution}.stamp"
        if not (stamp.is_file() and json.loads(stamp.read_text()).get("wheel") == wheel.name):
            destination.mkdir(parents=True, exist_ok=True)
            extract(wheel, destination)
            stamp.write_text(json.dumps({"wheel": wheel.name}))
        done[package.distribution] = wheel.name
    return done
