"""The torso stage on a tiny hand-made dataset: it trains the torso alone (the head's and the
audio encoder's weights, live and averaged, leave it as the lips stage left them), and the
held-out PSNR is reported in both settings, head over the real torso and the whole frame."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from services.common.types import AudioClip
from services.encoder.features import extract_features
from services.renderer.rays import Intrinsics, nerf_matrix_to_ngp
from services.training.data import BACKGROUND, HEAD, NECK, TORSO, TrainingData
from services.training.presets import preset

N, SIDE, FPS = 12, 24, 25


def tiny_data() -> TrainingData:
    """A head disc over a torso band in front of a flat background, 12 frames of noise audio."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
    labels = torch.full((SIDE, SIDE), BACKGROUND, dtype=torch.uint8)
    labels[yy >= 18] = TORSO
    labels[(yy >= 15) & (yy < 18) & ((xx - 12).abs() < 3)] = NECK
    labels[(yy - 10) ** 2 + (xx - 12) ** 2 < 36] = HEAD
    background = torch.tensor([40, 90, 40], dtype=torch.uint8).expand(SIDE, SIDE, 3).clone()
    image = background.clone()
    image[labels == TORSO] = torch.tensor([20, 20, 60], dtype=torch.uint8)
    image[labels == NECK] = torch.tensor([150, 100, 80], dtype=torch.uint8)
    image[labels == HEAD] = torch.tensor([170, 120, 90], dtype=torch.uint8)
    images = image.expand(N, SIDE, SIDE, 3).clone()
    images[..., 0] = (images[..., 0].int() + torch.randint(-8, 9, (N, SIDE, SIDE), generator=g)).clamp(0, 255).byte()
    head_bg = background.expand(N, SIDE, SIDE, 3).clone()
    body = (labels == TORSO) | (labels == NECK)
    head_bg[:, body] = images[:, body]
    pose = torch.eye(4).repeat(N, 1, 1)
    pose[:, 2, 3] = 0.9
    pose[:, 0, 3] = torch.linspace(-0.02, 0.02, N)
    rng = np.random.default_rng(0)
    audio = AudioClip((rng.standard_normal(16000 * N // FPS + 1600) * 0.1).astype(np.float32), 16000)
    return TrainingData(
        images=images, head_background=head_bg, labels=labels.expand(N, SIDE, SIDE).clone(),
        poses=nerf_matrix_to_ngp(pose), intrinsics=Intrinsics(40.0, 40.0, 12.0, 12.0, SIDE, SIDE),
        blink=torch.zeros(N), aud_ids=torch.arange(N), lips=torch.tensor([[9, 11, 15, 14]]).repeat(N, 1),
        background=background, train_idx=torch.arange(N - 2), val_idx=torch.arange(N - 2, N),
        features=extract_features(audio, fps=FPS), mouth=torch.randn(N, 4, generator=g))


@pytest.fixture(scope="module")
def trained():
    """A tiny trainer run through the lips stage, then its torso stage; weights at both points."""
    torch.manual_seed(0)
    recipe = preset("tiny")
    recipe = replace(recipe, train=replace(recipe.train, head_iters=8, lips_iters=4, torso_iters=12, eval_every=4,
                                           rays=128, patch=8, lips_anchor_rays=16, audio_pretrain_steps=2,
                                           audio_pretrain_frames=4))
    model, encoder = recipe.build_model(), recipe.build_encoder()
    trainer = recipe.build_trainer(model, encoder, tiny_data())
    lips_only = replace(recipe.train, torso_iters=0)
    trainer.cfg = lips_only
    trainer.train()
    before = {k: v.clone() for k, v in trainer.ema.shadow.items()}
    live_before = {k: v.detach().clone() for k, v in trainer.ema.live().items()}
    trainer.cfg = recipe.train
    summary = trainer.train()
    return trainer, before, live_before, summary


def test_torso_stage_leaves_head_and_encoder_averages_alone(trained) -> None:
    trainer, before, live_before, _ = trained
    after, live_after = trainer.ema.shadow, trainer.ema.live()
    torso = [k for k in after if k.startswith("model.torso.")]
    rest = [k for k in after if not k.startswith("model.torso.")]
    assert torso and rest
    assert any(k.startswith("encoder.") for k in rest) and any(k.startswith("model.head.") for k in rest)
    # the averages of what the torso stage does not train are exactly the lips stage's
    assert all(torch.equal(after[k], before[k]) for k in rest)
    assert all(torch.equal(live_after[k].detach(), live_before[k]) for k in rest)
    # ... while the torso's did move
    assert any(not torch.equal(after[k], before[k]) for k in torso)


def test_held_out_psnr_is_recorded_in_both_settings(trained) -> None:
    _, _, _, summary = trained
    evals = [h for h in summary.history if "val_psnr_head" in h]
    head_stages = [h for h in evals if h["stage_index"] < 2]
    torso_stage = [h for h in evals if h["stage_index"] == 2]
    assert head_stages and torso_stage
    # before the torso is trained only the head setting is defined
    assert all("val_psnr" not in h for h in head_stages)
    assert all(math.isfinite(h["val_psnr"]) and math.isfinite(h["val_psnr_head"]) for h in torso_stage)
    assert summary.val_psnr == torso_stage[-1]["val_psnr"]
    assert summary.val_psnr_head == torso_stage[-1]["val_psnr_head"]
    # the head setting does not depend on the torso: the torso stage leaves it where the lips stage did
    assert torso_stage[-1]["val_psnr_head"] == pytest.approx(head_stages[-1]["val_psnr_head"], abs=1e-6)


def test_resuming_another_encoder_is_one_clear_error_and_loads_nothing(tmp_path) -> None:
    from services.common.errors import InvalidInput

    torch.manual_seed(0)
    recipe = preset("tiny")
    recipe = replace(recipe, train=replace(recipe.train, head_iters=2, lips_iters=0, torso_iters=0, eval_every=2,
                                           rays=64, audio_pretrain_steps=1, audio_pretrain_frames=4))
    first = recipe.build_trainer(recipe.build_model(), recipe.build_encoder(), tiny_data(), tmp_path)
    first.train()
    same = recipe.build_trainer(recipe.build_model(), recipe.build_encoder(), tiny_data(), tmp_path)
    assert same.resume() and same.summary.steps == first.summary.steps
    other = replace(recipe, encoder=replace(recipe.encoder, conv_width=4))
    model, encoder = other.build_model(), other.build_encoder()
    untouched = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = other.build_trainer(model, encoder, tiny_data(), tmp_path)
    with pytest.raises(InvalidInput, match="another audio encoder.*--fresh"):
        trainer.resume()
    assert all(torch.equal(v, untouched[k]) for k, v in model.state_dict().items())
    assert trainer.stage_step == 0
