"""A tiny random-initialised real subject for serving tests and load tests (DESIGN §6:
tiny real models, no fakes): the synthetic oracle's background, camera and pose track,
the "tiny" preset's architecture, untrained weights. Renders real (meaningless) frames
in milliseconds at 32×32."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from services.common.bundle import SubjectBundle


def random_subject(name: str, workdir: Path, size: int = 32, seed: int = 0) -> SubjectBundle:
    from dataclasses import replace

    from services.encoder.model import build_encoder
    from services.gateway.subject_training import PRESETS, build_bundle, renderer_poses
    from services.renderer.rays import Intrinsics
    from services.renderer.renderer import TalkingHeadModel
    from services.renderer.volume import RenderConfig
    from services.subjects.layout import load_dataset
    from services.subjects.synth import SynthConfig, synth

    torch.manual_seed(seed)
    ds_dir = Path(workdir) / f"{name}-dataset"
    if not (ds_dir / "transforms_train.json").exists():
        synth(name, SynthConfig(minutes=0.02, size=size, video=False, seed=seed), out=ds_dir, progress=False)
    ds = load_dataset(ds_dir)
    recipe = PRESETS["tiny"]
    model = TalkingHeadModel(head=replace(recipe.head, num_latents=1), torso=replace(recipe.torso, num_latents=1),
                             occupancy_resolution=recipe.occupancy_resolution, render=RenderConfig())
    encoder = build_encoder(recipe.encoder)
    data = SimpleNamespace(poses=renderer_poses(ds.poses), blink=torch.from_numpy(np.asarray(ds.blink)).float(),
                           intrinsics=Intrinsics(ds.focal, ds.focal, ds.cx, ds.cy, ds.height, ds.width))
    return build_bundle(name, model, encoder, recipe.encoder, data, ds,
                        {"preset": "random-init", "frames": len(ds), "steps": 0, "val_psnr": None})
