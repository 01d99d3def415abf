"""EncoderService: frames = fps × duration, any input rate, subject audio encoders from their bundles."""

import numpy as np
import pytest
import torch

from services.common.errors import InvalidInput
from services.common.types import AudioClip
from services.encoder.model import EncoderConfig, build_encoder
from services.common.bundle import AUDIO_ENCODER_PREFIX, make_bundle
from services.encoder.service import EncoderService, load_audio_encoder, subject_audio_encoder


def _clip(seconds, rate):
    t = np.arange(int(seconds * rate)) / rate
    return AudioClip((0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), rate)


@pytest.fixture(scope="module")
def service(tiny_ctc_dir):
    return EncoderService(tiny_ctc_dir)


def _encoder(svc, variant="csfm"):
    torch.manual_seed(0)
    return build_encoder(EncoderConfig(variant=variant, conv_width=4, content_dim=svc.content_dim,
                                       fusion_dim=16, heads=2, attn_radius=2)).eval()


@pytest.mark.parametrize("seconds,rate,fps", [(1.0, 16000, 25), (1.2, 22050, 25), (0.8, 16000, 30)])
def test_codes_per_video_frame(service, seconds, rate, fps):
    out = service.encode(_clip(seconds, rate), _encoder(service), fps=fps, lang="en")
    assert out.codes.shape == (round(seconds * fps), 64) and out.codes.dtype == np.float32
    assert np.isfinite(out.codes).all()


def test_batch_equals_one_by_one(service):
    enc = _encoder(service)
    clips = [_clip(0.6, 16000), _clip(1.0, 16000)]
    batch = service.encode_batch(clips, enc)
    for c, b in zip(clips, batch):
        np.testing.assert_allclose(service.encode(c, enc).codes, b.codes, atol=1e-6)


def test_audio_encoder_round_trips_through_a_bundle(service):
    from safetensors.torch import save

    enc = _encoder(service, "concat")
    weights = {f"{AUDIO_ENCODER_PREFIX}{k}": v.contiguous() for k, v in enc.state_dict().items()}
    weights["renderer.x"] = torch.zeros(1)  # other parts' tensors are left alone
    bundle = make_bundle("enc", {"model.safetensors": save(weights), "background.png": b"-", "tracks.safetensors": b"-"},
                         audio_encoder={"config": enc.config.to_dict()})
    again = subject_audio_encoder(bundle)
    clip = _clip(0.5, 16000)
    np.testing.assert_array_equal(service.encode(clip, enc).codes, service.encode(clip, again).codes)
    with pytest.raises(InvalidInput):
        load_audio_encoder(EncoderConfig(variant="dynamic", conv_width=8).to_dict(), enc.state_dict())


def test_content_width_mismatch_and_unknown_language(service):
    wrong = build_encoder(EncoderConfig(variant="csfm", conv_width=4, content_dim=service.content_dim + 1))
    with pytest.raises(InvalidInput):
        service.encode(_clip(0.5, 16000), wrong)
    with pytest.raises(InvalidInput):
        service.encode(_clip(0.5, 16000), _encoder(service), lang="fr")


def test_an_encoder_trained_in_phone_space_gets_phone_space_features(service):
    torch.manual_seed(0)
    dim = service.content_model.dim_for("phones")
    enc = build_encoder(EncoderConfig(variant="content", content_dim=dim, content_space="phones")).eval()
    assert dim != service.content_dim
    out = service.encode(_clip(0.8, 16000), enc, lang="zh")
    assert out.codes.shape == (20, 64)
    units_enc = build_encoder(EncoderConfig(variant="content", content_dim=dim)).eval()
    with pytest.raises(InvalidInput, match="content features"):
        service.encode(_clip(0.8, 16000), units_enc)


@pytest.mark.parametrize("threads", [1, 2])
def test_encode_runs_on_its_own_thread_count(tiny_ctc_dir, threads):
    """Every op of an encode (content model and audio encoder) sees the service's thread
    count; the caller's count is back afterwards."""
    svc = EncoderService(tiny_ctc_dir, threads=threads)
    enc = _encoder(svc)
    seen = []
    for module in (svc.content_model.model, enc):
        module.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        svc.encode(_clip(0.5, 16000), enc, lang="en")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert seen == [threads, threads]

