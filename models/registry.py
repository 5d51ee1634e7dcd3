"""The registered models and :func:`load_model`, the one entry point the compiler uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.arch.errors import EIEError
from models import synthetic
from models.ese_lstm import ese_lstm
from models.network import Network
from models.npz import load_npz
from models.onnx_import import load_onnx
from models.torch_import import load_torch  # imports PyTorch (an optional extra) only when used

MODEL_NAMES: tuple[str, ...] = ("alexnet_fc", "vgg_fc", "neuraltalk", "mlp_digits", "ese_lstm",
                                 "lstm_digits")

#: generators of the synthetic models, by name
BUILDERS = {"alexnet_fc": synthetic.alexnet_fc, "vgg_fc": synthetic.vgg_fc,
            "neuraltalk": synthetic.neuraltalk, "ese_lstm": ese_lstm}

MLP_DIGITS_NPZ = Path(__file__).resolve().parent / "data" / "mlp_digits.npz"
LSTM_DIGITS_NPZ = Path(__file__).resolve().parent / "data" / "lstm_digits.npz"


def load_mlp_digits() -> Network:
    """The trained 64-300-100-10 MLP with its held-out test images and labels.

    Weights, test split and the chosen pruning densities come from ``models/data/mlp_digits.npz``
    (written by ``python -m models.mlp_digits.train``); scikit-learn is not needed here.
    """
    return load_npz(MLP_DIGITS_NPZ, name="mlp_digits",
                    description="64-300-100-10 MLP (LeNet-300-100 shape) trained on "
                                "scikit-learn's 8x8 digits; real weights, held-out test images")


def load_lstm_digits() -> Network:
    """The trained LSTMP + FC digit classifier with its held-out test sequences.

    Weights, test split and the chosen pruning densities come from
    ``models/data/lstm_digits.npz`` (written by ``python -m models.lstm_digits.train``).
    """
    return load_npz(LSTM_DIGITS_NPZ, name="lstm_digits",
                    description="LSTMP (8 inputs, 48 cells, projection 24, peepholes) + FC "
                                "24-10 on the last frame, trained on scikit-learn's 8x8 digits "
                                "read as 8 frames of 8 pixels by python -m "
                                "models.lstm_digits.train (dense float test accuracy 97.77 %); "
                                "real weights, 359 held-out test images")


def load_model(name_or_path, seed: int = 0) -> Network:
    """Load a registered model by name, or a user model from a ``.npz``/``.onnx``/``.pt`` path.

    Parameters
    ----------
    name_or_path : str or Path
        One of :data:`MODEL_NAMES`, or a path to a ``.npz`` file (see :mod:`models.npz`), an
        ONNX chain of Gemm/MatMul/Add/Relu (:mod:`models.onnx_import`) or a PyTorch state dict
        of ``nn.Linear`` layers (``.pt``/``.pth``, :mod:`models.torch_import`).
    seed : int
        Seeds the synthetic models' weights and inputs (and a user model's generated input);
        the same seed gives identical arrays.  mlp_digits and lstm_digits ignore it.

    Raises
    ------
    EIEError
        Unknown name, bad seed, missing or malformed file.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EIEError(f"seed must be a non-negative integer, got {seed!r}")
    s = str(name_or_path)
    if s in BUILDERS:
        return BUILDERS[s](int(seed))
    if s == "mlp_digits":
        return load_mlp_digits()
    if s == "lstm_digits":
        return load_lstm_digits()
    p = Path(s)
    if p.suffix == ".onnx":
        return load_onnx(p, seed=int(seed))
    if p.suffix in (".pt", ".pth"):
        return load_torch(p, seed=int(seed))
    if s.endswith(".npz") or p.is_file():
        return load_npz(p, seed=int(seed))
    raise EIEError(f"unknown model {s!r}; models: {', '.join(MODEL_NAMES)} (or a .npz, .onnx, "
                   f".pt or .pth file)")
