"""The training-curve PNG a run writes next to its checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

from services.training.config import STAGES, TrainSummary


def plot_curves(summary: TrainSummary, path: Path) -> None:
    """Train PSNR per stage and held-out PSNR (both settings) against wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for si, name in enumerate(STAGES):
        pts = [h for h in summary.history if int(h["stage_index"]) == si]
        if pts:
            ax.plot([p["elapsed_s"] / 60 for p in pts], [p["train_psnr"] for p in pts], label=f"{name} (train rays)")
    for key, style, label in (("val_psnr_head", "ks--", "held-out, head over the real torso"),
                              ("val_psnr", "ko-", "held-out, whole rendered frame")):
        val = [h for h in summary.history if key in h and math.isfinite(h[key])]
        if val:
            ax.plot([p["elapsed_s"] / 60 for p in val], [p[key] for p in val], style, label=label)
    ax.set_xlabel("minutes")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
