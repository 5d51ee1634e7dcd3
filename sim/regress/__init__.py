"""The constrained-random regression farm (``make regress``, ``python -m sim.regress``).

Random configurations across the space :class:`hw.arch.config.EIEConfig` allows
(:mod:`sim.regress.space`), random networks that fit them with the adversarial patterns
(:mod:`sim.regress.cases`), each case compiled and run on the Verilated RTL against the golden
model (outputs, bit for bit) and the cycle model (cycles and every per-PE counter), optionally
also loaded through the host interface instead of the ``$fread`` preload (:mod:`sim.regress.check`).
Failures are shrunk to a smaller case that still fails and saved as reproducers
(:mod:`sim.regress.shrink`); the cases run on a Dask cluster, local by default
(:mod:`sim.regress.farm`); JUnit XML, ``summary.json`` and ``summary.md`` / ``.html`` with the
coverage of the configuration space (:mod:`sim.regress.summary`).

It may import ``hw.arch``, ``models``, ``compiler``, ``sim.ref``, ``sim.flow``, ``sim.rtl``
and ``sim.studies`` (docs/layout.md); only its command, ``python -m sim.regress``, sits above.
"""
