"""The shipped real model: ``python -m models.mlp_digits.train`` retrains the 64-300-100-10 MLP on
scikit-learn's digits with the compiler's trainer and writes ``models/data/mlp_digits.npz``.
May import :mod:`hw.arch`, :mod:`models` and :mod:`compiler` (docs/layout.md)."""
