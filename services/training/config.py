"""The joint trainer's schedule (`TrainConfig`) and what a run reports (`TrainSummary`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: Training stages, in order (see services.training.trainer).
STAGES = ("head", "lips", "torso")


@dataclass(frozen=True)
class TrainConfig:
    head_iters: int = 6000
    lips_iters: int = 2000
    torso_iters: int = 2000
    rays: int = 2048  # rays per step (head and torso stages)
    face_fraction: float = 0.6  # share of rays drawn inside head/neck pixels
    lips_fraction: float = 0.2  # share of rays drawn inside the lip box (audio-driven region)
    patch: int = 32  # lips / random patch side (pixels)
    lips_anchor_rays: int = 256  # lips stage: extra rays anywhere in the frame (see Trainer._step_head)
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
    audio_pretrain_lr: float = 1e-3
    eval_every: int = 1000
    eval_frames: int = 3
    checkpoint_every: int = 500
    seed: int = 0

    def iters(self, stage: str) -> int:
        return {"head": self.head_iters, "lips": self.lips_iters, "torso": self.torso_iters}[stage]

    def scaled(self, factor: float) -> TrainConfig:
        """The same schedule with every stage's iterations multiplied by `factor`."""
        return replace(self, head_iters=int(self.head_iters * factor), lips_iters=int(self.lips_iters * factor),
                       torso_iters=int(self.torso_iters * factor))


@dataclass
class TrainSummary:
    steps: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    val_psnr: float = float("nan")  # whole rendered frame (head + torso + background)
    val_psnr_head: float = float("nan")  # rendered head over the real torso (ER-NeRF's "head" setting)
    history: list[dict[str, float]] = field(default_factory=list)
