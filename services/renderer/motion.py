"""Head pose and blink tracks for inference: replay the subject's own motion, add natural blinks."""

from __future__ import annotations

import numpy as np

from services.common.types import track_position


def replay_poses(track: np.ndarray, n_frames: int, start: int = 0, smooth: int = 5) -> np.ndarray:
    """n_frames camera-to-world matrices from a training track [N, 4, 4], phases start.. of
    its ping-pong walk (services.common.types.track_position), so there is never a jump.

    Translation and rotation are smoothed with a short moving average over the walk's own
    neighbours (re-orthonormalised): a phase's pose is the same whichever call it is in, so
    requests that continue one another's phase join without a seam.
    """
    track = np.asarray(track, dtype=np.float64)
    n = len(track)
    if n == 0:
        raise ValueError("empty pose track")
    if n == 1:
        return np.repeat(track[:1], n_frames, axis=0).astype(np.float32)
    smooth = max(1, smooth)
    pad = smooth // 2
    idx = track_position(start - pad + np.arange(n_frames + smooth - 1), n)
    walk = track[idx]
    poses = walk[pad:pad + n_frames].copy()
    if smooth > 1 and n_frames > 0:
        kernel = np.ones(smooth) / smooth
        flat = walk[:, :3, :4].reshape(len(walk), 12)
        flat = np.stack([np.convolve(flat[:, j], kernel, mode="valid") for j in range(12)], axis=1)
        poses[:, :3, :4] = flat.reshape(n_frames, 3, 4)
        u, _, vt = np.linalg.svd(poses[:, :3, :3])
        poses[:, :3, :3] = u @ vt  # nearest rotation
    return poses.astype(np.float32)


def natural_blinks(n_frames: int, fps: float, seed: int = 0, mean_interval_s: float = 3.5,
                   duration_s: float = 0.25) -> np.ndarray:
    """Blink values in [0, 1] per frame: closures at random intervals with a smooth profile."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    out = np.zeros(n_frames, dtype=np.float32)
    when = rng.uniform(0.5, 2.0)
    while when < t[-1] + duration_s if n_frames else False:
        phase = (t - when) / duration_s
        inside = (phase >= 0) & (phase <= 1)
        out[inside] = np.maximum(out[inside], np.sin(np.pi * phase[inside]) ** 2)
        when += max(1.0, rng.exponential(mean_interval_s))
    return out
