"""Subject bundles → loaded renderers → frames for per-frame audio codes.

`open_renderer` reads the manifest's `kind` and builds the renderer of that kind; a new kind
(a Gaussian-splatting head, a photo-based head) is one entry in `RENDERER_KINDS` and a class
with the `FrameRenderer` shape (services.common.types). The bundle's audio encoder is not
the renderer's business: services.encoder.service loads it.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from services.common.bundle import RENDERER_PREFIX, SubjectBundle
from services.common.errors import IntegrityError, InvalidInput, RateMismatch
from services.common.paths import cache_dir
from services.common.types import FrameRenderer
from services.renderer.fast import FastPathConfig, FastRenderer, supports_fast_path
from services.renderer import pose_bake, pose_file
from services.renderer.head_field import HeadCond, HeadFieldConfig
from services.renderer.motion import natural_blinks, replay_poses
from services.renderer.rays import Intrinsics
from services.renderer.renderer import TalkingHeadModel
from services.renderer.torso_field import TorsoFieldConfig
from services.renderer.volume import RenderConfig

def _dataclass_from(cls: type, data: dict[str, Any]) -> Any:
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields}
    return cls(**kwargs)


def model_from_manifest(manifest: dict[str, Any]) -> TalkingHeadModel:
    """An untrained TalkingHeadModel with the exact architecture a manifest names."""
    r = manifest["renderer"]
    head = _dataclass_from(HeadFieldConfig, r["head"]["config"])
    torso = _dataclass_from(TorsoFieldConfig, r["torso"]["config"]) if r.get("torso") else None
    render = _dataclass_from(RenderConfig, r["render"])
    return TalkingHeadModel(head=head, torso=torso, with_torso=torso is not None, render=render,
                            occupancy_resolution=int(r["occupancy"]["resolution"]))


class SubjectRenderer:
    """The "triplane-nerf" kind: one subject ready to render (tri-plane hash-grid NeRF head and
    torso in inference mode, intrinsics, pose/blink tracks, background).

    A trained subject renders through the fast path (services.renderer.fast: fewer rays and
    samples of the same NeRF, cached poses) unless `fast_path` is None; `render(exact=True)`
    renders every ray of every frame. With `pose_dir`, the cached poses are read from and
    written back to a file there (services.renderer.pose_file); a bundle's baked poses
    (services.renderer.pose_bake) are the frames of poses not cached yet."""

    def __init__(self, bundle: SubjectBundle, device: str | torch.device = "cpu",
                 fast_path: FastPathConfig | None = FastPathConfig(), pose_dir: Path | None = None) -> None:
        from PIL import Image

        m = bundle.manifest
        self.id = bundle.id
        self.digest = bundle.digest
        self.manifest = m
        self.device = torch.device(device)
        self.fps = float(m["fps"])
        h, w = (int(v) for v in m["resolution"])
        k = m["intrinsics"]
        self.intrinsics = Intrinsics(k["fx"], k["fy"], k["cx"], k["cy"], h, w)
        model = model_from_manifest(m)
        try:
            model.load_state_dict(bundle.tensors("model.safetensors", prefix=RENDERER_PREFIX), strict=True)
        except RuntimeError as exc:
            raise IntegrityError(f"subject {self.id!r}: renderer weights do not match the manifest") from exc
        self.model = model.to(self.device).eval()
        tracks = bundle.tensors("tracks.safetensors")
        self.pose_track = tracks["poses"].numpy()
        self.blink_track = tracks["blink"].numpy()
        bg = np.asarray(Image.open(io.BytesIO(bundle.blobs["background.png"])).convert("RGB"))
        if bg.shape[:2] != (h, w):
            raise IntegrityError(f"subject {self.id!r}: background is {bg.shape[1]}x{bg.shape[0]}, model is {w}x{h}")
        self.background = torch.from_numpy(bg.copy()).float().div(255).to(self.device)
        self.fast: FastRenderer | None = None
        if fast_path is not None and supports_fast_path(self.model):
            check = torch.as_tensor(self.pose_track[0], dtype=torch.float32, device=self.device)
            self.fast = FastRenderer(self.model, self.intrinsics, self.background, fast_path, check_pose=check)
        self.baked: pose_bake.BakedPoses | None = None
        if self.fast is not None and pose_bake.BLOB in bundle.blobs and pose_bake.enabled():
            self.baked = pose_bake.attach(self.fast, bundle.blobs[pose_bake.BLOB], self.id)
        self.poses: pose_file.PersistedPoses | None = None
        if self.fast is not None and pose_dir is not None:
            self.poses = pose_file.PersistedPoses(self.fast, pose_file.cache_path(pose_dir, self.digest, self.fast))

    @property
    def size(self) -> tuple[int, int]:
        return self.intrinsics.height, self.intrinsics.width

    @property
    def pose_frames(self) -> int:
        return len(self.pose_track)

    def conditions(self, n_frames: int, static_pose: bool = False, seed: int = 0, start: int | None = None,
                   span: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Poses [n, 4, 4] replayed smoothly from the subject's track (or its first `span`
        frames; or held still) and natural blinks."""
        if static_pose:
            poses = np.repeat(self.pose_track[:1], n_frames, axis=0)
        else:
            track = self.pose_track[:span] if span > 0 else self.pose_track
            first = int(np.random.default_rng(seed).integers(0, len(track))) if start is None else start
            poses = replay_poses(track, n_frames, start=first)
        return poses, natural_blinks(n_frames, self.fps, seed=seed)

    @torch.no_grad()
    def render(self, codes: np.ndarray, poses: np.ndarray, blinks: np.ndarray, frames_per_batch: int = 8,
               fps: float | None = None, exact: bool = False) -> Iterator[np.ndarray]:
        """Yield uint8 [b, H, W, 3] frame batches, in order, for codes [N, audio_dim]: through
        the fast path when the subject has one, every ray of every frame when `exact`."""
        if fps is not None and abs(fps - self.fps) > 1e-6:
            raise RateMismatch(f"subject {self.id!r} renders at {self.fps:g} fps, codes are for {fps:g} fps")
        n = len(codes)
        if len(poses) != n or len(blinks) != n:
            raise InvalidInput(f"{n} audio codes but {len(poses)} poses and {len(blinks)} blink values")
        dim = self.model.head.config.audio_dim
        if codes.ndim != 2 or codes.shape[1] != dim:
            raise InvalidInput(f"audio codes must be [N, {dim}], got {list(codes.shape)}")
        for s in range(0, n, max(1, frames_per_batch)):
            e = min(n, s + frames_per_batch)
            cond = HeadCond(torch.as_tensor(codes[s:e], dtype=torch.float32, device=self.device),
                            torch.as_tensor(blinks[s:e], dtype=torch.float32, device=self.device), None)
            c2w = torch.as_tensor(poses[s:e], dtype=torch.float32, device=self.device)
            if self.fast is None or exact:
                image = self.model.render_frames(c2w, self.intrinsics, cond, background=self.background)["image"]
            else:
                keys = [pose_bake.pose_key(p) for p in poses[s:e]]
                image = self.fast.render(c2w, cond, keys)
            yield (image.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        if self.poses is not None:
            self.poses.flush()


#: Renderer kinds this build reads: manifest `kind` → "module:class" (imported on first use)
#: or the class itself.
RENDERER_KINDS: dict[str, str | Callable[..., FrameRenderer]] = {
    TalkingHeadModel.kind: "services.renderer.service:SubjectRenderer",
}


def renderer_class(kind: str) -> Callable[[SubjectBundle, str | torch.device], FrameRenderer]:
    if kind not in RENDERER_KINDS:
        raise IntegrityError(f"renderer kind {kind!r} is not supported by this build "
                             f"(it reads: {', '.join(RENDERER_KINDS)})")
    entry = RENDERER_KINDS[kind]
    if not isinstance(entry, str):
        return entry
    module, name = entry.split(":")
    return getattr(importlib.import_module(module), name)


def open_renderer(bundle: SubjectBundle, device: str | torch.device = "cpu") -> FrameRenderer:
    """A renderer of the bundle's kind, loaded on `device`; a NeRF subject keeps its cached
    poses under the cache directory unless $TALKING_HEAD_POSE_CACHE is "off"."""
    cls = renderer_class(bundle.kind)
    if cls is SubjectRenderer and pose_file.enabled():
        return SubjectRenderer(bundle, device, pose_dir=cache_dir() / "poses")
    return cls(bundle, device)
