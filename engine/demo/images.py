"""The built-in demo image set: stained-smear cell images drawn by code, no download.

Three classes of cell that a small CNN can tell apart by shape and texture:
``healthy`` (round cell, one round nucleus), ``infected`` (cell holding small dark
ring-shaped parasites, as in a malaria smear) and ``dividing`` (elongated dumbbell
cell with two nuclei). A few images are deliberately put in the wrong class folder
so that relabelling has something to find.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress

log = logging.getLogger(__name__)

DEMO_CLASSES: tuple[str, ...] = ("healthy", "infected", "dividing")

# Optical density per unit of stain in R, G, B (Beer-Lambert): eosin colours the
# cytoplasm pink, the azure/haematoxylin-like stain colours nuclei and parasites purple.
_EOSIN = np.array([0.10, 0.95, 0.42], dtype=np.float32)
_NUCLEAR = np.array([0.78, 0.98, 0.30], dtype=np.float32)


@dataclass(frozen=True)
class DemoImageSet:
    """What `make_demo_images` wrote."""

    folder: Path
    counts: dict[str, int]
    mislabelled: tuple[tuple[str, str, str], ...]


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth zero-mean noise with about ``cells`` blobs across the image."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _inside(rho: np.ndarray, radius: float, edge: float = 0.9) -> np.ndarray:
    """Soft 0..1 mask of ``rho < 1``; ``rho`` is a distance in units of ``radius`` px."""
    return 1.0 / (1.0 + np.exp(np.minimum((rho - 1.0) * (radius / edge), 30.0)))


def _rho(u: np.ndarray, v: np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
    """Normalised radial distance of a slightly oval, slightly irregular blob of radius r."""
    aspect = rng.uniform(1.0, 1.12)
    dist = np.sqrt((u / aspect) ** 2 + (v * aspect) ** 2) + 1e-3
    c, s = u / dist, v / dist  # cos and sin of the polar angle; harmonics by recurrence
    c2, s2 = c * c - s * s, 2 * c * s
    c3, s3 = c * c2 - s * s2, s * c2 + c * s2
    c5, s5 = c2 * c3 - s2 * s3, s2 * c3 + c2 * s3
    wobble = np.ones_like(dist)
    for ck, sk in ((c2, s2), (c3, s3), (c5, s5)):
        a, b = rng.uniform(-0.03, 0.03, 2)
        wobble += float(a) * ck + float(b) * sk
    return dist / (r * wobble)


def _plain_cell(rho: np.ndarray, r: float) -> np.ndarray:
    """Eosin density of an anucleate red cell: darker rim, pale centre."""
    body = _inside(rho, r) * (0.62 - 0.30 * np.exp(-((rho / 0.55) ** 2)))
    return body + 0.18 * np.exp(-(((rho - 0.93) / 0.08) ** 2))


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only row and column coordinates of a size x size image."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy.setflags(write=False)
    xx.setflags(write=False)
    return yy, xx


def _box(x: float, y: float, half: float, size: int) -> tuple[slice, slice]:
    """The part of the image within ``half`` px of (x, y), as row and column slices."""
    lo_x, hi_x = max(0, int(x - half)), min(size, int(x + half) + 2)
    lo_y, hi_y = max(0, int(y - half)), min(size, int(y + half) + 2)
    return slice(lo_y, max(lo_y, hi_y)), slice(lo_x, max(lo_x, hi_x))


def draw_cell(kind: str, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """Draw one smear image of a cell of class ``kind``: an H x W x 3 uint8 RGB array."""
    if kind not in DEMO_CLASSES:
        raise ValueError(f"unknown demo class {kind!r}; expected one of {DEMO_CLASSES}")
    s = size / 96.0
    yy, xx = _grid(size)
    eosin = 0.10 + 0.03 * _noise(rng, size, 5) + 0.015 * _noise(rng, size, 24)
    nuclear = np.zeros((size, size), np.float32)

    # Neighbouring cells cut by the image edge.
    for _ in range(rng.integers(1, 4)):
        angle, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0.58, 0.75) * size
        nx, ny = size / 2 + dist * math.cos(angle), size / 2 + dist * math.sin(angle)
        r = rng.uniform(17, 24) * s
        box = _box(nx, ny, 1.3 * r, size)
        eosin[box] += _plain_cell(_rho(xx[box] - nx, yy[box] - ny, r, rng), r)

    # The cell itself: jittered, rotated, its size varying by up to 30%.
    cx, cy = (float(x) for x in size / 2 + rng.uniform(-6, 6, 2) * s)
    theta = rng.uniform(0, math.pi)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    u = (xx - cx) * cos_t + (yy - cy) * sin_t
    v = (yy - cy) * cos_t - (xx - cx) * sin_t
    r = 20.0 * s * rng.uniform(0.7, 1.3)
    grain = 1.0 + 0.18 * _noise(rng, size, 14)
    if kind == "dividing":
        lobe, gap = 0.78 * r, 0.72 * r
        k = 6.0  # a smooth union of the two lobes leaves a waist between them
        left, right = _rho(u + gap, v, lobe, rng), _rho(u - gap, v, lobe, rng)
        rho = -np.log(np.exp(-k * left) + np.exp(-k * right)) / k + 0.05
        cell = _inside(rho, lobe)
        nuclei = [(g, 0.0, lobe * rng.uniform(0.38, 0.48)) for g in (-gap, gap)]
    else:
        rho = _rho(u, v, r, rng)
        cell = _inside(rho, r)
        du, dv = (float(x) for x in rng.uniform(-0.12, 0.12, 2) * r)
        nuclei = [(du, dv, r * rng.uniform(0.42, 0.52))] if kind == "healthy" else []
    eosin += cell * 0.42 * grain + 0.16 * np.exp(-(((rho - 0.95) / 0.07) ** 2))
    for du, dv, nr in nuclei:
        box = _box(cx + du * cos_t - dv * sin_t, cy + du * sin_t + dv * cos_t, 1.5 * nr, size)
        inner = _inside(_rho(u[box] - du, v[box] - dv, nr, rng), nr, 0.7)
        chromatin = 0.75 + 0.35 * np.clip(_noise(rng, size, 20)[box], -1, 1)
        nuclear[box] += inner * chromatin * rng.uniform(1.2, 1.5)
        eosin[box] -= inner * 0.25 * grain[box]
    for _ in range(rng.integers(0, 3)):  # platelets, outside the cell
        px, py = (float(x) for x in rng.uniform(0, size, 2))
        if cell[int(py), int(px)] < 0.02:
            box = _box(px, py, 5 * s, size)
            blob = ((xx[box] - px) ** 2 + (yy[box] - py) ** 2) / (2 * (1.3 * s) ** 2)
            nuclear[box] += 0.7 * np.exp(-blob)
    if kind == "infected":
        eosin += cell * 0.12  # the infected cell is a little swollen and darker
        stipple = (rng.random((size, size), np.float32) < 0.06).astype(np.float32) * cell
        nuclear += 0.45 * cv2.GaussianBlur(stipple, (0, 0), 0.7 * s)
        n_rings, a0 = int(rng.integers(1, 4)), rng.uniform(0, 2 * math.pi)
        for i in range(n_rings):  # spread around the cell so that rings rarely overlap
            a = a0 + 2 * math.pi * (i + rng.uniform(-0.15, 0.15)) / n_rings
            d = rng.uniform(0.15, 0.6) * r
            px, py = cx + d * math.cos(a), cy + d * math.sin(a)
            ring_r, spot = rng.uniform(2.4, 3.8) * s, rng.uniform(0, 2 * math.pi)
            box = _box(px, py, ring_r + 4 * s, size)
            dx, dy = xx[box] - px, yy[box] - py
            to_ring = np.sqrt(dx**2 + dy**2) + 1e-3
            arc = 0.55 + 0.45 * (dx * math.cos(spot) + dy * math.sin(spot)) / to_ring
            nuclear[box] += 1.4 * arc * np.exp(-(((to_ring - ring_r) / (0.75 * s)) ** 2))
            sx, sy = dx - ring_r * math.cos(spot), dy - ring_r * math.sin(spot)
            nuclear[box] += 1.7 * np.exp(-(sx**2 + sy**2) / (2 * (1.1 * s) ** 2))

    return _photograph(eosin, nuclear, rng, size)


def _photograph(
    eosin: np.ndarray, nuclear: np.ndarray, rng: np.random.Generator, size: int
) -> np.ndarray:
    """The smear as a camera sees it (uint8 RGB), from its eosin and nuclear stain
    densities: stain strength, tint, an illumination gradient, blur and noise."""
    s = size / 96.0
    yy, xx = _grid(size)
    pink = _EOSIN * rng.uniform(0.9, 1.1, 3).astype(np.float32) * rng.uniform(0.7, 1.3)
    purple = _NUCLEAR * rng.uniform(0.9, 1.1, 3).astype(np.float32) * rng.uniform(0.65, 1.25)
    density = np.maximum(eosin, 0)[..., None] * pink + nuclear[..., None] * purple
    g_angle = rng.uniform(0, 2 * math.pi)
    ramp = ((xx - size / 2) * math.cos(g_angle) + (yy - size / 2) * math.sin(g_angle)) / size
    light = 245.0 * (1.0 + rng.uniform(0.0, 0.3) * ramp)[..., None]
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.95, 1.02)], np.float32)
    image: np.ndarray = light * tint * np.exp(-density)
    if rng.random() < 0.3:
        image = np.asarray(cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.1) * s))
    image += rng.uniform(1.5, 5.0) * rng.standard_normal(image.shape, np.float32)
    np.clip(image, 0, 255, out=image)
    return image.astype(np.uint8)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """Write ``rgb`` as a PNG that appears whole or not at all."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise LinnaeusError(f"Could not encode the demo image {path.name} as PNG.")
    # Temp file + rename, without atomic.py's fsync: demo images can be made again, and
    # an fsync per image would double the run time.
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def make_demo_images(
    folder: Path,
    *,
    per_class: int = 80,
    size: int = 96,
    wrong_fraction: float = 0.04,
    seed: int = 0,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> DemoImageSet:
    """Write the demo image set into ``folder/<class>/<class>_<nnn>.png``.

    ``folder`` must be missing or empty. Each class folder gets ``per_class`` images;
    about ``wrong_fraction`` of all images (at least 3 if it is above 0, at most half)
    are drawn as another class than their folder says, and are listed in
    ``mislabelled``. The same seed gives byte-identical files. If cancelled or failing,
    the files written so far are removed again, leaving ``folder`` as it was.
    """
    if per_class < 1 or size < 32 or not 0.0 <= wrong_fraction <= 0.5 or seed < 0:
        raise LinnaeusError(
            "Demo images need per_class >= 1, size >= 32 px, a wrong fraction between "
            f"0 and 0.5 and a seed >= 0 (got {per_class}, {size}, {wrong_fraction}, {seed})."
        )
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise LinnaeusError(
            f"Cannot create the demo images in {folder}: it exists and is not an empty "
            "folder. Choose a new or empty folder."
        )
    labels = [c for c in DEMO_CLASSES for _ in range(per_class)]
    total = len(labels)
    n_wrong = 0 if wrong_fraction == 0 else min(max(3, round(wrong_fraction * total)), total // 2)
    picker = np.random.default_rng(seed)
    truth = list(labels)
    for i in picker.choice(total, size=n_wrong, replace=False):
        truth[i] = str(picker.choice([c for c in DEMO_CLASSES if c != labels[i]]))

    started, created_root = time.perf_counter(), not folder.exists()
    written: list[Path] = []
    width = max(3, len(str(per_class)))
    try:
        for name in DEMO_CLASSES:
            (folder / name).mkdir(parents=True)
        on_progress(Progress(stage="demo", done=0, total=total))
        for i, (label, true) in enumerate(zip(labels, truth, strict=True)):
            check_cancelled(cancel)
            path = folder / label / f"{label}_{i % per_class + 1:0{width}d}.png"
            _write_png(path, draw_cell(true, np.random.default_rng((seed, i)), size))
            written.append(path)
            on_progress(Progress(stage="demo", done=i + 1, total=total, message=path.name))
    except BaseException as exc:
        with contextlib.suppress(OSError):  # only what this call made; rmdir keeps others
            for path in written:
                path.unlink(missing_ok=True)
            for name in DEMO_CLASSES:
                if (folder / name).is_dir():
                    (folder / name).rmdir()
            if created_root:
                folder.rmdir()
        if isinstance(exc, OSError):
            raise LinnaeusError(f"Cannot write the demo images in {folder}: {exc}") from exc
        raise
    mislabelled = tuple(
        (f"{p.parent.name}/{p.name}", t, lab)
        for p, t, lab in zip(written, truth, labels, strict=True)
        if t != lab
    )
    log.info("Wrote %d demo images to %s in %.2f s", total, folder, time.perf_counter() - started)
    return DemoImageSet(
        folder=folder, counts={c: per_class for c in DEMO_CLASSES}, mislabelled=mislabelled
    )
