"""The bundled mouth prior: it fits the cpu recipe's content encoder, is refused by any other,
and its codes carry the mouth of speech it never heard."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from services.common.corpus import sentences
from services.encoder.content import ContentModel
from services.encoder.model import EncoderConfig, build_encoder
from services.training import presets
from services.training.mouth_prior import load_prior, load_probe, make_example, opening_corr
from services.training.speech import bundled_voice


@pytest.fixture(scope="module")
def config() -> EncoderConfig:
    return presets.preset("cpu").with_encoder("content").encoder_config(ContentModel.load().dim_for("phones"))


def test_the_bundled_prior_fits_the_cpu_recipes_content_encoder(config):
    found = load_prior(config, 25)
    assert found is not None, "the content model or encoder changed: rebuild with python -m services.training.mouth_prior"
    state, prior_id = found
    build_encoder(config).load_state_dict(state)  # strict: every weight, nothing else
    assert prior_id.startswith("mouth_prior ")


@pytest.mark.parametrize("change", [{"variant": "csfm"}, {"content_space": "units"}, {"code_dim": 32},
                                    {"smooth_radius": 2}])
def test_another_encoder_gets_no_prior(config, change):
    assert load_prior(replace(config, **change), 25) is None


def test_another_frame_rate_or_content_model_gets_no_prior(config, tmp_path):
    assert load_prior(config, 30) is None
    (tmp_path / "model.safetensors").write_bytes(b"another content model")
    assert load_prior(config, 25, content_model_dir=tmp_path) is None
    assert load_prior(config, 25, content_model_dir=tmp_path / "missing") is None


def test_the_priors_codes_follow_the_mouth_of_unheard_sentences(config):
    model, voice = ContentModel.load(), bundled_voice()
    texts = [(s, "en") for s in sentences(3, "en", seed=3, split="heldout")] + \
            [(s, "zh") for s in sentences(1, "zh", seed=3, split="heldout")]
    examples = [make_example(voice(t, lang), model, 25, "phones") for t, lang in texts]
    encoder = build_encoder(config)
    encoder.load_state_dict(load_prior(config, 25)[0])
    assert opening_corr(encoder, load_probe(), examples) > 0.8


def test_bad_arguments_are_one_line_and_exit_2():
    r = subprocess.run([sys.executable, "-m", "services.training.mouth_prior", "--sentences", "3"],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--sentences" in r.stderr
