"""Activation queue: the per-PE FIFO of broadcast ``(j, a_j)`` pairs (EIE section 2).

The queue decouples the central unit's broadcast from the PE's column processing, so a PE with a
long column keeps working while the central unit goes on broadcasting to the others (load
balance).  It is an :class:`amaranth.lib.fifo.SyncFIFO`: first-word fall-through with an
asynchronous (register-file) read, which is what a queue of a few tens of bits and depth 8 is in
silicon anyway (EIE: 758 um^2).

Latency: an element pushed in cycle ``t`` is visible on ``r.valid`` in cycle ``t + 1`` and can
be popped then.  ``w.ready`` is "not full" and does not look at the read side, so a full queue
cannot accept a push in the cycle it is popped; at depth 1 the queue therefore passes at most one
column every two cycles (EIE's depth sweep: at depth 1 about half of all cycles idle).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from hw.arch.config import EIEConfig, require_config
from hw.bus import broadcast_signature, queue_entry_layout


class ActQueue(wiring.Component):
    """Activation queue of depth ``cfg.queue_depth``.

    Parameters
    ----------
    cfg : EIEConfig

    Attributes
    ----------
    w : In(broadcast_signature(cfg))
        Push side (:func:`hw.bus.broadcast_signature`); ``w.ready`` is "not full" (the PE's
        ``bc.ready``).
    r : Out(broadcast_signature(cfg))
        Pop side, first-word fall-through.
    level : Out(range(queue_depth + 1))
        Elements held (0 = empty, used for ``idle``).
    """

    def __init__(self, cfg: EIEConfig):
        require_config(cfg)
        self.cfg = cfg
        super().__init__({
            "w": In(broadcast_signature(cfg)),
            "r": Out(broadcast_signature(cfg)),
            "level": Out(range(cfg.queue_depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        q = m.submodules.fifo = fifo.SyncFIFO(width=queue_entry_layout(self.cfg).size,
                                              depth=self.cfg.queue_depth)
        m.d.comb += [
            q.w_data.eq(self.w.payload.as_value()),
            q.w_en.eq(self.w.valid),
            self.w.ready.eq(q.w_rdy),
            self.r.payload.eq(q.r_data),
            self.r.valid.eq(q.r_rdy),
            q.r_en.eq(self.r.ready),
            self.level.eq(q.level),
        ]
        return m
