"""Step 4, segment: (image, grounding) -> Segmentation (SAM and SAM 2: sam.py)."""
