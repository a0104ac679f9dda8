"""Recall of resnetlint on real code, measured with planted bugs.

    .venv/bin/python -m bench.recall --corpus pinned            # timm, torchvision, pytorchcv, smp, mmpretrain
    .venv/bin/python -m bench.recall --corpus second -j 2       # monai, mmdet, mmseg, transformers/models, ultralytics, kornia
    .venv/bin/python -m bench.recall --resnetlint /work/main --json after.json --markdown after.md

What it does, in order:

1. **Find the residual blocks** of each package's unpacked sources
   (:mod:`.blocks`, with libcst and a small dataflow of its own in
   :mod:`.flow`, never resnetlint's model): classes that are ``nn.Module``s
   whose ``forward`` (or a function it delegates to) adds an earlier value
   to something computed from it through submodules.
2. **Plant one bug per mutant** (:mod:`.operators`, one operator per
   catalog rule: stale input, overwritten residual, bypassed shortcut,
   unused layer, wrong width, removed projection, dropped stride, wrong
   padding, wrong groups, bias before norm, in-place op on the identity),
   by rewriting the real source with libcst: only the module-level
   statement holding the class is regenerated, every other byte of the file
   is unchanged (:mod:`.mutate`).  A mutant is kept when it compiles and
   changes the text; the operators only propose changes that alter the
   block (see *Equivalence filters*).
3. **Sample** deterministically: at most ``--per-operator`` mutants per
   (package, operator), spread over blocks first, with ``--seed``
   (:func:`.generate.select`).
4. **Check** each mutant inside a copy of its own package (the future
   project-wide model reads sibling modules), with the resnetlint under
   test (``--resnetlint CHECKOUT`` or ``--python``), through its public API
   (``check_paths`` on that one file, static, no cache; ``--via cli`` for
   the command line) in a subprocess per batch (:mod:`.check`,
   :mod:`.driver`).
5. **Judge**: a mutant is *detected* when a finding with the operator's
   code, in the mutated class, appears in the mutant's findings and not in
   the original file's (compared as multisets of (code, class, message with
   digits masked)); a finding of another code in the class is recorded as
   "other codes", the expected code in another class (a subclass) as
   "elsewhere".  Recall = detected / kept.
6. **Report** (:mod:`.report`): counts, recall per operator and package,
   misses by cause (:mod:`.features`: what builds the mutated layer -- a
   helper from another module, a ``norm_layer`` parameter, mmcv builders
   -- and what else the block uses), examples, and with ``--json`` every
   mutant with its diff and outcome.

Equivalence filters (a mutant that cannot change the block is never
proposed):

* widths, strides and groups are compared by :mod:`.symbolic` -- random
  evaluation with the block's local assignments inlined, class constants
  (``expansion = 4``), ``assert a == b`` / ``if a != b: raise`` equalities
  and parameter defaults: a width replacement must be able to differ
  (``planes * self.expansion`` is ``planes`` when ``expansion = 1``), a
  removed stride must not be 1 by construction, a new ``groups`` must fail
  to divide the conv's channels for some configuration while the original
  always divides them;
* a width is replaced only on a layer not fed the block input, and only by
  an expression defined at that point;
* a stride is removed from the main path only when the shortcut strides too
  (same stride name in the projection or its guard, or a caller-supplied
  projection), and from the shortcut only when the main path strides;
* padding is set to 0 only on a stride-1 main-path conv with a kernel
  larger than 1 whose padding is not already 0;
* ``bias=True`` only on a torch conv feeding a BatchNorm/InstanceNorm (a
  ``norm_layer`` defaulting to one, an mmcv BN config), or on a known
  conv-norm-act helper whose default norm is on (:data:`.layers.KNOWN_HELPERS`);
* a stale input must leave the previous layer's output dead (no other
  reader); an unused-layer mutant removes the only run-time use of a layer
  with parameters (activations, dropout, pooling and identities excluded;
  ``init_weights``-like methods do not count as uses);
* projections (RL103, RL202) must hold parameters (not only
  ``nn.Identity()``/None); a projection is removed only in a block with two
  width parameters that can differ, and only when nothing else refers to it.

``--observe N`` runs N sampled pytorchcv mutants and their originals with
torch (:mod:`.observe`) to show the bugs are observable (crash, other
output, parameters without gradient, a bias with zero gradient, an input
modified in place).

Limits: the block finder and the operators are syntactic and
path-insensitive: a mutated layer can sit on a branch where the add does
not run (a ``simplified`` variant), and two-branch sums whose one branch is
a single submodule call (NASNet cells) count as blocks.  Such mutants are
still bugs in the code, but not always in a configuration the rule
targets.  See bench/README.md.
"""
