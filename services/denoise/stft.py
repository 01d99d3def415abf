"""STFT front end of ZipEnhancer (REFERENCE.md §5): n_fft 400, hop 100, Hann 400 at 16 kHz,
magnitude compressed as |X|^0.3, phase = atan2(imag, real)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StftConfig:
    n_fft: int = 400
    hop: int = 100
    win: int = 400
    compress: float = 0.3

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1


class CompressedStft(torch.nn.Module):
    """wave [B, N] ↔ (compressed magnitude, phase, compressed complex) each [B, F, T]."""

    def __init__(self, cfg: StftConfig = StftConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.win), persistent=False)

    def analyse(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.cfg
        spec = torch.stft(wave, c.n_fft, c.hop, c.win, self.window, center=True,
                          pad_mode="reflect", return_complex=True)
        mag = spec.abs().clamp_min(1e-8) ** c.compress  # clamp keeps the gradient finite at 0
        pha = torch.atan2(spec.imag + 0.0, spec.real + 0.0)
        return mag, pha, torch.stack([mag * torch.cos(pha), mag * torch.sin(pha)], -1)

    def synthesise(self, mag: torch.Tensor, pha: torch.Tensor, length: int) -> torch.Tensor:
        c = self.cfg
        amp = mag.clamp_min(0) ** (1.0 / c.compress)
        spec = torch.complex(amp * torch.cos(pha), amp * torch.sin(pha))
        return torch.istft(spec, c.n_fft, c.hop, c.win, self.window, center=True, length=length)
