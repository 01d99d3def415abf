"""An untrained subject for serving tests and load tests (tiny real models, no fakes): the
synthetic oracle's background, camera and pose track, the "tiny" preset's architecture,
random weights. Renders real (meaningless) frames in milliseconds at 32×32."""

from __future__ import annotations

from pathlib import Path

import torch

from services.common.bundle import SubjectBundle


def random_subject(name: str, workdir: Path, size: int = 32, seed: int = 0) -> SubjectBundle:
    from services.subjects.layout import load_dataset
    from services.subjects.synth import SynthConfig, synth
    from services.training.bundle import build_bundle
    from services.training.presets import preset
    from services.training.speech import bundled_voice

    torch.manual_seed(seed)
    ds_dir = Path(workdir) / f"{name}-dataset"
    if not (ds_dir / "transforms_train.json").exists():
        synth(name, SynthConfig(minutes=0.02, size=size, video=False, seed=seed), out=ds_dir, progress=False,
              speak=bundled_voice())
    ds = load_dataset(ds_dir)
    recipe = preset("tiny")
    model = recipe.build_model()
    encoder = recipe.build_encoder()
    return build_bundle(name, model, encoder, ds, {"preset": "random-init", "frames": len(ds), "steps": 0,
                                                   "val_psnr": None})
