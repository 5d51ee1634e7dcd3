"""The flow: the one build root, source digest, output keys and locks, and compile-if-stale, used
by every command (sim, compile, report, sweep, compress).
May import :mod:`hw.arch`, :mod:`models`, :mod:`compiler` and :mod:`sim.ref` (docs/layout.md)."""
