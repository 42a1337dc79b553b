"""The field's edit metrics, with MagicBrush's formulas (evaluation/image_eval.py of
OSU-NLP-Group/MagicBrush, read for this), and Lasso's own.

- L1, L2: the output resized to the ground truth's size (PIL's bicubic, as `Image.resize`
  defaults to), both as [0, 1] float RGB, mean absolute / mean squared difference over H, W and C
  (torch's L1Loss / MSELoss of ToTensor images).
- CLIP-I: cosine of CLIP ViT-B/32 image embeddings of output and ground truth; CLIP-T: cosine of
  the output's image embedding and the text embedding of the target's local caption. Images are
  resized short side to 224 (PIL bicubic), centre-cropped to 224 and normalised with CLIP's mean
  and std, as `clip.load`'s transform does.
- DINO: cosine of DINO ViT-S/16 CLS embeddings (the last layer, after its norm), the image resized
  short side to 256 (bicubic), centre-cropped to 224, ImageNet-normalised.
- Lasso's own: L1 outside and inside the edit mask against the source, and the IoU of Lasso's mask
  with the dataset's.
- PIE-Bench's, where the data gives an edit mask: PSNR, MSE and SSIM outside it against the source
  (computed as its code does: verify.py), and CLIP similarity of the whole output and of its edited
  region with the editing prompt (its code uses CLIP ViT-L/14; `--clip` chooses).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from ..imaging.geometry import size_field

if TYPE_CHECKING:
    import torch

Picture = Image.Image | np.ndarray  # a PIL image, or its pixels as an array

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
METRICS = ("l1", "l2", "clip_i", "clip_t", "dino")  # the field's, in MagicBrush's order
PIE = ("psnr_outside", "lpips_outside", "mse_outside", "ssim_outside", "clip_whole", "clip_edited")  # PIE-Bench's


def _rgb(img: Picture) -> Image.Image:
    return img.convert("RGB") if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img)).convert("RGB")


def _unit(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64) / 255.0


def distances(output: Picture, target: Picture) -> tuple[float, float]:
    """(L1, L2) of `output` resized to `target`'s size, both on [0, 1]."""
    out, gt = _rgb(output), _rgb(target)
    if out.size != gt.size:
        out = out.resize(gt.size, Image.Resampling.BICUBIC)
    d = _unit(out) - _unit(gt)
    return float(np.abs(d).mean()), float((d * d).mean())


def l1_in_out(output: Picture, source: Picture, mask: np.ndarray) -> tuple[float | None, float | None]:
    """Mean |output - source| on [0, 1] outside and inside the bool HxW edit mask (None where empty).
    Outside should be exactly 0 for a lossless output: Lasso keeps those pixels bit for bit."""
    out, src = _unit(_rgb(output)), _unit(_rgb(source))
    if out.shape != src.shape:
        raise ValueError(f"output {out.shape[:2]} and source {src.shape[:2]} differ in size")
    d = np.abs(out - src).mean(axis=2)
    outside, inside = d[~mask], d[mask]
    return (float(outside.mean()) if outside.size else None, float(inside.mean()) if inside.size else None)


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float | None:
    """Intersection over union of two bool masks (the truth resized to pred's size, nearest)."""
    if truth.shape != pred.shape:
        truth = (
            np.asarray(Image.fromarray(truth.astype(np.uint8) * 255).resize(pred.shape[::-1], Image.Resampling.NEAREST))
            > 127
        )
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else None


def dataset_mask(img: Picture) -> np.ndarray:
    """The edited region of a dataset's mask image: where an alpha channel is transparent, if the
    mask has a used one; else where it is bright (white = edited)."""
    img = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img))
    if img.mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(img.getchannel("A"))
        if alpha.min() < 255:
            return alpha < 128
    return np.asarray(img.convert("L")) > 127


def resize_short_crop(img: Picture, short: int, crop: int) -> Image.Image:
    """torchvision's Resize(short) (bicubic) then CenterCrop(crop), on a PIL image."""
    img = _rgb(img)
    w, h = img.size
    if w <= h:
        nw, nh = short, int(short * h / w)
    else:
        nw, nh = int(short * w / h), short
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = int(round((nw - crop) / 2.0)), int(round((nh - crop) / 2.0))
    return img.crop((left, top, left + crop, top + crop))


def cosine(a: ArrayLike, b: ArrayLike) -> float:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class Scorers:
    """CLIP and DINO, loaded once (Hub ids or local folders) on `device`."""

    def __init__(self, clip: str, dino: str, device: str = "cpu", lpips: str | None = None) -> None:
        import transformers

        from ..core.loading import load

        self.device = device
        self.lpips = Lpips(lpips, device) if lpips else None  # PIE-Bench's LPIPS outside the mask
        # (transformers' decorated from_pretrained confuses mypy's reading of the loader's argument)
        self.clip = load("clip", clip, transformers.CLIPModel.from_pretrained).to(device).eval()  # type: ignore[arg-type]
        self.clip_processor = load("clip", clip, transformers.CLIPProcessor.from_pretrained)
        self.dino = load("dino", dino, transformers.ViTModel.from_pretrained, add_pooling_layer=False).to(device).eval()  # type: ignore[arg-type]

    def clip_image(self, img: Picture) -> np.ndarray:
        import torch

        # clip.load's transform, done here with PIL: the processor's own resize (a tensor bicubic in
        # recent transformers) moved CLIP-I by 0.006 on a test image.
        ip = self.clip_processor.image_processor
        side = int(size_field(ip.crop_size, "height", 224))
        x = (_unit(resize_short_crop(img, side, side)) - np.asarray(ip.image_mean)) / np.asarray(ip.image_std)
        pixel_values = torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32)).to(self.device)
        with torch.inference_mode():
            feats = self.clip.get_image_features(pixel_values=pixel_values)
        return _tensor(feats)

    def clip_text(self, text: str) -> np.ndarray:
        import torch

        inputs = self.clip_processor(text=[text], return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            feats = self.clip.get_text_features(**{k: v.to(self.device) for k, v in inputs.items()})
        return _tensor(feats)

    def dino_image(self, img: Picture) -> np.ndarray:
        import torch

        x = (_unit(resize_short_crop(img, 256, 224)) - IMAGENET_MEAN) / IMAGENET_STD
        pixel_values = torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32)).to(self.device)
        with torch.inference_mode():
            out = self.dino(pixel_values=pixel_values)
        return _tensor(out.last_hidden_state[:, 0])

    def score(self, output: Picture, target: Picture, caption: str | None) -> dict[str, float | None]:
        """CLIP-I, CLIP-T (None without a caption) and DINO of one output against its ground truth."""
        out_clip = self.clip_image(output)
        return {
            "clip_i": cosine(out_clip, self.clip_image(target)),
            "clip_t": cosine(out_clip, self.clip_text(caption)) if caption else None,
            "dino": cosine(self.dino_image(output), self.dino_image(target)),
        }


def preservation(source: Picture, output: Picture, edit_mask: np.ndarray) -> dict[str, float | None]:
    """PIE-Bench's preservation numbers outside its edit mask (verify.py computes them as its
    evaluation code does), and Lasso's exact count of the pixels changed there."""
    from ..imaging.verify import verify

    v = verify(np.asarray(_rgb(source)), np.asarray(_rgb(output)), edit_mask.astype(np.uint8))
    return {
        "psnr_outside": v.psnr_outside,
        "mse_outside": v.mse_outside,
        "ssim_outside": v.ssim_outside,
        "changed_outside": v.changed_outside,
    }


def clip_scores(scorers: Scorers, output: Picture, edit_mask: np.ndarray, prompt: str) -> dict[str, float]:
    """PIE-Bench's CLIP similarity (torchmetrics' CLIPScore: 100 x max(cosine, 0)) of the whole
    output and of its edited region alone (the image times the mask, as its code does) against the
    editing prompt."""
    text = scorers.clip_text(prompt)
    img = np.asarray(_rgb(output))
    region = Image.fromarray((img * edit_mask[..., None]).astype(np.uint8))
    return {
        "clip_whole": 100 * max(cosine(scorers.clip_image(img), text), 0.0),
        "clip_edited": 100 * max(cosine(scorers.clip_image(region), text), 0.0),
    }


class Lpips:
    """LPIPS outside a mask, as PIE-Bench computes it (both images on [0, 1], the edit region zeroed
    in both, then the metric on [-1, 1]). `net` "squeeze": the `lpips` package's SqueezeNet LPIPS
    (torchmetrics' and PIE-Bench's choice; its backbone's weights come from torchvision's download
    on first use); "tiny": a random stand-in with LPIPS's formula (unit-normalised features of two
    random conv layers, squared differences averaged), for offline runs, not comparable to anything."""

    SQUEEZE_URL = "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"

    def __init__(self, net: str = "squeeze", device: str = "cpu") -> None:
        from ..core.errors import InvalidInputError, ModelUnavailableError

        self.name, self.device = net, device
        if net == "tiny":
            self.net = _tiny_lpips().to(device)
            return
        if net != "squeeze":
            raise InvalidInputError(f"--lpips must be squeeze or tiny, not {net!r}")
        try:
            import lpips
        except ImportError:
            raise InvalidInputError(
                "LPIPS needs the eval extra: pip install 'lasso-edit[eval]' (or --lpips tiny)"
            ) from None
        import os

        import torch

        cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(self.SQUEEZE_URL))
        if os.environ.get("HF_HUB_OFFLINE") == "1" and not os.path.exists(cached):
            raise ModelUnavailableError(
                f"LPIPS's SqueezeNet is not in torch's cache ({cached}) while HF_HUB_OFFLINE is set: fetch "
                f"{self.SQUEEZE_URL} there on a machine with internet, or use --lpips tiny"
            )
        try:
            self.net = lpips.LPIPS(net="squeeze", verbose=False).to(device).eval()
        except (OSError, RuntimeError) as e:
            raise ModelUnavailableError(f"LPIPS's SqueezeNet could not be loaded ({e}); or use --lpips tiny") from None

    def outside(self, source: Picture, output: Picture, keep: np.ndarray) -> float:
        import torch

        k = keep[..., None].astype(np.float32)

        def t(img: Picture) -> torch.Tensor:
            x = (_unit(_rgb(img)).astype(np.float32) * k) * 2 - 1
            return torch.from_numpy(x.transpose(2, 0, 1)[None]).to(self.device)

        with torch.inference_mode():
            return float(self.net(t(output), t(source)).flatten()[0])


def _tiny_lpips() -> torch.nn.Module:
    import torch

    class TinyLpips(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(0)
            convs = [torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.Conv2d(8, 16, 3, stride=2)]
            for c in convs:
                c.weight.data = torch.randn(c.weight.shape, generator=g) * 0.2
                assert c.bias is not None  # Conv2d's default: with a bias
                c.bias.data.zero_()
            self.convs = torch.nn.ModuleList(convs)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            total = 0.0
            for conv in self.convs:
                x, y = torch.relu(conv(x)), torch.relu(conv(y))
                nx = x / (x.norm(dim=1, keepdim=True) + 1e-10)
                ny = y / (y.norm(dim=1, keepdim=True) + 1e-10)
                total = total + ((nx - ny) ** 2).sum(dim=1).mean()
            return torch.as_tensor(total).reshape(1)

    return TinyLpips().eval()


def _tensor(t: Any) -> np.ndarray:  # a tensor, or a transformers output holding one
    t = getattr(t, "pooler_output", t)  # transformers 5 may answer a model output; its pooled features
    return t.float().cpu().numpy()[0]
