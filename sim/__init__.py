"""Simulation and everything measured from it: reference models (``ref``), the flow (``flow``), the
RTL on Verilator (``rtl``), estimates (``estimates``), studies (``studies``); ``python -m sim``.
Each room's own ``__init__`` says what it may import (docs/layout.md)."""
