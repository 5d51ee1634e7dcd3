"""The reference models the RTL is checked against: the bit-exact golden model and the cycle model
(cycles and per-PE counters equal to the RTL's), and the typed run job and result they share.
May import :mod:`hw.arch` and :mod:`compiler` (docs/layout.md)."""
