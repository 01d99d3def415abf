"""Trained modules + the dataset's tracks and background → a verified subject bundle."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from services.common.bundle import AUDIO_ENCODER_PREFIX, RENDERER_PREFIX, SubjectBundle, make_bundle
from services.common.errors import InvalidInput
from services.encoder.model import AudioEncoder
from services.renderer import pose_bake
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


def bake_bundle(bundle: SubjectBundle, seconds: float = pose_bake.DEFAULT_SECONDS,
                max_bytes: int = pose_bake.DEFAULT_MAX_BYTES, progress: Callable[[int, int], None] | None = None) -> SubjectBundle:
    """The bundle again with the fast path's frames of its default pose walk baked in (the
    first `seconds` of it, at most `max_bytes` of PNG): services.renderer.pose_bake."""
    from services.common.types import walk_start
    from services.renderer.service import SubjectRenderer

    if seconds <= 0:
        raise InvalidInput(f"seconds to bake must be > 0, got {seconds:g}")
    renderer = SubjectRenderer(bundle, "cpu")
    if renderer.fast is None:
        raise InvalidInput(f"subject {bundle.id!r} has no fast path to bake poses for")
    renderer.fast.cache.baked = None  # render every pose, never the frames baked before
    n = max(1, int(round(seconds * renderer.fps)))
    poses, _ = renderer.conditions(n, seed=0, start=walk_start(0))
    blob = pose_bake.bake(renderer.fast, poses, max_bytes, progress=progress)
    baked = pose_bake.BakedPoses(blob, renderer.fast)
    blobs = {k: v for k, v in bundle.blobs.items() if k != pose_bake.BLOB}
    blobs[pose_bake.BLOB] = blob
    fields = {k: v for k, v in bundle.manifest.items() if k not in ("id", "format_version", "created", "blobs")}
    fields["baked_poses"] = {"frames": len(baked), "seconds": round(len(baked) / renderer.fps, 2),
                             "walk": "seed 0 from walk_start(0)", "code": "zero"}
    return make_bundle(bundle.id, blobs, **fields)


def has_fast_path(bundle: SubjectBundle) -> bool:
    """Whether the bundle's renderer has a fitted occupancy grid (an untrained one has none)."""
    from services.renderer.fast import supports_fast_path
    from services.renderer.service import model_from_manifest

    model = model_from_manifest(bundle.manifest)
    model.load_state_dict(bundle.tensors("model.safetensors", prefix=RENDERER_PREFIX))
    return supports_fast_path(model)


def bake_with_bar(bundle: SubjectBundle, seconds: float) -> SubjectBundle:
    """`bake_bundle` with a progress bar on stderr."""
    from tqdm import tqdm

    with tqdm(desc="baking poses", unit="pose") as bar:
        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        return bake_bundle(bundle, seconds, progress=update)
