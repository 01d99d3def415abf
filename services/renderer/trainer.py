"""Joint training of the audio encoder and the talking-head NeRF (ER-NeRF / RAE-NeRF schedule).

Stages, in order:
  head  — random rays of one frame per step: per-ray MSE against the frame, composited
          over that frame's torso-over-background image; alpha entropy; L1 on the audio
          attention outside the face. Occupancy grid updated every `occupancy_every` steps
          with a random training audio/eye condition (maximum over conditions, decayed).
  lips  — alternates a patch around the lips and a random patch of the face: MSE +
          structural (1 − SSIM) loss (LPIPS needs weights we do not ship), plus a few
          rays anywhere in the frame (MSE only) that keep the background empty.
  torso — head and encoder frozen; the pseudo-3D torso learns the rest of the frame.

The trainer knows tensors and modules only: datasets are turned into `TrainingData` by
the caller, and the audio encoder is any module with `encode_frames(features, idx)`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.common.checkpoint import load_checkpoint, optimizer_from_flat, optimizer_to_flat, save_checkpoint
from services.renderer.head_field import HeadCond
from services.renderer.losses import alpha_entropy, psnr, ssim
from services.renderer.rays import Intrinsics
from services.renderer.renderer import TalkingHeadModel, rays_for_pixels
from services.renderer.volume import render_rays

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
    train_idx: Tensor  # long [n_train]
    val_idx: Tensor  # long [n_val]
    features: Any  # the encoder's features for the whole audio track
    mouth: Tensor | None = None  # float [N, K] standardised mouth shape (from landmarks), aux target

    @property
    def size(self) -> tuple[int, int]:
        return self.intrinsics.height, self.intrinsics.width


@dataclass
class TrainConfig:
    head_iters: int = 6000
    lips_iters: int = 2000
    torso_iters: int = 2000
    rays: int = 2048  # rays per step (head and torso stages)
    face_fraction: float = 0.6  # share of rays drawn inside head/neck pixels
    lips_fraction: float = 0.2  # share of rays drawn inside the lip box (audio-driven region)
    patch: int = 32  # lips / random patch side (pixels)
    lips_anchor_rays: int = 256  # lips stage: extra rays anywhere in the frame (see _step_head)
    lr_grid: float = 1e-2
    lr_net: float = 1e-3
    lr_audio: float = 5e-4
    lr_decay: float = 0.5  # lr · lr_decay^(it / stage_iters)
    ema_decay: float = 0.95
    occupancy_every: int = 16
    occupancy_cells: int | None = None  # cells re-evaluated per update (None: all)
    lambda_entropy: float = 1e-4
    lambda_ambient: float = 1e-4
    lambda_ssim: float = 0.2
    lambda_torso_mask: float = 0.05
    lambda_mouth: float = 0.5  # audio code → mouth shape auxiliary loss (keeps the audio path alive)
    audio_pretrain_steps: int = 1500  # encoder-only warm-up on the mouth shape before the NeRF
    audio_pretrain_frames: int = 32  # consecutive frames per warm-up step
    eval_every: int = 1000
    eval_frames: int = 3
    checkpoint_every: int = 500
    seed: int = 0


@dataclass
class TrainSummary:
    steps: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    val_psnr: float = float("nan")
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    STAGES = ("head", "lips", "torso")

    def __init__(self, model: TalkingHeadModel, encoder: nn.Module, data: TrainingData, config: TrainConfig,
                 workdir: Path | None = None) -> None:
        self.model, self.encoder, self.data, self.cfg = model, encoder, data, config
        self.workdir = workdir
        self.gen = torch.Generator().manual_seed(config.seed)
        self.stage = "head"
        self.stage_step = 0
        self.summary = TrainSummary()
        self._t_start = time.perf_counter()
        self._elapsed_before = 0.0
        # A linear probe from the audio code to the mouth shape seen in the landmarks. Without
        # it the jointly trained encoder collapses to a constant code early on (the mean face
        # is learnt first and a constant code is the cheapest way to help it).
        code_dim = model.head.config.audio_dim
        self.mouth_probe = nn.Linear(code_dim, data.mouth.shape[1]) if data.mouth is not None else None
        self.ema = {k: v.detach().clone() for k, v in self._ema_params().items()}
        self.opt = self._make_optimizer("head")
        self._head_bg = data.head_background
        with torch.no_grad():
            seen = model.occupancy.mark_unseen(data.poses[data.train_idx], data.intrinsics)
        self._seen_cells = seen

    # ---- parameters -------------------------------------------------------------------
    def _ema_params(self) -> dict[str, Tensor]:
        out = {f"model.{k}": p for k, p in self.model.named_parameters()}
        out.update({f"encoder.{k}": p for k, p in self.encoder.named_parameters()})
        return out

    def _make_optimizer(self, stage: str) -> torch.optim.Optimizer:
        c = self.cfg
        groups: list[dict[str, Any]] = []
        if stage in ("head", "lips"):
            grid = [p for n, p in self.model.head.named_parameters() if "encoder" in n]
            net = [p for n, p in self.model.head.named_parameters() if "encoder" not in n]
            groups += [{"params": grid, "lr": c.lr_grid, "base_lr": c.lr_grid, "weight_decay": 0.0},
                       {"params": net, "lr": c.lr_net, "base_lr": c.lr_net, "weight_decay": 0.0},
                       {"params": list(self.encoder.parameters()), "lr": c.lr_audio, "base_lr": c.lr_audio,
                        "weight_decay": 0.0}]
            if self.mouth_probe is not None:
                groups.append({"params": list(self.mouth_probe.parameters()), "lr": c.lr_net, "base_lr": c.lr_net,
                               "weight_decay": 0.0})
        else:
            assert self.model.torso is not None
            grid = [p for n, p in self.model.torso.named_parameters() if n.startswith("grid")]
            net = [p for n, p in self.model.torso.named_parameters() if not n.startswith("grid")]
            groups += [{"params": grid, "lr": c.lr_grid, "base_lr": c.lr_grid, "weight_decay": 0.0},
                       {"params": net, "lr": c.lr_net, "base_lr": c.lr_net, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, betas=(0.0, 0.99), eps=1e-8, fused=True)

    def _iters(self, stage: str) -> int:
        return {"head": self.cfg.head_iters, "lips": self.cfg.lips_iters, "torso": self.cfg.torso_iters}[stage]

    # ---- sampling -----------------------------------------------------------------------
    def _randint(self, high: int, n: int = 1) -> Tensor:
        return torch.randint(0, high, (n,), generator=self.gen)

    def _pick_frame(self) -> int:
        idx = self.data.train_idx
        return int(idx[self._randint(len(idx))])

    def _sample_rays(self, i: int, regions: tuple[int, ...], lips_fraction: float = 0.0) -> Tensor:
        """Flat pixel indices: shares inside the lip box and inside `regions`, the rest uniform.

        The mouth is a few percent of the frame but carries all of the audio signal, so it
        gets its own share or the audio path sees almost no gradient."""
        h, w = self.data.size
        n = self.cfg.rays
        n_lips = int(n * lips_fraction)
        n_in = int(n * self.cfg.face_fraction)
        labels = self.data.labels[i].reshape(-1)
        inside = torch.isin(labels, torch.tensor(regions, dtype=labels.dtype)).nonzero()[:, 0]
        if not len(inside):
            n_in = 0
        parts = [self._randint(h * w, n - n_in - n_lips)]
        if n_in:
            parts.append(inside[self._randint(len(inside), n_in)])
        if n_lips:
            x0, y0, x1, y1 = (int(v) for v in self.data.lips[i])
            ys = y0 + self._randint(max(1, y1 - y0 + 1), n_lips)
            xs = x0 + self._randint(max(1, x1 - x0 + 1), n_lips)
            parts.append(ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1))
        return torch.cat(parts)

    def _patch(self, i: int, lips: bool) -> tuple[Tensor, int]:
        """Flat indices of a P×P patch around the lips or anywhere on the face."""
        h, w = self.data.size
        p = min(self.cfg.patch, h, w)
        if lips:
            x0, y0, x1, y1 = (int(v) for v in self.data.lips[i])
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        else:
            face = (self.data.labels[i] == HEAD).nonzero()
            cy, cx = (int(v) for v in face[self._randint(len(face))][0]) if len(face) else (h // 2, w // 2)
        top = min(max(cy - p // 2, 0), h - p)
        left = min(max(cx - p // 2, 0), w - p)
        ys, xs = torch.meshgrid(torch.arange(top, top + p), torch.arange(left, left + p), indexing="ij")
        return (ys * w + xs).reshape(-1), p

    # ---- audio warm-up ------------------------------------------------------------------------
    def _probe(self, codes: Tensor) -> Tensor:
        # unit-norm probe rows: the code itself must carry the mouth shape at unit scale,
        # not a tiny code blown up by a large probe weight
        assert self.mouth_probe is not None
        w = self.mouth_probe.weight
        return F.linear(codes, w / w.norm(dim=1, keepdim=True).clamp(min=1e-6), self.mouth_probe.bias)

    def pretrain_audio(self, progress: Callable[[int, int, float], None] | None = None) -> float:
        """Teach the encoder the mouth shape (from landmarks) before the NeRF sees its codes.

        A jointly trained encoder starting from random weights collapses to a constant code:
        the NeRF first learns the mean face, for which a constant is the best input. Warm
        codes that already track the mouth give the NeRF a signal worth using from step 0."""
        c = self.cfg
        if self.mouth_probe is None or c.audio_pretrain_steps <= 0:
            return float("nan")
        opt = torch.optim.AdamW(list(self.encoder.parameters()) + list(self.mouth_probe.parameters()),
                                lr=1e-3, weight_decay=0.0)
        idx = self.data.train_idx
        span = min(c.audio_pretrain_frames, len(idx))
        loss_v = float("nan")
        for step in range(c.audio_pretrain_steps):
            start = int(self._randint(max(1, len(idx) - span + 1)))
            frames = idx[start:start + span]
            codes = self.encoder.encode_frames(self.data.features, self.data.aud_ids[frames])
            loss = F.mse_loss(self._probe(codes), self.data.mouth[frames].float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_v = float(loss.detach())
            if progress and (step + 1) % 50 == 0:
                progress(step + 1, c.audio_pretrain_steps, loss_v)
        with torch.no_grad():  # the EMA starts from the warmed encoder
            for k, p in self._ema_params().items():
                self.ema[k].copy_(p.detach())
        return loss_v

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
        i = self._pick_frame()
        cond = self._cond(i)
        patch_side = 0
        if lips_stage:
            flat, patch_side = self._patch(i, lips=self.stage_step % 2 == 0)
            # patches alone never see most of the frame; hash cells they share with empty
            # space would drift into floaters, so a few rays anywhere hold the rest in place
            h, w = self.data.size
            flat = torch.cat([flat, self._randint(h * w, c.lips_anchor_rays)])
        else:
            flat = self._sample_rays(i, (HEAD, NECK), self.cfg.lips_fraction)
        out = self._render_head(i, flat, cond)
        bg = self._gather(self._head_bg, i, flat)
        pred = out["rgb"] + (1 - out["alpha"])[:, None] * bg
        gt = self._gather(self.data.images, i, flat)
        mse = F.mse_loss(pred, gt)
        loss = mse + c.lambda_entropy * alpha_entropy(out["alpha"])
        if "ambient_aud" in out:
            outside = (self.data.labels[i].reshape(-1)[flat] != HEAD).float()
            loss = loss + c.lambda_ambient * (out["ambient_aud"] * outside).mean()
        if self.mouth_probe is not None and self.data.mouth is not None and c.lambda_mouth > 0:
            target = self.data.mouth[i:i + 1].float()
            loss = loss + c.lambda_mouth * F.mse_loss(self._probe(cond.audio), target)
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
        i = self._pick_frame()
        flat = self._sample_rays(i, (NECK, TORSO))
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
        j = self._pick_frame()
        with torch.no_grad():
            cond = self._cond(j, grad=False)
            cond = HeadCond(cond.audio, cond.eye, None)
            self.model.update_occupancy(cond, max_cells=self.cfg.occupancy_cells, generator=self.gen)

    @torch.no_grad()
    def _update_ema(self) -> None:
        d = self.cfg.ema_decay
        for k, p in self._ema_params().items():
            self.ema[k].mul_(d).add_(p.detach(), alpha=1 - d)

    def _set_lr(self) -> None:
        frac = self.stage_step / max(1, self._iters(self.stage))
        for g in self.opt.param_groups:
            g["lr"] = g["base_lr"] * self.cfg.lr_decay ** frac

    # ---- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, n_frames: int | None = None, use_ema: bool = True) -> float:
        """PSNR of full rendered frames (head + torso + background) on held-out frames."""
        idx = self.data.val_idx if len(self.data.val_idx) else self.data.train_idx
        n = min(len(idx), n_frames or self.cfg.eval_frames)
        pick = idx[torch.linspace(0, len(idx) - 1, n).round().long()]
        with self.swapped_ema(use_ema):
            self.model.eval()
            self.encoder.eval()
            codes = self.encoder.encode_frames(self.data.features, self.data.aud_ids[pick])
            cond = HeadCond(codes, self.data.blink[pick].float(), None)
            use_torso = self.model.torso is not None and self.stage == "torso" or self._torso_trained()
            bg = self.data.background.float() / 255.0 if use_torso else self._head_bg[pick].float() / 255.0
            out = self.model.render_frames(self.data.poses[pick], self.data.intrinsics, cond, background=bg,
                                           use_torso=use_torso)
            self.model.train()
            self.encoder.train()
        gt = self.data.images[pick].float() / 255.0
        return psnr(float(F.mse_loss(out["image"].clamp(0, 1), gt)))

    def _torso_trained(self) -> bool:
        return self.summary.steps.get("torso", 0) > 0

    class _Swap:
        def __init__(self, trainer: "Trainer", active: bool) -> None:
            self.t, self.active, self.saved = trainer, active, {}

        def __enter__(self) -> None:
            if self.active:
                for k, p in self.t._ema_params().items():
                    self.saved[k] = p.detach().clone()
                    p.data.copy_(self.t.ema[k])

        def __exit__(self, *exc: object) -> None:
            for k, p in self.t._ema_params().items():
                if k in self.saved:
                    p.data.copy_(self.saved[k])

    def swapped_ema(self, active: bool = True) -> "Trainer._Swap":
        """Context in which the live parameters hold the EMA weights."""
        return Trainer._Swap(self, active)

    # ---- checkpoints ----------------------------------------------------------------------
    def _ckpt_path(self) -> Path | None:
        return None if self.workdir is None else self.workdir / "checkpoint"

    def save(self) -> None:
        path = self._ckpt_path()
        if path is None:
            return
        tensors = {f"live.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"live_enc.{k}": v for k, v in self.encoder.state_dict().items()})
        if self.mouth_probe is not None:
            tensors.update({f"probe.{k}": v for k, v in self.mouth_probe.state_dict().items()})
        tensors.update({f"ema.{k}": v for k, v in self.ema.items()})
        opt_t, opt_meta = optimizer_to_flat(self.opt, "opt")
        tensors.update(opt_t)
        tensors["rng"] = self.gen.get_state()
        meta = {"stage": self.stage, "stage_step": self.stage_step, "optimizer": opt_meta,
                "summary": asdict(self.summary), "elapsed_s": self.elapsed(), "config": asdict(self.cfg)}
        save_checkpoint(path, tensors, meta)

    def resume(self) -> bool:
        path = self._ckpt_path()
        loaded = None if path is None else load_checkpoint(path)
        if loaded is None:
            return False
        tensors, meta = loaded
        self.model.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("live.")})
        self.encoder.load_state_dict({k[9:]: v for k, v in tensors.items() if k.startswith("live_enc.")})
        if self.mouth_probe is not None:
            self.mouth_probe.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("probe.")})
        for k in self.ema:
            self.ema[k].copy_(tensors[f"ema.{k}"])
        self.stage, self.stage_step = meta["stage"], meta["stage_step"]
        self.opt = self._make_optimizer(self.stage)
        optimizer_from_flat(self.opt, tensors, meta["optimizer"], "opt")
        self.gen.set_state(tensors["rng"])
        s = meta["summary"]
        self.summary = TrainSummary(steps=s["steps"], seconds=s["seconds"], val_psnr=s["val_psnr"],
                                    history=s["history"])
        self._elapsed_before = meta["elapsed_s"]
        self._t_start = time.perf_counter()
        return True

    def elapsed(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._t_start

    # ---- the loop -------------------------------------------------------------------------
    def train(self, progress: Callable[[str, int, int, dict[str, float]], None] | None = None) -> TrainSummary:
        """Run (or continue) every stage; returns the summary. Safe to interrupt and resume."""
        c = self.cfg
        if not self.summary.steps and not self.summary.history:
            self.summary.history.append({"stage_index": -1.0, "step": 0.0, "train_psnr": float("nan"),
                                         "elapsed_s": self.elapsed(),
                                         "audio_pretrain_loss": self.pretrain_audio()})
        stages = [s for s in self.STAGES if self._iters(s) > 0 and (s != "torso" or self.model.torso is not None)]
        start = stages.index(self.stage) if self.stage in stages else 0
        for stage in stages[start:]:
            if stage != self.stage:
                self.stage, self.stage_step = stage, 0
                self.opt = self._make_optimizer(stage)
            iters = self._iters(stage)
            window: list[float] = []
            while self.stage_step < iters:
                self._set_lr()
                if stage == "torso":
                    logs = self._step_torso()
                else:
                    logs = self._step_head(lips_stage=stage == "lips")
                    if self.stage_step % c.occupancy_every == 0:
                        self._update_occupancy()
                self._update_ema()
                self.stage_step += 1
                self.summary.steps[stage] = self.stage_step
                window.append(logs["mse"])
                if self.stage_step % 50 == 0 or self.stage_step == iters:
                    rec = {"stage_index": float(self.STAGES.index(stage)), "step": float(self.stage_step),
                           "train_psnr": psnr(sum(window) / len(window)), "elapsed_s": self.elapsed()}
                    window = []
                    if self.stage_step % c.eval_every == 0 or self.stage_step == iters:
                        rec["val_psnr"] = self.evaluate()
                        self.summary.val_psnr = rec["val_psnr"]
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
        with self.swapped_ema(True):
            model_sd = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            enc_sd = {k: v.detach().clone() for k, v in self.encoder.state_dict().items()}
        return model_sd, enc_sd


def plot_curves(summary: TrainSummary, path: Path) -> None:
    """Training-curve PNG: train PSNR per stage and held-out PSNR against wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for si, name in enumerate(Trainer.STAGES):
        pts = [h for h in summary.history if int(h["stage_index"]) == si]
        if pts:
            ax.plot([p["elapsed_s"] / 60 for p in pts], [p["train_psnr"] for p in pts], label=f"{name} (train rays)")
    val = [h for h in summary.history if "val_psnr" in h and math.isfinite(h["val_psnr"])]
    if val:
        ax.plot([p["elapsed_s"] / 60 for p in val], [p["val_psnr"] for p in val], "ko-", label="held-out frames")
    ax.set_xlabel("minutes")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

