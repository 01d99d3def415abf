"""Pinyin units projected onto the phones that spell them (the shared content space)."""

import numpy as np
import pytest

from services.common.errors import InvalidInput
from services.encoder.content import ContentModel
from services.encoder.model import EncoderConfig
from services.encoder.phone_space import PhoneSpace

VOCAB = ["<blank>", "<unk>", "a", "d", "i", "n", "ŋ", "ɑ", "ɚ", "ʒ", "zh-", "-ang", "-i", "T3"]


def _row(space: PhoneSpace, unit: str) -> dict[str, float]:
    row = space.matrix[VOCAB.index(unit)]
    return {space.columns[k]: round(float(v), 4) for k, v in enumerate(row) if v}


def test_pinyin_units_spread_over_the_phones_that_spell_them():
    space = PhoneSpace(VOCAB)
    assert space.columns == ["<blank>", "<unk>", "a", "d", "i", "n", "ŋ", "ɑ", "ɚ", "ʒ"]
    assert _row(space, "zh-") == {"d": 0.5, "ʒ": 0.5}
    assert _row(space, "-ang") == {"ŋ": 0.5, "ɑ": 0.5}
    assert _row(space, "-i") == {"i": 0.5, "ɚ": 0.5}  # [i], or the apical vowel after zh/ch/sh/r/z/c/s
    assert _row(space, "T3") == {"<blank>": 1.0}  # a tone has no mouth shape of its own
    assert _row(space, "a") == {"a": 1.0}


def test_phones_missing_from_the_vocab_get_their_own_columns():
    space = PhoneSpace(["<blank>", "b-", "-ao"])
    assert space.columns == ["<blank>", "a", "b", "ʊ"]


def test_projected_posteriors_still_sum_to_one():
    rng = np.random.default_rng(0)
    post = rng.dirichlet(np.ones(len(VOCAB)), size=20).astype(np.float32)
    out = PhoneSpace(VOCAB)(post)
    assert out.shape == (20, 10)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)


def test_content_model_frames_in_phone_space(tiny_ctc_dir):
    from services.common.types import AudioClip

    model = ContentModel.load(tiny_ctc_dir)
    clip = AudioClip((0.1 * np.random.default_rng(1).standard_normal(8000)).astype(np.float32), 16000)
    zh = model.frames(clip, "zh", space="phones")
    assert zh.values.shape[1] == model.dim_for("phones") == len(zh.units)
    assert "zh-" not in zh.units and "ʒ" in zh.units
    np.testing.assert_allclose(zh.values.sum(1), 1.0, atol=1e-5)
    with pytest.raises(InvalidInput, match="unknown content space"):
        model.frames(clip, space="visemes")


def test_encoder_config_validates_the_space():
    with pytest.raises(InvalidInput, match="content space"):
        EncoderConfig(variant="csfm", content_dim=10, content_space="visemes")
    assert EncoderConfig.from_dict(EncoderConfig(variant="csfm", content_dim=10).to_dict()).content_space == "units"
