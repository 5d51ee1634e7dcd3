"""Studies built on everything below: the report (``make report``), design-space sweeps
(``make sweep``) and Deep Compression with retraining down to the RTL (``make compress``).
May import every room but the commands (docs/layout.md)."""
