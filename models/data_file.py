"""The user's own inputs for a model: ``DATA=file.npz`` (``--data``) on ``make sim``,
``make report`` and ``make compress``.

A data file is a NumPy ``.npz`` archive (``numpy.savez(path, x=x, y=y)``) with

* ``x``: the inputs, ``(n, in)`` for a network of fully-connected layers (a 1-D ``x`` is one
  sample); for a network with an LSTM layer ``(n, T, in)`` sequences (a 2-D ``x`` is one
  sequence), or ``(T, n, in)`` (PyTorch's and ONNX's default layout) when ``y`` says so: ``y``
  has ``n`` labels, and ``x.shape[1]`` is ``n`` where ``x.shape[0]`` is not;
* ``y``, optional: integer class labels, ``(n,)`` (``(n, T)``, one per frame, for a network
  whose output is a sequence), each in ``0 .. outputs - 1``.

Other arrays (``x_train``, ``y_train`` for ``make compress``, metadata) are not read here.
:func:`load_data` checks the file against the model and returns a :class:`UserData`;
:func:`with_data` is the model with those inputs in place of its own (or generated) ones, the
network the compiler then compiles, so the data's inputs go into the memory images and
``golden.npz``.  Every problem is one :class:`~hw.arch.errors.EIEError` line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.arch.errors import EIEError
from models.lstm import LSTMLayer
from models.network import Network

#: how a zip archive (so a .npz) begins: a local file header, or the end record of an empty one
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: how a single .npy array begins
NPY_MAGIC = b"\x93NUMPY"
#: what the messages suggest
HOW = "numpy.savez(path, x=x, y=y)"
#: the errors np.load and NpzFile raise on a truncated or corrupt archive
CORRUPT = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True, eq=False)
class UserData:
    """A validated data file.

    Attributes
    ----------
    path : Path
    x : np.ndarray
        float32 ``(n, in)``, or ``(n, T, in)`` sequences.
    y : np.ndarray or None
        int64 labels ``(n,)`` (``(n, T)`` for a network with a sequence output), or None.
    digest : str
        SHA-256 of the file's bytes (16 hex digits): part of the compile's key and, by its
        first 8, of the output directory's name (``+data-<8 hex>``).
    note : str or None
        How a sequence array was read (``(T, n, in)`` transposed), for the progress output.
    """

    path: Path
    x: np.ndarray
    y: np.ndarray | None
    digest: str
    note: str | None = None

    @property
    def n(self) -> int:
        """The number of samples."""
        return int(self.x.shape[0])

    def describe(self) -> dict:
        """What manifest.json and report.json record of the data."""
        return {"path": str(self.path), "sha256": self.digest, "samples": self.n,
                "labels": self.y is not None}


def file_digest(path) -> str:
    """SHA-256 of the file's bytes, 16 hex digits (EIEError when it is not a file)."""
    path = Path(path)
    if not path.is_file():
        raise EIEError(f"data file not found: {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _object_array(z, key: str) -> bool:
    """True when member ``key`` of the archive holds Python objects (its .npy header says so)."""
    try:
        with z.zip.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            return bool(read(f)[2].hasobject)
    except CORRUPT:
        return False


def read_arrays(path, keys) -> tuple[dict[str, np.ndarray], str, list[str]]:
    """The arrays ``keys`` of an .npz data file that it has, its digest and every array's name.

    Loads with ``allow_pickle=False``: a data file holds numbers, never Python objects.

    Raises
    ------
    EIEError
        Missing file, not an .npz archive (a text file, a single .npy array), a truncated or
        corrupt archive, an object array among ``keys``.
    """
    path = Path(path)
    if not path.is_file():
        raise EIEError(f"data file not found: {path}")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    if raw.startswith(NPY_MAGIC):
        raise EIEError(f"{path} is a single .npy array, not a NumPy .npz archive of named "
                       f"arrays; write one with {HOW}")
    if not raw.startswith(ZIP_MAGIC):
        # np.load would call it pickled data and suggest allow_pickle: it is not an archive
        raise EIEError(f"{path} is not a NumPy .npz archive (it does not start like a zip "
                       f"file); write one with {HOW}")
    try:
        z = np.load(io.BytesIO(raw), allow_pickle=False)
    except CORRUPT as e:
        raise EIEError(f"{path}: the .npz archive is truncated or corrupt ({_why(e)}); write "
                       f"it again with {HOW}") from None
    out = {}
    with z:
        names = list(z.files)
        for key in keys:
            if key not in names:
                continue
            if _object_array(z, key):
                raise EIEError(f"{path}: {key} is an object array (dtype object, e.g. rows of "
                               f"different lengths); save it as one numeric array")
            try:
                out[key] = z[key]
            except CORRUPT as e:
                raise EIEError(f"{path}: the .npz archive is truncated or corrupt ({key}: "
                               f"{_why(e)}); write it again with {HOW}") from None
    return out, digest, names


def _why(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


@dataclass(frozen=True)
class Widths:
    """What a network's data look like: input width, output width, and whether the input (an
    LSTM network's) and the output (every frame's) are sequences."""

    n_in: int
    n_out: int
    seq_in: bool
    seq_out: bool

    @classmethod
    def of(cls, net: Network) -> Widths:
        first, last = net.layers[0], net.layers[-1]
        seq = net.has_lstm
        for layer in net.layers:  # the sequence ends at an LSTM that outputs its last frame
            seq = seq and (not isinstance(layer, LSTMLayer) or layer.return_sequences)
        return cls(first.n_in if isinstance(first, LSTMLayer) else int(first.W.shape[1]),
                   last.n_out if isinstance(last, LSTMLayer) else int(last.W.shape[0]),
                   net.has_lstm, seq)


def check_inputs(where: str, x, w: Widths) -> np.ndarray:
    """``x`` as float32 ``(n, in)`` (``(n, T, in)``, or a ``(T, n, in)`` as given) after every
    check but the sequence layout's: numeric and real, the model's input width, at least one
    sample (and frame), finite (also after the float32 cast)."""
    x = np.asarray(x)
    given = x.shape
    if np.iscomplexobj(x):
        raise EIEError(f"{where}: x is complex (dtype {x.dtype}); the model takes real inputs")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise EIEError(f"{where}: x must be numeric, got dtype {x.dtype}")
    want = 3 if w.seq_in else 2
    if x.ndim == want - 1:
        x = x[None]  # one sample (one sequence)
    shape = f"(n, T, {w.n_in}) or (T, n, {w.n_in})" if w.seq_in else f"(n, {w.n_in})"
    if x.ndim != want or x.shape[-1] != w.n_in:
        raise EIEError(f"{where}: x has shape {given}, expected {shape}: the model's input "
                       f"width is {w.n_in}")
    if 0 in x.shape[:-1]:
        raise EIEError(f"{where}: x has shape {x.shape}: no samples" +
                       (" (or no time steps)" if w.seq_in else ""))
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    bad = ~np.isfinite(x32)
    if bad.any():
        s = int(np.argwhere(bad)[0][0])
        if np.isfinite(x[s]).all():  # finite in float64, infinite in float32
            raise EIEError(f"{where}: x holds values beyond float32's range (first in sample "
                           f"{s})")
        raise EIEError(f"{where}: x contains NaN or Inf (first in sample {s})")
    return x32


def check_labels(where: str, y, w: Widths) -> np.ndarray:
    """``y`` as int64 after the checks of its values: numeric and real, integers, none negative,
    each below the model's number of outputs."""
    y = np.asarray(y)
    if np.iscomplexobj(y):
        raise EIEError(f"{where}: y is complex (dtype {y.dtype}); labels are integer class "
                       f"indices")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise EIEError(f"{where}: y must hold integer class labels, got dtype {y.dtype}")
    flat = y.reshape(-1).astype(np.int64) if y.dtype == np.bool_ else y.reshape(-1)
    if np.issubdtype(flat.dtype, np.floating):
        whole = np.isfinite(flat)
        whole[whole] = flat[whole] == np.round(flat[whole])
        if not whole.all():
            i = int(np.flatnonzero(~whole)[0])
            raise EIEError(f"{where}: y must hold integer class labels, got {flat[i]:g} at "
                           f"position {i}")
    labels = "0" if w.n_out == 1 else f"0..{w.n_out - 1}"
    if flat.size and flat.min() < 0:
        i = int(np.argmin(flat))
        raise EIEError(f"{where}: y holds the negative label {flat[i]:g} (position {i}); labels "
                       f"are class indices {labels}")
    if flat.size and flat.max() >= w.n_out:
        i = int(np.argmax(flat))
        raise EIEError(f"{where}: y holds label {flat[i]:g} (position {i}), but the model has "
                       f"{w.n_out} outputs (labels {labels})")
    return flat.reshape(y.shape).astype(np.int64)


def _layout(where: str, x: np.ndarray, y, w: Widths) -> tuple[np.ndarray, object, str | None]:
    """Sequences as ``(n, T, in)``: a ``(T, n, in)`` array is recognised by ``y``'s ``n``."""
    if not w.seq_in or y is None:
        return x, y, None
    y = np.asarray(y)
    n_y = y.shape[0] if y.ndim else 1
    if n_y == x.shape[0] or n_y != x.shape[1]:
        return x, y, None
    y = y.T if w.seq_out and y.ndim == 2 else y  # per-frame labels (T, n) like their inputs
    note = (f"{where}: x read as (T, n, in) = {x.shape} sequences (y has {n_y} labels), "
            f"i.e. {x.shape[1]} sequences of {x.shape[0]} frames")
    return np.ascontiguousarray(x.transpose(1, 0, 2)), y, note


def _label_shape(where: str, y: np.ndarray, x: np.ndarray, w: Widths) -> np.ndarray:
    """``(n,)`` labels, or ``(n, T)`` for a sequence output; a ``(n, 1)`` column is ``(n,)``."""
    n = x.shape[0]
    if w.seq_out:
        if y.shape != x.shape[:2]:
            raise EIEError(f"{where}: y has shape {y.shape}, expected {x.shape[:2]}: the model "
                           f"outputs every frame, so one label per frame of each sequence")
        return y
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise EIEError(f"{where}: y has shape {y.shape}, expected ({n},): one label per sample")
    if y.shape[0] != n:
        raise EIEError(f"{where}: y has {y.shape[0]} labels for {n} samples of x")
    return y


def load_data(path, net: Network) -> UserData:
    """Read and check a data file against ``net`` (format in the module docstring).

    Parameters
    ----------
    path : str or Path
    net : Network
        The model the data is for (its input width, its number of outputs).

    Raises
    ------
    EIEError
        Everything :func:`read_arrays` refuses; a network that is not chained; no ``x``; ``x``
        not of the model's input width, complex, NaN or Inf; labels that are not integers,
        negative, not below the number of outputs, or not one per sample.
    """
    path = Path(path)
    where = str(path)
    arrays, digest, names = read_arrays(path, ("x", "y"))
    if not net.chained:
        raise EIEError(f"{net.name}: --data needs a chained network (the layers of {net.name} "
                       f"each take their own input)")
    w = Widths.of(net)
    if "x" not in arrays:
        has = ", ".join(names) if names else "no arrays"
        shape = f"(n, T, {w.n_in})" if w.seq_in else f"(n, {w.n_in})"
        raise EIEError(f"{where}: no array x (the inputs, shape {shape}); the file has {has}")
    x = check_inputs(where, arrays["x"], w)
    y = arrays.get("y")
    x, y, note = _layout(where, x, y, w)
    if y is not None:
        y = _label_shape(where, check_labels(where, y, w), x, w)
    return UserData(path=path, x=x, y=y, digest=digest, note=note)


def with_data(net: Network, data: UserData | None) -> Network:
    """``net`` with the data's inputs and labels in place of its own (``net`` when no data)."""
    if data is None:
        return net
    try:
        # the user's inputs are raw, as the model's producer takes them: its input
        # normalization (Network.input_affine) applies on the host
        return dataclasses.replace(net, x=net.prepare_inputs(data.x), labels=data.y)
    except EIEError as e:
        raise EIEError(f"{data.path}: {e}") from None
