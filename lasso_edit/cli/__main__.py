"""`python -m lasso_edit.cli`: the `lasso` command."""

from .core import main

main()
