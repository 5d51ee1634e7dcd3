"""The gateware: EIE's central control unit, LNZD, processing element and top level in Amaranth,
generated from an :class:`hw.arch.config.EIEConfig`, and its Verilog export (``hw.gen_verilog``).
May import :mod:`hw.arch` and Amaranth only (docs/layout.md)."""
