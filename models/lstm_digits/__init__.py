"""lstm_digits: the script that trains the shipped LSTM digit classifier (``train``).
May import :mod:`hw.arch`, :mod:`models` and :mod:`compiler`
(docs/layout.md)."""
