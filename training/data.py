"""Datasets: augmented training images and labelled folders on disk.

Every image goes through what the service will see: a canvas of 32-256 px, PNG, JPEG or
WebP compression, then the model's preprocessing (resize to the input size, rescale,
normalize). The stored arrays are already at the model's input size.
"""
from __future__ import annotations

import io
import json
import os
import random
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import ood
import shapes

MEAN, STD = 0.5, 0.5
SPLIT_SEEDS = {"train": 1_000, "val": 2_000, "test": 3_000, "smoke": 4_000}


def resize_bilinear(arr: np.ndarray, size: int) -> np.ndarray:
    """HWC uint8 -> size x size float, bilinear without antialiasing (what sharp's affine
    resize in the service does)."""
    t = torch.from_numpy(np.ascontiguousarray(arr).copy()).permute(2, 0, 1).unsqueeze(0).float()
    if t.shape[-1] != size or t.shape[-2] != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return t[0].permute(1, 2, 0).numpy()


def to_input_size(arr: np.ndarray, size: int) -> np.ndarray:
    """HWC uint8 -> size x size HWC uint8, as the service's resize hands it on."""
    return np.clip(np.rint(resize_bilinear(arr, size)), 0, 255).astype(np.uint8)


def preprocess(arrays: np.ndarray) -> torch.Tensor:
    """[n, H, W, 3] uint8 at input size -> [n, 3, H, W] normalized float."""
    x = torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def _compressed(rng: random.Random, img: Image.Image, weights: dict[str, float]) -> Image.Image:
    """img saved in a format drawn by weight ("png", "jpeg", "webp"; quality 60-95) and read back."""
    fmt = rng.choices(tuple(weights), weights=tuple(weights.values()))[0]
    if fmt == "png":
        return img
    return Image.open(io.BytesIO(shapes.encode(img, fmt, rng.randint(60, 95)))).convert("RGB")


def _augmented(rng: random.Random, scene: shapes.Scene, size: int) -> np.ndarray:
    r = rng.random()
    if r < 0.25:
        canvas = 128
    elif r < 0.5:
        # the model's own input size: the hardest case (the spec checks 64 px JPEG q75)
        canvas = 64
    elif r < 0.6:
        canvas = 256
    else:
        canvas = rng.randint(32, 256)
    if rng.random() < 0.5 and canvas != 128:
        # rendered at the reference size, then resized by some other program
        filt = rng.choice((Image.LANCZOS, Image.LANCZOS, Image.BICUBIC, Image.BILINEAR, Image.NEAREST))
        img = shapes.render(scene, 128).resize((canvas, canvas), filt)
    else:
        img = shapes.render(scene, canvas, supersample=max(1, min(4, 512 // canvas)))
    return _as_sent(rng, img, canvas, size)


def _as_sent(rng: random.Random, img: Image.Image, canvas: int, size: int) -> np.ndarray:
    """A canvas-sized image as a client sends it (PNG/JPEG/WebP), then at the model's input size."""
    arr = shapes.to_array(_compressed(rng, img, {"png": 0.3, "jpeg": 0.5, "webp": 0.2}))
    if rng.random() < 0.25 and canvas > size:
        # an antialiased downscale, as other clients may send pre-shrunk images
        return shapes.to_array(Image.fromarray(arr).resize((size, size), Image.BILINEAR))
    return to_input_size(arr, size)


def _chunk(args):
    seed, start, count, size = args
    torch.set_num_threads(1)
    images = np.zeros((count, size, size, 3), dtype=np.uint8)
    scenes = []
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + start + i)
        scene = shapes.sample_scene(rng)
        images[i] = _augmented(rng, scene, size)
        scenes.append(scene)
    return images, scenes


def _ood_augmented(rng: random.Random, img: Image.Image, size: int) -> np.ndarray:
    """An out-of-domain image (128 px) as a client may send it: 32-256 px, resized by some
    program, PNG/JPEG/WebP (the in-domain augmentation, for an image that is not drawn
    from a scene description)."""
    r = rng.random()
    canvas = 128 if r < 0.3 else 64 if r < 0.55 else 256 if r < 0.65 else rng.randint(32, 256)
    if canvas != 128:
        filt = rng.choice((Image.LANCZOS, Image.BICUBIC, Image.BILINEAR, Image.BOX, Image.NEAREST))
        img = img.resize((canvas, canvas), filt)
    return _as_sent(rng, img, canvas, size)


def _ood_chunk(args):
    split, start, count, size = args
    torch.set_num_threads(1)
    images = np.zeros((count, size, size, 3), dtype=np.uint8)
    metas = []
    for i in range(count):
        img, meta, rng = ood.sample(split, start + i)
        images[i] = _ood_augmented(rng, img, size)
        metas.append(meta)
    return images, metas


def generate(split: str, count: int, size: int, workers: int = 2, chunk: int = 2_000, ood_count: int = 0):
    """Scenes 0..count-1 of a split, then out-of-domain images 0..ood_count-1 of it
    (ood.OODImage where a scene would be), deterministic: each image has its own seeded RNG.
    The scenes do not depend on ood_count."""
    seed = SPLIT_SEEDS[split]
    jobs = [(_chunk, (seed, s, min(chunk, count - s), size)) for s in range(0, count, chunk)]
    jobs += [(_ood_chunk, (split, s, min(chunk, ood_count - s), size)) for s in range(0, ood_count, chunk)]
    with Pool(workers) as pool:
        parts = pool.map(_run, jobs)
    return np.concatenate([p[0] for p in parts]), [s for p in parts for s in p[1]]


def _run(job):
    fn, args = job
    return fn(args)


VARIANTS = {  # name -> (canvas, format, quality)
    "png128": (128, "png", None),
    "jpeg64": (64, "jpeg", 75),
    "jpeg256": (256, "jpeg", 75),
}


FOLDER_OOD = 600  # out-of-domain images in a held-out folder: 200 photographs, 50 of each other kind
OOG_PER_SCENE = 2  # out-of-grammar questions per scene in a held-out folder


def _question_object(scene: shapes.Scene, order: tuple, kind: str, question: str):
    """Index (in caption order) of the object a question is about, or None (counts, and
    `is there ...?` when there is none)."""
    w = question.rstrip("?").split()
    if kind in ("color_of_shape", "size_of_shape"):
        match = [i for i, o in enumerate(order) if o.shape == w[-1 if kind == "color_of_shape" else 2]]
    elif kind == "shape_of_color":
        match = [i for i, o in enumerate(order) if o.color == w[-2]]
    elif kind == "exists":
        match = [i for i, o in enumerate(order) if o.color == w[-2] and o.shape == w[-1]]
    else:
        return None
    return match[0] if match else None


def _write_variants(folder: str, base: Image.Image, name: str) -> dict:
    files = {}
    for v, (canvas, fmt, q) in VARIANTS.items():
        img = base if canvas == 128 else base.resize((canvas, canvas), Image.LANCZOS)
        ext = "png" if fmt == "png" else "jpg"
        path = f"images/{v}/{name}.{ext}"
        with open(f"{folder}/{path}", "wb") as f:
            f.write(shapes.encode(img, fmt, q or 90))
        files[v] = path
    return files


def write_folder(folder: str, split: str, count: int, ood_count: int = FOLDER_OOD) -> None:
    """A labelled folder: images/<variant>/<n>.<ext> and labels.jsonl, one JSON object per
    line. Variants are the spec's quality check: the 128 px render, and the same image
    resized to 64 and 256 px as JPEG quality 75.

    Lines 0..count-1 are scenes ("domain": "in"): scene, caption, six-form questions with
    their kind and answer, a continuation, and (added fields) "objects": the objects in
    caption order, each with "bbox_128" = [x0, y0, x1, y1], its bounding box in pixels of
    the 128 px reference image (images/png128; x to the right, y down, from the image's
    top-left corner; multiply by S/128 for an S px variant); per question "object", the
    index in "objects" of the object it asks about (null for counts, or when there is
    none); "out_of_grammar": questions that are none of the six forms, answer `unknown`.
    Then ood_count out-of-domain images ("domain": "ood", "kind": one of ood.KINDS, ids
    count..): caption `an image i cannot describe`, six-form questions and out-of-grammar
    questions all answered `unknown`, a continuation whose expected text is its prefix
    (nothing added). Existing fields keep their meaning; the scenes' lines do not depend on
    ood_count."""
    seed = SPLIT_SEEDS[split]
    for v in VARIANTS:
        os.makedirs(f"{folder}/images/{v}", exist_ok=True)
    with open(f"{folder}/labels.jsonl", "w") as out:
        for i in range(count):
            rng = random.Random(seed * 1_000_003 + i)
            scene = shapes.sample_scene(rng)
            files = _write_variants(folder, shapes.render(scene, 128), f"{i:05d}")
            qs = shapes.questions(scene)
            words = scene.caption().replace(",", " ,").split()
            cut = rng.randint(0, len(words) - 1)
            prefix = " ".join(words[:cut]).replace(" ,", ",")
            # a fixed, balanced subset of questions per scene keeps the folder small
            picked = {shapes.sample_question(rng, scene) for _ in range(6)}
            order = scene.caption_order()
            extra = random.Random(seed * 1_000_003 + i + 500_000_000)  # the added fields' own RNG
            row = {
                "id": i, "domain": "in", "images": files, "caption": scene.caption(), "scene": scene.to_json(),
                "questions": [{"kind": k, "question": q, "answer": a, "object": _question_object(scene, order, k, q)}
                              for k, q, a in sorted(picked)],
                "continuation": {"prefix": prefix, "caption": scene.caption()},
                "num_possible_questions": len(qs),
                "objects": [{"phrase": o.phrase(), "shape": o.shape, "color": o.color, "size": o.size,
                             "bbox_128": [round(o.x, 2), round(o.y, 2), round(o.x + o.side, 2), round(o.y + o.side, 2)]}
                            for o in order],
                "out_of_grammar": [{"kind": "out_of_grammar", "family": f, "question": q, "answer": ood.UNKNOWN}
                                   for f, q in (ood.out_of_grammar_question(extra) for _ in range(OOG_PER_SCENE))],
            }
            out.write(json.dumps(row) + "\n")
        for j in range(ood_count):
            img, meta, rng = ood.sample(split, j, ood.folder_kind(j))
            files = _write_variants(folder, img, f"ood{j:05d}")
            picked: dict[str, str] = {}  # three different six-form questions (about random scenes)
            while len(picked) < 3:
                kind, q, _ = shapes.sample_question(rng, shapes.sample_scene(rng))
                picked[q] = kind
            prefix = ood.random_prefix(rng)
            row = {
                "id": count + j, "domain": "ood", "kind": meta.kind, "sources": list(meta.sources), "images": files,
                "caption": ood.OOD_CAPTION,
                "questions": [{"kind": k, "question": q, "answer": ood.UNKNOWN} for q, k in sorted(picked.items())],
                "continuation": {"prefix": prefix, "caption": prefix},
                "out_of_grammar": [{"kind": "out_of_grammar", "family": f, "question": q, "answer": ood.UNKNOWN}
                                   for f, q in (ood.out_of_grammar_question(rng) for _ in range(1))],
            }
            out.write(json.dumps(row) + "\n")


def load_folder_image(path: str, size: int) -> np.ndarray:
    img = Image.open(path)
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img.convert("RGBA"), mask=img.convert("RGBA").split()[-1])
        img = bg
    return to_input_size(shapes.to_array(img), size)
