"""Exponential moving average of the NeRF's and the audio encoder's parameters: held-out
evaluation and the bundle use the averaged weights, training steps the live ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class ParamEMA:
    def __init__(self, model: nn.Module, encoder: nn.Module, decay: float) -> None:
        self.model, self.encoder, self.decay = model, encoder, decay
        self.shadow = {k: v.detach().clone() for k, v in self.live().items()}

    def live(self) -> dict[str, Tensor]:
        """The live parameters, keyed "model.*" and "encoder.*" (the checkpoint's names)."""
        out = {f"model.{k}": p for k, p in self.model.named_parameters()}
        out.update({f"encoder.{k}": p for k, p in self.encoder.named_parameters()})
        return out

    @torch.no_grad()
    def update(self, prefix: str = "") -> None:
        """One averaging step of the parameters whose names start with `prefix` (all by default)."""
        d = self.decay
        for k, p in self.live().items():
            if k.startswith(prefix):
                self.shadow[k].mul_(d).add_(p.detach(), alpha=1 - d)

    @torch.no_grad()
    def reset(self) -> None:
        """Restart the average from the live parameters."""
        for k, p in self.live().items():
            self.shadow[k].copy_(p.detach())

    @contextmanager
    def swapped(self, active: bool = True) -> Iterator[None]:
        """Context in which the live parameters hold the averaged weights."""
        saved: dict[str, Tensor] = {}
        if active:
            for k, p in self.live().items():
                saved[k] = p.detach().clone()
                p.data.copy_(self.shadow[k])
        try:
            yield
        finally:
            for k, p in self.live().items():
                if k in saved:
                    p.data.copy_(saved[k])

    def state_dicts(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The averaged weights as (model state dict, encoder state dict), buffers included."""
        with self.swapped(True):
            model_sd = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            enc_sd = {k: v.detach().clone() for k, v in self.encoder.state_dict().items()}
        return model_sd, enc_sd
