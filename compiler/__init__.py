"""The compiler: a pruned, weight-shared network -> EIE interleaved CSC memory images and a
manifest, as a list of steps (prune, share, encode, lay out, account: :mod:`compiler.steps`, run
by :mod:`compiler.runner`), plus the Deep Compression trainer.
May import :mod:`hw.arch` and :mod:`models` (docs/layout.md)."""
