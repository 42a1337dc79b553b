"""`lasso train`: a LoRA on the inpainting UNet, fine-tuned with the edit loss (docs/training.md).

data.py reads (source, mask, target, instruction) pairs; loss.py is the loss; trainer.py the loop
(accelerate, checkpoints, resume, validation sheets, the loss curve); the LoRA is saved in
diffusers' format and loaded by `lasso edit --lora`.
"""
