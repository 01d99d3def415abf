"""Presets are immutable named recipes: variants are new objects, the named ones never change."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import pytest

from services.common.errors import InvalidInput
from services.training.presets import PRESET_NAMES, SubjectTrainingConfig, preset


def test_presets_cannot_be_mutated() -> None:
    tiny = preset("tiny")
    assert isinstance(tiny, SubjectTrainingConfig) and tiny.name == "tiny"
    with pytest.raises(FrozenInstanceError):
        tiny.train.head_iters = 1  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        tiny.variant = "csfm"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        tiny.head.num_levels = 2  # type: ignore[misc]
    assert preset("tiny").train.head_iters == 60


def test_a_variant_leaves_the_named_preset_unchanged() -> None:
    before = preset("tiny")
    variant = replace(before, name="tiny-short", train=replace(before.train, head_iters=6))
    scaled = preset("cpu").scaled(0.5)
    swapped = preset("cpu").with_encoder("dynamic", "units")
    assert variant.train.head_iters == 6 and preset("tiny") == before and preset("tiny").train.head_iters == 60
    assert scaled.train.head_iters == 3000 and preset("cpu").train.head_iters == 6000
    assert swapped.variant == "dynamic" and swapped.encoder.content_space == "units"
    assert preset("cpu").variant == "csfm" and preset("cpu").encoder.content_space == "phones"


def test_unknown_names_are_one_clear_error() -> None:
    assert PRESET_NAMES == ("cpu", "gpu", "tiny")
    with pytest.raises(InvalidInput, match="unknown preset 'huge': choose one of cpu, gpu, tiny"):
        preset("huge")
    with pytest.raises(InvalidInput, match="unknown encoder variant 'lstm'"):
        preset("tiny").with_encoder("lstm")


def test_the_cli_offers_every_preset() -> None:
    from services.cli import build_parser

    subject = build_parser()._subparsers._group_actions[0].choices["subject"]
    train = subject._subparsers._group_actions[0].choices["train"]
    (option,) = [a for a in train._actions if "--preset" in a.option_strings]
    assert tuple(option.choices) == PRESET_NAMES


def test_a_preset_builds_what_it_describes() -> None:
    tiny = preset("tiny")
    model = tiny.build_model()
    assert model.head.config.num_levels == tiny.head.num_levels and model.head.config.num_latents == 1
    assert model.occupancy.resolution == tiny.occupancy_resolution
    encoder = tiny.build_encoder()
    assert encoder.config.variant == "dynamic" and encoder.config.conv_width == tiny.encoder.conv_width
    assert preset("cpu").encoder_config(content_dim=43).content_dim == 43
