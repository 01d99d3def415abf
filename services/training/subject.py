"""Dataset → trained subject bundle (`talking-head subject train`)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from services.common.bundle import SubjectBundle
from services.common.errors import InvalidInput
from services.encoder.content import DEFAULT_CONTENT_MODEL
from services.encoder.features import extract_features
from services.subjects.layout import load_dataset
from services.training import presets
from services.training.bundle import build_bundle
from services.training.config import TrainConfig
from services.training.curves import plot_curves
from services.training.data import dataset_content_frames, training_data
from services.training.mouth_prior import fine_tune_schedule, load_prior
from services.training.own_speech import own_speech
from services.training.presets import SubjectTrainingConfig


def train_subject(dataset: str | Path, name: str, preset: str | SubjectTrainingConfig = "cpu",
                  workdir: Path | None = None, resume: bool = True, iterations_scale: float = 1.0,
                  progress: bool = True, size: int | None = None, encoder: str | None = None,
                  content_model: str | Path | None = None, content_space: str | None = None,
                  prior: bool = True) -> SubjectBundle:
    """Train a subject from an ER-NeRF-layout dataset; returns the bundle (caller stores it).

    `preset` is a preset name (services.training.presets) or a recipe. `encoder` overrides
    its fusion variant (dynamic, content, concat, cross, csfm); every variant but `dynamic`
    runs the content model over the dataset's audio first, in `content_space` (default:
    the recipe's; "units" or the shared "phones"). With `prior`, a content-variant encoder
    starts from the bundled mouth prior when it fits (services.training.mouth_prior) and
    warms up briefly; otherwise, or for other variants, from scratch.
    """
    recipe = _recipe(preset).with_encoder(encoder, content_space).scaled(iterations_scale)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    ds = load_dataset(dataset)
    if size is not None and size != ds.width:
        raise InvalidInput(f"dataset {ds.name} is {ds.width}px; resizing at train time is not supported")
    cfg = recipe.train
    torch.manual_seed(cfg.seed)
    speech = own_speech(ds.audio)
    if progress and speech.denoised:
        print(f"audio: estimated SNR {speech.snr_db:.1f} dB, denoised with {speech.model}", flush=True)
    content = None
    if recipe.uses_content:
        content = dataset_content_frames(ds, content_model or DEFAULT_CONTENT_MODEL, recipe.encoder.content_space,
                                         progress, audio=speech.clip)
    features = extract_features(speech.clip, fps=ds.fps, content=content)
    data = training_data(ds, features, progress)
    model = recipe.build_model()
    audio_encoder = recipe.build_encoder(content.values.shape[1] if content is not None else None)
    audio_init = "scratch"
    found = load_prior(audio_encoder.config, ds.fps, content_model or DEFAULT_CONTENT_MODEL) if prior else None
    if found is not None:
        audio_encoder.load_state_dict(found[0])
        audio_init = found[1]
        recipe = replace(recipe, train=fine_tune_schedule(cfg))
        cfg = recipe.train
    if progress:
        print(f"audio encoder: {recipe.variant}, from {audio_init}", flush=True)
    trainer = recipe.build_trainer(model, audio_encoder, data, workdir)
    if resume and trainer.resume() and progress:
        print(f"resumed from {workdir} at stage {trainer.stage}, step {trainer.stage_step}")
    bar = _ProgressBar(cfg) if progress else None
    t0 = time.perf_counter()
    summary = trainer.train(bar.update if bar else None)
    if bar:
        bar.close()
    model_sd, enc_sd = trainer.ema_state()
    model.load_state_dict(model_sd)
    audio_encoder.load_state_dict(enc_sd)
    model.head.latents.data[:] = model.head.latents.data[:1]  # inference uses code 0 only
    info = {"preset": recipe.name, "encoder": recipe.variant, "audio_init": audio_init,
            "audio_warmup_steps": cfg.audio_pretrain_steps, "audio_lr": cfg.lr_audio, "dataset": str(ds.root),
            "frames": len(ds), "steps": summary.steps,
            "train_seconds": round(summary.seconds, 1), "val_psnr": round(summary.val_psnr, 2),
            "val_psnr_head": round(summary.val_psnr_head, 2), "audio": speech.as_dict(),
            "wall_seconds_this_run": round(time.perf_counter() - t0, 1)}
    if workdir is not None:
        plot_curves(summary, workdir / "training_curve.png")
        (workdir / "summary.json").write_text(json.dumps({**info, "history": summary.history}, indent=1))
    return build_bundle(name, model, audio_encoder, ds, info)


def _recipe(chosen: str | SubjectTrainingConfig) -> SubjectTrainingConfig:
    return presets.preset(chosen) if isinstance(chosen, str) else chosen


class _ProgressBar:
    def __init__(self, cfg: TrainConfig) -> None:
        from tqdm import tqdm

        warm = cfg.audio_pretrain_steps
        self.total = warm + cfg.head_iters + cfg.lips_iters + cfg.torso_iters
        self.offsets = {"warm-up": 0, "head": warm, "lips": warm + cfg.head_iters,
                        "torso": warm + cfg.head_iters + cfg.lips_iters}
        self.bar = tqdm(total=self.total, desc="training", unit="step")

    def update(self, stage: str, step: int, iters: int, rec: dict[str, float]) -> None:
        self.bar.n = self.offsets[stage] + step
        post = {"stage": stage}
        if "train_psnr" in rec:
            post["psnr"] = f"{rec['train_psnr']:.2f}"
        if "audio_loss" in rec:
            post["audio loss"] = f"{rec['audio_loss']:.3f}"
        if "val_psnr_head" in rec:
            post["val head"] = f"{rec['val_psnr_head']:.2f}"
        if "val_psnr" in rec:
            post["val"] = f"{rec['val_psnr']:.2f}"
        self.bar.set_postfix(post)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
