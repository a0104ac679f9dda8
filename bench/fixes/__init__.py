"""Fixes of planted bugs, measured by running the fixed blocks.

    .venv/bin/python -m bench.fixes --python /path/to/torch-venv/bin/python --packages torchvision,pytorchcv
    .venv/bin/python -m bench.fixes --python ... --json fixes.json --markdown fixes.md

It reuses :mod:`bench.recall` as a library (its block finder, operators and
deterministic sample; nothing of it is changed), restricted by default to
the crash-type operators (:data:`.judge.CRASH_OPERATORS`: every operator but
RL301, whose bias is harmless at run time).  For each mutant, inside a full
copy of its package (the trace imports it), the interpreter given with
``--python`` -- which must have torch and the package's dependencies --
runs :mod:`.worker`: the fix as ``resnetlint FILE --fix --unsafe-fixes``
makes it with torch (every fix proven by the trace) and as ``--no-trace``
makes it (the pre-commit hook), and the original, mutant and fixed texts
run by resnetlint's trace worker in the same configurations.  :mod:`.judge`
says what the runs mean; :mod:`.report` prints, per operator, the observable
mutants, how many run cleanly after the fix (no error, every parameter that
had a gradient in the original still has one, the input left alone), how
many come back to the original code, and the failures by cause.

The mutants are cached in ``.bench-cache/fixes/`` (keyed by the sample
settings and bench/recall's sources): scanning the corpora is the slow part.
"""
