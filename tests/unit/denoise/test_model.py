from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from services.denoise.checkpoint import load_model, load_training_state, save_training_state
from services.denoise.stft import CompressedStft
from services.denoise.zipenhancer import PAPER, SMALL, ZipEnhancer, count_parameters, fresh_parameters, grow
from services.denoise.zipformer import AttentionWeights, _apply_heads


def test_paper_size_matches_reference_parameter_count():
    # REFERENCE.md §5: 2.04 M parameters with channels 64, 4 heads, FF 256, kernel 15
    n = count_parameters(ZipEnhancer(PAPER))
    assert 1.9e6 < n < 2.15e6
    assert count_parameters(ZipEnhancer(SMALL)) < n / 5


def test_stft_front_end_round_trips_and_has_201_bins():
    stft = CompressedStft()
    x = torch.randn(2, 4000) * 0.1
    mag, pha, com = stft.analyse(x)
    assert mag.shape == (2, 201, 41) and pha.shape == mag.shape and com.shape == (2, 201, 41, 2)
    y = stft.synthesise(mag, pha, 4000)
    assert torch.allclose(x, y, atol=1e-4)


def test_enhance_keeps_shape_and_is_finite(tiny_cfg):
    torch.manual_seed(0)
    model = ZipEnhancer(tiny_cfg).eval()
    for n in (1600, 16_037):
        y = model.enhance(torch.randn(2, n) * 0.1)
        assert y.shape == (2, n) and torch.isfinite(y).all()


def test_outputs_do_not_depend_on_audio_beyond_the_receptive_field(tiny_cfg):
    """The property chunked processing relies on: changing audio 1 s away changes nothing."""
    torch.manual_seed(0)
    model = ZipEnhancer(tiny_cfg).eval()
    x = torch.randn(1, 32_000) * 0.1
    x2 = x.clone()
    x2[:, 24_000:] = torch.randn(1, 8_000)
    mag, pha, _ = model.stft.analyse(x)
    mag2, pha2, _ = model.stft.analyse(x2)
    with torch.no_grad():
        a, b = model(mag, pha)[0], model(mag2, pha2)[0]
    assert torch.allclose(a[..., :100], b[..., :100], atol=1e-5)  # frames < 0.625 s
    assert not torch.allclose(a[..., -40:], b[..., -40:])


def test_grown_model_starts_as_the_trained_one(tiny_cfg):
    torch.manual_seed(0)
    trained = ZipEnhancer(tiny_cfg).eval()
    for head in (trained.mag_decoder.head[-1], trained.pha_decoder.real):
        torch.nn.init.normal_(head.weight, std=0.3)  # not the identity init
    grown = ZipEnhancer(dataclasses.replace(tiny_cfg, stacks=(1, 4, 2))).eval()
    grow(grown, trained, opening=0.0)
    x = torch.randn(1, 8000) * 0.1
    with torch.no_grad():
        assert torch.equal(grown.enhance(x), trained.enhance(x))
        grow(grown, trained)  # the default leaves the new stack slightly open: it is live
        assert grown.stacks[1].bypass.scale.eq(0.1).all()
        assert not torch.allclose(grown.enhance(x), trained.enhance(x))
    for stacks, error in (((2, 1), "not a subsequence"), ((1, 1, 2), "factor-1")):
        with pytest.raises(ValueError, match=error):
            grow(ZipEnhancer(dataclasses.replace(tiny_cfg, stacks=stacks)), trained)
    with pytest.raises(ValueError, match="more than their stacks"):
        grow(ZipEnhancer(dataclasses.replace(tiny_cfg, channels=16)), trained)


def test_grown_refinement_blocks_start_as_identity_and_learn(tiny_cfg):
    torch.manual_seed(0)
    trained = ZipEnhancer(tiny_cfg).eval()
    for head in (trained.mag_decoder.head[-1], trained.pha_decoder.real):
        torch.nn.init.normal_(head.weight, std=0.3)  # not the identity init
    grown = ZipEnhancer(dataclasses.replace(tiny_cfg, refine=2))
    fresh = grow(grown, trained)
    assert fresh == fresh_parameters(tiny_cfg, grown) and len(fresh) == 2 * 2 * 5  # 2 blocks × 2 decoders
    assert all(".refine." in n for n in fresh)
    x = torch.randn(1, 8000) * 0.1
    with torch.no_grad():
        assert torch.equal(grown.eval().enhance(x), trained.enhance(x))
    grown.enhance(x).pow(2).mean().backward()
    grads = dict(grown.named_parameters())
    assert all(grads[n].grad.abs().sum() > 0 for n in fresh if n.endswith("out.weight"))  # live at once
    with pytest.raises(ValueError, match="cannot hold the trained 2"):
        grow(ZipEnhancer(tiny_cfg), grown)


def test_checkpoint_round_trip_and_resume(tmp_path, tiny_cfg):
    torch.manual_seed(0)
    model = ZipEnhancer(tiny_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model.enhance(torch.randn(1, 3200)).pow(2).mean()
    loss.backward()
    opt.step()
    save_training_state(tmp_path, model, opt, {"step": 1, "history": {}})
    assert json.loads((tmp_path / "model.json").read_text())["config"]["channels"] == 8
    loaded = load_model(tmp_path / "model")
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    model2 = ZipEnhancer(tiny_cfg)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    state = load_training_state(tmp_path, model2, opt2)
    assert state["step"] == 1
    p = next(model.parameters())
    p2 = next(model2.parameters())
    assert torch.equal(opt.state[p]["exp_avg"], opt2.state[p2]["exp_avg"])
    assert np.isclose(float(opt2.state[p2]["step"]), 1.0)


def test_untrained_network_passes_audio_through():
    x = torch.randn(1, 8000) * 0.1
    assert torch.allclose(ZipEnhancer(SMALL).eval().enhance(x), x, atol=1e-5)


def test_banded_attention_equals_masked_dense_attention():
    torch.manual_seed(0)
    weights = AttentionWeights(16, 2, 8)
    for length, window in [(50, 8), (48, 8), (100, 30)]:
        x, v = torch.randn(3, length, 16), torch.randn(3, length, 12)
        q, k = weights.qk(x).view(3, length, 2, 2, 8).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / 8 ** 0.5
        i = torch.arange(length)
        scores = scores.masked_fill((i[:, None] - i[None, :]).abs() > window, float("-inf"))
        dense = _apply_heads(scores.softmax(-1).reshape(6, length, length), v, 2)
        assert torch.allclose(_apply_heads(weights(x, window), v, 2), dense, atol=1e-6)
