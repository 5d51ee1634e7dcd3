"""The flow: the one build root, source digest, output keys and locks, compile-if-stale and the
Dask clusters (:mod:`sim.flow.cluster`), used
by every command (sim, compile, report, sweep, compress).
May import :mod:`hw.arch`, :mod:`models`, :mod:`compiler` and :mod:`sim.ref` (docs/layout.md)."""
