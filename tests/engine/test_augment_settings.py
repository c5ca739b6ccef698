"""Augmentation settings: the presets, checked values, JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.augment import load_augmentation
from tests.engine.conftest import FULL


def test_presets_have_the_seed_values() -> None:
    assert PRESETS["none"].is_identity
    assert PRESETS["gentle"] == Augmentation(
        rotation_range=10.0,
        width_shift_range=0.1,
        height_shift_range=0.1,
        shear_range=0.1,
        zoom_range=0.1,
    )
    strong = PRESETS["strong"]
    assert (strong.rotation_range, strong.width_shift_range, strong.height_shift_range) == (
        40.0,
        0.2,
        0.2,
    )
    assert (strong.shear_range, strong.zoom_range) == (0.2, 0.2)
    assert strong.horizontal_flip and not strong.vertical_flip
    assert strong.brightness_range is None and strong.fill_mode == "nearest"


@pytest.mark.parametrize("params", [*PRESETS.values(), FULL], ids=[*PRESETS, "full"])
def test_settings_round_trip_through_json(params: Augmentation) -> None:
    text = json.dumps(params.to_dict())
    assert Augmentation.from_dict(json.loads(text)) == params


def test_from_dict_fills_missing_settings_with_defaults() -> None:
    params = Augmentation.from_dict({"rotation_range": 15, "brightness_range": [0.9, 1.1]})
    assert params == Augmentation(rotation_range=15.0, brightness_range=(0.9, 1.1))
    assert isinstance(params.rotation_range, float)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rotation_range", -1),
        ("rotation_range", 200),
        ("rotation_range", "10"),
        ("rotation_range", float("nan")),
        ("width_shift_range", 1.0),
        ("height_shift_range", -0.1),
        ("shear_range", 90),
        ("zoom_range", 1.0),
        ("zoom_range", True),
        ("horizontal_flip", "yes"),
        ("vertical_flip", 1),
        ("brightness_range", (1.2, 0.8)),
        ("brightness_range", (-0.1, 1.0)),
        ("brightness_range", (1.0,)),
        ("brightness_range", "bright"),
        ("fill_mode", "mirror"),
        ("cval", 300),
        ("featurewise_center", None),
    ],
)
def test_invalid_settings_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(LinnaeusError, match=field):
        Augmentation(**{field: value})
    with pytest.raises(LinnaeusError, match=field):
        Augmentation.from_dict({field: value})
    with pytest.raises(LinnaeusError, match=field):
        PRESETS["gentle"].replace(**{field: value})


def test_unknown_settings_are_refused_by_name() -> None:
    with pytest.raises(LinnaeusError, match="channel_shift_range"):
        Augmentation.from_dict({"rotation_range": 5, "channel_shift_range": 3})
    with pytest.raises(LinnaeusError, match="rotaton_range"):
        PRESETS["none"].replace(rotaton_range=5)
    with pytest.raises(LinnaeusError):
        Augmentation.from_dict([("rotation_range", 5)])  # type: ignore[arg-type]


def test_replace_returns_a_checked_copy() -> None:
    changed = PRESETS["gentle"].replace(horizontal_flip=True, fill_mode="reflect")
    assert changed.horizontal_flip and changed.fill_mode == "reflect"
    assert changed.rotation_range == 10 and not PRESETS["gentle"].horizontal_flip


def test_identity_ignores_featurewise_flags_but_not_brightness() -> None:
    assert Augmentation(featurewise_center=True, brightness_range=(1, 1)).is_identity
    assert not Augmentation(brightness_range=(0.9, 1.0)).is_identity
    assert not Augmentation(vertical_flip=True).is_identity


def test_load_augmentation_presets_and_files(tmp_path: Path) -> None:
    assert load_augmentation("gentle") is PRESETS["gentle"]
    assert load_augmentation(" Strong ") is PRESETS["strong"]
    path = tmp_path / "my settings.json"
    path.write_text(json.dumps(FULL.to_dict()), encoding="utf-8")
    assert load_augmentation(str(path)) == FULL


def test_load_augmentation_explains_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(LinnaeusError, match="gentle"):  # lists the presets
        load_augmentation("wild")
    broken = tmp_path / "broken.json"
    broken.write_text('{"rotation_range": 10,', encoding="utf-8")
    with pytest.raises(LinnaeusError, match="not valid JSON"):
        load_augmentation(str(broken))
    bad_value = tmp_path / "bad.json"
    bad_value.write_text('{"zoom_range": 2}', encoding="utf-8")
    with pytest.raises(LinnaeusError, match=r"bad\.json.*zoom_range"):
        load_augmentation(str(bad_value))
    not_an_object = tmp_path / "list.json"
    not_an_object.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(LinnaeusError, match="JSON object"):
        load_augmentation(str(not_an_object))
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(LinnaeusError, match=r"binary\.json"):
        load_augmentation(str(binary))
