"""Step 2, ground: (image, edit) -> Grounding. Implementations register in GROUNDERS."""

from . import strategies  # noqa: F401  (registration)
