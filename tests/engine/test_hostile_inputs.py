"""Property-based tests (hypothesis), and a fixed set of damaged files: no file makes
the image decoders or the label-table reader crash or hang. Random bytes, truncated and
mutated real files of every format, odd file names and odd tables either read, or end in
the engine's one-line typed error (`ImageReadError`, `ImportSourceError`).

Bounded so the whole file takes well under 30 s on a slow machine: a fixed number
of examples each, a deadline per example, the same examples on every run
(``derandomize``) and no example database written into the checkout.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from linnaeus.engine.csv_tables import cell_text
from linnaeus.engine.csv_tables import exact_path
from linnaeus.engine.csv_tables import path_from_exact
from linnaeus.engine.csv_tables import safe_cell
from linnaeus.engine.dataset.labels_csv import read_label_csv
from linnaeus.engine.dataset.labels_csv import write_label_csv
from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.errors import ImportSourceError
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.imageio import to_rgb_uint8
from tests.image_factory import IMAGE_KINDS
from tests.image_factory import draw_pixels
from tests.image_factory import encode_image

BOUNDED = settings(
    max_examples=150,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Mutated headers may claim any size: a smaller pixel bound keeps each example quick.
MAX_PIXELS = 2_000_000
MAGIC_NUMBERS = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"GIF89a",
    b"GIF87a",
    b"RIFF\x00\x10\x00\x00WEBPVP8 ",
    b"\x00" * 128 + b"DICM",
]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on damaged elements


@functools.cache
def real_file(kind: str) -> bytes:
    """A small, valid file of each format (colour where the format has it)."""
    channels = 1 if kind == "dicom" else 3
    return encode_image(draw_pixels((24, 16), channels, seed=len(kind)), kind)


def check_reads_or_refuses(data: bytes, name: str = "file") -> None:
    """The property every input must keep: an image, or an `ImageReadError` in one line."""
    try:
        image = read_image(name, data=data, max_pixels=MAX_PIXELS)
    except ImageReadError as error:
        message = str(error)
        assert message and "\n" not in message and len(message) < 400
        return
    height, width, channels = image.pixels.shape
    assert (image.info.width, image.info.height, image.info.channels) == (width, height, channels)
    assert width >= 1 and height >= 1 and 1 <= channels <= 4
    assert image.pixels.dtype in (np.uint8, np.uint16)
    assert to_rgb_uint8(image.pixels).shape == (height, width, 3)


@settings(BOUNDED, max_examples=500)
@given(magic=st.sampled_from(MAGIC_NUMBERS), rest=st.binary(max_size=1024))
def test_random_bytes_read_or_are_refused(magic: bytes, rest: bytes) -> None:
    check_reads_or_refuses(magic + rest)


@settings(BOUNDED, max_examples=500)
@given(kind=st.sampled_from(IMAGE_KINDS), cut=st.floats(0.0, 1.0))
def test_truncated_files_read_or_are_refused(kind: str, cut: float) -> None:
    data = real_file(kind)
    check_reads_or_refuses(data[: int(len(data) * cut)])


@settings(BOUNDED, max_examples=500)
@given(
    kind=st.sampled_from(IMAGE_KINDS),
    changes=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1, max_size=8),
    cut_out=st.none() | st.tuples(st.floats(0.0, 1.0), st.integers(1, 64)),
)
def test_mutated_files_read_or_are_refused(
    kind: str, changes: list[tuple[float, int]], cut_out: tuple[float, int] | None
) -> None:
    data = bytearray(real_file(kind))
    for where, value in changes:
        data[min(int(where * len(data)), len(data) - 1)] = value
    if cut_out is not None:
        start = int(cut_out[0] * len(data))
        del data[start : start + cut_out[1]]
    check_reads_or_refuses(bytes(data))


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_damaged_bytes_raise_image_read_error_or_decode(kind: str) -> None:
    data = encode_image(draw_pixels((32, 24), 1, seed=4), kind)
    rng = np.random.default_rng(7)
    variants = [data[:cut] for cut in np.linspace(1, len(data) - 1, 12).astype(int)]
    for _ in range(12):
        damaged = bytearray(data)
        for position in rng.integers(0, len(data), 4):
            damaged[position] = int(rng.integers(0, 256))
        variants.append(bytes(damaged))

    for variant in variants:
        try:
            image = read_image(f"damaged.{kind}", data=variant)
        except ImageReadError as error:
            assert str(error)
        else:
            assert image.pixels.ndim == 3


# File names: any text a file system takes, and names that are not UTF-8 at all.
name_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=30,
)
names = name_text | st.binary(min_size=1, max_size=30).filter(
    lambda raw: b"/" not in raw and b"\x00" not in raw
).map(os.fsdecode)


@settings(BOUNDED, max_examples=60)
@given(stem=names, kind=st.sampled_from(IMAGE_KINDS))
def test_any_file_name_reads(stem: str, kind: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{stem}.{kind}"
        try:
            path.write_bytes(real_file(kind))
        except (OSError, UnicodeEncodeError, ValueError):
            return  # this file system refuses the name: nothing to read
        assert read_image(path).info.format == kind


@BOUNDED
@given(name=names)
def test_exact_path_gives_back_any_name(name: str) -> None:
    cell = exact_path(name)
    assert cell.isascii()
    if cell:
        assert path_from_exact(cell) == name


@settings(BOUNDED, max_examples=300)
@given(text=st.text(max_size=20))
def test_any_cell_text_reads_back_and_never_starts_a_formula(text: str) -> None:
    written = safe_cell(text)
    assert not written.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell_text(written) == text


def check_table_reads_or_refuses(data: bytes, images: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "labels.csv"
        table.write_bytes(data)
        try:
            result = read_label_csv(table, Path(folder) / "images", images)
        except ImportSourceError as error:
            assert str(error) and "\n" not in str(error)
            return
    assert set(result.rows) <= set(images)
    for problem in result.problems:
        assert problem.rows and problem.message and "\n" not in problem.message


KNOWN = ["a.png", "b.png", "sub/c.png", "sub/a.png", os.fsdecode(b"l\xe9.png")]


@BOUNDED
@given(data=st.binary(max_size=512))
def test_random_bytes_as_a_label_table_read_or_are_refused(data: bytes) -> None:
    check_table_reads_or_refuses(data, KNOWN)


cells = st.sampled_from(["a.png", "b.png", "c.png", "sub/a.png", "./b.png", "", " ", '"', "x"])
labels = st.sampled_from(["cat", "dog", "", "=1+1", "'-1", "label", "path", "\n", ";", "\t"])


@BOUNDED
@given(
    header=st.sampled_from(["path,label,group,split\n", "filename;class\n", "file\tlabel\n", ""]),
    rows=st.lists(st.lists(cells | labels, max_size=5), max_size=12),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_odd_label_tables_read_or_are_refused(
    header: str, rows: list[list[str]], delimiter: str
) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    check_table_reads_or_refuses((header + buffer.getvalue()).encode(), KNOWN)


@BOUNDED
@given(
    table=st.dictionaries(
        names.filter(lambda n: n.strip() == n),
        st.tuples(st.text(max_size=8), st.text(max_size=8), st.sampled_from(["", "train"])),
        min_size=1,
        max_size=6,
    )
)
def test_a_written_label_table_reads_back_exactly(
    table: dict[str, tuple[str, str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labels.csv"
        write_label_csv(path, [(name, *values) for name, values in table.items()])
        result = read_label_csv(path, Path(folder), list(table))
    for name, (label, group, split) in table.items():
        row = result.rows[name]
        assert (row.label, row.group, row.split) == (
            label.strip() or None,
            group.strip() or None,
            split or None,
        )
