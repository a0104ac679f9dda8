"""From package sources to mutants: find the blocks, list every place each
operator can plant its bug, sample deterministically, and write the mutant
texts (compiling, and different from the original).

Sampling: for each (package, operator) the blocks with at least one
candidate are shuffled with ``Random("<seed>:<package>:<operator>")`` (after
sorting them by file and line), and each block's candidates too; mutants
are then taken round-robin, one per block per round, until
``per_operator`` are taken.  So the sample spreads over blocks first, and
the same seed always gives the same mutants.
"""
from __future__ import annotations

import ast
import multiprocessing
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import libcst as cst

from . import blocks as B
from . import features as FE
from . import mutate as MU
from . import operators as OP
from .corpora import Package, package_files


@dataclass
class BlockInfo:
    package: str
    relpath: str
    qualname: str
    line: int
    residual_function: str
    features: List[str]


@dataclass
class CandidateInfo:
    package: str
    relpath: str
    qualname: str
    code: str
    index: int  # position among the block's candidates for this operator (regeneration is deterministic)
    description: str
    variant: str
    layer: Optional[str]
    site_features: List[str]


@dataclass
class Mutant:
    id: str
    package: str
    relpath: str
    qualname: str
    class_line: int
    code: str
    operator: str
    description: str
    variant: str
    layer: Optional[str]
    features: List[str]
    line: int = 0  # first changed line
    diff: str = ""
    text: str = field(default="", repr=False)
    rejected: Optional[str] = None  # why it was not kept (does not compile, no change, ...)


@dataclass
class PackageScan:
    package: str
    files: int = 0
    parsed: int = 0
    parse_errors: int = 0
    blocks: List[BlockInfo] = field(default_factory=list)
    candidates: List[CandidateInfo] = field(default_factory=list)


def _class_bases(texts: Dict[Path, str]) -> Dict[str, List[List[str]]]:
    out: Dict[str, List[List[str]]] = {}
    for text in texts.values():
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                out.setdefault(node.name, []).append([ast.unparse(b) for b in node.bases])
    return out


def _scan_file(args) -> Tuple[Optional[List[BlockInfo]], List[CandidateInfo]]:
    package, top, root, path, class_bases, codes = args
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    relpath = Path(path).relative_to(root).as_posix()
    try:
        module = cst.parse_module(text)
        lines = B.class_lines(text)
    except (cst.ParserSyntaxError, SyntaxError, RecursionError, ValueError):
        return None, []
    source = MU.SourceFile(text, module)
    infos: List[BlockInfo] = []
    candidates: List[CandidateInfo] = []
    for block in B.find_blocks(module, top, relpath, class_bases, lines):
        infos.append(BlockInfo(package, relpath, block.qualname, block.line, block.residual_function,
                               FE.block_features(block)))
        for code, found in OP.candidates(block, source, codes).items():
            for index, candidate in enumerate(found):
                candidates.append(CandidateInfo(package, relpath, block.qualname, code, index,
                                                candidate.description, candidate.variant, candidate.layer,
                                                FE.site_features(block, candidate.site, candidate.layer)))
    return infos, candidates


def scan_package(package: Package, root: Path, codes: Sequence[str], jobs: int = 1,
                 progress=None) -> PackageScan:
    """Every block and every candidate of one package."""
    scan = PackageScan(package.distribution)
    files = package_files(root, package)
    scan.files = len(files)
    texts = {}
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if B.quick_candidates(text):
            texts[path] = text
    class_bases = _class_bases(texts)
    work = [(package.distribution, package.top, str(root), str(path), class_bases, list(codes)) for path in texts]
    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None
    try:
        results: Iterable = pool.imap(_scan_file, work, chunksize=4) if pool else map(_scan_file, work)
        for done, (infos, candidates) in enumerate(results, 1):
            if infos is None:
                scan.parse_errors += 1
                continue
            scan.parsed += 1
            scan.blocks.extend(infos)
            scan.candidates.extend(candidates)
            if progress and done % 200 == 0:
                progress(f"  {package.distribution}: {done}/{len(work)} files scanned")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return scan


def select(scan: PackageScan, codes: Sequence[str], per_operator: int, seed: int) -> List[CandidateInfo]:
    """The deterministic sample (see the module docstring)."""
    chosen: List[CandidateInfo] = []
    lines = {(b.relpath, b.qualname): b.line for b in scan.blocks}
    for code in codes:
        by_block: Dict[Tuple[str, str], List[CandidateInfo]] = {}
        for candidate in scan.candidates:
            if candidate.code == code:
                by_block.setdefault((candidate.relpath, candidate.qualname), []).append(candidate)
        rng = random.Random(f"{seed}:{scan.package}:{code}")
        keys = sorted(by_block, key=lambda k: (k[0], lines.get(k, 0), k[1]))
        rng.shuffle(keys)
        queues = []
        for key in keys:
            items = list(by_block[key])
            rng.shuffle(items)
            queues.append(items)
        taken: List[CandidateInfo] = []
        round_index = 0
        while len(taken) < per_operator and any(round_index < len(q) for q in queues):
            for queue in queues:
                if round_index < len(queue) and len(taken) < per_operator:
                    taken.append(queue[round_index])
            round_index += 1
        chosen.extend(taken)
    return chosen


def _materialize_file(args) -> List[Mutant]:
    package, top, root, relpath, wanted, block_features = args
    path = Path(root) / relpath
    text = path.read_text(encoding="utf-8", errors="replace")
    module = cst.parse_module(text)
    source = MU.SourceFile(text, module)
    blocks = {b.qualname: b for b in B.find_blocks(module, top, relpath, {}, B.class_lines(text))}
    out: List[Mutant] = []
    for info in wanted:
        mutant = Mutant(
            id=f"{package}:{relpath}:{info.qualname}:{info.code}:{info.index}",
            package=package, relpath=relpath, qualname=info.qualname, class_line=0, code=info.code,
            operator=OP.NAMES[info.code], description=info.description, variant=info.variant, layer=info.layer,
            features=sorted(set(block_features.get(info.qualname, []) + info.site_features)))
        block = blocks.get(info.qualname)
        if block is None:
            mutant.rejected = "block not found again"
            out.append(mutant)
            continue
        mutant.class_line = block.line
        found = OP.candidates(block, source, [info.code])[info.code]
        if info.index >= len(found) or found[info.index].description != info.description:
            mutant.rejected = "candidate not found again"
            out.append(mutant)
            continue
        new_text = source.apply(block.top, found[info.index].edits)
        if new_text is None:
            mutant.rejected = "edit did not apply"
        elif new_text == text:
            mutant.rejected = "no change"
        else:
            error = MU.compiles(new_text, relpath)
            if error:
                mutant.rejected = f"does not compile: {error}"
            else:
                mutant.text = new_text
                mutant.line = MU.first_changed_line(text, new_text)
                mutant.diff = MU.diff_excerpt(text, new_text)
        out.append(mutant)
    return out


def materialize(scan: PackageScan, package: Package, root: Path, chosen: Sequence[CandidateInfo],
                jobs: int = 1) -> List[Mutant]:
    """The mutants' texts (files in sorted order; a rejected mutant keeps
    the reason)."""
    features = {}
    for block in scan.blocks:
        features.setdefault(block.relpath, {})[block.qualname] = block.features
    by_file: Dict[str, List[CandidateInfo]] = {}
    for candidate in chosen:
        by_file.setdefault(candidate.relpath, []).append(candidate)
    work = [(package.distribution, package.top, str(root), relpath, by_file[relpath], features.get(relpath, {}))
            for relpath in sorted(by_file)]
    if jobs <= 1:
        results = list(map(_materialize_file, work))
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(_materialize_file, work, chunksize=2)
    return [m for group in results for m in group]


