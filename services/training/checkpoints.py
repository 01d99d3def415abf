"""A training run's checkpoint: live and averaged weights, the mouth probe, the optimiser,
the generator and the counters, as safetensors + JSON (services.common.checkpoint)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor

from services.common.checkpoint import load_checkpoint, optimizer_from_flat, optimizer_to_flat, save_checkpoint
from services.common.errors import InvalidInput
from services.training.config import TrainSummary

if TYPE_CHECKING:
    from services.training.trainer import Trainer


def save_trainer(trainer: Trainer, path: Path) -> None:
    t = trainer
    tensors = {f"live.{k}": v for k, v in t.model.state_dict().items()}
    tensors.update({f"live_enc.{k}": v for k, v in t.encoder.state_dict().items()})
    if t.mouth_probe is not None:
        tensors.update({f"probe.{k}": v for k, v in t.mouth_probe.state_dict().items()})
    tensors.update({f"ema.{k}": v for k, v in t.ema.shadow.items()})
    opt_t, opt_meta = optimizer_to_flat(t.opt, "opt")
    tensors.update(opt_t)
    tensors["rng"] = t.gen.get_state()
    meta = {"stage": t.stage, "stage_step": t.stage_step, "optimizer": opt_meta,
            "summary": asdict(t.summary), "elapsed_s": t.elapsed(), "config": asdict(t.cfg)}
    save_checkpoint(path, tensors, meta)


def resume_trainer(trainer: Trainer, path: Path) -> bool:
    """Restore `trainer` from the checkpoint at `path`; False when there is none."""
    loaded = load_checkpoint(path)
    if loaded is None:
        return False
    tensors, meta = loaded
    t = trainer
    _check_fits(t, tensors, path)
    t.model.load_state_dict(_under(tensors, "live."))
    t.encoder.load_state_dict(_under(tensors, "live_enc."))
    if t.mouth_probe is not None:
        t.mouth_probe.load_state_dict(_under(tensors, "probe."))
    for k in t.ema.shadow:
        t.ema.shadow[k].copy_(tensors[f"ema.{k}"])
    t.stage, t.stage_step = meta["stage"], meta["stage_step"]
    t.opt = t.make_optimizer(t.stage)
    optimizer_from_flat(t.opt, tensors, meta["optimizer"], "opt")
    t.gen.set_state(tensors["rng"])
    s = meta["summary"]
    t.summary = TrainSummary(steps=s["steps"], seconds=s["seconds"], val_psnr=s["val_psnr"],
                             val_psnr_head=s.get("val_psnr_head", float("nan")), history=s["history"])
    t.restart_clock(meta["elapsed_s"])
    return True


def _check_fits(trainer: Trainer, tensors: dict[str, Tensor], path: Path) -> None:
    """InvalidInput, before anything is loaded, when the checkpoint holds another model or
    audio encoder (another preset, encoder variant or size) than `trainer`'s."""
    for prefix, module, what in (("live.", trainer.model, "NeRF"), ("live_enc.", trainer.encoder, "audio encoder")):
        mine = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in _under(tensors, prefix).items()}
        if mine != theirs:
            raise InvalidInput(f"the checkpoint in {path.parent} holds another {what} than this run's (another "
                               f"preset, encoder or size): start over with --fresh (from-photo: --force)")


def _under(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
