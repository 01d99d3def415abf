"""The audio path's anchor: a linear probe from the audio code to the mouth shape seen in
the landmarks, and the encoder-only warm-up that trains it before the NeRF.

Without it the jointly trained encoder collapses to a constant code early on: the NeRF
first learns the mean face, for which a constant is the best (and cheapest) input.
Codes that already track the mouth give the NeRF a signal worth using from step 0."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.training.config import TrainConfig
from services.training.data import TrainingData
from services.training.sampling import PixelSampler


class MouthProbe(nn.Linear):
    """Audio code → mouth shape with unit-norm rows: the code itself must carry the mouth
    shape at unit scale, not a tiny code blown up by a large probe weight."""

    def forward(self, codes: Tensor) -> Tensor:
        w = self.weight
        return F.linear(codes, w / w.norm(dim=1, keepdim=True).clamp(min=1e-6), self.bias)


def pretrain_audio(encoder: nn.Module, probe: MouthProbe, data: TrainingData, sampler: PixelSampler,
                   config: TrainConfig, progress: Callable[[int, int, float], None] | None = None) -> float:
    """Train the encoder and the probe on the mouth shape of random runs of consecutive
    training frames; returns the last loss."""
    assert data.mouth is not None
    c = config
    opt = torch.optim.AdamW(list(encoder.parameters()) + list(probe.parameters()), lr=c.audio_pretrain_lr, weight_decay=0.0)
    idx = data.train_idx
    span = min(c.audio_pretrain_frames, len(idx))
    loss_v = float("nan")
    for step in range(c.audio_pretrain_steps):
        start = int(sampler.randint(max(1, len(idx) - span + 1)))
        frames = idx[start:start + span]
        codes = encoder.encode_frames(data.features, data.aud_ids[frames])
        loss = F.mse_loss(probe(codes), data.mouth[frames].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_v = float(loss.detach())
        if progress and (step + 1) % 50 == 0:
            progress(step + 1, c.audio_pretrain_steps, loss_v)
    return loss_v
