"""Step 3, segment: (image, grounding) -> Segmentation. Implementations register in SEGMENTERS."""

from . import sam  # noqa: F401  (registration)
