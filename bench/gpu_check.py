"""Run the whole pipeline on CUDA with full-size `balanced`-preset architectures holding random weights.

Device and dtype bugs (fp16 on CUDA, a model on the wrong device, a CPU-only op) do not show on
the CPU. Compute does not depend on weight values, so the per-stage times are those of the real
models (the VLM is forced to answer a plan-sized 40 tokens). Models are built directly on the
GPU (docs/models.md: meta + to_empty leaves buffers as garbage) and passed to the Editor as stages.

    python bench/gpu_check.py --out bench/results/gpu_check.json

Checks: each edit completes, the output has the input's size, every pixel outside the mask is
bit-identical to the input. Prints per-stage timings.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(dtype, detector_kind: str = "owlv2"):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        LlavaConfig,
        LlavaForConditionalGeneration,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
        SamConfig,
        SamImageProcessor,
        SamModel,
        SamProcessor,
        SamVisionConfig,
    )

    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.ground.detector import Detector
    from lasso_edit.parse.llava import LlavaParser
    from lasso_edit.segment.sam import SamSegmenter
    from lasso_edit.testing.tiny import clip_tokenizer, llava_processor

    times = {}
    t = time.perf_counter()
    proc = llava_processor(image_size=336, patch_size=14)  # llava-1.5: CLIP ViT-L/14 at 336 px
    cfg = LlavaConfig()  # defaults = llava-1.5-7b (docs/models.md)
    cfg.image_token_id = proc.tokenizer.convert_tokens_to_ids("<image>")
    with torch.device("cuda"):
        vlm = LlavaForConditionalGeneration._from_config(cfg, dtype=dtype).eval()
    vlm.generation_config.pad_token_id = proc.tokenizer.pad_token_id
    vlm.generation_config.eos_token_id = None  # a random LM may stop at once; force plan-sized answers
    parser = LlavaParser(vlm, proc, model_id="llava-1.5-7b (random)", max_new_tokens=40, min_new_tokens=40)
    times["build_vlm"] = time.perf_counter() - t

    t = time.perf_counter()
    sam_cfg = SamConfig(vision_config=SamVisionConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                                      global_attn_indexes=[5, 11, 17, 23]))  # ViT-L
    with torch.device("cuda"):
        sam = SamModel._from_config(sam_cfg, dtype=dtype).eval()
    segmenter = SamSegmenter(sam, SamProcessor(image_processor=SamImageProcessor()), model_id="sam-vit-large (random)")
    times["build_sam"] = time.perf_counter() - t

    t = time.perf_counter()
    if detector_kind == "owlv2":
        with torch.device("cuda"):
            owl = Owlv2ForObjectDetection._from_config(
                Owlv2Config(vision_config={"image_size": 960, "patch_size": 16}), dtype=torch.float32).eval()
        owl_proc = Owlv2Processor(image_processor=Owlv2ImageProcessor(), tokenizer=clip_tokenizer(16))
        detector = Detector(owl, owl_proc, model_id="owlv2-base-patch16 (random)", device="cuda")
    else:  # grounding-dino-tiny: GroundingDinoConfig() defaults (Swin-T backbone, BERT-base text)
        import tempfile

        from transformers import (
            BertTokenizer,
            GroundingDinoConfig,
            GroundingDinoForObjectDetection,
            GroundingDinoImageProcessor,
            GroundingDinoProcessor,
        )

        vocab = Path(tempfile.mkdtemp()) / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "the", "car", "person"]))
        with torch.device("cuda"):
            gd = GroundingDinoForObjectDetection._from_config(GroundingDinoConfig(), dtype=torch.float32).eval()
        gd = gd.to("cuda")  # as Detector.from_pretrained does: some parameters are not made under the device context
        gd_proc = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(),
                                         tokenizer=BertTokenizer(str(vocab), model_max_length=256))
        detector = Detector(gd, gd_proc, model_id="grounding-dino-tiny (random)", device="cuda")
    times["build_detector"] = time.perf_counter() - t

    t = time.perf_counter()
    with torch.device("cuda"):
        unet = UNet2DConditionModel(  # SD 1.5 inpainting
            sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        ).to(dtype)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2, sample_size=512,
        ).to(dtype)
        text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                            num_hidden_layers=12, max_position_embeddings=77,
                                            vocab_size=49408)).to(dtype)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=clip_tokenizer(),
                                          scheduler=sched, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    inpainter = Inpainter(pipe, model_id="sd-1.5-inpainting (random)", default_steps=30)
    times["build_inpainter"] = time.perf_counter() - t
    params = {
        "vlm": sum(p.numel() for p in vlm.parameters()) / 1e6,
        "sam": sum(p.numel() for p in sam.parameters()) / 1e6,
        "unet": sum(p.numel() for p in unet.parameters()) / 1e6,
    }
    return {"vlm": parser, "segmenter": segmenter, "detector": detector, "inpainter": inpainter}, times, params


def main() -> int:
    import torch

    from lasso_edit import Editor

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/gpu_check.json")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"])
    ap.add_argument("--detector", default="owlv2", choices=["owlv2", "gdino"])
    args = ap.parse_args()
    dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    stages, build_times, params = build(dtype, args.detector)
    models = {k: v.model_id for k, v in stages.items()}
    rng = np.random.default_rng(0)
    cases = [
        ("768x512", (512, 768), "make the car red", 30),
        ("768x512", (512, 768), "remove the car", 30),
        ("768x512", (512, 768), "replace the background with a beach at sunset", 30),
        ("1024x96", (96, 1024), "remove the car and make it look like winter", 30),
        ("6000x4000 (24 MP)", (4000, 6000), "remove the car", 30),
    ]
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "dtype": args.dtype,
              "detector": args.detector,
              "python": platform.python_version(), "build_seconds": build_times, "params_million": params, "runs": []}
    import diffusers
    import transformers  # noqa: E401

    report["transformers"], report["diffusers"] = transformers.__version__, diffusers.__version__
    ok = True
    for grounder in ("auto", "vlm"):
        editor = Editor({k: (lambda v=v: v) for k, v in stages.items()}, models=models, parser="auto",
                        grounder=grounder, box_threshold=0.0, steps=30)
        for name, (h, w), instruction, steps in (cases if grounder == "auto" else cases[:1]):
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            torch.cuda.synchronize()
            t = time.perf_counter()
            res = editor(img, instruction, seed=1, steps=steps)
            torch.cuda.synchronize()
            wall = time.perf_counter() - t
            out = np.asarray(res.image)
            same_size = out.shape == img.shape
            preserved = bool((out[~res.mask] == img[~res.mask]).all())
            changed = float(res.mask.mean())
            ok &= same_size and preserved
            run = {"image": name, "instruction": instruction, "grounder": grounder, "steps": steps,
                   "plan_source": res.plan.source, "edits": [s.edit.describe() for s in res.steps],
                   "same_size": same_size, "outside_mask_bit_identical": preserved, "changed_fraction": round(changed, 4),
                   "timings": {k: round(v, 4) for k, v in res.timings.items()}, "wall": round(wall, 3),
                   "sam_encodes": stages["segmenter"].encodes}
            report["runs"].append(run)
            print(json.dumps(run), flush=True)
    report["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    report["ok"] = bool(ok)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
