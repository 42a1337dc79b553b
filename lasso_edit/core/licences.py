"""What each model Lasso names may be used for: its licence, whether the Hub gates it (you accept
its terms on the model's page and log in before it downloads), and for a gated one the open
fallback Lasso suggests. `lasso models` and the page show it; loading.py says it when a gated
download is refused. Sources: each model's card on the Hugging Face Hub (docs/models.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Licence:
    name: str  # "Apache-2.0", "FLUX.1 [dev] non-commercial", ...
    gated: bool = False  # the Hub asks you to accept its terms first
    fallback: str = ""  # the flags that run without it, for a gated model


SAM3_FALLBACK = (
    "--segmenter facebook/sam2.1-hiera-large --detector openmmlab-community/mm_grounding_dino_large_o365v2 "
    "--grounder detector"
)

LICENCES: dict[str, Licence] = {
    # planners
    "llava-hf/llava-1.5-7b-hf": Licence("Llama 2 Community"),
    "llava-hf/llava-v1.6-mistral-7b-hf": Licence("Apache-2.0"),
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf": Licence("Apache-2.0"),
    "Qwen/Qwen2.5-VL-7B-Instruct": Licence("Apache-2.0"),
    "Qwen/Qwen3-VL-8B-Instruct": Licence("Apache-2.0"),
    "Qwen/Qwen3-VL-4B-Instruct": Licence("Apache-2.0"),
    # grounders and segmenters
    "IDEA-Research/grounding-dino-tiny": Licence("Apache-2.0"),
    "IDEA-Research/grounding-dino-base": Licence("Apache-2.0"),
    "google/owlv2-base-patch16-ensemble": Licence("Apache-2.0"),
    "google/owlvit-base-patch32": Licence("Apache-2.0"),
    "openmmlab-community/mm_grounding_dino_large_o365v2": Licence("Apache-2.0"),
    "facebook/sam-vit-base": Licence("Apache-2.0"),
    "facebook/sam-vit-large": Licence("Apache-2.0"),
    "facebook/sam-vit-huge": Licence("Apache-2.0"),
    "Zigeng/SlimSAM-uniform-77": Licence("Apache-2.0"),
    "facebook/sam2.1-hiera-large": Licence("Apache-2.0"),
    "facebook/sam2.1-hiera-tiny": Licence("Apache-2.0"),
    "yonigozlan/EdgeTAM-hf": Licence("Apache-2.0"),  # facebookresearch/EdgeTAM's weights, as transformers reads them
    "nielsr/slimsam-50-uniform": Licence("Apache-2.0"),
    "facebook/sam3": Licence("SAM License", gated=True, fallback=SAM3_FALLBACK),
    # painters
    "stable-diffusion-v1-5/stable-diffusion-inpainting": Licence("CreativeML OpenRAIL-M"),
    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1": Licence("CreativeML OpenRAIL++-M"),
    "h1t/TCD-SD15-LoRA": Licence("MIT"),
    "stabilityai/sd-turbo": Licence("Stability AI Community"),  # free under USD 1M annual revenue
    "madebyollin/taesd": Licence("MIT"),
    "Carve/LaMa-ONNX": Licence("Apache-2.0"),
    "stabilityai/stable-diffusion-3.5-medium": Licence(
        "Stability AI Community", gated=True, fallback="--inpainter black-forest-labs/FLUX.2-klein-4B"
    ),
    "black-forest-labs/FLUX.1-Fill-dev": Licence(
        "FLUX.1 [dev] non-commercial", gated=True, fallback="--inpainter black-forest-labs/FLUX.2-klein-4B"
    ),
    "black-forest-labs/FLUX.1-Kontext-dev": Licence(
        "FLUX.1 [dev] non-commercial", gated=True, fallback="--inpainter black-forest-labs/FLUX.2-klein-4B"
    ),
    "black-forest-labs/FLUX.2-klein-4B": Licence("Apache-2.0"),
    "Qwen/Qwen-Image-Edit": Licence("Apache-2.0"),
}


# What a model weighs to download, in GB, where Lasso knows it: from the parameter counts of the
# architectures (bench/lite.py builds them) at the precision the files are read in (SD-Turbo's fp16
# variant: edit/painters/sd.py). No machine this project is built on reaches the Hub to weigh them.
DOWNLOAD_GB: dict[str, float] = {
    "google/owlvit-base-patch32": 0.61,  # 153.2 M parameters, fp32
    "yonigozlan/EdgeTAM-hf": 0.04,  # 9.1 M, fp32
    "stabilityai/sd-turbo": 2.42,  # UNet 865.9 M + text encoder 340.4 M, fp16 files; its VAE is not read
    "madebyollin/taesd": 0.01,  # 2.4 M, fp32
    "Carve/LaMa-ONNX": 0.21,  # lama_fp32.onnx, 208 MB as its repository lists it
}


HOSTED = Licence("the provider's terms (a hosted service)")


def licence(model_id: str) -> Licence | None:
    """The licence Lasso knows for a Hub id, or a painter's NAME:ID (`turbo:stabilityai/sd-turbo`)
    by its ID; a model on a server (`openai:...`) is under its provider's terms. None: a local
    folder, a tiny model, or one it does not list."""
    if model_id in LICENCES:
        return LICENCES[model_id]
    if model_id.startswith("openai:"):
        return HOSTED
    name, sep, rest = model_id.partition(":")
    if sep and "/" not in name and rest and not rest.startswith("/"):
        return LICENCES.get(rest)
    return LICENCES.get(model_id)


def gated_help(model_id: str) -> str:
    """What to do when the Hub refuses a gated download: accept, log in, or run the fallback."""
    known = licence(model_id)
    terms = f" under the {known.name} licence" if known else ""
    text = (
        f"{model_id} is gated{terms}: accept its terms at https://huggingface.co/{model_id} while logged in, "
        "then `hf auth login` here (or set HF_TOKEN)"
    )
    if known and known.fallback:
        text += f"; or run without it: {known.fallback}"
    return text
