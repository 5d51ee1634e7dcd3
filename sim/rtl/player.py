"""The host player's operation format (the simulation harness, :mod:`sim.rtl.harness`).

One operation per line of ``play.hex``, a 128-bit word: bits 127..124 the operation
(:data:`OP_END` ends the program), 123..120 ``host_space``, 119..96 the PE (``host_pe``, or
``cnt_pe`` for a counter), 95..64 the address (``host_addr``, ``host_raddr``, or ``cnt_id``),
63..0 ``host_wdata``.  The player writes the read data and counter values, in the order of the
read and counter operations, one 64-bit word per line of ``played.hex``.

Written once here and read by the harness's Verilog generator and by the cocotb bench
(``sim.rtl.tb_eie``), which imports only this module (and NumPy) in the simulator process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: the harness's clock period in ns (its clock generator and the bench's time-outs)
CLOCK_NS = 10
#: operations of the host player (bits 127..124 of an operation word)
OP_END, OP_WRITE, OP_READ, OP_COUNTER = 0, 1, 2, 3
#: operations (and results) one program holds; longer transfers are played in chunks
PLAY_DEPTH = 1 << 18
#: the program and result files in the play directory
PLAY_FILE, PLAYED_FILE = "play.hex", "played.hex"


def words(values) -> np.ndarray:
    """``values`` as int64 words; a uint64 array keeps its 64 bits (viewed, not converted:
    NumPy would turn a mix of int64 and uint64 into floats)."""
    a = np.asarray(values)
    return a.view(np.int64) if a.dtype == np.uint64 else a.astype(np.int64)


def encode_program(op, space=0, pe=0, addr=0, data=0) -> str:
    """``play.hex`` text of the operations ``op[i]`` (arrays or scalars, broadcast), with the
    end appended."""
    op, space, pe, addr, data = np.broadcast_arrays(*(words(v).view(np.uint64) for v in
                                                      (op, space, pe, addr, data)))
    hi = (op << np.uint64(60)) | (space << np.uint64(56)) | (pe << np.uint64(32)) | addr
    return "".join(f"{h:016x}{d:016x}\n" for h, d in zip(hi.ravel().tolist(),
                                                         data.ravel().tolist())) + "0" * 32 + "\n"


def read_results(path: Path, n: int) -> np.ndarray:
    """The ``n`` results of ``played.hex`` (unsigned, as captured)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    vals = [int(line, 16) for line in (raw.strip() for raw in Path(path).read_text().splitlines())
            if line and not line.startswith(("//", "@"))]
    if len(vals) != n:
        raise RuntimeError(f"the host player returned {len(vals)} results, expected {n}")
    return np.asarray(vals, dtype=np.uint64).astype(np.int64)
