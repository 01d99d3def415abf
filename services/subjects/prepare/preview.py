"""The preview sheet: what to look at before spending an hour on training — sample frames
with their landmarks, the parsing over them, the clean background, and the pose, blink and
fit-error tracks over time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from services.subjects.layout import PARSING_RGB


@dataclass(frozen=True)
class Sample:
    index: int
    image: np.ndarray  #: uint8 [S,S,3]
    landmarks: np.ndarray  #: [68,2] pixels
    labels: np.ndarray  #: uint8 [S,S]


def head_angles(c2w: np.ndarray) -> np.ndarray:
    """[N,3] head pitch, yaw, roll in degrees as the camera sees them (0 = facing it)."""
    head_to_cam = np.transpose(np.asarray(c2w)[:, :3, :3], (0, 2, 1))
    return Rotation.from_matrix(head_to_cam).as_euler("xyz", degrees=True)


def write_sheet(path: str | Path, title: str, samples: list[Sample], background: np.ndarray, c2w: np.ndarray,
                blink: np.ndarray, reprojection_px: np.ndarray, fps: float) -> Path:
    """Write the sheet as a PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(samples)
    cols = max(n, 3)
    fig = plt.figure(figsize=(3.2 * cols, 11.2), dpi=100)
    grid = fig.add_gridspec(4, cols, height_ratios=[1, 1, 0.8, 0.55], hspace=0.35, wspace=0.22)
    fig.suptitle(title, fontsize=10, family="monospace")
    for j, s in enumerate(samples):
        ax = fig.add_subplot(grid[0, j])
        ax.imshow(s.image)
        ax.scatter(s.landmarks[:, 0], s.landmarks[:, 1], s=3, c="#00ff66", linewidths=0)
        ax.set_title(f"frame {s.index} ({s.index / fps:.1f} s)", fontsize=8)
        ax.axis("off")
        ax = fig.add_subplot(grid[1, j])
        colours = PARSING_RGB[s.labels].astype(np.float32)
        ax.imshow((0.45 * s.image + 0.55 * colours).astype(np.uint8))
        ax.set_title("parsing: head / neck / torso", fontsize=8)
        ax.axis("off")
    t = np.arange(len(c2w)) / fps
    ax = fig.add_subplot(grid[2, 0])
    ax.imshow(background)
    ax.set_title("background (bc.jpg)", fontsize=8)
    ax.axis("off")
    ax = fig.add_subplot(grid[2, 1:])
    for k, name in enumerate(("pitch", "yaw", "roll")):
        ax.plot(t, head_angles(c2w)[:, k], lw=0.8, label=name)
    ax.set_ylabel("head rotation (°)", fontsize=8)
    ax.legend(fontsize=7, loc="upper right", ncol=3)
    ax.tick_params(labelsize=7)
    ax = fig.add_subplot(grid[3, 1:])
    ax.plot(t, blink, lw=0.8, c="k", label="blink (AU45 / 2)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("seconds", fontsize=8)
    ax.tick_params(labelsize=7)
    ax2 = ax.twinx()
    ax2.plot(t, reprojection_px, lw=0.6, c="tab:red", label="pose fit error (px)")
    ax2.tick_params(labelsize=7, colors="tab:red")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="upper right")
    ax = fig.add_subplot(grid[3, 0])
    pos = np.asarray(c2w)[:, :3, 3] * 100
    for k, name in enumerate("xyz"):
        ax.plot(t, pos[:, k] - np.median(pos[:, k]), lw=0.8, label=name)
    ax.set_title("camera position − median (cm)", fontsize=8)
    ax.legend(fontsize=7, ncol=3)
    ax.tick_params(labelsize=7)
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
