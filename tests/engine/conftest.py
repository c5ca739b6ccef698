"""Fixtures shared by the engine tests (no Qt here): a project store, the colour model
with a folder of good and broken images for classification (`linnaeus predict`), the
corpus of good and bad image files, the augmentation helpers and the evaluation cases."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from linnaeus.engine.cli import predict as cli_predict
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.augment import augment_batch
from linnaeus.engine.images.augment import transform_matrix
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.store import to_db_path
from linnaeus.engine.project.store import utc_now
from tests.image_factory import encode_image
from tests.image_factory import make_bad_corpus
from tests.onnx_factory import make_model


def add_images(store: ProjectStore, paths: list[str]) -> list[int]:
    """Insert bare image rows, as an import would."""
    ids = []
    with store.transaction():
        for path in paths:
            cursor = store.execute(
                "INSERT INTO images (path, status, added_at) VALUES (?, 'ok', ?)",
                (to_db_path(path), utc_now()),
            )
            ids.append(cursor.lastrowid)
    return ids


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProjectStore]:
    """An empty project over an empty image folder."""
    (tmp_path / "images").mkdir()
    project = ProjectStore.create(tmp_path / "project", tmp_path / "images")
    yield project
    project.close()


# -- classifying: the colour model and a folder to classify ------------------------------

RGB = ("red", "green", "blue")
COLOURS = {"red": (220, 20, 20), "green": (20, 220, 20), "blue": (20, 20, 220)}


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (24, 18)) -> np.ndarray:
    width, height = size
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def write_solid(path: Path, colour: tuple[int, int, int], kind: str = "png") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_image(solid(colour), kind))
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """The factory's colour model (red, green, blue)."""
    return make_model(tmp_path / "colours.onnx", RGB)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Good images, corrupt files and a sub-folder; expected labels in EXPECTED."""
    root = tmp_path / "new images"
    write_solid(root / "a_red.png", COLOURS["red"])
    write_solid(root / "b_green.jpg", COLOURS["green"], "jpeg")
    write_solid(root / "sub" / "c_blue.png", COLOURS["blue"])
    write_solid(root / "sub" / "d_red.bmp", COLOURS["red"], "bmp")
    jpeg = encode_image(solid(COLOURS["red"], (64, 64)), "jpeg")
    (root / "e_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "f_text.png").write_text("this is not an image")
    (root / "g_empty.jpg").write_bytes(b"")
    write_solid(root / "h_grey.png", (128, 128, 128))
    (root / "notes.txt").write_text("not an image file name: ignored")
    return root


EXPECTED = {
    "a_red.png": "red",
    "b_green.jpg": "green",
    "e_truncated.jpg": None,
    "f_text.png": None,
    "g_empty.jpg": None,
    "h_grey.png": "red",  # a tie: argmax takes the first class
    "sub/c_blue.png": "blue",
    "sub/d_red.bmp": "red",
}


def predict_cli(argv: Sequence[str]) -> int:
    """Run ``linnaeus predict ...`` as the CLI does (cli.main once it knows predict)."""
    from linnaeus.engine.cli import main as cli

    if "predict" in _subcommands(cli.build_parser()):
        return cli.main(["predict", *argv])
    parser = argparse.ArgumentParser(prog="linnaeus")
    cli_predict.add_commands(parser.add_subparsers(), None)
    args = parser.parse_args(["predict", *argv])
    try:
        return args.run(args)
    except LinnaeusError as error:
        print(f"linnaeus: error: {error}", file=sys.stderr)
        return 1


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices) if actions else set()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# -- reading images: the corpus of good and bad files ------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The image factory's corpus of good and bad files, and what each should give."""
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_bad_corpus(folder)


def corpus_file(corpus: tuple[Path, dict[str, str]], name: str) -> Path:
    """The corpus file ``name``; skips where this file system cannot hold its name."""
    folder, expected = corpus
    if name not in expected:
        pytest.skip(f"this file system cannot hold {name!r}")
    return folder / name


# -- augmentation: images, seeds and one setting of everything ----------------------------


def noisy_image(height: int = 48, width: int = 40, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Uniform random H x W x C uint8 pixels."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def seed_where(
    params: Augmentation, height: int, width: int, wanted: Callable[[np.ndarray], bool]
) -> tuple[int, np.ndarray]:
    """The first batch seed whose image 0 gets a matrix with ``wanted``, and that matrix."""
    for seed in range(5000):
        matrix = transform_matrix(params, np.random.default_rng([seed, 0]), height, width)
        if wanted(matrix):
            return seed, matrix
    raise AssertionError("no seed gives the wanted transform")


def augment_one(image: np.ndarray, params: Augmentation, seed: int) -> np.ndarray:
    """What training makes of ``image`` as image 0 of a batch with ``seed``."""
    return augment_batch(image[np.newaxis], params, seed)[0]


def ccw_degrees(matrix: np.ndarray) -> float:
    """The counter-clockwise (on screen) rotation angle of a rotation-only forward matrix."""
    return math.degrees(math.atan2(matrix[0, 1], matrix[0, 0]))


# Every setting away from its default.
FULL = Augmentation(
    rotation_range=25,
    width_shift_range=0.3,
    height_shift_range=0.05,
    shear_range=12,
    zoom_range=0.4,
    horizontal_flip=True,
    vertical_flip=True,
    brightness_range=(0.7, 1.3),
    fill_mode="constant",
    cval=12,
    featurewise_center=True,
    featurewise_std_normalization=True,
)


# -- evaluation: class names and probabilities -------------------------------------------

ANIMALS = ["cat", "dog", "fox"]
XRAY = ["NORMAL", "PNEUMONIA"]


def binary(scores: list[float] | np.ndarray) -> np.ndarray:
    """Two-class probabilities from p(positive = class 1)."""
    s = np.asarray(scores, dtype=float)
    return np.stack([1 - s, s], axis=1)


def synthetic_binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 1:3 positive:negative task with overlapping scores."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    score = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0)
    return y, binary(score)
