"""Run an editor over evaluation samples and score every output (metrics.py); report.py writes it up.

chains = load_chains(Path("MagicBrush/data"))
records = evaluate(editor, samples(chains, "single"), Scorers(clip, dino), Path("report/"), seed=0)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..core.errors import InvalidInputError, LassoError, TargetNotFoundError
from ..imaging import write_atomic
from . import metrics
from .data import Sample, Turn, decoded, open_image, output_names

if TYPE_CHECKING:
    from ..pipeline.editor import Editor
    from .data import StoredOutputs

THUMB = 256  # the contact sheet's pictures, longest side


def own_folders(out: Path, contain: bool = False) -> None:
    """out/images, out/outputs and out/plots (and out/contained with `contain`), made as folders of
    the run's own: one that is a link (to somewhere outside `out`, or anywhere) is refused, as the
    run would write through it."""
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "outputs", "plots", *(("contained",) if contain else ())):
        where = out / sub
        if where.is_symlink() or (where.exists() and not where.is_dir()):
            raise InvalidInputError(
                f"{where} is a link or a file: lasso eval writes its pictures into folders of its own; "
                "remove it or choose another output folder (-o)"
            )
        where.mkdir(exist_ok=True)


def _write(img: Image.Image, path: Path, **params: Any) -> None:
    """`img` saved at `path` through a temporary file and a rename: a link already at `path` is
    replaced, never written through (to a file outside the output folder)."""
    write_atomic(path, lambda f: img.save(f, **params))


def _thumb(img: Image.Image, path: Path) -> str:
    img = img.convert("RGB").copy()
    img.thumbnail((THUMB, THUMB), Image.Resampling.BICUBIC)
    _write(img, path, format="JPEG", quality=88)
    return path.name


def evaluate(
    editor: Editor | None,
    items: list[Sample],
    scorers: metrics.Scorers,
    out: Path,
    seed: int = 0,
    edit_kwargs: dict | None = None,
    on_sample: Callable[[dict], None] | None = None,
    stored: StoredOutputs | None = None,
    contain: bool = False,
) -> list[dict]:
    """Edit and score each sample; save its pictures under out/images and out/outputs. Returns one
    record per sample: id (the dataset's, as it is) and name (what its files are called:
    data.output_names, safe, unique and capped, so every file stays under `out` whatever the id),
    instruction(s), the metrics (None where they do not apply), whether the target was not found,
    seconds per edit, and the picture names. A sample that cannot be read, edited or scored (a
    broken row, an undecodable image, a refused instruction) is its record's error and the run goes
    on. `stored` (data.StoredOutputs): score another editor's outputs instead of editing (single
    turn; Lasso's own mask metrics are then not there; `editor` may then be None). `contain` (with
    `stored`): each output also put back into its input (_contained), scored the same way, as the
    record's "contained"; an output of another size than its input is then scored as given where
    the sizes allow (not outside the mask) instead of being the sample's error."""
    contain = contain and stored is not None
    own_folders(out, contain)
    records = []
    for sample, name in zip(items, output_names(items)):
        try:
            rec, pictures = _one(
                editor, sample, scorers, seed, edit_kwargs or {}, _blank(sample, name), stored, contain
            )
            if contain and pictures is not None:
                rec["contained"], done = _contained(sample, pictures["output"], scorers)
                pictures |= {"contained": done} if done is not None else {}
        except Exception as e:  # noqa: BLE001 - one bad sample is recorded, never fatal (as in lasso batch)
            rec, pictures = _blank(sample, name) | {"error": f"{type(e).__name__}: {e}"}, None
        if pictures is not None:  # written outside the try: a full disk ends the run, it is no sample's fault
            rec["pictures"] = _save(out, name, pictures)
        records.append(rec)
        if on_sample:
            on_sample(rec)
    return records


REPORT_FILES = ("samples.jsonl", "summary.json", "summary.md", "index.html", "plots/metrics.png", "plots/worst.png")
PICTURES = ("source", "mask", "output", "target")


def written(out: Path, names: list[str], contain: bool = False) -> list[Path]:
    """Every file a run writes under `out` for samples with these output names (evaluate's pictures,
    report.write_report's files; with `contain`, the contained outputs too): what data.check_apart
    compares with the files it reads."""
    files = [out / f for f in REPORT_FILES]
    kinds = (*PICTURES, "contained") if contain else PICTURES
    for name in names:
        files += [out / "outputs" / f"{name}.png", *(out / "images" / f"{name}-{kind}.jpg" for kind in kinds)]
        files += [out / "contained" / f"{name}.png"] if contain else []
    return files


def _blank(sample: Sample, name: str) -> dict[str, Any]:
    """A sample's record before anything is known: no metric, no error."""
    return {
        "id": sample.id,
        "name": name,
        "instructions": [t.instruction for t in sample.turns],
        "turns": len(sample.turns),
        "not_found": False,
        "error": None,
        "seconds": [],
        **{k: None for k in (*metrics.METRICS, *metrics.PIE, "l1_outside", "l1_inside", "mask_iou")},
        "kind": sample.turns[-1].kind if sample.turns else None,
    }


def _save(out: Path, name: str, pictures: dict[str, Image.Image]) -> dict[str, str]:
    """The output at out/outputs/NAME.png (a contained one at out/contained/NAME.png) and the
    contact sheet's thumbnails at out/images/NAME-KIND.jpg; `name` is an output_names name, so each
    path is inside `out`. Returns the thumbnails' names."""
    _write(pictures["output"], out / "outputs" / f"{name}.png", format="PNG")
    if "contained" in pictures:
        _write(pictures["contained"], out / "contained" / f"{name}.png", format="PNG")
    return {kind: _thumb(img, out / "images" / f"{name}-{kind}.jpg") for kind, img in pictures.items()}


def _one(
    editor: Editor | None,
    sample: Sample,
    scorers: metrics.Scorers,
    seed: int,
    kwargs: dict,
    rec: dict[str, Any],
    stored: StoredOutputs | None = None,
    any_size: bool = False,
) -> tuple[dict[str, Any], dict[str, Image.Image] | None]:
    """(the sample's record, its pictures to save: None when there is nothing to show). `any_size`:
    a stored output of another size than its input is scored (its `output_size` recorded), not refused."""
    if sample.error:  # its row could not be read (load_chains(keep_going)): nothing to run
        rec["error"] = sample.error
        return rec, None
    for k, t in enumerate(sample.turns, 1):  # every pixel decoded now: a truncated file is this sample's error
        what = f"turn {k}'s" if len(sample.turns) > 1 else "its"
        decoded(t.source, f"{what} input")
        decoded(t.target, f"{what} target")
        decoded(t.mask, f"{what} mask")
    first = sample.turns[0]
    current = first.source.convert("RGB")
    mask = np.zeros((current.height, current.width), dtype=bool)
    before = current
    turns = sample.turns if stored is None else []
    if stored is not None:  # another editor's output, scored as Lasso's would be
        path = stored.find(sample, rec["name"])
        if path is None:
            rec["error"] = f"no output for {rec['name']} in {stored.folder}"
            return rec, None
        found = decoded(open_image(path, str(path)), "the stored output").convert("RGB")
        if found.size != current.size and any_size:
            rec["output_size"] = list(found.size)  # not comparable pixel for pixel: nothing outside the mask
        elif found.size != current.size:
            rec["error"] = f"{path.name} is {found.width}x{found.height}; its input is {current.width}x{current.height}"
            return rec, None
        current = found
    for k, turn in enumerate(turns):
        assert editor is not None  # None only with `stored`, which runs no turn
        before = current
        t0 = time.perf_counter()
        try:
            result = editor(np.asarray(current), turn.instruction, seed=seed, **kwargs)
        except TargetNotFoundError as e:  # scored as the unchanged picture, and counted
            rec["not_found"], rec["error"] = True, str(e)
            mask = np.zeros((current.height, current.width), dtype=bool)
            rec["seconds"].append(round(time.perf_counter() - t0, 4))
            continue
        except LassoError as e:
            rec["error"] = f"{type(e).__name__}: {e}"
            return rec, None
        rec["seconds"].append(round(time.perf_counter() - t0, 4))
        assert result.image is not None  # an evaluation never dry-runs: every edit has its picture
        current, mask = result.image.convert("RGB"), result.mask
        if k == len(sample.turns) - 1:  # Lasso's own, for the scored (last) turn, against its input
            rec["l1_outside"], rec["l1_inside"] = metrics.l1_in_out(current, before, mask)
    last = sample.turns[-1]
    pics = {"source": first.source.convert("RGB"), "output": current, "mask": _overlay(before, mask)}  # on its input
    if last.target is not None:
        pics["target"] = last.target.convert("RGB")  # converted here: _save only writes
    if last.mask is not None and stored is None:  # Lasso's mask against the dataset's (another editor's is not known)
        rec["mask_iou"] = metrics.mask_iou(mask, metrics.dataset_mask(last.mask))
    _scores(rec, last, before, current, scorers)
    return rec, pics


def _scores(
    rec: dict[str, Any], last: Turn, before: Image.Image, output: Image.Image, scorers: metrics.Scorers
) -> None:
    """`output` (RGB) scored into `rec`: against the ground truth where there is one (MagicBrush's
    metrics), and against its input `before` outside the dataset's mask where there is one of the
    output's size (PIE-Bench's), with CLIP inside against the editing prompt."""
    if last.target is not None:
        rec["l1"], rec["l2"] = metrics.distances(output, last.target)
        rec.update(scorers.score(output, last.target, last.caption))
    if last.mask is None:
        return
    truth = metrics.dataset_mask(last.mask)
    if truth.shape == (output.height, output.width) == (before.height, before.width):  # outside its mask
        rec.update(metrics.preservation(before, output, truth))
        lpips = getattr(scorers, "lpips", None)
        if lpips is not None:
            rec["lpips_outside"] = lpips.outside(before, output, ~truth)
        if last.kind is not None and last.caption:
            rec.update(metrics.clip_scores(scorers, output, truth, last.caption))


CONTAINED = ("alignment", "colour", "region_px", "region_from", "warnings")  # contain's report, kept


def _contained(
    sample: Sample, given: Image.Image, scorers: metrics.Scorers
) -> tuple[dict[str, Any], Image.Image | None]:
    """Another editor's output `given` (RGB) put back into its input by pipeline.contain (aligned on
    it, its colour drift undone, pasted inside the dataset's mask, or where it changed without one),
    and scored as the given one is: (its record, with contain's report and the seconds it took; the
    contained picture). An output contain refuses (not an edit of its input) is the record's error,
    and no picture: counted, never fatal."""
    from ..pipeline.contain import contain

    last = sample.turns[-1]
    source = sample.turns[0].source.convert("RGB")
    rec = {k: v for k, v in _blank(sample, "").items() if k not in ("id", "name", "instructions", "turns")}
    rec |= dict.fromkeys(CONTAINED)
    mask = metrics.dataset_mask(last.mask) if last.mask is not None else None
    t0 = time.perf_counter()
    try:
        result, report = contain(np.asarray(source), np.asarray(given), mask=mask)
    except LassoError as e:  # InvalidInputError: not an edit of its input, or no change within the mask
        rec["error"] = str(e)
        return rec, None
    rec["seconds"].append(round(time.perf_counter() - t0, 4))
    rec |= {k: report[k] for k in CONTAINED}
    assert result.image is not None  # contain always paints
    done = result.image.convert("RGB")
    _scores(rec, last, source, done, scorers)
    return rec, done


def _overlay(img: Image.Image, mask: np.ndarray) -> Image.Image:
    """Lasso's mask over the picture it edited (the last turn's input), in red."""
    a = np.asarray(img.convert("RGB")).astype(np.float32)
    a[mask] = a[mask] * 0.45 + np.array([255, 40, 80], dtype=np.float32) * 0.55
    return Image.fromarray(a.astype(np.uint8))


def aggregate(records: list[dict]) -> dict[str, Any]:
    """Means of each metric over the samples it applies to, with counts, and the rates; with
    --contain, the same of the contained outputs under "contained" (their seconds: containing's)."""
    out: dict[str, Any] = {"samples": len(records)}
    for key in (*metrics.METRICS, *metrics.PIE, "l1_outside", "l1_inside", "mask_iou"):
        vals = [r[key] for r in records if r.get(key) is not None]
        out[key] = round(float(np.mean(vals)), 6) if vals else None
        out[f"{key}_n"] = len(vals)
    proofs = [r["changed_outside"] for r in records if r.get("changed_outside") is not None]
    if proofs:  # PSNR is infinite (left out of its mean) where nothing outside changed: say how often
        out["identical_outside_rate"] = round(sum(1 for c in proofs if c == 0) / len(proofs), 4)
    kinds = sorted({r["kind"] for r in records if r.get("kind")}, key=lambda k: (len(k), k))
    if kinds:  # PIE-Bench's tables are per edit type
        out["by_kind"] = {
            k: {m: _mean([r[m] for r in records if r.get("kind") == k and r.get(m) is not None]) for m in metrics.PIE}
            | {"samples": sum(1 for r in records if r.get("kind") == k)}
            for k in kinds
        }
    secs = [s for r in records for s in r["seconds"]]
    out["not_found_rate"] = round(sum(r["not_found"] for r in records) / max(1, len(records)), 4)
    out["errors"] = sum(1 for r in records if r["error"] and not r["not_found"])
    out["seconds_per_edit"] = round(float(np.mean(secs)), 4) if secs else None
    out["seconds_per_edit_median"] = round(float(np.median(secs)), 4) if secs else None
    other = sum(1 for r in records if r.get("output_size"))
    if other:  # outputs of another size than their input (--contain scores them): none outside the mask
        out["other_size"] = other
    contained = [r["contained"] for r in records if r.get("contained")]
    if contained:  # the same numbers after containment, and how many outputs could not be contained
        out["contained"] = aggregate(contained) | {"not_contained": sum(1 for c in contained if c["error"])}
    return out


def _mean(vals: list) -> float | None:
    return round(float(np.mean(vals)), 6) if vals else None
