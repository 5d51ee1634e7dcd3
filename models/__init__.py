"""Networks the compiler consumes: float, uncompressed; the compiler prunes and quantizes them.
May import :mod:`hw.arch` only (docs/layout.md).

``load_model(name_or_path, seed)`` returns a :class:`Network`.  Registered names
(:data:`MODEL_NAMES`):

* ``alexnet_fc``, ``vgg_fc``, ``neuraltalk``: SYNTHETIC stand-ins for the EIE benchmark layers
  (EIE Table III shapes, weight densities and activation densities; random weights, since
  pretrained ones cannot be downloaded here).  :mod:`models.synthetic` explains how the
  activation densities are hit.  NeuralTalk's layers do not connect: that network has
  ``chained=False`` and every layer carries its own input ``Layer.x``.
* ``mlp_digits``: a real 64-300-100-10 MLP (LeNet-300-100 shape) trained on scikit-learn's 8x8
  digits by ``python -m models.mlp_digits.train``; weights, chosen pruning densities and the
  held-out test split ship in ``models/data/mlp_digits.npz``.
* ``ese_lstm``: a SYNTHETIC stand-in for ESE's benchmark LSTM (Google's LSTMP: input 153,
  1,024 cells, projection 512, peepholes; 3,255,296 parameters; :mod:`models.ese_lstm`).
* ``lstm_digits``: a real LSTMP + FC classifier trained on the 8x8 digits read as 8 rows of 8
  pixels by ``python -m models.lstm_digits.train``; ships in ``models/data/lstm_digits.npz``.

A layer is a fully-connected :class:`Layer` or an :class:`LSTMLayer` (:mod:`models.lstm`: the
LSTMP cell, gate order i, f, g, o); a network with an LSTM runs on sequences ``(n, T, n_in)``.

A path to a ``.npz`` file loads a user model (format in :mod:`models.npz`); an ``.onnx`` file a
chain of Gemm/MatMul/Add/Relu/LSTM (:mod:`models.onnx_import`); a ``.pt``/``.pth`` file a
PyTorch state dict of ``nn.Linear`` and ``nn.LSTM`` layers (:mod:`models.torch_import`, needs
the ``torch`` extra).
"""

from __future__ import annotations

from models.lstm import LSTMLayer, lstm_forward
from models.network import Layer, Network, float_forward
from models.npz import load_npz, save_npz
from models.registry import MODEL_NAMES, load_model

__all__ = ["Layer", "LSTMLayer", "Network", "MODEL_NAMES", "load_model", "load_npz", "save_npz",
           "float_forward", "lstm_forward"]
