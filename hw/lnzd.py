"""Leading-non-zero detector (LNZD): finds the lowest set bit of a mask (EIE section 2).

EIE's central control unit finds the next non-zero input activation with a quadtree of 4-input
LNZD nodes: 16 + 4 + 1 = 21 nodes for 64 PEs.  Each node looks at four children (a ``valid``
bit and an index each), picks the lowest valid child and passes ``valid`` and
``{child number, child index}`` up.  The leaves are the mask bits themselves.

Here the tree is built recursively for any width: every level groups four nodes of the level
below into one, padding the last group with constant-invalid children, until one node remains.
Widths up to 4 take one node.  The detector is purely combinational; the energy model charges
:attr:`LNZD.n_nodes` nodes per broadcast.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

#: children per tree node
FANIN = 4


def lnzd_levels(width: int) -> list[int]:
    """Nodes per tree level, leaves first: ``lnzd_levels(64) == [16, 4, 1]``.

    Parameters
    ----------
    width : int
        Mask bits (>= 1).
    """
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"LNZD width must be a positive integer, got {width!r}")
    levels = []
    n = width
    while True:
        n = -(-n // FANIN)
        levels.append(n)
        if n == 1:
            return levels


def lnzd_nodes(width: int) -> int:
    """Total 4-input nodes of an LNZD tree over ``width`` bits (21 for 64)."""
    return sum(lnzd_levels(width))


def index_bits(width: int) -> int:
    """Width of the ``index`` output: enough for ``0 .. width - 1`` (at least 1)."""
    return max(1, (width - 1).bit_length())


class LNZD(wiring.Component):
    """Combinational tree of 4-input leading-non-zero detector nodes.

    Parameters
    ----------
    width : int
        Mask bits (one per PE in the central control unit).

    Attributes
    ----------
    mask : In(width)
        Candidates; bit ``k`` set = element ``k`` is a non-zero still to broadcast.
    valid : Out(1)
        Some bit of ``mask`` is set.
    index : Out(index_bits(width))
        Lowest set bit of ``mask`` (0 when ``valid`` is low).
    n_nodes : int
        Number of 4-input nodes in the tree (for the energy model).
    levels : list of int
        Nodes per level, leaves first.
    """

    def __init__(self, width: int):
        self.levels = lnzd_levels(width)
        self.n_nodes = sum(self.levels)
        self.width = width
        super().__init__({
            "mask": In(width),
            "valid": Out(1),
            "index": Out(index_bits(width)),
        })

    def elaborate(self, platform):
        m = Module()
        # level 0: each mask bit is a child with an empty index
        children = [(self.mask[i], None) for i in range(self.width)]
        for depth, count in enumerate(self.levels):
            nodes = []
            for n in range(count):
                group = children[n * FANIN:(n + 1) * FANIN]
                # padding children: never valid; their index width matches their siblings'
                while len(group) < FANIN:
                    group.append((Const(0, 1), group[0][1] if group[0][1] is None
                                  else Const(0, len(group[0][1]))))
                nodes.append(self._node(m, f"n{depth}_{n}", group))
            children = nodes
        valid, index = children[0]
        # the root index has 2 bits per level; the padded upper codes are never selected
        m.d.comb += [self.valid.eq(valid), self.index.eq(index[:len(self.index)])]
        return m

    @staticmethod
    def _node(m, name, group):
        """One 4-input node: valid = any child valid; index = {lowest valid child, its index}."""
        valid = Signal(name=f"{name}_valid")
        sub_w = 0 if group[0][1] is None else len(group[0][1])
        index = Signal(2 + sub_w, name=f"{name}_index")
        v = [g[0] for g in group]
        m.d.comb += valid.eq(v[0] | v[1] | v[2] | v[3])
        # priority to the lowest child: ascending broadcast order
        sel = Signal(2, name=f"{name}_sel")
        m.d.comb += sel.eq(Mux(v[0], 0, Mux(v[1], 1, Mux(v[2], 2, 3))))
        if sub_w == 0:
            m.d.comb += index.eq(Mux(valid, sel, 0))
        else:
            sub = Mux(v[0], group[0][1], Mux(v[1], group[1][1],
                                             Mux(v[2], group[2][1], group[3][1])))
            m.d.comb += index.eq(Mux(valid, Cat(sub, sel), 0))
        return valid, index
