"""Big LaMa's generator (Suvorov et al., "Resolution-robust Large Mask Inpainting with Fourier
Convolutions", WACV 2022), written for the benchmark: the architecture at its real size with random
weights (compute does not depend on weight values), to export the graph the `lama` painter runs.

Facts taken from the authors' code, advimman/lama (Apache-2.0):
- saicinpainting/training/modules/ffc.py: FourierUnit (rfftn over H and W with norm="ortho", real
  and imaginary parts stacked as channels, a 1x1 conv + BatchNorm + ReLU, irfftn back),
  SpectralTransform (1x1 conv to half the channels + BN + ReLU, the Fourier unit, their sum, a 1x1
  conv back; no bias anywhere), FFC (local->local, local->global, global->local convs with reflect
  padding, global->global spectral transform), FFC_BN_ACT, FFCResnetBlock, FFCResNetGenerator
  (reflection pad 3 + 7x7 FFC, stride-2 3x3 FFC downsamples, resnet blocks, transposed-conv
  upsamples with BN + ReLU, reflection pad 3 + 7x7 conv, the output activation).
- configs/training/big-lama.yaml: input_nc 4 (masked image + mask), output_nc 3, ngf 64,
  n_downsampling 3, n_blocks 18, add_out_act sigmoid; the init and downsample convs purely local
  (ratio 0), the last downsample's output and every resnet block 75% global (ratio_gin 0.75),
  enable_lfu false everywhere. (configs/training/generator/ffc_resnet_075.yaml: the same with 9
  blocks, LaMa-Fourier.)
- saicinpainting/training/trainers/default.py: the network reads the image with its hole zeroed
  and the mask, and the answer is composited: mask * predicted + (1 - mask) * image.

`fft="matmul"` computes the same ortho-normalised 2-D real DFT as matrix products (as the exported
graphs of LaMa do where an exporter has no DFT op: ffc.py's FourierUnitJIT); `fft="torch"` uses
torch.fft.
"""

from __future__ import annotations

import math

import torch
from torch import nn

GLOBAL_RATIO = 0.75  # big-lama.yaml: resnet_conv_kwargs.ratio_gin (= ratio_gout)


def _dft_mats(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of -2 pi j k / n, ortho-normalised (1/sqrt(n)), [n, n]."""
    k = torch.arange(n, dtype=torch.float32, device=device)
    ang = -2.0 * math.pi * torch.outer(k, k) / n
    return torch.cos(ang) / math.sqrt(n), torch.sin(ang) / math.sqrt(n)


def rfft2_ortho(x: torch.Tensor, fft: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts of rfftn(x, dim=(-2, -1), norm="ortho"), [.., H, W // 2 + 1]."""
    if fft == "torch":
        f = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        return f.real, f.imag
    h, w = x.shape[-2], x.shape[-1]
    cw, sw = _dft_mats(w, x.device)
    cw, sw = cw[:, : w // 2 + 1], sw[:, : w // 2 + 1]
    re, im = x @ cw, x @ sw  # along W (a real input)
    ch, sh = _dft_mats(h, x.device)
    return ch @ re - sh @ im, sh @ re + ch @ im  # along H (complex)


def irfft2_ortho(re: torch.Tensor, im: torch.Tensor, size: tuple[int, int], fft: str) -> torch.Tensor:
    """irfftn of re + i im over (-2, -1) to `size`, norm="ortho"."""
    h, w = size
    if fft == "torch":
        return torch.fft.irfftn(torch.complex(re, im), s=(h, w), dim=(-2, -1), norm="ortho")
    ch, sh = _dft_mats(h, re.device)  # inverse along H: conj of the forward matrix
    re, im = ch @ re + sh @ im, ch @ im - sh @ re
    # inverse real DFT along W: the half spectrum's bins 1..ceil(w/2)-1 count twice (Hermitian)
    half = w // 2 + 1
    weight = torch.full((half,), 2.0, device=re.device)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    cw, sw = _dft_mats(w, re.device)
    cw, sw = cw[:half] * weight[:, None], sw[:half] * weight[:, None]
    return re @ cw + im @ sw  # Re(sum X e^{+i..}) = sum re*cos - im*sin(+) with sin(-) stored


class FourierUnit(nn.Module):
    """ffc.py FourierUnit: the spectrum's real and imaginary parts as 2C channels, 1x1 conv (no
    bias) + BatchNorm + ReLU, back to the image domain."""

    def __init__(self, channels: int, fft: str = "torch") -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels * 2, channels * 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels * 2)
        self.relu = nn.ReLU(inplace=True)
        self.fft = fft

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        re, im = rfft2_ortho(x.float(), self.fft)  # fp32 (torch.fft has no bf16 on a CPU)
        f = torch.stack((re, im), dim=2).reshape(b, c * 2, h, w // 2 + 1)  # (c, re/im) interleaved, as ffc.py
        f = self.relu(self.bn(self.conv(f))).float()
        f = f.reshape(b, c, 2, h, w // 2 + 1)
        return irfft2_ortho(f[:, :, 0], f[:, :, 1], (h, w), self.fft)


class SpectralTransform(nn.Module):
    """ffc.py SpectralTransform at stride 1, enable_lfu false (big-lama.yaml)."""

    def __init__(self, cin: int, cout: int, fft: str = "torch") -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout // 2, 1, bias=False), nn.BatchNorm2d(cout // 2), nn.ReLU(True))
        self.fu = FourierUnit(cout // 2, fft)
        self.conv2 = nn.Conv2d(cout // 2, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x).to(x.dtype))


def _conv(cin: int, cout: int, k: int, stride: int, pad: int) -> nn.Module:
    """A bias-free conv with reflect padding (ffc.py FFC: padding_type="reflect", bias=False), or
    nothing where a side has no channels."""
    if cin == 0 or cout == 0:
        return _Zero()
    return nn.Conv2d(cin, cout, k, stride, pad, bias=False, padding_mode="reflect")


class _Zero(nn.Module):
    """An absent path (ffc.py puts nn.Identity there and never adds its output)."""

    def forward(self, x: torch.Tensor | None) -> None:
        return None


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return b if a is None else a if b is None else a + b


class FFCBnAct(nn.Module):
    """ffc.py FFC + FFC_BN_ACT: local and global halves (ratio of the channels global), four
    paths between them, BatchNorm and ReLU on each output half."""

    def __init__(self, cin: int, cout: int, k: int, rin: float, rout: float, stride: int = 1, pad: int = 0,
                 fft: str = "torch") -> None:
        super().__init__()
        gin, gout = int(cin * rin), int(cout * rout)
        lin, lout = cin - gin, cout - gout
        self.l2l, self.l2g = _conv(lin, lout, k, stride, pad), _conv(lin, gout, k, stride, pad)
        self.g2l = _conv(gin, lout, k, stride, pad)
        self.g2g = SpectralTransform(gin, gout, fft) if gin and gout else _Zero()
        self.bn_l = nn.Sequential(nn.BatchNorm2d(lout), nn.ReLU(True)) if lout else _Zero()
        self.bn_g = nn.Sequential(nn.BatchNorm2d(gout), nn.ReLU(True)) if gout else _Zero()

    def forward(self, xl: torch.Tensor | None, xg: torch.Tensor | None) -> tuple:
        ol = _add(self.l2l(xl) if xl is not None else None, self.g2l(xg) if xg is not None else None)
        og = _add(self.l2g(xl) if xl is not None else None, self.g2g(xg) if xg is not None else None)
        return (self.bn_l(ol) if ol is not None else None), (self.bn_g(og) if og is not None else None)


class FFCResnetBlock(nn.Module):
    """ffc.py FFCResnetBlock: two 3x3 FFC_BN_ACT (reflect padding 1), a residual on both halves."""

    def __init__(self, dim: int, fft: str = "torch") -> None:
        super().__init__()
        self.conv1 = FFCBnAct(dim, dim, 3, GLOBAL_RATIO, GLOBAL_RATIO, pad=1, fft=fft)
        self.conv2 = FFCBnAct(dim, dim, 3, GLOBAL_RATIO, GLOBAL_RATIO, pad=1, fft=fft)

    def forward(self, xl: torch.Tensor, xg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        yl, yg = self.conv2(*self.conv1(xl, xg))
        return xl + yl, xg + yg


class FFCResNetGenerator(nn.Module):
    """ffc.py FFCResNetGenerator with big-lama.yaml's settings (ngf, downsamplings and blocks
    smaller for a smoke run): 4 channels in, 3 out through a sigmoid."""

    def __init__(self, ngf: int = 64, n_down: int = 3, n_blocks: int = 18, fft: str = "torch") -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(3)
        self.init = FFCBnAct(4, ngf, 7, 0.0, 0.0, fft=fft)  # init_conv_kwargs: ratio 0
        last = n_down - 1  # FFCResNetGenerator: the last downsample's output takes the resnet ratio
        self.down = nn.ModuleList(
            FFCBnAct(ngf * 2**i, ngf * 2 ** (i + 1), 3, 0.0, GLOBAL_RATIO if i == last else 0.0, stride=2, pad=1,
                     fft=fft)
            for i in range(n_down))
        dim = ngf * 2**n_down  # 512 (max_features 1024 is not reached)
        self.blocks = nn.ModuleList(FFCResnetBlock(dim, fft) for _ in range(n_blocks))
        up: list[nn.Module] = []
        for i in range(n_down):
            c = ngf * 2 ** (n_down - i)
            up += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(c // 2),
                   nn.ReLU(True)]
        self.up = nn.Sequential(*up, nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xl, xg = self.init(self.pad(x), None)
        for d in self.down:
            xl, xg = d(xl, xg)
        for b in self.blocks:
            xl, xg = b(xl, xg)
        return self.up(torch.cat([xl, xg], dim=1))  # ConcatTupleLayer


class LamaInpaint(nn.Module):
    """What Carve/LaMa-ONNX's lama_fp32.onnx takes and gives: `image` [1,3,H,W] in [0,1] and `mask`
    [1,1,H,W] (1 = hole); the generator reads the masked image and the mask (4 channels); the answer,
    in [0,1], is its prediction in the hole and the image outside (trainers/default.py)."""

    def __init__(self, generator: FFCResNetGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        masked = image * (1 - mask)
        predicted = self.generator(torch.cat([masked, mask], dim=1))
        return mask * predicted + (1 - mask) * image


def big_lama(fft: str = "torch", smoke: bool = False) -> LamaInpaint:
    """Big LaMa at its real size, random weights, in eval mode; `smoke`: the same architecture with
    few channels and blocks (ngf 8, 2 blocks) for a run of seconds."""
    torch.manual_seed(0)
    gen = FFCResNetGenerator(ngf=8, n_blocks=2, fft=fft) if smoke else FFCResNetGenerator(fft=fft)
    return LamaInpaint(gen).eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
