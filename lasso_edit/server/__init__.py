"""`lasso serve`: the HTTP API (app.py) and its job queue (jobs.py). Needs the `serve` extra."""
