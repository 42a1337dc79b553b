"""Step 2, parse: (image, instruction) -> EditPlan. registry.PARSERS names the implementations."""
