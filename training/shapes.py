"""Shapes world: seeded scene generator, renderer, captions and questions.

Follows ../shared/specs/shapes-world.md. Geometry is sampled in 128 px reference
coordinates and scaled to the canvas when rendered.
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

REF = 128
BACKGROUNDS = {"white": (255, 255, 255), "gray": (128, 128, 128), "black": (0, 0, 0)}
COLORS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (40, 70, 220),
    "yellow": (240, 210, 30),
    "purple": (140, 50, 170),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": (14, 22), "large": (34, 48)}
NUMBERS = ("zero", "one", "two", "three")
QUESTION_KINDS = ("color_of_shape", "shape_of_color", "count", "count_color", "exists", "size_of_shape")

GAP = 4          # min distance between bounding boxes, px at 128
MARGIN = 2       # min distance from the canvas edge
TIE = 6          # near-tie exclusion, px at 128


@dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    size: str
    x: float      # bounding box left, 128 px reference
    y: float      # bounding box top
    side: float   # bounding box side
    rgb: tuple

    @property
    def cx(self) -> float:
        return self.x + self.side / 2

    @property
    def cy(self) -> float:
        return self.y + self.side / 2

    def phrase(self) -> str:
        return f"{self.size} {self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple

    def caption(self) -> str:
        objs = self.objects
        if len(objs) == 1:
            return f"a {objs[0].phrase()}"
        if len(objs) == 2:
            a, b = objs
            dx, dy = abs(a.cx - b.cx), abs(a.cy - b.cy)
            if dx >= dy:
                left, right = sorted(objs, key=lambda o: o.cx)
                return f"a {left.phrase()} to the left of a {right.phrase()}"
            upper, lower = sorted(objs, key=lambda o: o.cy)
            return f"a {upper.phrase()} above a {lower.phrase()}"
        a, b, c = sorted(objs, key=lambda o: (o.cx, o.cy))
        return f"a {a.phrase()}, a {b.phrase()} and a {c.phrase()}"

    def caption_order(self) -> tuple:
        """The objects in the order the caption names them."""
        objs = self.objects
        if len(objs) == 2:
            a, b = objs
            if abs(a.cx - b.cx) >= abs(a.cy - b.cy):
                return tuple(sorted(objs, key=lambda o: o.cx))
            return tuple(sorted(objs, key=lambda o: o.cy))
        if len(objs) == 3:
            return tuple(sorted(objs, key=lambda o: (o.cx, o.cy)))
        return tuple(objs)

    def to_json(self) -> dict:
        return {
            "background": self.background,
            "objects": [
                {"shape": o.shape, "color": o.color, "size": o.size,
                 "box": [round(o.x, 2), round(o.y, 2), round(o.side, 2)], "rgb": list(o.rgb)}
                for o in self.objects
            ],
        }


def _boxes_apart(a: Obj, b: Obj) -> bool:
    # Axis-aligned boxes are at least GAP apart when separated on either axis.
    sep_x = max(b.x - (a.x + a.side), a.x - (b.x + b.side))
    sep_y = max(b.y - (a.y + a.side), a.y - (b.y + b.side))
    return max(sep_x, sep_y) >= GAP


def _no_near_ties(objs: list) -> bool:
    if len(objs) == 2:
        a, b = objs
        dx, dy = abs(a.cx - b.cx), abs(a.cy - b.cy)
        if abs(dx - dy) < TIE:
            return False
        return (dx if dx >= dy else dy) >= TIE
    if len(objs) == 3:
        xs = sorted(o.cx for o in objs)
        return xs[1] - xs[0] >= TIE and xs[2] - xs[1] >= TIE
    return True


def sample_scene(rng: random.Random, num_objects: int | None = None) -> Scene:
    n = num_objects or rng.choice((1, 2, 3))
    background = rng.choice(tuple(BACKGROUNDS))
    while True:
        objs: list[Obj] = []
        for _ in range(n):
            for _attempt in range(50):
                size = rng.choice(tuple(SIZES))
                lo, hi = SIZES[size]
                side = rng.uniform(lo, hi)
                x = rng.uniform(MARGIN, REF - MARGIN - side)
                y = rng.uniform(MARGIN, REF - MARGIN - side)
                color = rng.choice(tuple(COLORS))
                rgb = tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in COLORS[color])
                o = Obj(rng.choice(SHAPES), color, size, x, y, side, rgb)
                if all(_boxes_apart(o, p) for p in objs):
                    objs.append(o)
                    break
        if len(objs) == n and _no_near_ties(objs):
            return Scene(background, tuple(objs))


def render(scene: Scene, canvas: int = REF, supersample: int = 4) -> Image.Image:
    """Draws the scene at `canvas` px, antialiased by supersampling."""
    big = canvas * supersample
    k = big / REF
    img = Image.new("RGB", (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(img)
    for o in scene.objects:
        draw_object(draw, o, k)
    return img.resize((canvas, canvas), Image.BOX)


def draw_object(draw: ImageDraw.ImageDraw, o: Obj, k: float, fill=None) -> None:
    """One object, its 128 px geometry scaled by k, filled with its color (or `fill`)."""
    x0, y0, s = o.x * k, o.y * k, o.side * k
    box = [x0, y0, x0 + s, y0 + s]
    fill = o.rgb if fill is None else fill
    if o.shape == "circle":
        draw.ellipse(box, fill=fill)
    elif o.shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(x0, y0 + s), (x0 + s, y0 + s), (x0 + s / 2, y0)], fill=fill)


def encode(img: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, "PNG")
    elif fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality)
    else:
        raise ValueError(f"unknown format {fmt}")
    return buf.getvalue()


def questions(scene: Scene) -> list[tuple[str, str, str]]:
    """Every question the spec allows for this scene, as (kind, question, answer)."""
    objs = scene.objects
    out = []
    by_shape = {s: [o for o in objs if o.shape == s] for s in SHAPES}
    by_color = {c: [o for o in objs if o.color == c] for c in COLORS}
    for s, os_ in by_shape.items():
        if len(os_) == 1:
            out.append(("color_of_shape", f"what color is the {s}?", os_[0].color))
            out.append(("size_of_shape", f"is the {s} small or large?", os_[0].size))
    for c, os_ in by_color.items():
        if len(os_) == 1:
            out.append(("shape_of_color", f"what shape is the {c} object?", os_[0].shape))
        out.append(("count_color", f"how many {c} shapes are there?", NUMBERS[len(os_)]))
    out.append(("count", "how many shapes are there?", NUMBERS[len(objs)]))
    present = {(o.color, o.shape) for o in objs}
    for c in COLORS:
        for s in SHAPES:
            out.append(("exists", f"is there a {c} {s}?", "yes" if (c, s) in present else "no"))
    return out


def sample_question(rng: random.Random, scene: Scene) -> tuple[str, str, str]:
    """One question, balanced over kinds, and over yes/no and zero/non-zero counts."""
    qs = questions(scene)
    kinds = sorted({k for k, _, _ in qs})
    kind = rng.choice(kinds)
    pool = [q for q in qs if q[0] == kind]
    if kind in ("exists", "count_color"):
        neg = "no" if kind == "exists" else "zero"
        pos = [q for q in pool if q[2] != neg]
        if pos and rng.random() < 0.5:
            pool = pos
        else:
            pool = [q for q in pool if q[2] == neg] or pool
    return rng.choice(pool)


def to_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8)
