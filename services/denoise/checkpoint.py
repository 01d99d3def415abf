"""Weights and resumable training state as safetensors + JSON (never pickle).

A model is ``<stem>.safetensors`` (tensors) + ``<stem>.json`` ({"config", "meta"}).
A training checkpoint adds ``optimizer.safetensors/.json`` (services.common.checkpoint) and
``state.json`` (step, hyper-parameters, loss history).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from services.common.checkpoint import load_checkpoint, optimizer_from_flat, optimizer_to_flat, save_checkpoint
from services.common.errors import IntegrityError, NotFound
from services.denoise.zipenhancer import ZipEnhancer, ZipEnhancerConfig


def save_model(stem: Path, model: ZipEnhancer, meta: dict | None = None) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    tmp = stem.with_suffix(".safetensors.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(stem.with_suffix(".safetensors"))
    info = {"config": json.loads(model.cfg.to_json()), "meta": meta or {}}
    stem.with_suffix(".json").write_text(json.dumps(info, indent=2))


def load_model(stem: Path) -> ZipEnhancer:
    weights, info_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not weights.exists() or not info_path.exists():
        raise NotFound(f"denoiser weights not found at {weights} (+ .json)")
    info = json.loads(info_path.read_text())
    model = ZipEnhancer(ZipEnhancerConfig.from_dict(info["config"]))
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise IntegrityError(f"{weights}: weights do not fit the config "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval()


def save_training_state(run_dir: Path, model: ZipEnhancer, opt: torch.optim.Optimizer,
                        state: dict) -> None:
    """Model (loadable on its own) + optimiser moments (`optimizer.safetensors/.json`) + state.json."""
    save_model(run_dir / "model", model, {"step": state["step"]})
    tensors, meta = optimizer_to_flat(opt, "opt")
    save_checkpoint(run_dir / "optimizer", tensors, meta)
    (run_dir / "state.json.tmp").write_text(json.dumps(state))
    (run_dir / "state.json.tmp").replace(run_dir / "state.json")


def load_training_state(run_dir: Path, model: ZipEnhancer, opt: torch.optim.Optimizer) -> dict:
    state = json.loads((run_dir / "state.json").read_text())
    model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
    saved = load_checkpoint(run_dir / "optimizer")
    if saved is None:
        raise NotFound(f"no optimizer checkpoint in {run_dir}")
    optimizer_from_flat(opt, *saved, prefix="opt")
    return state
