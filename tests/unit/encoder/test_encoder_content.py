"""Content models load from local directories and give 50 Hz frames."""

import numpy as np
import pytest

from services.common.errors import NotFound, RateMismatch
from services.common.types import AudioClip
from services.encoder.content import ContentModel
from services.encoder.pinyin import common_hanzi
from services.encoder.units import language_units

PHONES = ["<blank>", "<unk>", "a", "b", "ɹ", "zh-", "-ang", "-i"]  # as in conftest


def _clip(seconds):
    rng = np.random.default_rng(0)
    return AudioClip((0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)


@pytest.mark.parametrize("seconds", [0.5, 1.37])
def test_ctc_model_from_local_dir_gives_50hz_posteriors(tiny_ctc_dir, seconds):
    model = ContentModel.load(tiny_ctc_dir)
    clip = _clip(seconds)
    frames = model.frames(clip)
    assert frames.fps == 50
    assert frames.values.shape == (int(16000 * seconds) // 320 + 1, len(PHONES))
    np.testing.assert_allclose(frames.values.sum(1), 1.0, atol=1e-5)


def test_language_restriction_for_mixed_phone_pinyin_vocab(tiny_ctc_dir):
    model = ContentModel.load(tiny_ctc_dir)
    zh = model.frames(_clip(0.5), lang="zh").values
    en = model.frames(_clip(0.5), lang="en").values
    assert language_units(PHONES, "zh") == [0, 5, 6, 7]
    assert zh[:, [1, 2, 3, 4]].max() == 0 and en[:, [5, 6, 7]].max() == 0
    np.testing.assert_allclose(zh.sum(1), 1.0, atol=1e-5)


def test_character_vocab_is_reduced_to_pinyin_units(tmp_path, make_tiny_ctc):
    vocab = ["<pad>", "|"] + common_hanzi()[:300]
    model = ContentModel.load(make_tiny_ctc(tmp_path, vocab))
    frames = model.frames(_clip(0.4), lang="zh")
    assert model.reducer is not None and frames.values.shape[1] == len(model.units) <= 100
    np.testing.assert_allclose(frames.values.sum(1), 1.0, atol=1e-5)


def test_hidden_states_from_a_model_without_ctc_head(tmp_path):
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                       conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    HubertModel(cfg).save_pretrained(tmp_path, safe_serialization=True)
    model = ContentModel.load(tmp_path)
    frames = model.frames(_clip(0.5))
    assert frames.kind == "hidden" and frames.values.shape == (26, 16) and model.dim == 16


def test_hub_ids_and_missing_dirs_are_refused(tmp_path):
    with pytest.raises(NotFound):
        ContentModel.load("facebook/wav2vec2-base-960h")
    with pytest.raises(NotFound):
        ContentModel.load(tmp_path / "nothing")


def test_a_model_that_is_not_50hz_is_a_rate_mismatch(tmp_path, make_tiny_ctc):
    with pytest.raises(RateMismatch):
        ContentModel.load(make_tiny_ctc(tmp_path, PHONES, conv_stride=(5, 2, 2, 2, 2, 2, 1)))


def test_content_model_refuses_other_sample_rates(tiny_ctc_dir):
    model = ContentModel.load(tiny_ctc_dir)
    with pytest.raises(RateMismatch):
        model.frames(AudioClip(np.zeros(8000, np.float32), 8000))


def test_long_audio_runs_each_sentence_on_its_own_with_its_language(tiny_ctc_dir):
    model = ContentModel.load(tiny_ctc_dir)
    clip = _clip(3.0)
    # en 0–1.2 s, zh 1.2–2.0 s, then 1 s outside every segment (10 s chunks, no language)
    long = model.frames_long(clip, [(1.2, 2.0, "zh"), (0.0, 1.2, "en")]).values
    assert long.shape == (48000 // 320 + 1, len(PHONES))
    np.testing.assert_allclose(long.sum(1), 1.0, atol=1e-5)
    en = model.frames(AudioClip(clip.samples[:19200], 16000), "en").values
    zh = model.frames(AudioClip(clip.samples[19200:32000], 16000), "zh").values
    np.testing.assert_allclose(long[:60], en[:60], atol=1e-6)
    np.testing.assert_allclose(long[60:100], zh[:40], atol=1e-6)
    assert long[60:100][:, [1, 2, 3, 4]].max() == 0  # Mandarin sentence: no English phones
    tail = model.frames(AudioClip(clip.samples[32000:], 16000)).values
    np.testing.assert_allclose(long[100:], tail[:51], atol=1e-6)
