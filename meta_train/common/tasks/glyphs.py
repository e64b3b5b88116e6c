"""Image classes for few-shot classification: procedurally drawn glyphs, or Omniglot's folders.

Omniglot (Lake et al. 2015) and miniImageNet cannot be downloaded here, so
:func:`glyph_dataset` draws an Omniglot-like benchmark: each class is a character made of one
to four random cubic Bezier strokes; each of its samples is the character drawn again by a
different "hand" (every control point jittered, the whole glyph rotated, scaled, sheared and
shifted, the pen's width varied), rendered anti-aliased on a 28 x 28 canvas. Classes are drawn
from seeded generators, so train, validation and test classes are disjoint by construction.

:func:`load_omniglot` reads the standard Omniglot layout for users who have it::

    ROOT/images_background/<alphabet>/<character>/<image>.png   (training classes)
    ROOT/images_evaluation/<alphabet>/<character>/<image>.png   (test classes)

Images are inverted (strokes = 1) and resized to the canvas. Both return ``uint8`` arrays
``[classes, samples, size, size]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STROKE_COUNTS = (1, 2, 3, 4)
STROKE_WEIGHTS = (0.15, 0.35, 0.35, 0.15)


def _bezier(ctrl: np.ndarray, points: int = 24) -> np.ndarray:
    """``[..., 4, 2]`` control points -> ``[..., points, 2]`` on the cubic curve."""
    t = np.linspace(0.0, 1.0, points)
    basis = np.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], axis=-1)
    return np.einsum("pk,...kd->...pd", basis, ctrl)


def draw_class(rng: np.random.Generator) -> np.ndarray:
    """One character: ``[strokes, 4, 2]`` control points in the unit square."""
    n = rng.choice(STROKE_COUNTS, p=STROKE_WEIGHTS)
    start = rng.uniform(0.15, 0.85, (n, 1, 2))
    # each stroke wanders from its start, so strokes are curves of a readable size
    steps = rng.normal(0.0, 0.22, (n, 3, 2))
    ctrl = np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1)
    return np.clip(ctrl, 0.08, 0.92)


def render(ctrl: np.ndarray, rng: np.random.Generator, size: int = 28, samples: int = 1,
           jitter: float = 0.045) -> np.ndarray:
    """``samples`` drawings of a character, ``[samples, size, size]`` float in [0, 1]
    (1 = ink), each by its own "hand"."""
    n = samples
    pts = ctrl[None] + rng.normal(0.0, jitter, (n, *ctrl.shape))
    angle = rng.uniform(-0.3, 0.3, n)
    scale = rng.uniform(0.8, 1.15, (n, 2))
    shear = rng.uniform(-0.15, 0.15, n)
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    sh = np.tile(np.eye(2), (n, 1, 1))
    sh[:, 0, 1] = shear
    a = rot @ sh @ (np.eye(2)[None] * scale[:, None, :])
    shift = rng.uniform(-0.1, 0.1, (n, 1, 1, 2))
    pts = np.einsum("nij,nskj->nski", a, pts - 0.5) + 0.5 + shift
    curve = _bezier(pts, 16)  # [n, strokes, points, 2]
    p0 = curve[:, :, :-1].reshape(n, 1, -1, 2)
    d = curve[:, :, 1:].reshape(n, 1, -1, 2) - p0
    grid = (np.arange(size) + 0.5) / size
    pix = np.stack(np.meshgrid(grid, grid, indexing="xy"), -1).reshape(1, -1, 1, 2)
    t = np.clip(((pix - p0) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-12), 0.0, 1.0)
    dist = np.linalg.norm(pix - (p0 + t[..., None] * d), axis=-1).min(-1)
    width = rng.uniform(0.03, 0.055, (n, 1))
    img = np.clip((width - dist) * size + 0.5, 0.0, 1.0)
    return img.reshape(n, size, size)


def glyph_dataset(classes: int, samples: int, seed: int, size: int = 28) -> np.ndarray:
    """``uint8 [classes, samples, size, size]``: ``classes`` characters, ``samples`` each;
    class ``c`` depends only on ``(seed, c)``."""
    out = np.zeros((classes, samples, size, size), np.uint8)
    for c in range(classes):
        rng = np.random.default_rng([seed, c])
        out[c] = np.round(render(draw_class(rng), rng, size, samples) * 255).astype(np.uint8)
    return out


def load_omniglot(split_dir: str | Path, size: int = 28, samples: int = 20) -> np.ndarray:
    """``uint8 [characters, samples, size, size]`` from ``split_dir/<alphabet>/<character>/``
    (PNG images, black strokes on white, as Omniglot ships them), characters in sorted
    order; each character's first ``samples`` images (sorted by name).

    Raises:
        FileNotFoundError: the folder is missing or holds no character folders.
        ValueError: a character has fewer than ``samples`` images.
    """
    from PIL import Image

    root = Path(split_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such Omniglot folder")
    chars = sorted(c for a in sorted(root.iterdir()) if a.is_dir()
                   for c in sorted(a.iterdir()) if c.is_dir())
    if not chars:
        raise FileNotFoundError(f"{root}: expected <alphabet>/<character>/ folders of images")
    out = np.zeros((len(chars), samples, size, size), np.uint8)
    for i, char in enumerate(chars):
        files = sorted(char.glob("*.png"))
        if len(files) < samples:
            raise ValueError(f"{char}: {len(files)} images, need {samples}")
        for j, f in enumerate(files[:samples]):
            with Image.open(f) as im:
                g = im.convert("L").resize((size, size), Image.LANCZOS)
            out[i, j] = 255 - np.asarray(g, np.uint8)
    return out
