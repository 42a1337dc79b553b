"""The edit loss (docs/training.md has it as a formula):

    L = w_fid * L_fid + w_pres * L_pres + w_clip * L_clip

- L_fid, fidelity: the denoising loss on the target's latents, each latent pixel weighted by
  `inside` in the (latent-resolution) edit mask and `outside` elsewhere, normalised by the weights:
  the model learns to paint what the instruction asked for where it asked for it.
- L_pres, preservation: outside the mask, the squared error of the predicted clean latent x0_hat
  against the source's latent, weighted per sample by alpha_bar_t (x0_hat is only a guess at
  high noise): the model is penalised for drifting where nothing should change, which is what
  makes the seams vanish once the result is composited through the mask.
- L_clip, instruction alignment (optional): 1 - cos(E_img(decoded x0_hat) - E_img(source),
  E_txt(prompt) - E_txt("a photo")), CLIP's directional loss (Gal et al., StyleGAN-NADA), on the
  steps that compute it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class LossWeights:
    fidelity: float = 1.0  # w_fid
    inside: float = 4.0  # fidelity weight of a latent pixel inside the edit mask
    outside: float = 1.0  # ... and outside it (0: the outside is ignored)
    preservation: float = 0.25  # w_pres
    clip: float = 0.1  # w_clip, on the steps that compute it (when a CLIP model is given)


def predicted_x0(
    model_out: torch.Tensor, noisy: torch.Tensor, alpha_bar: torch.Tensor, prediction_type: str = "epsilon"
) -> torch.Tensor:
    """x0_hat from the UNet's output at noise level alpha_bar (a tensor broadcastable to the latents).

    epsilon: x0 = (x_t - sqrt(1 - a) * eps) / sqrt(a); v_prediction: x0 = sqrt(a) * x_t - sqrt(1 - a) * v
    (diffusers' DDPMScheduler.step)."""
    a = alpha_bar
    if prediction_type == "epsilon":
        return (noisy - (1 - a).sqrt() * model_out) / a.sqrt()
    if prediction_type == "v_prediction":
        return a.sqrt() * noisy - (1 - a).sqrt() * model_out
    raise ValueError(f"prediction type {prediction_type!r} is not supported; epsilon or v_prediction")


def fidelity_loss(
    model_out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, inside: float = 4.0, outside: float = 1.0
) -> torch.Tensor:
    """Mean squared error of the UNet's output against its target (noise, or v), weighted by
    `inside` where `mask` (B x 1 x h x w, 1 = edit) is set and `outside` elsewhere."""
    w = mask * inside + (1 - mask) * outside
    err = ((model_out.float() - target.float()) ** 2).mean(dim=1, keepdim=True)
    return (w * err).sum() / w.sum().clamp_min(1e-8)


def preservation_loss(
    x0_hat: torch.Tensor, source_latents: torch.Tensor, mask: torch.Tensor, alpha_bar: torch.Tensor
) -> torch.Tensor:
    """Squared error of x0_hat against the source's latents outside the mask, per sample weighted by
    alpha_bar_t, averaged over the outside latent pixels. Zero when x0_hat equals the source there."""
    keep = 1 - mask
    err = ((x0_hat.float() - source_latents.float()) ** 2).mean(dim=1, keepdim=True)
    per_sample = (keep * err).flatten(1).sum(dim=1) / keep.flatten(1).sum(dim=1).clamp_min(1e-8)
    return (alpha_bar.flatten().float() * per_sample).mean()


def clip_direction_loss(
    image_embeds: torch.Tensor, source_embeds: torch.Tensor, text_embeds: torch.Tensor, neutral_embeds: torch.Tensor
) -> torch.Tensor:
    """1 - cos(image change, text change), averaged over the batch (all embeddings B x D or D)."""
    import torch.nn.functional as F

    d_img = F.normalize(image_embeds.float(), dim=-1) - F.normalize(source_embeds.float(), dim=-1)
    d_txt = F.normalize(text_embeds.float(), dim=-1) - F.normalize(neutral_embeds.float(), dim=-1)
    return (1 - F.cosine_similarity(d_img, d_txt.expand_as(d_img), dim=-1)).mean()


def edit_loss(
    model_out: torch.Tensor,
    target: torch.Tensor,
    noisy: torch.Tensor,
    alpha_bar: torch.Tensor,
    source_latents: torch.Tensor,
    mask: torch.Tensor,
    weights: LossWeights = LossWeights(),
    prediction_type: str = "epsilon",
    clip_term: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict:
    """Every term and the weighted total: {"loss", "fidelity", "preservation", "clip"} (clip None
    when not computed). `clip_term`: a function of x0_hat giving L_clip, for the steps that use it."""
    fid = fidelity_loss(model_out, target, mask, weights.inside, weights.outside)
    x0 = predicted_x0(model_out.float(), noisy.float(), alpha_bar.float(), prediction_type)
    pres = preservation_loss(x0, source_latents, mask, alpha_bar)
    total = weights.fidelity * fid + weights.preservation * pres
    clip = None
    if clip_term is not None and weights.clip > 0:
        clip = clip_term(x0)
        total = total + weights.clip * clip
    return {"loss": total, "fidelity": fid, "preservation": pres, "clip": clip}
