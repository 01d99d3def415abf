"""Trained modules + the dataset's tracks and background → a verified subject bundle."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from services.common.bundle import AUDIO_ENCODER_PREFIX, RENDERER_PREFIX, SubjectBundle, make_bundle
from services.encoder.model import AudioEncoder
from services.renderer.renderer import TalkingHeadModel
from services.subjects.layout import SubjectDataset
from services.training.data import dataset_blink, dataset_intrinsics, renderer_poses


def build_bundle(name: str, model: TalkingHeadModel, encoder: AudioEncoder, ds: SubjectDataset,
                 summary: dict[str, Any]) -> SubjectBundle:
    """A bundle of `model` and `encoder` as they are (the caller loads the EMA weights
    first), with the dataset's camera and blink tracks in renderer space."""
    weights = {f"{RENDERER_PREFIX}{k}": v for k, v in model.state_dict().items()}
    weights.update({f"{AUDIO_ENCODER_PREFIX}{k}": v for k, v in encoder.state_dict().items()})
    intr = dataset_intrinsics(ds)
    blobs = {
        "model.safetensors": _safetensors(weights),
        "tracks.safetensors": _safetensors({"poses": renderer_poses(ds.poses), "blink": dataset_blink(ds)}),
        "background.png": _png(ds.background),
    }
    return make_bundle(
        name, blobs,
        kind=model.kind,
        renderer=model.manifest(),
        audio_encoder={"config": encoder.config.to_dict(), "params": sum(p.numel() for p in encoder.parameters())},
        audio_features={"sample_rate": 16_000, "mel_fps": 80, "mel_window": 16, "content_fps": 50},
        intrinsics={"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy},
        resolution=[intr.height, intr.width], fps=ds.fps, languages=["en", "zh"],
        pose_space="renderer (ER-NeRF nerf_matrix_to_ngp, scale 4)",
        training=summary,
        oracle={k: ds.extras["oracle"][k] for k in ("seed", "size")} if "oracle" in ds.extras else None,
    )


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _safetensors(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
