"""`lasso eval`: MagicBrush's metrics and Lasso's own over a dataset, and a report (see run.py)."""
