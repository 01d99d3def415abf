"""Dataset → trained subject bundle: the one place where datasets, the audio encoder and the
renderer's trainer meet (`talking-head subject train`)."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from services.common.bundle import SubjectBundle, make_bundle
from services.common.errors import InvalidInput
from services.encoder.content import DEFAULT_CONTENT_MODEL, ContentModel
from services.encoder.features import ContentFrames, extract_features
from services.encoder.model import VARIANTS, EncoderConfig, build_encoder
from services.renderer.head_field import HeadFieldConfig
from services.renderer.rays import Intrinsics, nerf_matrix_to_ngp
from services.renderer.renderer import TalkingHeadModel
from services.renderer.torso_field import TorsoFieldConfig
from services.renderer.trainer import TrainConfig, Trainer, TrainingData, plot_curves
from services.renderer.volume import RenderConfig
from services.subjects.layout import POSE_SCALE, SubjectDataset, load_dataset


@dataclass(frozen=True)
class Preset:
    """A full recipe: model sizes + schedule."""

    head: HeadFieldConfig
    torso: TorsoFieldConfig
    #: Encoder sizes and content space; the variant and content_dim are set at train time.
    encoder: EncoderConfig
    train: TrainConfig
    #: Fusion variant (services.encoder.model.VARIANTS); all but "dynamic" use the content model.
    variant: str = "csfm"
    occupancy_resolution: int = 128
    threads: int | None = None


PRESETS: dict[str, Preset] = {
    # Fits a 2-core laptop in about 90 minutes at 256².
    "cpu": Preset(
        head=HeadFieldConfig(num_levels=12, desired_resolution=256, log2_hashmap_size=14),
        torso=TorsoFieldConfig(num_levels=12, desired_resolution=512, log2_hashmap_size=14),
        encoder=EncoderConfig(conv_width=8, conv_norm="group", content_space="phones"),
        train=TrainConfig(head_iters=6000, lips_iters=2500, torso_iters=800, rays=2048, audio_pretrain_steps=3000,
                          occupancy_cells=1 << 16, eval_every=1000, checkpoint_every=250),
        occupancy_resolution=64,
    ),
    # Paper-sized (ER-NeRF / RAE-NeRF): 512², 14 levels, 256² rays per step on a GPU.
    "gpu": Preset(
        head=HeadFieldConfig(num_levels=14, desired_resolution=512),
        torso=TorsoFieldConfig(),
        encoder=EncoderConfig(conv_width=32, conv_norm="group", content_space="phones"),
        train=TrainConfig(head_iters=100_000, lips_iters=25_000, torso_iters=50_000, rays=65_536,
                          eval_every=5000, checkpoint_every=2000),
        occupancy_resolution=128,
    ),
    # Seconds, for tests and smoke runs.
    "tiny": Preset(
        head=HeadFieldConfig(num_levels=4, base_resolution=16, desired_resolution=64, log2_hashmap_size=10,
                             hidden_dim=32, geo_feat_dim=16, color_hidden=32, att_hidden=16),
        torso=TorsoFieldConfig(num_levels=4, base_resolution=8, desired_resolution=64, log2_hashmap_size=10,
                               hidden_dim=16, deform_hidden=16),
        encoder=EncoderConfig(conv_width=8, conv_norm="group"),
        train=TrainConfig(head_iters=60, lips_iters=20, torso_iters=20, rays=256, patch=16, eval_every=40,
                          eval_frames=1, checkpoint_every=50, occupancy_every=8, audio_pretrain_steps=20,
                          audio_pretrain_frames=8),
        occupancy_resolution=32,
        variant="dynamic",  # no content model: seconds, for tests
    ),
}


def lip_boxes(landmarks: np.ndarray, width: int, height: int, margin: float = 0.25) -> np.ndarray:
    """[N, 4] lip boxes (x0, y0, x1, y1) from iBUG landmarks 48–67, with a margin."""
    lips = landmarks[:, 48:68]
    lo, hi = lips.min(axis=1), lips.max(axis=1)
    pad = (hi - lo) * margin + 2
    lo, hi = np.floor(lo - pad), np.ceil(hi + pad)
    box = np.stack([lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]], axis=1)
    box[:, [0, 2]] = box[:, [0, 2]].clip(0, width - 1)
    box[:, [1, 3]] = box[:, [1, 3]].clip(0, height - 1)
    return box.astype(np.int64)


def mouth_shape(landmarks: np.ndarray) -> np.ndarray:
    """[N, 4] standardised mouth shape from iBUG landmarks: inner and outer opening, outer
    and inner width, each over the inter-ocular distance, then z-scored over the clip."""
    lm = np.asarray(landmarks, dtype=np.float64)

    def dist(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(lm[:, a] - lm[:, b], axis=1)

    eyes = np.maximum(dist(36, 45), 1e-6)
    feats = np.stack([dist(62, 66), dist(51, 57), dist(48, 54), dist(60, 64)], axis=1) / eyes[:, None]
    return ((feats - feats.mean(0)) / np.maximum(feats.std(0), 1e-6)).astype(np.float32)


def renderer_poses(poses: np.ndarray) -> torch.Tensor:
    """transforms.json camera-to-world (OpenGL, file units) → renderer space (ER-NeRF convention)."""
    return nerf_matrix_to_ngp(torch.from_numpy(np.asarray(poses, dtype=np.float32)), scale=POSE_SCALE)


def dataset_content_frames(ds: SubjectDataset, model_dir: str | Path, space: str = "units",
                           progress: bool = True) -> ContentFrames:
    """The content model over a dataset's audio: sentence by sentence with its language
    when the dataset records its sentences (oracle datasets), else in 10 s chunks."""
    model = ContentModel.load(model_dir)
    sentences = ds.extras.get("oracle", {}).get("sentences", [])
    segments = [(float(s["start"]), float(s["end"]), s.get("lang")) for s in sentences]
    if progress:
        print(f"content features: {model.name} over {ds.audio.duration:.0f} s of audio", flush=True)
    return model.frames_long(ds.audio, segments, space=space)


def training_data(ds: SubjectDataset, features: Any, progress: bool = True) -> TrainingData:
    """Load every frame of a dataset into tensors (uint8 images keep memory modest)."""
    from tqdm import tqdm

    n, h, w = len(ds), ds.height, ds.width
    images = torch.empty((n, h, w, 3), dtype=torch.uint8)
    head_bg = torch.empty((n, h, w, 3), dtype=torch.uint8)
    labels = torch.empty((n, h, w), dtype=torch.uint8)
    bg = ds.background.astype(np.float32)
    for k in tqdm(range(n), desc="loading frames", unit="frame", disable=not progress):
        images[k] = torch.from_numpy(np.array(ds.gt_image(k)))
        labels[k] = torch.from_numpy(np.array(ds.labels(k)))
        rgba = ds.torso(k).astype(np.float32)
        a = rgba[..., 3:4] / 255.0
        head_bg[k] = torch.from_numpy((rgba[..., :3] * a + bg * (1 - a)).round().astype(np.uint8))
    return TrainingData(
        images=images, head_background=head_bg, labels=labels, poses=renderer_poses(ds.poses),
        intrinsics=Intrinsics(ds.focal, ds.focal, ds.cx, ds.cy, h, w),
        blink=torch.from_numpy(ds.blink).float(), aud_ids=torch.from_numpy(ds.aud_ids).long(),
        lips=torch.from_numpy(lip_boxes(ds.landmarks, w, h)), background=torch.from_numpy(np.array(ds.background)),
        train_idx=torch.from_numpy(ds.train).long(), val_idx=torch.from_numpy(ds.val).long(), features=features,
        mouth=torch.from_numpy(mouth_shape(ds.landmarks)))


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _safetensors(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


def build_bundle(name: str, model: TalkingHeadModel, encoder: torch.nn.Module, encoder_config: EncoderConfig,
                 data: TrainingData, ds: SubjectDataset, summary: dict[str, Any]) -> SubjectBundle:
    """EMA-trained modules + tracks + background → a verified bundle."""
    weights = {f"renderer.{k}": v for k, v in model.state_dict().items()}
    weights.update({f"audio_encoder.{k}": v for k, v in encoder.state_dict().items()})
    intr = data.intrinsics
    blobs = {
        "model.safetensors": _safetensors(weights),
        "tracks.safetensors": _safetensors({"poses": data.poses, "blink": data.blink}),
        "background.png": _png(ds.background),
    }
    return make_bundle(
        name, blobs,
        renderer=model.manifest(),
        audio_encoder={"config": encoder_config.to_dict(), "params": sum(p.numel() for p in encoder.parameters())},
        audio_features={"sample_rate": 16_000, "mel_fps": 80, "mel_window": 16, "content_fps": 50},
        intrinsics={"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy},
        resolution=[intr.height, intr.width], fps=ds.fps, languages=["en", "zh"],
        pose_space="renderer (ER-NeRF nerf_matrix_to_ngp, scale 4)",
        training=summary,
        oracle={k: ds.extras["oracle"][k] for k in ("seed", "size")} if "oracle" in ds.extras else None,
    )


def train_subject(dataset: str | Path, name: str, preset: str = "cpu", workdir: Path | None = None,
                  resume: bool = True, iterations_scale: float = 1.0, progress: bool = True,
                  size: int | None = None, encoder: str | None = None,
                  content_model: str | Path | None = None, content_space: str | None = None) -> SubjectBundle:
    """Train a subject from an ER-NeRF-layout dataset; returns the bundle (caller stores it).

    `encoder` overrides the preset's fusion variant (dynamic, content, concat, cross, csfm);
    every variant but `dynamic` runs the content model over the dataset's audio first, in
    `content_space` (default: the preset's; "units" or the shared "phones").
    """
    if preset not in PRESETS:
        raise InvalidInput(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    recipe = PRESETS[preset]
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    ds = load_dataset(dataset)
    if size is not None and size != ds.width:
        raise InvalidInput(f"dataset {ds.name} is {ds.width}px; resizing at train time is not supported")
    cfg = recipe.train
    if iterations_scale != 1.0:
        cfg = replace(cfg, head_iters=int(cfg.head_iters * iterations_scale),
                      lips_iters=int(cfg.lips_iters * iterations_scale),
                      torso_iters=int(cfg.torso_iters * iterations_scale))
    variant = encoder or recipe.variant
    if variant not in VARIANTS:
        raise InvalidInput(f"unknown encoder variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    torch.manual_seed(cfg.seed)
    content = None
    space = content_space or recipe.encoder.content_space
    if variant != "dynamic":
        content = dataset_content_frames(ds, content_model or DEFAULT_CONTENT_MODEL, space, progress)
    enc_cfg = replace(recipe.encoder, variant=variant, content_space=space,
                      content_dim=content.values.shape[1] if content is not None else recipe.encoder.content_dim)
    features = extract_features(ds.audio, fps=ds.fps, content=content)
    data = training_data(ds, features, progress)
    # One shared appearance code: per-frame codes would let the colour MLP paint each
    # frame's mouth from its index and the audio path would learn nothing (it collapsed
    # to a constant when we tried).
    head_cfg = replace(recipe.head, num_latents=1)
    torso_cfg = replace(recipe.torso, num_latents=1)
    model = TalkingHeadModel(head=head_cfg, torso=torso_cfg, occupancy_resolution=recipe.occupancy_resolution,
                             render=RenderConfig())
    audio_encoder = build_encoder(enc_cfg)
    trainer = Trainer(model, audio_encoder, data, cfg, workdir)
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
    info = {"preset": preset, "encoder": enc_cfg.variant, "dataset": str(ds.root), "frames": len(ds),
            "steps": summary.steps,
            "train_seconds": round(summary.seconds, 1), "val_psnr": round(summary.val_psnr, 2),
            "wall_seconds_this_run": round(time.perf_counter() - t0, 1)}
    if workdir is not None:
        plot_curves(summary, workdir / "training_curve.png")
        (workdir / "summary.json").write_text(json.dumps({**info, "history": summary.history}, indent=1))
    return build_bundle(name, model, audio_encoder, enc_cfg, data, ds, info)


class _ProgressBar:
    def __init__(self, cfg: TrainConfig) -> None:
        from tqdm import tqdm

        self.total = cfg.head_iters + cfg.lips_iters + cfg.torso_iters
        self.offsets = {"head": 0, "lips": cfg.head_iters, "torso": cfg.head_iters + cfg.lips_iters}
        self.bar = tqdm(total=self.total, desc="training", unit="step")

    def update(self, stage: str, step: int, iters: int, rec: dict[str, float]) -> None:
        self.bar.n = self.offsets[stage] + step
        post = {"stage": stage, "psnr": f"{rec['train_psnr']:.2f}"}
        if "val_psnr" in rec:
            post["val"] = f"{rec['val_psnr']:.2f}"
        self.bar.set_postfix(post)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
