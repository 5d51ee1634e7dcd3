"""Layer 0, the hardware contract: configuration and derived widths, fixed point, register map,
PE memory inventory, row interleave, errors and atomic output, each fact written once.
Plain Python + NumPy: imports nothing of the project and never Amaranth (docs/layout.md)."""
