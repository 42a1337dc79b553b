"""`lasso train`: a LoRA on the inpainting UNet, fine-tuned with the edit loss (docs/training.md).

config.py holds the options and their checks; data.py reads (source, mask, target, instruction)
pairs; loss.py is the loss; clip.py the CLIP of its alignment term; trainer.py the loop
(accelerate, checkpoints, resume, validation); report.py the contact sheet and the loss curve.
The LoRA is saved in diffusers' format and loaded by `lasso edit --lora`.
"""
