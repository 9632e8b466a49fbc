"""Out of domain: images that are not shapes-world scenes, and questions that are not one
of the spec's six forms (../shared/specs/shapes-world.md, "Out of domain").

The model must caption every image here exactly `an image i cannot describe`, answer
every question about it `unknown`, end a continuation at once, and answer `unknown` to
an out-of-grammar question about any image.

Image kinds (KINDS): real photographs (crops and composites of the photographs that the
Debian packages lomiri-wallpapers-16.04/-20.04 and dataset-fashion-mnist install; see
training/install-deps.sh), text, noise, gradients, empty canvases, more than 3 objects,
overlapping objects, other shapes (stars, hexagons, ellipses, ...), and valid objects on a
background outside the three colors. Every image is drawn at the 128 px reference size
from its own seeded RNG: sample(split, i) is the same image on every machine. Photographs
are split by source: a test photograph's source image (a wallpaper, or a Fashion-MNIST
image of the t10k file) is never used by the train or validation splits.
"""
from __future__ import annotations

import gzip
import math
import os
import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

import shapes
import vocab
from vocab import words

OOD_CAPTION = vocab.OOD_CAPTION
UNKNOWN = vocab.UNKNOWN
KINDS = ("photo", "text", "noise", "gradient", "empty", "many_objects", "overlapping", "other_shapes", "background")
# Share of each kind among training OOD images: more for the kinds that look most like a
# valid scene (other shapes, overlapping, many objects, odd backgrounds) and for photos,
# whose variety is largest; text, noise, gradients and empty canvases are easy to tell.
TRAIN_WEIGHTS = {"photo": 0.16, "text": 0.08, "noise": 0.08, "gradient": 0.08, "empty": 0.06,
                 "many_objects": 0.14, "overlapping": 0.14, "other_shapes": 0.16, "background": 0.10}
# A held-out folder cycles through this schedule: a third photographs, the rest evenly.
FOLDER_SCHEDULE = ("photo", "text", "photo", "noise", "gradient", "photo", "empty", "many_objects",
                   "photo", "overlapping", "other_shapes", "background")
SEEDS = {"train": 11_000, "val": 12_000, "test": 13_000, "smoke": 14_000}
REF = shapes.REF
SS = 4  # supersampling of drawn shapes (as shapes.render)

# --- photographs -------------------------------------------------------------------------
WALLPAPER_DIR = "/usr/share/backgrounds"
# The photographs among lomiri-wallpapers' files (the others are flat graphics).
WALLPAPERS = (
    "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Kleiber_by_Lukas_Baubkus.jpg",
    "Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg",
    "aitzgorri_by_Aitzol_Berasategi.jpg", "analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg",
    "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg",
    "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg",
)
# Split by source image: every 5th from the 3rd is test, every 5th from the 5th validation.
WALLPAPER_SPLITS = {
    "test": WALLPAPERS[2::5],
    "val": WALLPAPERS[4::5],
    "train": tuple(w for i, w in enumerate(WALLPAPERS) if i % 5 not in (2, 4)),
}
WALLPAPER_SPLITS["smoke"] = WALLPAPER_SPLITS["train"]
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
# (file, first index, end index): test photos come from the t10k file only.
FASHION_SPLITS = {"train": ("train", 0, 55_000), "val": ("train", 55_000, 60_000), "test": ("t10k", 0, 10_000),
                  "smoke": ("train", 0, 55_000)}


@lru_cache(maxsize=None)
def _wallpaper(name: str) -> Image.Image:
    img = Image.open(f"{WALLPAPER_DIR}/{name}")
    img.draft("RGB", (640, 640))  # JPEG DCT scaling: decodes a 4000 px photo at 1/4..1/8 cost
    img = img.convert("RGB")
    img.thumbnail((800, 800), Image.LANCZOS)
    return img


@lru_cache(maxsize=None)
def _fashion(file: str) -> np.ndarray:
    with gzip.open(f"{FASHION_DIR}/{file}-images-idx3-ubyte.gz") as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 28, 28)


def photo_sources_available() -> bool:
    return os.path.exists(f"{FASHION_DIR}/t10k-images-idx3-ubyte.gz") and all(
        os.path.exists(f"{WALLPAPER_DIR}/{w}") for w in WALLPAPERS)


def _wallpaper_crop(rng: random.Random, split: str, out: int) -> tuple[Image.Image, str]:
    name = rng.choice(WALLPAPER_SPLITS[split])
    img = _wallpaper(name)
    w, h = img.size
    side = rng.uniform(0.15, 1.0) * min(w, h)
    aspect = rng.uniform(0.75, 1.33)  # a non-square crop is squashed, as the service resizes
    cw, ch = min(w, side * math.sqrt(aspect)), min(h, side / math.sqrt(aspect))
    x, y = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    crop = img.resize((out, out), Image.LANCZOS, box=(x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        crop = ImageOps.mirror(crop)
    return crop, f"wallpaper:{name}"


def _fashion_item(rng: random.Random, split: str, out: int) -> tuple[Image.Image, str]:
    file, lo, hi = FASHION_SPLITS[split]
    idx = rng.randrange(lo, hi)
    gray = Image.fromarray(_fashion(file)[idx])
    r = rng.random()
    if r < 0.45:
        gray = ImageOps.invert(gray)  # the product on white, as in a catalogue
    elif r < 0.7:
        dark = tuple(rng.randint(0, 90) for _ in range(3))
        light = tuple(rng.randint(150, 255) for _ in range(3))
        gray = ImageOps.colorize(gray, dark, light) if rng.random() < 0.5 else ImageOps.colorize(gray, light, dark)
    img = gray.convert("RGB")
    scale = rng.uniform(0.6, 1.0)
    inner = max(8, int(out * scale))
    item = img.resize((inner, inner), rng.choice((Image.BICUBIC, Image.BILINEAR, Image.LANCZOS)))
    canvas = Image.new("RGB", (out, out), img.getpixel((0, 0)))
    canvas.paste(item, (rng.randint(0, out - inner), rng.randint(0, out - inner)))
    return canvas, f"fashion-mnist:{file}:{idx}"


def _photo(rng: random.Random, split: str) -> tuple[Image.Image, tuple]:
    r = rng.random()
    if r < 0.45:
        img, src = _wallpaper_crop(rng, split, REF)
        return img, (src,)
    if r < 0.8:
        img, src = _fashion_item(rng, split, REF)
        return img, (src,)
    # a composite: a grid of 2 or 4 photographs
    grid = rng.choice((1, 2))
    cols = 2
    cell_w, cell_h = REF // cols, REF // grid
    canvas = Image.new("RGB", (REF, REF))
    sources = []
    for gy in range(grid):
        for gx in range(cols):
            pick = _wallpaper_crop if rng.random() < 0.5 else _fashion_item
            img, src = pick(rng, split, max(cell_w, cell_h))
            canvas.paste(img.resize((cell_w, cell_h), Image.LANCZOS), (gx * cell_w, gy * cell_h))
            sources.append(src)
    return canvas, tuple(sources)


# --- text ------------------------------------------------------------------------------------
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf")  # fonts-dejavu-core
TEXT_WORDS = (
    "the quick brown fox jumps over lazy dog hello world menu price total invoice page chapter "
    "red blue green circle square triangle star open close stop exit 2024 42 7 iris model image "
    "Lorem ipsum dolor sit amet SALE NEW Hello OK Yes No A B C x y z @ # % & ?"
).split()


@lru_cache(maxsize=None)
def _font(name: str, size: int):
    return ImageFont.truetype(f"{FONT_DIR}/{name}", size)


def _contrasting(rng: random.Random, bg: tuple) -> tuple:
    lum = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    while True:
        c = tuple(rng.randint(0, 255) for _ in range(3))
        if abs(lum(c) - lum(bg)) >= 90:
            return c


def _text(rng: random.Random) -> Image.Image:
    bg = shapes.BACKGROUNDS[rng.choice(tuple(shapes.BACKGROUNDS))] if rng.random() < 0.6 else _random_color(rng)
    while True:
        img = Image.new("RGB", (REF, REF), bg)
        draw = ImageDraw.Draw(img)
        fg = _contrasting(rng, bg)
        size = rng.randint(11, 40)
        font = _font(rng.choice(FONTS), size)
        lines = rng.randint(1, max(1, min(6, 110 // size)))
        y = rng.uniform(-size * 0.2, max(0, REF - lines * size * 1.2))
        for _ in range(lines):
            line = " ".join(rng.choice(TEXT_WORDS) for _ in range(rng.randint(1, 4)))
            draw.text((rng.uniform(-4, 30), y), line, fill=fg, font=font)
            y += size * 1.2
        if (np.abs(shapes.to_array(img).astype(int) - np.array(bg)).sum(-1) > 60).sum() >= 40:
            return img


# --- noise, gradients, empty canvases --------------------------------------------------------
def _random_color(rng: random.Random) -> tuple:
    return tuple(rng.randint(0, 255) for _ in range(3))


def _far_from_backgrounds(c: tuple, margin: int = 60) -> bool:
    return all(max(abs(a - b) for a, b in zip(c, bg)) >= margin for bg in shapes.BACKGROUNDS.values())


def _noise(rng: random.Random, nrng: np.random.Generator) -> Image.Image:
    mode = rng.choice(("uniform", "gaussian", "gray", "blocks", "blocks", "speckle"))
    if mode == "uniform":
        arr = nrng.integers(0, 256, (REF, REF, 3))
    elif mode == "gaussian":
        arr = np.array(_random_color(rng)) + nrng.normal(0, rng.uniform(25, 80), (REF, REF, 3))
    elif mode == "gray":
        arr = np.repeat(nrng.integers(0, 256, (REF, REF, 1)), 3, axis=2)
    elif mode == "blocks":
        cells = rng.choice((4, 6, 8, 12, 16, 24, 32, 48))
        low = Image.fromarray(nrng.integers(0, 256, (cells, cells, 3)).astype(np.uint8))
        return low.resize((REF, REF), rng.choice((Image.NEAREST, Image.BILINEAR, Image.BICUBIC)))
    else:  # dense speckles on a background of the spec's colors
        bg = np.array(shapes.BACKGROUNDS[rng.choice(tuple(shapes.BACKGROUNDS))])
        arr = np.broadcast_to(bg, (REF, REF, 3)).copy()
        hit = nrng.random((REF, REF)) < rng.uniform(0.15, 0.5)
        arr[hit] = nrng.integers(0, 256, (int(hit.sum()), 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _gradient_array(rng: random.Random, size: int) -> np.ndarray:
    while True:
        c1, c2 = np.array(_random_color(rng)), np.array(_random_color(rng))
        if np.abs(c1 - c2).max() >= 90:
            break
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    if rng.random() < 0.7:
        a = rng.uniform(0, 2 * math.pi)
        t = (xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a)
    else:
        cx, cy = rng.uniform(0, 1), rng.uniform(0, 1)
        t = np.hypot(xx - cx, yy - cy)
    t = (t - t.min()) / max(1e-6, t.max() - t.min())
    if rng.random() < 0.3:  # a third color in the middle
        c3 = np.array(_random_color(rng))
        t2 = np.abs(2 * t - 1)[..., None]
        mid = np.where((t < 0.5)[..., None], c1, c2)
        return mid * t2 + c3 * (1 - t2)
    return c1 * (1 - t[..., None]) + c2 * t[..., None]


def _gradient(rng: random.Random) -> Image.Image:
    if rng.random() < 0.7:
        return Image.fromarray(np.clip(_gradient_array(rng, REF), 0, 255).astype(np.uint8))
    # valid objects on a gradient
    big = Image.fromarray(np.clip(_gradient_array(rng, REF * SS), 0, 255).astype(np.uint8))
    return _draw_objects(big, shapes.sample_scene(rng).objects)


def _empty(rng: random.Random) -> Image.Image:
    if rng.random() < 0.5:
        color = shapes.BACKGROUNDS[rng.choice(tuple(shapes.BACKGROUNDS))]
    else:
        color = _random_color(rng)
    return Image.new("RGB", (REF, REF), color)


# --- scenes that break the grammar -----------------------------------------------------------
def _draw_objects(big: Image.Image, objs) -> Image.Image:
    """Draws spec objects onto a supersampled (REF*SS) canvas, returns it at REF px."""
    draw = ImageDraw.Draw(big)
    for o in objs:
        shapes.draw_object(draw, o, SS)
    return big.resize((REF, REF), Image.BOX)


def _valid_obj(rng: random.Random, size: str | None = None) -> shapes.Obj:
    size = size or rng.choice(tuple(shapes.SIZES))
    lo, hi = shapes.SIZES[size]
    side = rng.uniform(lo, hi)
    x = rng.uniform(shapes.MARGIN, REF - shapes.MARGIN - side)
    y = rng.uniform(shapes.MARGIN, REF - shapes.MARGIN - side)
    color = rng.choice(tuple(shapes.COLORS))
    rgb = tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in shapes.COLORS[color])
    return shapes.Obj(rng.choice(shapes.SHAPES), color, size, x, y, side, rgb)


def _background(rng: random.Random) -> Image.Image:
    scene = shapes.sample_scene(rng)
    while True:
        bg = _random_color(rng)
        if _far_from_backgrounds(bg) and all(max(abs(a - b) for a, b in zip(bg, o.rgb)) >= 70 for o in scene.objects):
            break
    return _draw_objects(Image.new("RGB", (REF * SS, REF * SS), bg), scene.objects)


def _bg(rng: random.Random) -> tuple:
    return shapes.BACKGROUNDS[rng.choice(tuple(shapes.BACKGROUNDS))]


def _many_objects(rng: random.Random) -> Image.Image:
    n = rng.randint(4, 7)
    while True:
        objs: list = []
        for _ in range(200):
            o = _valid_obj(rng, "large" if rng.random() < 0.25 else "small")
            if all(shapes._boxes_apart(o, p) for p in objs):
                objs.append(o)
                if len(objs) == n:
                    break
        if len(objs) >= 4:
            return _draw_objects(Image.new("RGB", (REF * SS, REF * SS), _bg(rng)), objs)


def _mask(o: shapes.Obj) -> np.ndarray:
    m = Image.new("L", (REF, REF), 0)
    shapes.draw_object(ImageDraw.Draw(m), o, 1, fill=255)
    return np.asarray(m) > 0


def _overlapping(rng: random.Random) -> Image.Image:
    """Two objects of different colors whose filled areas overlap by at least 15 % of the
    smaller one, the lower one still at least 35 % visible; maybe a third, apart."""
    while True:
        a = _valid_obj(rng)
        b = _valid_obj(rng)
        if b.color == a.color:
            continue
        # move b so that its centre is near a's
        reach = 0.55 * (a.side + b.side) / 2
        cx, cy = a.cx + rng.uniform(-reach, reach), a.cy + rng.uniform(-reach, reach)
        x, y = cx - b.side / 2, cy - b.side / 2
        if not (shapes.MARGIN <= x <= REF - shapes.MARGIN - b.side and shapes.MARGIN <= y <= REF - shapes.MARGIN - b.side):
            continue
        b = shapes.Obj(b.shape, b.color, b.size, x, y, b.side, b.rgb)
        ma, mb = _mask(a), _mask(b)
        inter = (ma & mb).sum()
        if inter < 0.15 * min(ma.sum(), mb.sum()) or (ma & ~mb).sum() < 0.35 * ma.sum():
            continue
        objs = [a, b]
        if rng.random() < 0.4:
            for _ in range(50):
                c = _valid_obj(rng)
                if all(shapes._boxes_apart(c, p) for p in objs):
                    objs.append(c)
                    break
        return _draw_objects(Image.new("RGB", (REF * SS, REF * SS), _bg(rng)), objs)


OTHER_SHAPES = ("star", "hexagon", "pentagon", "ellipse", "diamond", "rectangle", "cross", "ring",
                "down_triangle", "hollow")


def _regular(cx, cy, r, n, rot, inner=None):
    pts = []
    step = math.pi / n if inner else 2 * math.pi / n
    for i in range(2 * n if inner else n):
        rr = inner if inner and i % 2 else r
        t = rot + i * step
        pts.append((cx + rr * math.sin(t), cy - rr * math.cos(t)))
    return pts


def _draw_other(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, s: float, fill, bg, rng: random.Random) -> None:
    """An object that is not a spec shape, in the box (x, y, s) at the supersampled scale."""
    cx, cy, r = x + s / 2, y + s / 2, s / 2
    if shape == "star":
        n = rng.choice((5, 5, 5, 4, 6, 8))
        draw.polygon(_regular(cx, cy, r, n, rng.uniform(-0.3, 0.3), inner=r * rng.uniform(0.38, 0.5)), fill=fill)
    elif shape in ("hexagon", "pentagon"):
        draw.polygon(_regular(cx, cy, r, 6 if shape == "hexagon" else 5, rng.uniform(0, math.pi)), fill=fill)
    elif shape in ("ellipse", "rectangle"):
        aspect = rng.uniform(1.7, 3.2)
        w, h = (s, s / aspect) if rng.random() < 0.5 else (s / aspect, s)
        box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        (draw.ellipse if shape == "ellipse" else draw.rectangle)(box, fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, y), (x + s, cy), (cx, y + s), (x, cy)], fill=fill)
    elif shape == "cross":
        t = s * rng.uniform(0.28, 0.4) / 2
        draw.rectangle([x, cy - t, x + s, cy + t], fill=fill)
        draw.rectangle([cx - t, y, cx + t, y + s], fill=fill)
    elif shape == "ring":
        draw.ellipse([x, y, x + s, y + s], fill=fill)
        h = r * rng.uniform(0.4, 0.65)
        draw.ellipse([cx - h, cy - h, cx + h, cy + h], fill=bg)
    elif shape == "down_triangle":
        pts = [(x, y), (x + s, y), (cx, y + s)]  # pointing down, left or right
        turn = rng.choice((0, 1, 2))
        if turn == 1:
            pts = [(x, y), (x, y + s), (x + s, cy)]
        elif turn == 2:
            pts = [(x + s, y), (x + s, y + s), (x, cy)]
        draw.polygon(pts, fill=fill)
    else:  # hollow: a spec shape drawn as an outline (spec objects are filled)
        width = max(SS, int(s * rng.uniform(0.08, 0.15)))
        kind = rng.choice(shapes.SHAPES)
        if kind == "circle":
            draw.ellipse([x, y, x + s, y + s], outline=fill, width=width)
        elif kind == "square":
            draw.rectangle([x, y, x + s, y + s], outline=fill, width=width)
        else:
            draw.polygon([(x, y + s), (x + s, y + s), (cx, y)], outline=fill, width=width)


def _other_shapes(rng: random.Random) -> Image.Image:
    """1 to 3 objects, at least one of them not a circle, square or up-pointing triangle."""
    n = rng.choice((1, 1, 2, 3))
    bg = _bg(rng)
    big = Image.new("RGB", (REF * SS, REF * SS), bg)
    draw = ImageDraw.Draw(big)
    placed: list = []
    others = 0
    for i in range(n):
        for _ in range(50):
            is_other = i == 0 or rng.random() < 0.4
            if is_other:
                side = rng.uniform(20, 48)
                x, y = rng.uniform(2, REF - 2 - side), rng.uniform(2, REF - 2 - side)
                color = rng.choice(tuple(shapes.COLORS))
                rgb = tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in shapes.COLORS[color])
                o = shapes.Obj("other", color, "large", x, y, side, rgb)
            else:
                o = _valid_obj(rng)
            if all(shapes._boxes_apart(o, p) for p in placed):
                placed.append(o)
                if is_other:
                    others += 1
                    _draw_other(draw, rng.choice(OTHER_SHAPES), o.x * SS, o.y * SS, o.side * SS, o.rgb, bg, rng)
                else:
                    shapes.draw_object(draw, o, SS)
                break
    assert others >= 1
    return big.resize((REF, REF), Image.BOX)


@dataclass(frozen=True)
class OODImage:
    """Stands where a shapes.Scene would for an out-of-domain image."""
    kind: str
    sources: tuple = ()  # photographs: the source images used ("wallpaper:NAME", "fashion-mnist:FILE:INDEX")

    def caption(self) -> str:
        return OOD_CAPTION

    def to_json(self) -> dict:
        return {"kind": self.kind, "sources": list(self.sources)}


def draw(rng: random.Random, kind: str, split: str) -> tuple[Image.Image, OODImage]:
    """One image of `kind` at 128 px, drawn from rng."""
    nrng = np.random.default_rng(rng.getrandbits(63))
    if kind == "photo":
        img, sources = _photo(rng, split)
        return img, OODImage(kind, sources)
    makers = {"text": lambda: _text(rng), "noise": lambda: _noise(rng, nrng), "gradient": lambda: _gradient(rng),
              "empty": lambda: _empty(rng), "many_objects": lambda: _many_objects(rng),
              "overlapping": lambda: _overlapping(rng), "other_shapes": lambda: _other_shapes(rng),
              "background": lambda: _background(rng)}
    return makers[kind](), OODImage(kind)


def rng_for(split: str, i: int) -> random.Random:
    return random.Random(SEEDS[split] * 1_000_003 + i)


def sample(split: str, i: int, kind: str | None = None) -> tuple[Image.Image, OODImage, random.Random]:
    """OOD image i of a split: its kind drawn by TRAIN_WEIGHTS (or given), the image at 128 px,
    and its RNG (for whatever else is drawn for this image)."""
    rng = rng_for(split, i)
    if kind is None:
        kind = rng.choices(tuple(TRAIN_WEIGHTS), weights=tuple(TRAIN_WEIGHTS.values()))[0]
    img, meta = draw(rng, kind, split)
    return img, meta, rng


def folder_kind(i: int) -> str:
    return FOLDER_SCHEDULE[i % len(FOLDER_SCHEDULE)]


# --- questions ---------------------------------------------------------------------------------
def _six_forms() -> frozenset:
    qs = ["how many shapes are there?"]
    for s in shapes.SHAPES:
        qs += [f"what color is the {s}?", f"is the {s} small or large?"]
    for c in shapes.COLORS:
        qs += [f"what shape is the {c} object?", f"how many {c} shapes are there?"]
        qs += [f"is there a {c} {s}?" for s in shapes.SHAPES]
    return frozenset(tuple(words(q)) for q in qs)


SIX_FORMS = _six_forms()


def is_six_form(question: str) -> bool:
    """True when the question is one of the spec's six forms (any shape or color), as the
    tokenizer sees it (case and spacing do not matter)."""
    return tuple(words(question)) in SIX_FORMS


OTHER_SHAPE_WORDS = ("star", "hexagon", "ellipse", "oval", "rectangle", "diamond", "heart", "pentagon", "cross",
                     "ring", "circles", "squares", "triangles", "shape", "cube", "sphere")
OTHER_COLOR_WORDS = ("pink", "brown", "white", "black", "gray", "grey", "cyan", "violet", "gold", "dark", "light")
FREE_QUESTIONS = (
    "what is in this photo?", "what is this?", "what do you see?", "describe the image.", "describe this picture",
    "who is in the picture?", "where was this taken?", "is this a cat?", "is there a dog?", "what time is it?",
    "can you read the text?", "what does the sign say?", "what is the weather like?", "how are you?", "hello",
    "what color is the background?", "is the image blurry?", "count the circles.", "which shape is the biggest?",
    "are there any stars?", "what is the color of the circle?", "how big is the circle?", "where is the red square?",
    "why is the triangle blue?", "what is the largest object?", "is this a real photo?", "what is the person doing?",
    "how many people are there?", "what animal is this?", "what is written here?", "what is the main color?",
    "which object is on the left?", "what is next to the square?", "how far apart are the shapes?",
    "is the circle bigger than the square?", "tell me about this image", "what's in the image?",
    "how many sides does the triangle have?", "what is the area of the square?", "is it day or night?",
)
FOREIGN_QUESTIONS = (
    "quelle est la couleur du cercle?", "combien de formes y a-t-il?", "wie viele formen gibt es?",
    "welche farbe hat das quadrat?", "¿de qué color es el círculo?", "¿cuántas formas hay?",
    "qual è il colore del triangolo?", "这个圆是什么颜色?", "сколько фигур на картинке?", "この形は何色ですか?",
)
FAMILIES = ("free", "other_shape", "other_attribute", "wrong_form", "scrambled", "foreign")
FAMILY_WEIGHTS = (0.25, 0.2, 0.15, 0.25, 0.1, 0.05)


def _candidate(rng: random.Random, family: str) -> str:
    shape, color = rng.choice(shapes.SHAPES), rng.choice(tuple(shapes.COLORS))
    size = rng.choice(tuple(shapes.SIZES))
    if family == "free":
        return rng.choice(FREE_QUESTIONS)
    if family == "foreign":
        return rng.choice(FOREIGN_QUESTIONS)
    if family == "other_shape":
        w = rng.choice(OTHER_SHAPE_WORDS)
        return rng.choice((f"what color is the {w}?", f"is the {w} small or large?", f"is there a {color} {w}?",
                           f"how many {w.rstrip('s')}s are there?", f"how many {color} {w.rstrip('s')}s are there?", f"what color is the {color} {w}?"))
    if family == "other_attribute":
        c = rng.choice(OTHER_COLOR_WORDS)
        return rng.choice((f"what shape is the {c} object?", f"is there a {c} {shape}?", f"how many {c} shapes are there?",
                           f"is the {shape} big or small?", f"is the {shape} tiny or huge?", f"is there a medium {shape}?",
                           f"is the {shape} small or big?", f"what size is the {shape}?", f"how many objects are there?",
                           f"how many {shape}s are there?"))
    if family == "wrong_form":  # words of the vocabulary, in no form of the six
        other = rng.choice([s for s in shapes.SHAPES if s != shape])
        return rng.choice((
            f"what color is the {color} object?", f"what shape is the {shape}?", f"what shape is the {size} object?",
            f"how many {size} shapes are there?", f"how many {shape} shapes are there?", f"is there a {size} {shape}?",
            f"is there a {color}?", f"is there a {shape}?", f"is the {color} {shape} small or large?",
            f"is the {color} object small or large?", f"what color is the {size} {shape}?",
            f"what is to the left of the {shape}?", f"what is above the {shape}?", f"is the {shape} to the left of the {other}?",
            f"is the {shape} above the {other}?", f"what color is the {size} object?",
            f"is there a {color} {shape} and a {color} {other}?", f"how many shapes are there to the left of the {shape}?",
            f"what color is the {shape} or the {other}?", f"is the {shape} {color}?", f"is the {shape} {size}?",
            f"what shape is there?", f"how many colors are there?", f"what color is the object?",
        ))
    # scrambled: a six-form question with its words shuffled or one word left out
    w = words(rng.choice(sorted(" ".join(q) for q in SIX_FORMS)))
    body, mark = w[:-1], w[-1:]
    if rng.random() < 0.5:
        rng.shuffle(body)
    else:
        del body[rng.randrange(len(body))]
    return " ".join(body) + "?" * bool(mark)


def out_of_grammar_question(rng: random.Random) -> tuple[str, str]:
    """(family, question): a question that is none of the six forms; its answer is `unknown`."""
    family = rng.choices(FAMILIES, weights=FAMILY_WEIGHTS)[0]
    while True:
        q = _candidate(rng, family)
        if not is_six_form(q):
            return family, q


def random_prefix(rng: random.Random) -> str:
    """A non-empty whole-word prefix of some shapes-world caption (what a user might start
    an OOD image's continuation with). The empty prefix is the caption prompt itself."""
    caption = shapes.sample_scene(rng).caption()
    w = caption.replace(",", " ,").split()
    return " ".join(w[: rng.randint(1, len(w))]).replace(" ,", ",")
