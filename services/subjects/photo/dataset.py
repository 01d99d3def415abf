"""A photo head saying `speech` → an ER-NeRF-layout dataset (the oracle's writer, its
tracks in photo.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.common.types import VIDEO_FPS, Speech
from services.subjects.photo.face import PhotoFace
from services.subjects.photo.proxy import PhotoHead
from services.subjects.synth import write_oracle_dataset

#: The dataset's metadata file.
META_NAME = "photo.json"


def photo_head(face: PhotoFace, seed: int = 0) -> PhotoHead:
    """The head proxy of a found face (runs the person segmentation once)."""
    from services.subjects.prepare.parsing import Segmenter

    segmenter = Segmenter()
    try:
        person = segmenter.person(face.image)
    finally:
        segmenter.close()
    return PhotoHead(face, person, seed)


def photo_meta(head: PhotoHead) -> dict:
    face = head.face
    return {"kind": "photo", "source": face.name, "seed": head.seed, "size": head.size,
            "crop": face.crop.as_dict(), "face_px": round(face.face_px, 1), "yaw_deg": round(face.yaw_deg, 2),
            "pitch_deg": round(face.pitch_deg, 2), "focal": head.focal, "photo_gap_px": round(head.rig.gap0, 2),
            "photo_open": round(head.rig.gap0 / max(head.rig.gap(1.0), 1e-6), 4),
            "photo_c2w": np.round(head.c2w_rest(), 6).tolist()}


def write_photo_dataset(root: str | Path, head: PhotoHead, speech: Speech, sentences: list[dict] | None = None,
                        fps: int = VIDEO_FPS, force: bool = False, video: bool = False,
                        progress: bool = True) -> Path:
    """Render `speech` with the photo head into a dataset at `root` (atomic)."""
    return write_oracle_dataset(root, speech, head, fps, sentences, force, video, progress,
                                meta_name=META_NAME, meta=photo_meta(head))
