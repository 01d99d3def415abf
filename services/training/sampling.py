"""Which frame and which pixels a training step reads. Draws come from the trainer's
generator, whose state is part of a checkpoint: a resumed run draws what the
uninterrupted run would have drawn."""

from __future__ import annotations

import torch
from torch import Tensor

from services.training.config import TrainConfig
from services.training.data import HEAD, TrainingData


class PixelSampler:
    def __init__(self, data: TrainingData, config: TrainConfig, generator: torch.Generator) -> None:
        self.data, self.cfg, self.gen = data, config, generator

    def randint(self, high: int, n: int = 1) -> Tensor:
        return torch.randint(0, high, (n,), generator=self.gen)

    def frame(self) -> int:
        """A random training frame."""
        idx = self.data.train_idx
        return int(idx[self.randint(len(idx))])

    def anywhere(self, n: int) -> Tensor:
        """Flat indices of `n` pixels anywhere in the frame."""
        h, w = self.data.size
        return self.randint(h * w, n)

    def rays(self, i: int, regions: tuple[int, ...], lips_fraction: float = 0.0) -> Tensor:
        """Flat pixel indices: shares inside the lip box and inside `regions`, the rest uniform.

        The mouth is a few percent of the frame but carries all of the audio signal, so it
        gets its own share or the audio path sees almost no gradient."""
        h, w = self.data.size
        n = self.cfg.rays
        n_lips = int(n * lips_fraction)
        n_in = int(n * self.cfg.face_fraction)
        labels = self.data.labels[i].reshape(-1)
        inside = torch.isin(labels, torch.tensor(regions, dtype=labels.dtype)).nonzero()[:, 0]
        if not len(inside):
            n_in = 0
        parts = [self.randint(h * w, n - n_in - n_lips)]
        if n_in:
            parts.append(inside[self.randint(len(inside), n_in)])
        if n_lips:
            x0, y0, x1, y1 = (int(v) for v in self.data.lips[i])
            ys = y0 + self.randint(max(1, y1 - y0 + 1), n_lips)
            xs = x0 + self.randint(max(1, x1 - x0 + 1), n_lips)
            parts.append(ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1))
        return torch.cat(parts)

    def patch(self, i: int, lips: bool) -> tuple[Tensor, int]:
        """Flat indices of a P×P patch around the lips or anywhere on the face, and P."""
        h, w = self.data.size
        p = min(self.cfg.patch, h, w)
        if lips:
            x0, y0, x1, y1 = (int(v) for v in self.data.lips[i])
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        else:
            face = (self.data.labels[i] == HEAD).nonzero()
            cy, cx = (int(v) for v in face[self.randint(len(face))][0]) if len(face) else (h // 2, w // 2)
        top = min(max(cy - p // 2, 0), h - p)
        left = min(max(cx - p // 2, 0), w - p)
        ys, xs = torch.meshgrid(torch.arange(top, top + p), torch.arange(left, left + p), indexing="ij")
        return (ys * w + xs).reshape(-1), p
