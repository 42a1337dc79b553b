"""Beyond one machine, on Ray: `lasso batch --ray` (Ray Data) and `lasso serve --ray` (Ray Serve).

Nothing here is imported unless `--ray` is given; Ray itself is the `ray` extra
(pip install 'lasso-edit[ray]'). docs/scale.md is the recipe.
"""
