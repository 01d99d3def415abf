"""Joint training of the audio encoder and the talking-head NeRF (ER-NeRF / RAE-NeRF schedule).

Stages, in order:
  head  — random rays of one frame per step: per-ray MSE against the frame, composited
          over that frame's torso-over-background image; alpha entropy; L1 on the audio
          attention outside the face. Occupancy grid updated every `occupancy_every` steps
          with a random training audio/eye condition (maximum over conditions, decayed).
  lips  — alternates a patch around the lips and a random patch of the face: MSE +
          structural (1 − SSIM) loss (LPIPS needs weights we do not ship), plus a few
          rays anywhere in the frame (MSE only) that keep the background empty.
  torso — head and audio encoder frozen; the pseudo-3D torso learns the rest of the frame.

The trainer knows tensors and modules only: datasets are turned into `TrainingData` by
the caller, and the audio encoder is any module with `encode_frames(features, idx)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.renderer.head_field import HeadCond
from services.renderer.losses import alpha_entropy, psnr, ssim
from services.renderer.renderer import TalkingHeadModel, rays_for_pixels
from services.renderer.volume import render_rays
from services.training.checkpoints import resume_trainer, save_trainer
from services.training.config import STAGES, TrainConfig, TrainSummary
from services.training.data import HEAD, NECK, TORSO, TrainingData
from services.training.ema import ParamEMA
from services.training.mouth_probe import MouthProbe, pretrain_audio
from services.training.sampling import PixelSampler


class Trainer:
    def __init__(self, model: TalkingHeadModel, encoder: nn.Module, data: TrainingData, config: TrainConfig,
                 workdir: Path | None = None) -> None:
        self.model, self.encoder, self.data, self.cfg = model, encoder, data, config
        self.workdir = workdir
        self.gen = torch.Generator().manual_seed(config.seed)
        self.sample = PixelSampler(data, config, self.gen)
        self.stage = "head"
        self.stage_step = 0
        self.summary = TrainSummary()
        self.restart_clock()
        code_dim = model.head.config.audio_dim
        self.mouth_probe = MouthProbe(code_dim, data.mouth.shape[1]) if data.mouth is not None else None
        self.ema = ParamEMA(model, encoder, config.ema_decay)
        self.opt = self.make_optimizer("head")
        model.prepare_occupancy(data.poses[data.train_idx], data.intrinsics)

    # ---- optimiser --------------------------------------------------------------------
    def make_optimizer(self, stage: str) -> torch.optim.Optimizer:
        """AdamW over what `stage` trains: the head (with the audio encoder and the mouth
        probe) in the head and lips stages, the torso alone in the torso stage."""
        c = self.cfg
        lr = {"grid": c.lr_grid, "net": c.lr_net}
        part = "torso" if stage == "torso" else "head"
        named = [(lr[name], params) for name, params in self.model.param_groups(part).items()]
        if part == "head":
            named.append((c.lr_audio, list(self.encoder.parameters())))
            if self.mouth_probe is not None:
                named.append((c.lr_net, list(self.mouth_probe.parameters())))
        groups: list[dict[str, Any]] = [{"params": params, "lr": rate, "base_lr": rate, "weight_decay": 0.0}
                                        for rate, params in named]
        return torch.optim.AdamW(groups, betas=(0.0, 0.99), eps=1e-8, fused=True)

    def _set_lr(self) -> None:
        frac = self.stage_step / max(1, self.cfg.iters(self.stage))
        for g in self.opt.param_groups:
            g["lr"] = g["base_lr"] * self.cfg.lr_decay ** frac

    # ---- audio warm-up ------------------------------------------------------------------
    def pretrain_audio(self, progress: Callable[[int, int, float], None] | None = None) -> float:
        """Teach the encoder the mouth shape before the NeRF sees its codes (see
        services.training.mouth_probe); the average restarts from the warmed encoder."""
        if self.mouth_probe is None or self.cfg.audio_pretrain_steps <= 0:
            return float("nan")
        loss = pretrain_audio(self.encoder, self.mouth_probe, self.data, self.sample, self.cfg, progress)
        self.ema.reset()
        return loss

    # ---- one step -------------------------------------------------------------------------
    def _cond(self, i: int, grad: bool = True) -> HeadCond:
        idx = self.data.aud_ids[i:i + 1]
        with torch.set_grad_enabled(grad):
            audio = self.encoder.encode_frames(self.data.features, idx)
        return HeadCond(audio=audio, eye=self.data.blink[i:i + 1].float(),
                        latent=torch.tensor([i % self.model.head.config.num_latents], dtype=torch.long))

    def _render_head(self, i: int, flat: Tensor, cond: HeadCond) -> dict[str, Tensor]:
        rays_o, rays_d, frame, xy = rays_for_pixels(self.data.poses[i:i + 1], self.data.intrinsics, flat)
        out = render_rays(self.model.head, rays_o, rays_d, cond, frame, self.model.occupancy,
                          self.model.render_config, perturb=True, generator=self.gen)
        out["xy"], out["frame"] = xy, frame
        return out

    def _gather(self, images: Tensor, i: int, flat: Tensor) -> Tensor:
        return images[i].reshape(-1, 3)[flat].float() / 255.0

    def _step_head(self, lips_stage: bool) -> dict[str, float]:
        c = self.cfg
        i = self.sample.frame()
        cond = self._cond(i)
        patch_side = 0
        if lips_stage:
            flat, patch_side = self.sample.patch(i, lips=self.stage_step % 2 == 0)
            # patches alone never see most of the frame; hash cells they share with empty
            # space would drift into floaters, so a few rays anywhere hold the rest in place
            flat = torch.cat([flat, self.sample.anywhere(c.lips_anchor_rays)])
        else:
            flat = self.sample.rays(i, (HEAD, NECK), c.lips_fraction)
        out = self._render_head(i, flat, cond)
        bg = self._gather(self.data.head_background, i, flat)
        pred = out["rgb"] + (1 - out["alpha"])[:, None] * bg
        gt = self._gather(self.data.images, i, flat)
        mse = F.mse_loss(pred, gt)
        loss = mse + c.lambda_entropy * alpha_entropy(out["alpha"])
        if "ambient_aud" in out:
            outside = (self.data.labels[i].reshape(-1)[flat] != HEAD).float()
            loss = loss + c.lambda_ambient * (out["ambient_aud"] * outside).mean()
        if self.mouth_probe is not None and self.data.mouth is not None and c.lambda_mouth > 0:
            target = self.data.mouth[i:i + 1].float()
            loss = loss + c.lambda_mouth * F.mse_loss(self.mouth_probe(cond.audio), target)
        if patch_side:
            n = patch_side * patch_side
            a = pred[:n].t().reshape(1, 3, patch_side, patch_side)
            b = gt[:n].t().reshape(1, 3, patch_side, patch_side)
            loss = loss + c.lambda_ssim * (1 - ssim(a, b))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach()), "mse": float(mse.detach())}

    def _step_torso(self) -> dict[str, float]:
        c = self.cfg
        assert self.model.torso is not None
        i = self.sample.frame()
        flat = self.sample.rays(i, (NECK, TORSO))
        with torch.no_grad():
            head = self._render_head(i, flat, self._cond(i, grad=False))
        tor = self.model.torso(head["xy"], self.data.poses[i:i + 1], head["frame"],
                               torch.tensor([i % self.model.torso.config.num_latents], dtype=torch.long))
        ta = tor["alpha"][:, None]
        bg = self.data.background.reshape(-1, 3)[flat].float() / 255.0
        pred = head["rgb"] + (1 - head["alpha"])[:, None] * (tor["rgb"] * ta + (1 - ta) * bg)
        gt = self._gather(self.data.images, i, flat)
        mse = F.mse_loss(pred, gt)
        labels = self.data.labels[i].reshape(-1)[flat]
        visible = labels != HEAD  # under the head the torso's alpha is not observed
        target = ((labels == NECK) | (labels == TORSO)).float()
        mask_loss = F.binary_cross_entropy(tor["alpha"][visible].clamp(1e-4, 1 - 1e-4), target[visible]) \
            if bool(visible.any()) else torch.zeros(())
        loss = mse + c.lambda_torso_mask * mask_loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach()), "mse": float(mse.detach())}

    def _update_occupancy(self) -> None:
        """The model's occupancy update under one random training condition."""
        j = self.sample.frame()
        with torch.no_grad():
            cond = self._cond(j, grad=False)
            cond = HeadCond(cond.audio, cond.eye, None)
            self.model.update_occupancy(cond, max_cells=self.cfg.occupancy_cells, generator=self.gen)

    # ---- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, n_frames: int | None = None, use_ema: bool = True) -> dict[str, float]:
        """PSNR on held-out frames in two settings (ER-NeRF's): "head", the rendered head over
        the real frame's torso and background, and "full", the whole rendered frame (head over
        the model's torso over the background), once the torso is trained (or there is none).
        The two differ by the torso alone: the head stages never see the torso field."""
        idx = self.data.val_idx if len(self.data.val_idx) else self.data.train_idx
        n = min(len(idx), n_frames or self.cfg.eval_frames)
        pick = idx[torch.linspace(0, len(idx) - 1, n).round().long()]
        gt = self.data.images[pick].float() / 255.0
        scores: dict[str, float] = {}
        with self.ema.swapped(use_ema):
            self.model.eval()
            self.encoder.eval()
            codes = self.encoder.encode_frames(self.data.features, self.data.aud_ids[pick])
            cond = HeadCond(codes, self.data.blink[pick].float(), None)
            head = self.model.render_frames(self.data.poses[pick], self.data.intrinsics, cond,
                                            background=self.data.head_background[pick].float() / 255.0,
                                            use_torso=False)
            scores["head"] = psnr(float(F.mse_loss(head["image"].clamp(0, 1), gt)))
            if self.model.torso is None or self.stage == "torso" or self._torso_trained():
                full = self.model.render_frames(self.data.poses[pick], self.data.intrinsics, cond,
                                                background=self.data.background.float() / 255.0)
                scores["full"] = psnr(float(F.mse_loss(full["image"].clamp(0, 1), gt)))
            self.model.train()
            self.encoder.train()
        return scores

    def _torso_trained(self) -> bool:
        return self.summary.steps.get("torso", 0) > 0

    # ---- checkpoints and clock -------------------------------------------------------------
    def _ckpt_path(self) -> Path | None:
        return None if self.workdir is None else self.workdir / "checkpoint"

    def save(self) -> None:
        path = self._ckpt_path()
        if path is not None:
            save_trainer(self, path)

    def resume(self) -> bool:
        path = self._ckpt_path()
        return path is not None and resume_trainer(self, path)

    def restart_clock(self, elapsed_before: float = 0.0) -> None:
        self._elapsed_before = elapsed_before
        self._t_start = time.perf_counter()

    def elapsed(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._t_start

    # ---- the loop -------------------------------------------------------------------------
    def train(self, progress: Callable[[str, int, int, dict[str, float]], None] | None = None) -> TrainSummary:
        """Run (or continue) every stage; returns the summary. Safe to interrupt and resume."""
        c = self.cfg

        def warm_progress(step: int, steps: int, loss: float) -> None:
            if progress is not None:
                progress("warm-up", step, steps, {"audio_loss": loss})

        if not self.summary.steps and not self.summary.history:
            self.summary.history.append({"stage_index": -1.0, "step": 0.0, "train_psnr": float("nan"),
                                         "elapsed_s": self.elapsed(),
                                         "audio_pretrain_loss": self.pretrain_audio(warm_progress)})
        stages = [s for s in STAGES if c.iters(s) > 0 and (s != "torso" or self.model.torso is not None)]
        start = stages.index(self.stage) if self.stage in stages else 0
        for stage in stages[start:]:
            if stage != self.stage:
                self.stage, self.stage_step = stage, 0
                self.opt = self.make_optimizer(stage)
            iters = c.iters(stage)
            window: list[float] = []
            while self.stage_step < iters:
                self._set_lr()
                if stage == "torso":
                    logs = self._step_torso()
                else:
                    logs = self._step_head(lips_stage=stage == "lips")
                    if self.stage_step % c.occupancy_every == 0:
                        self._update_occupancy()
                # the torso stage trains the torso alone: the head's and the encoder's averages
                # stay those of the lips stage (left to follow, they would drift to the last
                # live weights)
                self.ema.update("model.torso." if stage == "torso" else "")
                self.stage_step += 1
                self.summary.steps[stage] = self.stage_step
                window.append(logs["mse"])
                if self.stage_step % 50 == 0 or self.stage_step == iters:
                    rec = {"stage_index": float(STAGES.index(stage)), "step": float(self.stage_step),
                           "train_psnr": psnr(sum(window) / len(window)), "elapsed_s": self.elapsed()}
                    window = []
                    if self.stage_step % c.eval_every == 0 or self.stage_step == iters:
                        scores = self.evaluate()
                        rec["val_psnr_head"] = self.summary.val_psnr_head = scores["head"]
                        if "full" in scores:
                            rec["val_psnr"] = self.summary.val_psnr = scores["full"]
                    self.summary.history.append(rec)
                    if progress:
                        progress(stage, self.stage_step, iters, rec)
                if self.stage_step % c.checkpoint_every == 0:
                    self.save()
        self.summary.seconds = self.elapsed()
        self.save()
        return self.summary

    def ema_state(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """EMA weights as (model state dict, encoder state dict), buffers included."""
        return self.ema.state_dicts()
