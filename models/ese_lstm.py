"""ese_lstm: a SYNTHETIC stand-in for ESE's benchmark LSTM (Google's LSTMP, Sak et al. 2014).

Shape as in /work/shared/reference/ESE.md (from C-LSTM's code, which compares with ESE under the
same set-up): input 153, 1,024 cells, projection 512, one layer, peepholes; ``W_x`` 4096 x 153,
``W_r`` 4096 x 512, ``W_ym`` 512 x 1024, three peephole and four bias vectors of 1,024:
3,255,296 parameters.  Target weight density 11.2 % (282 / 2520, ESE's sparse over
dense-equivalent throughput) for all three matrices.  The trained TIMIT weights are not
available, so the weights are random and the outputs mean nothing.

How the weights are generated
-----------------------------
* Every matrix is Laplace distributed with a log-normal scale per row and per column
  (:func:`models.synthetic.laplace_f32`, as the EIE stand-ins), so magnitude pruning keeps a
  different number of weights in every row and column: the imbalance ESE's load-balance-aware
  pruning is about.
* Each matrix is scaled so that its **pruned** product on a unit-variance input has a standard
  deviation of ``X_STD`` (``W_x``), ``R_STD`` (``W_r``) or ``P_STD`` (``W_ym``), with
  ``round(density * size)`` weights kept (the compiler's magnitude pruning).  The projection's
  input ``m_t`` has a standard deviation of about 0.3 and ``y_t`` about 0.5, so the gates'
  pre-activations stay O(1): neither saturated nor all near 0.5.
* Biases ``N(0, BIAS_STD)``, the forget gate's offset by ``FORGET_BIAS`` (+1, the usual LSTM
  initialisation); peepholes ``N(0, PEEP_STD)``.

Inputs: ``N_SEQ`` (4) sequences of ``N_STEPS`` (16) frames of 153 features, standing in for
normalised filter-bank frames: every feature is a unit-variance AR(1) process over time
(correlation ``RHO`` = 0.9 between frames), dense and signed.  The layer outputs every frame's
``y_t`` (``return_sequences``), as ESE computes one ``y_t`` per frame.

The compiler prunes it load-balance-aware (``Network.balance``), as ESE pruned its model.

Everything comes from one generator seeded by ``(seed, crc32("ese_lstm"))``; it takes well under
a second.
"""

from __future__ import annotations

import numpy as np

from models.lstm import LSTMLayer
from models.network import Network
from models.synthetic import COL_SCALE_SIGMA, ROW_SCALE_SIGMA, kth_largest_abs, laplace_f32, \
    model_rng

N_IN, N_CELLS, N_PROJ = 153, 1024, 512
DENSITY = 0.112  # 282 / 2520 = 11.19 %
N_SEQ, N_STEPS = 4, 16
RHO = 0.9  # frame-to-frame correlation of every input feature
X_STD, R_STD, P_STD = 1.0, 2.0, 1.5  # pruned product's std on a unit-variance input
BIAS_STD, FORGET_BIAS, PEEP_STD = 0.1, 1.0, 0.1
N_PARAMS = 3_255_296  # ESE.md [derived]


def scaled_matrix(rng: np.random.Generator, rows: int, cols: int, density: float,
                  target_std: float) -> np.ndarray:
    """Laplace weights with per-row and per-column log-normal scales, scaled so that the
    magnitude-pruned matrix times a unit-variance random vector has std ``target_std``
    (its mean squared pruned row norm is ``target_std**2``)."""
    row_scale = rng.lognormal(0.0, ROW_SCALE_SIGMA, rows).astype(np.float32)
    col_scale = rng.lognormal(0.0, COL_SCALE_SIGMA, cols).astype(np.float32)
    W = laplace_f32(rng, (rows, cols), row_scale, col_scale)
    t = np.float32(kth_largest_abs(W, max(1, int(round(density * W.size)))))
    a = np.abs(W)
    kept_sq = np.sum(np.where(a >= t, a, np.float32(0)).astype(np.float64) ** 2) / rows
    W *= np.float32(target_std / np.sqrt(kept_sq))
    return W


def sequences(rng: np.random.Generator, n: int, steps: int, features: int) -> np.ndarray:
    """``(n, steps, features)`` float32: unit-variance AR(1) processes, correlation ``RHO``."""
    e = rng.standard_normal((n, steps, features))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, steps):
        x[:, t] = RHO * x[:, t - 1] + np.sqrt(1 - RHO ** 2) * e[:, t]
    return x.astype(np.float32)


def ese_lstm(seed: int = 0) -> Network:
    """ESE's LSTMP benchmark layer with synthetic weights; see the module docstring."""
    rng = model_rng("ese_lstm", seed)
    W_x = scaled_matrix(rng, 4 * N_CELLS, N_IN, DENSITY, X_STD)
    W_r = scaled_matrix(rng, 4 * N_CELLS, N_PROJ, DENSITY, R_STD)
    W_ym = scaled_matrix(rng, N_PROJ, N_CELLS, DENSITY, P_STD)
    b = rng.normal(0.0, BIAS_STD, 4 * N_CELLS)
    b[N_CELLS:2 * N_CELLS] += FORGET_BIAS  # gate order i, f, g, o
    peep = rng.normal(0.0, PEEP_STD, (3, N_CELLS))
    layer = LSTMLayer(name="lstm0", W_x=W_x, W_r=W_r, b=b, peep=peep, W_ym=W_ym,
                      density=DENSITY, return_sequences=True)
    x = sequences(rng, N_SEQ, N_STEPS, N_IN)
    return Network(name="ese_lstm", layers=[layer], x=x, labels=None, synthetic=True,
                   balance=True,
                   description=f"SYNTHETIC stand-in for ESE's benchmark LSTM (Google LSTMP: "
                               f"input {N_IN}, {N_CELLS:,} cells, projection {N_PROJ}, "
                               f"peepholes; {N_PARAMS:,} parameters; random Laplace weights, "
                               f"target density {100 * DENSITY:.1f} %, pruned load-balance-aware; "
                               f"{N_SEQ} random sequences "
                               f"of {N_STEPS} frames)")
