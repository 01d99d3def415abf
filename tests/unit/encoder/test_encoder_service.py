"""EncoderService: frames = fps × duration, any input rate, heads from config + state dict."""

import numpy as np
import pytest
import torch

from services.common.errors import InvalidInput
from services.common.types import AudioClip
from services.encoder.model import EncoderConfig, build_encoder
from services.encoder.service import EncoderService, load_head


def _clip(seconds, rate):
    t = np.arange(int(seconds * rate)) / rate
    return AudioClip((0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), rate)


@pytest.fixture(scope="module")
def service(tiny_ctc_dir):
    return EncoderService(tiny_ctc_dir)


def _head(svc, variant="csfm"):
    torch.manual_seed(0)
    return build_encoder(EncoderConfig(variant=variant, conv_width=4, content_dim=svc.content_dim,
                                       fusion_dim=16, heads=2, attn_radius=2)).eval()


@pytest.mark.parametrize("seconds,rate,fps", [(1.0, 16000, 25), (1.2, 22050, 25), (0.8, 16000, 30)])
def test_codes_per_video_frame(service, seconds, rate, fps):
    out = service.encode(_clip(seconds, rate), _head(service), fps=fps, lang="en")
    assert out.codes.shape == (round(seconds * fps), 64) and out.codes.dtype == np.float32
    assert np.isfinite(out.codes).all()


def test_batch_equals_one_by_one(service):
    head = _head(service)
    clips = [_clip(0.6, 16000), _clip(1.0, 16000)]
    batch = service.encode_batch(clips, head)
    for c, b in zip(clips, batch):
        np.testing.assert_allclose(service.encode(c, head).codes, b.codes, atol=1e-6)


def test_head_round_trips_through_config_and_state_dict(service):
    head = _head(service, "concat")
    state = {f"audio.{k}": v for k, v in head.state_dict().items()}
    again = load_head(head.config.to_dict(), state, prefix="audio.")
    clip = _clip(0.5, 16000)
    np.testing.assert_array_equal(service.encode(clip, head).codes, service.encode(clip, again).codes)
    with pytest.raises(InvalidInput):
        load_head(EncoderConfig(variant="dynamic", conv_width=8).to_dict(), head.state_dict())


def test_content_width_mismatch_and_unknown_language(service):
    wrong = build_encoder(EncoderConfig(variant="csfm", conv_width=4, content_dim=service.content_dim + 1))
    with pytest.raises(InvalidInput):
        service.encode(_clip(0.5, 16000), wrong)
    with pytest.raises(InvalidInput):
        service.encode(_clip(0.5, 16000), _head(service), lang="fr")


def test_a_head_trained_in_phone_space_gets_phone_space_features(service):
    torch.manual_seed(0)
    dim = service.content_model.dim_for("phones")
    head = build_encoder(EncoderConfig(variant="content", content_dim=dim, content_space="phones")).eval()
    assert dim != service.content_dim
    out = service.encode(_clip(0.8, 16000), head, lang="zh")
    assert out.codes.shape == (20, 64)
    units_head = build_encoder(EncoderConfig(variant="content", content_dim=dim)).eval()
    with pytest.raises(InvalidInput, match="content features"):
        service.encode(_clip(0.8, 16000), units_head)
