"""`lasso serve`: the HTTP API (app.py makes it; routes/ a router per resource) and its job queue
(jobs.py). Needs the `serve` extra."""
