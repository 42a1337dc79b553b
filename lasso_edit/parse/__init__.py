"""Step 1, parse: (image, instruction) -> EditPlan. Implementations register in PARSERS."""

from . import auto, llava, rules  # noqa: F401  (registration)
