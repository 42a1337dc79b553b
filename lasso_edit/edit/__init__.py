"""Step 6, execute: (image, region, edit) -> edited RGB. registry.EXECUTORS names the implementations."""
