"""Step 5, execute: (image, region, edit) -> edited RGB. Implementations register in EXECUTORS."""

from . import adjust, inpaint, recolor  # noqa: F401  (registration)
