"""Emit a component as an instance of a separately generated Verilog module.

Amaranth gives every instance of a component its own Verilog module, so 64 PEs would be 64
copies of the PE (and of its memory initialisation).  For Verilog export the top level replaces
each PE by a :class:`BlackBox` with the same signature that instantiates one shared module
(``eie_pe``), generated once.  Port names follow Amaranth's own naming of a component's ports:
the member path joined by ``__``.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In


def port_name(path) -> str:
    return "__".join(str(p) for p in path)


class BlackBox(wiring.Component):
    """A component whose body is an ``Instance`` of ``module_name`` with the same ports.

    Parameters
    ----------
    signature : wiring.Signature
        The signature of the component it stands for (e.g. ``hw.pe.pe_signature(cfg)``).
    module_name : str
        Verilog module that implements it, with ``clk`` and ``rst`` ports for ``sync``.
    reset : Value, optional
        What drives its ``rst`` (default: the ``sync`` domain's reset; ``eie_top`` passes its
        registered reset, its own domain having none).
    """

    def __init__(self, signature: wiring.Signature, module_name: str, reset=None):
        self.module_name = module_name
        self.reset = reset
        super().__init__(signature)

    def elaborate(self, platform):
        m = Module()
        ports = {"i_clk": ClockSignal(),
                 "i_rst": ResetSignal() if self.reset is None else self.reset}
        for path, member, value in self.signature.flatten(self):
            prefix = "i_" if member.flow == In else "o_"
            ports[prefix + port_name(path)] = value
        m.submodules.inst = Instance(self.module_name, **ports)
        return m
