"""The training loop of `lasso train`: a LoRA on the inpainting UNet of an SD or SDXL inpainting
checkpoint, trained with the edit loss (loss.py) on pairs (data.py) prepared exactly as inference
prepares them (edit/prepare.py), as diffusers' own LoRA examples train (train_text_to_image_lora.py):

1. accelerate runs the loop (mixed precision, gradient accumulation, several GPUs under
   `accelerate launch`); the VAE and text encoders are frozen, in the mixed-precision dtype; only
   the LoRA's weights train, in fp32.
2. Each step's batch, noise and timesteps come from the seed and the step number alone, so a run
   resumed from a checkpoint continues exactly as the uninterrupted run would have.
3. Pairs are bucketed by their crop's size (crops keep the photo's aspect ratio, as at inference);
   a batch comes from one bucket. VAE latents and prompt embeddings are computed once per pair.
4. Checkpoints (the LoRA, the optimizer's and scheduler's state, the losses) every N steps, and on
   Ctrl-C; `resume` picks up the latest. Validation edits every N steps go to a contact sheet.
5. The LoRA is saved in diffusers' format (pytorch_lora_weights.safetensors), with lasso_lora.json
   (the base model, the settings), losses.jsonl and loss.png beside it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..core.errors import InvalidInputError
from ..imaging import default_file_mode
from .clip import ClipEmbedder
from .config import TARGET_MODULES, TrainConfig, check, has_tensorboard, mixed_precision_for, optimizer_for
from .data import Pair, read_pairs
from .loss import LossWeights, clip_direction_loss, edit_loss
from .report import contact_sheet, plot_losses

if TYPE_CHECKING:
    import torch

LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' default name: load_lora_weights(folder) finds it
NEUTRAL_TEXT = "a photo"


@dataclass
class StepLog:
    step: int
    loss: float
    fidelity: float
    preservation: float
    clip: float | None
    seconds: float


class Trainer:
    """`pipe`: an inpainting pipeline already in memory, instead of the preset's (the benchmark's
    random-weight full-size model)."""

    unet: Any  # the pipeline's UNet with the LoRA, then as accelerate prepared it

    def __init__(
        self, config: TrainConfig, on_step: Callable[[StepLog, int], None] | None = None, pipe: Any = None
    ) -> None:
        self.config = config
        self.on_step = on_step
        self._given = pipe
        self.losses: list[StepLog] = []
        self.step = 0
        self.notes: list[str] = []  # what the user should know about the run (said by the CLI as warnings)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Read the data, load the model, add the LoRA, build the optimizer; resume if asked."""
        import torch
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        c = self.config
        check(c)
        pairs = read_pairs(c.data)
        held = c.validation
        if len(pairs) <= held:  # few pairs (a first try): hold out half, so most of them are trained on
            held = len(pairs) // 2
            self.notes.append(
                f"{c.data} has {len(pairs)} pairs: {held} held out for validation, not "
                f"{c.validation} (--validation), so {len(pairs) - held} are left to train on"
            )
        self.val_pairs, self.pairs = pairs[:held], pairs[held:]
        c.output.mkdir(parents=True, exist_ok=True)
        trackers = "tensorboard" if has_tensorboard() else None
        self.accelerator = Accelerator(
            mixed_precision=mixed_precision_for(c.mixed_precision, c.device),
            gradient_accumulation_steps=c.grad_accum,
            log_with=trackers,
            project_config=ProjectConfiguration(project_dir=str(c.output), logging_dir=str(c.output / "logs")),
            cpu=c.device == "cpu",
        )
        self.device = self.accelerator.device
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(
            self.accelerator.mixed_precision, torch.float32
        )
        self._load_model()
        self._add_lora()
        params = [p for p in self.unet.parameters() if p.requires_grad]
        self.optimizer = optimizer_for(params, c.lr, c.adam_8bit)
        from diffusers.optimization import get_scheduler

        self.lr_scheduler = get_scheduler(
            "constant_with_warmup",
            self.optimizer,
            num_warmup_steps=min(100, c.steps // 10) * self.accelerator.num_processes,
            num_training_steps=c.steps * self.accelerator.num_processes,
        )
        self.unet, self.optimizer, self.lr_scheduler = self.accelerator.prepare(
            self.unet, self.optimizer, self.lr_scheduler
        )
        self.native = c.resolution or int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)
        self.buckets = self._bucket(self.pairs)
        self._cache: dict[int, dict] = {}
        self._text: dict[Any, tuple] = {}
        self.clip = ClipEmbedder(c.clip_model, self.device) if c.clip_model else None
        if trackers:
            self.accelerator.init_trackers("lasso-train", config={k: str(v) for k, v in asdict(c).items()})
        if c.resume:
            self._resume()
        elif (c.output / LORA_FILE).exists():
            raise InvalidInputError(
                f"{c.output} already holds a LoRA; pass --resume to continue its training, or choose another folder"
            )

    def _load_model(self) -> None:
        import diffusers
        import torch

        from ..core.loading import load
        from ..core.presets import get_preset
        from ..edit.painters.sd import SD_PIPELINES
        from ..testing import resolve_tiny

        c = self.config
        diffusers.utils.logging.disable_progress_bar()  # the training bar is the one shown
        if self._given is not None:
            pipe, self.model_id = self._given, "(given)"
            self.kind = "sdxl" if "XL" in type(pipe).__name__ else "sd"
        else:
            p = get_preset(c.preset, inpainter=c.inpainter)
            self.model_id = p.inpainter
            path = resolve_tiny({"inpainter": p.inpainter})["inpainter"]
            config = load("inpainting", path, diffusers.DiffusionPipeline.load_config)
            self.kind = "sdxl" if "XL" in str(config.get("_class_name", "")) else "sd"
            pipe = load("inpainting", path, getattr(diffusers, SD_PIPELINES[self.kind]).from_pretrained)
        pipe.set_progress_bar_config(disable=True)
        upcast = self.kind == "sdxl" or getattr(pipe.vae.config, "force_upcast", False)  # SDXL's VAE overflows in fp16
        for module in (pipe.vae, pipe.text_encoder, getattr(pipe, "text_encoder_2", None), pipe.unet):
            if module is not None:
                module.requires_grad_(False)
                keep32 = module is pipe.vae and upcast
                module.to(
                    self.device,
                    **({} if keep32 or self.weight_dtype == torch.float32 else {"dtype": self.weight_dtype}),
                )
        if c.gradient_checkpointing:
            pipe.unet.enable_gradient_checkpointing()
        self.pipe, self.unet = pipe, pipe.unet
        self.noise_scheduler = diffusers.DDPMScheduler.from_config(pipe.scheduler.config)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        self.alphas = self.noise_scheduler.alphas_cumprod.to(self.device)

    def _add_lora(self) -> None:
        import torch
        from peft import LoraConfig

        c = self.config
        lora = LoraConfig(
            r=c.rank,
            lora_alpha=c.alpha or c.rank,  # type: ignore[arg-type]  # peft takes floats init_lora_weights="gaussian",
            target_modules=TARGET_MODULES[c.targets],
        )
        with torch.random.fork_rng(devices=[]):  # the same seed, the same initial LoRA: a run is reproducible
            torch.manual_seed(c.seed)
            self.unet.add_adapter(lora)
        for p in self.unet.parameters():
            if p.requires_grad:
                p.data = p.data.to(torch.float32)  # the trained weights stay in fp32 under mixed precision

    def _bucket(self, pairs: list[Pair]) -> list[list[int]]:
        from ..edit.prepare import prepare_crop

        self.crops = [prepare_crop(p.source, p.mask, self.native, whole=p.whole) for p in pairs]
        sizes: dict[tuple[int, int], list[int]] = {}
        for i, crop in enumerate(self.crops):
            sizes.setdefault(crop.size, []).append(i)
        return list(sizes.values())

    # ------------------------------------------------------------------ per pair, once
    def _latents(self, i: int) -> dict:
        """The pair's VAE latents (target, source, masked source) and latent mask, computed once."""
        import torch
        import torch.nn.functional as F

        if i in self._cache:
            return self._cache[i]
        crop, pair = self.crops[i], self.pairs[i]
        vae = self.pipe.vae
        scale = vae.config.scaling_factor

        def pixels(rgb: np.ndarray) -> torch.Tensor:
            return (torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1).to(self.device, vae.dtype)

        mask = torch.from_numpy(crop.mask)[None, None].float().to(self.device)
        src = pixels(crop.image)
        with torch.no_grad():
            enc = [
                vae.encode(x).latent_dist.mode() * scale
                for x in (pixels(crop.resized(pair.target)), src, src * (mask < 0.5))
            ]
        # as StableDiffusionInpaintPipeline.prepare_mask_latents: the mask resized to the latents
        lat_mask = F.interpolate(mask, size=enc[0].shape[-2:])
        out = {"target": enc[0][0], "source": enc[1][0], "masked": enc[2][0], "mask": lat_mask[0]}
        self._cache[i] = out
        return out

    def _prompt(self, prompt: str, size: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(text embeddings, SDXL's added conditions: none for SD) for a prompt, computed once."""
        import torch

        key = (prompt, size)
        if key not in self._text:
            with torch.no_grad():
                if self.kind == "sdxl":
                    emb, _, pooled, _ = self.pipe.encode_prompt(
                        prompt, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False
                    )
                    w, h = size
                    # StableDiffusionXLInpaintPipeline._get_add_time_ids: original size, crop top-left,
                    # then the aesthetic score or the target size
                    tail = [6.0] if self.pipe.config.requires_aesthetics_score else [h, w]
                    time_ids = torch.tensor([[h, w, 0, 0, *tail]], device=self.device, dtype=emb.dtype)
                    self._text[key] = (emb[0], {"text_embeds": pooled[0], "time_ids": time_ids[0]})
                else:
                    emb, _ = self.pipe.encode_prompt(
                        prompt, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False
                    )
                    self._text[key] = (emb[0], {})
        return self._text[key]

    # ------------------------------------------------------------------ one step
    def batch_for(self, step: int) -> list[int]:
        """The pairs of step `step`: from the seed, the step and the process alone (so resumable)."""
        rng = np.random.default_rng([self.config.seed, step, self.accelerator.process_index])
        sizes = np.array([len(b) for b in self.buckets], dtype=float)
        bucket = self.buckets[int(rng.choice(len(self.buckets), p=sizes / sizes.sum()))]
        return [bucket[int(k)] for k in rng.integers(0, len(bucket), self.config.batch_size)]

    def loss_for(self, indices: list[int], step: int) -> dict:
        """The edit loss of these pairs with the noise and timesteps of `step`."""
        import torch

        lat = [self._latents(i) for i in indices]
        target = torch.stack([x["target"] for x in lat]).float()
        source = torch.stack([x["source"] for x in lat]).float()
        masked = torch.stack([x["masked"] for x in lat])
        mask = torch.stack([x["mask"] for x in lat])
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + step)
        noise = torch.randn(target.shape, generator=g).to(self.device)
        n_t = self.noise_scheduler.config.num_train_timesteps
        t = torch.randint(0, n_t, (len(indices),), generator=g).to(self.device)
        noisy = self.noise_scheduler.add_noise(target, noise, t)
        texts = [self._prompt(self.pairs[i].prompt, self.crops[i].size) for i in indices]
        emb = torch.stack([x[0] for x in texts]).to(self.weight_dtype)
        extra = {}
        if texts[0][1]:  # SDXL's added conditions
            extra["added_cond_kwargs"] = {
                k: torch.stack([x[1][k] for x in texts]).to(self.weight_dtype) for k in texts[0][1]
            }
        unet_in = torch.cat([noisy, mask, masked.float()], dim=1).to(self.weight_dtype)
        with self.accelerator.autocast():
            out = self.unet(unet_in, t, encoder_hidden_states=emb, return_dict=False, **extra)[0]
        goal = noise if self.prediction_type == "epsilon" else self.noise_scheduler.get_velocity(target, noise, t)
        a = self.alphas[t].view(-1, 1, 1, 1)
        clip_term = None
        if (
            self.clip is not None
            and np.random.default_rng([self.config.seed, step, 7]).random() < self.config.clip_every
        ):
            clip_term = self._clip_term(self.clip, indices)
        return edit_loss(
            out.float(), goal.float(), noisy, a, source, mask, self.config.weights, self.prediction_type, clip_term
        )

    def _clip_term(self, clip: ClipEmbedder, indices: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
        import torch

        vae = self.pipe.vae
        scale = vae.config.scaling_factor

        def term(x0: torch.Tensor) -> torch.Tensor:
            img = vae.decode((x0 / scale).to(vae.dtype)).sample.float().clamp(-1, 1) * 0.5 + 0.5
            with torch.no_grad():
                src = torch.stack(
                    [torch.from_numpy(self.crops[i].image).permute(2, 0, 1).float() / 255 for i in indices]
                ).to(self.device)
                text = clip.text([self.pairs[i].prompt for i in indices])
                neutral = clip.text([NEUTRAL_TEXT])
                src_emb = clip.image(src)
            return clip_direction_loss(clip.image(img), src_emb, text, neutral)

        return term

    # ------------------------------------------------------------------ the loop
    def train(self) -> Path:
        """Train to `config.steps`; save checkpoints, validation sheets and the LoRA. Returns the
        LoRA's folder. Ctrl-C saves a checkpoint first (then `resume` continues)."""
        import torch

        c = self.config
        acc = self.accelerator
        self.unet.train()
        try:
            while self.step < c.steps:
                t0 = time.perf_counter()
                logs: list[dict[str, Any]] = []
                for micro in range(c.grad_accum):
                    with acc.accumulate(self.unet):
                        terms = self.loss_for(
                            self.batch_for(self.step * c.grad_accum + micro), self.step * c.grad_accum + micro
                        )
                        acc.backward(terms["loss"])
                        if acc.sync_gradients:
                            acc.clip_grad_norm_([p for p in self.unet.parameters() if p.requires_grad], c.max_grad_norm)
                        self.optimizer.step()
                        self.lr_scheduler.step()
                        self.optimizer.zero_grad(set_to_none=True)
                    logs.append({k: (None if v is None else float(v.detach())) for k, v in terms.items()})
                if not all(math.isfinite(x["loss"]) for x in logs):
                    raise FloatingPointError(
                        f"the loss is not finite at step {self.step + 1}: lower --lr, "
                        "or train in fp32 (--mixed-precision no)"
                    )
                self.step += 1
                clips = [x["clip"] for x in logs if x["clip"] is not None]
                loss, fid, pres = (float(np.mean([x[k] for x in logs])) for k in ("loss", "fidelity", "preservation"))
                entry = StepLog(
                    self.step,
                    loss,
                    fid,
                    pres,
                    clip=float(np.mean(clips)) if clips else None,
                    seconds=time.perf_counter() - t0,
                )
                self.losses.append(entry)
                acc.log({k: v for k, v in asdict(entry).items() if v is not None and k != "step"}, step=self.step)
                if self.on_step is not None:
                    self.on_step(entry, c.steps)
                if c.checkpoint_every and self.step % c.checkpoint_every == 0 and self.step < c.steps:
                    self.save_checkpoint()
                if c.validate_every and self.step % c.validate_every == 0 and self.step < c.steps:
                    self.validate()
        except KeyboardInterrupt:
            if self.step > 0:
                self.save_checkpoint()
            raise
        with torch.no_grad():
            self.validate()
        return self.save_lora()

    # ------------------------------------------------------------------ saving and resuming
    def _lora_state(self) -> dict:
        from peft.utils import get_peft_model_state_dict

        return get_peft_model_state_dict(self.accelerator.unwrap_model(self.unet))

    def save_checkpoint(self) -> Path:
        """checkpoints/step-NNNNNN/state.pt: the LoRA, optimizer and scheduler state, the losses.
        The two most recent are kept."""
        import torch

        folder = self.config.output / "checkpoints" / f"step-{self.step:06d}"
        if self.accelerator.is_main_process:
            folder.mkdir(parents=True, exist_ok=True)
            state = {
                "step": self.step,
                "lora": self._lora_state(),
                "optimizer": self.optimizer.state_dict(),
                "lr_scheduler": self.lr_scheduler.state_dict(),
                "losses": [asdict(x) for x in self.losses],
            }
            tmp = folder / "state.pt.tmp"
            torch.save(state, tmp)
            tmp.replace(folder / "state.pt")
            for old in sorted((self.config.output / "checkpoints").glob("step-*"))[:-2]:
                for f in old.iterdir():
                    f.unlink()
                old.rmdir()
        self.accelerator.wait_for_everyone()
        return folder

    def _resume(self) -> None:
        import torch
        from peft.utils import set_peft_model_state_dict

        done = sorted((self.config.output / "checkpoints").glob("step-*/state.pt"))
        if not done:
            raise InvalidInputError(f"--resume: {self.config.output / 'checkpoints'} holds no checkpoint")
        state = torch.load(done[-1], map_location=self.device, weights_only=False)
        set_peft_model_state_dict(self.accelerator.unwrap_model(self.unet), state["lora"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.step = int(state["step"])
        self.losses = [StepLog(**x) for x in state["losses"]]
        if self.step >= self.config.steps:
            raise InvalidInputError(
                f"--resume: the checkpoint is at step {self.step}, not before --steps "
                f"{self.config.steps}; ask for more steps"
            )

    def save_lora(self) -> Path:
        """The LoRA in diffusers' format, its settings, the losses and their curve."""
        out = self.config.output
        if self.accelerator.is_main_process:
            # peft's key names ("unet.<module>.lora_A.weight"), which load_lora_weights reads as they are;
            # converted to the older "lora.down" names, a LoRA on convolutions and attention together
            # reloads with its attention layers left out (diffusers 0.42).
            type(self.pipe).save_lora_weights(str(out), unet_lora_layers=self._lora_state(), safe_serialization=True)
            os.chmod(out / LORA_FILE, default_file_mode())  # written 0600 (a temporary file renamed); as any file
            meta: dict[str, Any] = {
                "base_model": self.model_id,
                "kind": self.kind,
                "steps": self.step,
                "settings": {
                    k: (asdict(v) if isinstance(v, LossWeights) else str(v) if isinstance(v, Path) else v)
                    for k, v in asdict(self.config).items()
                    if k not in ("resume",)
                },
                "final_loss": self.losses[-1].loss if self.losses else None,
            }
            meta["settings"]["weights"] = asdict(self.config.weights)
            (out / "lasso_lora.json").write_text(json.dumps(meta, indent=2) + "\n")
            with open(out / "losses.jsonl", "w") as f:
                for x in self.losses:
                    f.write(json.dumps(asdict(x)) + "\n")
            plot_losses(self.losses, out / "loss.png")
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        return out

    # ------------------------------------------------------------------ validation
    def validate(self) -> Path | None:
        """Edit the held-out pairs with the LoRA as it is now (the inference path, a fixed seed);
        validation/step-NNNNNN.png: per pair the source with its mask, the target, Lasso's output."""
        if not self.val_pairs or not self.accelerator.is_main_process:
            return None
        import torch

        from ..core.plan import Action, Edit
        from ..edit.base import ExecSettings
        from ..edit.inpaint import Inpainter

        unet = self.accelerator.unwrap_model(self.unet)
        unet.eval()
        inpainter = Inpainter(self.pipe, model_id=self.model_id, default_steps=min(30, max(3, self.config.steps)))
        inpainter.native = self.native
        rows = []
        try:
            with torch.no_grad(), self.accelerator.autocast():
                for pair in self.val_pairs:
                    edit = Edit(
                        Action.STYLE if pair.whole else Action.REPLACE, "region", pair.prompt, prompt=pair.prompt
                    )
                    out = inpainter.execute(pair.source, pair.mask, edit, ExecSettings(seed=self.config.seed))
                    rows.append(
                        (pair.source, pair.mask, pair.target, np.where(pair.mask[:, :, None], out, pair.source))
                    )
        finally:
            unet.train()
        path = self.config.output / "validation" / f"step-{self.step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(rows, [p.instruction for p in self.val_pairs]).save(path)
        return path
