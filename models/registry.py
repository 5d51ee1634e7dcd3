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
from models.torch_import import SUFFIXES as TORCH_SUFFIXES
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


def load_model(name_or_path, seed: int = 0, activations=None) -> Network:
    """Load a registered model by name, or a user model from a ``.npz``/``.onnx``/PyTorch file.

    Parameters
    ----------
    name_or_path : str or Path
        One of :data:`MODEL_NAMES`, or a path to a ``.npz`` file (see :mod:`models.npz`), an
        ONNX chain of Gemm/MatMul/Add/Relu (:mod:`models.onnx_import`), a PyTorch state dict
        of ``nn.Linear`` / ``nn.BatchNorm1d`` / ``nn.LSTM`` layers (``.pt``/``.pth``) or a
        ``torch.export`` program (``.pt2``) (:mod:`models.torch_import`).
    seed : int
        Seeds the synthetic models' weights and inputs (and a user model's generated input);
        the same seed gives identical arrays.  mlp_digits and lstm_digits ignore it.
    activations : str or sequence of str, optional
        What follows each module of a PyTorch state dict, which does not record it (``"relu"``,
        ``"none"`` or one ``relu``/``none`` per module: :mod:`models.torch_import`); without it
        ReLU is assumed and a note on stderr says so.  Refused for every other model.

    Raises
    ------
    EIEError
        Unknown name, bad seed, missing or malformed file, ``activations`` for a model that
        is not a PyTorch state dict.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EIEError(f"seed must be a non-negative integer, got {seed!r}")
    s = str(name_or_path)
    p = Path(s)
    if activations is not None and p.suffix not in TORCH_SUFFIXES:
        raise EIEError(f"activations={activations!r} applies to PyTorch state_dict models "
                       f"(.pt, .pth) only; {s} records its activations")
    if s in BUILDERS:
        return BUILDERS[s](int(seed))
    if s == "mlp_digits":
        return load_mlp_digits()
    if s == "lstm_digits":
        return load_lstm_digits()
    if p.suffix == ".onnx":
        return load_onnx(p, seed=int(seed))
    if p.suffix in TORCH_SUFFIXES:
        return load_torch(p, seed=int(seed), activations=activations)
    if s.endswith(".npz") or p.is_file():
        return load_npz(p, seed=int(seed))
    raise EIEError(f"unknown model {s!r}; models: {', '.join(MODEL_NAMES)} (or a .npz, .onnx, "
                   f".pt, .pth or .pt2 file)")
