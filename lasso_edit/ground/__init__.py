"""Step 2, ground: (image, edit) -> Grounding. registry.GROUNDERS names the implementations."""
