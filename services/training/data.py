"""A dataset as the trainer reads it: `TrainingData` (tensors only) and the steps from an
ER-NeRF-layout `SubjectDataset` to it (lip boxes, mouth shape, renderer-space poses, the
content model's frames)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from services.common.types import AudioClip
from services.encoder.content import ContentModel
from services.encoder.features import ContentFrames
from services.renderer.rays import Intrinsics, nerf_matrix_to_ngp
from services.subjects.layout import POSE_SCALE, SubjectDataset

# Parsing labels (ER-NeRF colours: head red, neck green, torso blue, background white).
BACKGROUND, HEAD, NECK, TORSO = 0, 1, 2, 3


@dataclass
class TrainingData:
    """Everything training reads, as tensors on one device."""

    images: Tensor  # uint8 [N, H, W, 3] ground-truth frames
    head_background: Tensor  # uint8 [N, H, W, 3] torso composited over the static background
    labels: Tensor  # uint8 [N, H, W] parsing labels (BACKGROUND/HEAD/NECK/TORSO)
    poses: Tensor  # float [N, 4, 4] camera-to-world, renderer space
    intrinsics: Intrinsics
    blink: Tensor  # float [N] in [0, 1]
    aud_ids: Tensor  # long [N] audio-feature frame of each video frame
    lips: Tensor  # long [N, 4] lip box (x0, y0, x1, y1) in pixels
    background: Tensor  # uint8 [H, W, 3]
    train_idx: Tensor  # long [n_train]: the dataset's training frames that have sound of their own
    val_idx: Tensor  # long [n_val]
    features: Any  # the audio encoder's features for the whole audio track
    mouth: Tensor | None = None  # float [N, K] standardised mouth shape (from landmarks), aux target

    @property
    def size(self) -> tuple[int, int]:
        return self.intrinsics.height, self.intrinsics.width


def lip_boxes(landmarks: np.ndarray, width: int, height: int, margin: float = 0.25) -> np.ndarray:
    """[N, 4] lip boxes (x0, y0, x1, y1) from iBUG landmarks 48–67, with a margin."""
    lips = landmarks[:, 48:68]
    lo, hi = lips.min(axis=1), lips.max(axis=1)
    pad = (hi - lo) * margin + 2
    lo, hi = np.floor(lo - pad), np.ceil(hi + pad)
    box = np.stack([lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]], axis=1)
    box[:, [0, 2]] = box[:, [0, 2]].clip(0, width - 1)
    box[:, [1, 3]] = box[:, [1, 3]].clip(0, height - 1)
    return box.astype(np.int64)


def mouth_shape(landmarks: np.ndarray) -> np.ndarray:
    """[N, 4] standardised mouth shape from iBUG landmarks: inner and outer opening, outer
    and inner width, each over the inter-ocular distance, then z-scored over the clip."""
    lm = np.asarray(landmarks, dtype=np.float64)

    def dist(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(lm[:, a] - lm[:, b], axis=1)

    eyes = np.maximum(dist(36, 45), 1e-6)
    feats = np.stack([dist(62, 66), dist(51, 57), dist(48, 54), dist(60, 64)], axis=1) / eyes[:, None]
    return ((feats - feats.mean(0)) / np.maximum(feats.std(0), 1e-6)).astype(np.float32)


def renderer_poses(poses: np.ndarray) -> Tensor:
    """transforms.json camera-to-world (OpenGL, file units) → renderer space (ER-NeRF convention)."""
    return nerf_matrix_to_ngp(torch.from_numpy(np.asarray(poses, dtype=np.float32)), scale=POSE_SCALE)


def dataset_intrinsics(ds: SubjectDataset) -> Intrinsics:
    return Intrinsics(ds.focal, ds.focal, ds.cx, ds.cy, ds.height, ds.width)


def dataset_blink(ds: SubjectDataset) -> Tensor:
    return torch.from_numpy(np.asarray(ds.blink)).float()


def dataset_content_frames(ds: SubjectDataset, model: ContentModel | str | Path, space: str = "units",
                           progress: bool = True, audio: AudioClip | None = None) -> ContentFrames:
    """The content model (loaded, or its directory) over a dataset's audio (or `audio`, the
    same track denoised): sentence by sentence with its language when the dataset records
    its sentences (oracle datasets), else in 10 s chunks."""
    if not isinstance(model, ContentModel):
        model = ContentModel.load(model)
    audio = ds.audio if audio is None else audio
    sentences = ds.extras.get("oracle", {}).get("sentences", [])
    segments = [(float(s["start"]), float(s["end"]), s.get("lang")) for s in sentences]
    if progress:
        print(f"content features: {model.name} over {audio.duration:.0f} s of audio", flush=True)
    return model.frames_long(audio, segments, space=space)


def training_data(ds: SubjectDataset, features: Any, progress: bool = True) -> TrainingData:
    """Load every frame of a dataset into tensors (uint8 images keep memory modest). Training
    frames without sound of their own (SubjectDataset.soundless) are not trained on: their
    mouth moves to a sound the clip does not hold, and silence would learn to open it."""
    from tqdm import tqdm

    n, h, w = len(ds), ds.height, ds.width
    images = torch.empty((n, h, w, 3), dtype=torch.uint8)
    head_bg = torch.empty((n, h, w, 3), dtype=torch.uint8)
    labels = torch.empty((n, h, w), dtype=torch.uint8)
    bg = ds.background.astype(np.float32)
    for k in tqdm(range(n), desc="loading frames", unit="frame", disable=not progress):
        images[k] = torch.from_numpy(np.array(ds.gt_image(k)))
        labels[k] = torch.from_numpy(np.array(ds.labels(k)))
        rgba = ds.torso(k).astype(np.float32)
        a = rgba[..., 3:4] / 255.0
        head_bg[k] = torch.from_numpy((rgba[..., :3] * a + bg * (1 - a)).round().astype(np.uint8))
    return TrainingData(
        images=images, head_background=head_bg, labels=labels, poses=renderer_poses(ds.poses),
        intrinsics=dataset_intrinsics(ds), blink=dataset_blink(ds), aud_ids=torch.from_numpy(ds.aud_ids).long(),
        lips=torch.from_numpy(lip_boxes(ds.landmarks, w, h)), background=torch.from_numpy(np.array(ds.background)),
        train_idx=torch.from_numpy(np.setdiff1d(ds.train, ds.soundless)).long(),
        val_idx=torch.from_numpy(ds.val).long(), features=features,
        mouth=torch.from_numpy(mouth_shape(ds.landmarks)))
