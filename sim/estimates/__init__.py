"""Estimates from the RTL's counters and the generated Verilog: energy (45 nm table), area (SRAM
bits + Yosys logic) and FPGA / ASIC synthesis with Yosys and nextpnr.
May import :mod:`hw.arch`, :mod:`hw`, :mod:`compiler`, :mod:`sim.ref`, :mod:`sim.flow`."""
