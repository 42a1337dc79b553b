"""Step 1, parse: (image, instruction) -> EditPlan. registry.PARSERS names the implementations."""
