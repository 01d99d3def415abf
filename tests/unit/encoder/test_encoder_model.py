"""Every encoder variant: shapes, differentiability, exact partial encoding, config round trip."""

import numpy as np
import pytest
import torch

from services.common.errors import InvalidInput
from services.common.types import AudioClip
from services.encoder.dynamic import MelConvEncoder
from services.encoder.features import ContentFrames, extract_features
from services.encoder.model import VARIANTS, EncoderConfig, build_encoder

C = 12


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(0)
    clip = AudioClip((0.1 * rng.standard_normal(9600)).astype(np.float32), 16000)
    content = ContentFrames(rng.dirichlet(np.ones(C), 31).astype(np.float32))
    return extract_features(clip, 25, content=content)


def _tiny(variant: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_encoder(EncoderConfig(variant=variant, conv_width=4, content_dim=C, fusion_dim=16,
                                       heads=2, attn_radius=2, **kw))


def test_wav2lip_width_has_about_2_8m_parameters():
    n = sum(p.numel() for p in MelConvEncoder(32).parameters())
    assert 2.7e6 < n < 2.9e6


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_runs_and_is_differentiable(variant, feats):
    enc = _tiny(variant).train()
    mel = feats.mel_windows.clone().requires_grad_(True)
    content = feats.content_windows.clone().requires_grad_(True)
    f = type(feats)(fps=25, n_frames=feats.n_frames, mel_windows=mel, content_windows=content)
    codes = enc(f)
    assert codes.shape == (15, 64)
    codes.square().mean().backward()
    cfg = enc.config
    assert (mel.grad is not None and mel.grad.abs().sum() > 0) == cfg.uses_mel
    assert (content.grad is not None and content.grad.abs().sum() > 0) == cfg.uses_content
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None for g in grads)


@pytest.mark.parametrize("variant", ["dynamic", "csfm"])
def test_encode_frames_matches_full_clip_in_eval(variant, feats):
    enc = _tiny(variant).eval()
    with torch.no_grad():
        full = enc(feats)
        idx = torch.tensor([0, 7, 14])
        torch.testing.assert_close(enc.encode_frames(feats, idx), full[idx])


def test_fusion_attention_is_local_in_time(feats):
    enc = _tiny("csfm").eval()
    content = feats.content_windows.clone()
    content[14] += 5.0
    changed = type(feats)(fps=25, n_frames=feats.n_frames, mel_windows=feats.mel_windows, content_windows=content)
    with torch.no_grad():
        a, b = enc(feats), enc(changed)
    far = 14 - enc.context_frames
    torch.testing.assert_close(a[:far], b[:far])
    assert not torch.allclose(a[14], b[14])


def test_config_round_trip_and_validation():
    cfg = EncoderConfig(variant="csfm", content_dim=7, conv_width=8)
    again = build_encoder(cfg.to_dict()).config
    assert again == cfg
    with pytest.raises(InvalidInput):
        EncoderConfig(variant="nope")
    with pytest.raises(InvalidInput):
        EncoderConfig(variant="csfm")  # content variants need content_dim


def test_content_variant_needs_content_windows(feats):
    enc = _tiny("concat")
    with pytest.raises(InvalidInput):
        enc(type(feats)(fps=25, n_frames=feats.n_frames, mel_windows=feats.mel_windows))
