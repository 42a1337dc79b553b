"""Step 3, ground: (image, edit) -> Grounding. registry.GROUNDERS names the implementations."""
