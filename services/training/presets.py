"""Named training recipes. Each is a frozen `SubjectTrainingConfig` that builds the model,
the audio encoder and the trainer it describes; variants are made with
`dataclasses.replace`, never by editing a preset."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from services.common.errors import InvalidInput
from services.encoder.model import AudioCodeEncoder, EncoderConfig, build_encoder, check_variant
from services.renderer.head_field import HeadFieldConfig
from services.renderer.renderer import TalkingHeadModel
from services.renderer.torso_field import TorsoFieldConfig
from services.renderer.volume import RenderConfig
from services.training.config import TrainConfig
from services.training.data import TrainingData
from services.training.trainer import Trainer


@dataclass(frozen=True)
class SubjectTrainingConfig:
    """A full recipe: model sizes + schedule."""

    name: str
    head: HeadFieldConfig
    torso: TorsoFieldConfig
    #: Audio encoder sizes and content space; the variant and content_dim are set at build time.
    encoder: EncoderConfig
    train: TrainConfig
    #: Fusion variant (services.encoder.model.VARIANTS); all but "dynamic" use the content model.
    variant: str = "csfm"
    occupancy_resolution: int = 128
    threads: int | None = None

    @property
    def uses_content(self) -> bool:
        return self.variant != "dynamic"

    def with_encoder(self, variant: str | None = None, content_space: str | None = None) -> SubjectTrainingConfig:
        """This recipe with another fusion variant and/or content space (None keeps the recipe's)."""
        variant = check_variant(variant or self.variant)
        return replace(self, variant=variant, encoder=replace(self.encoder, content_space=content_space or
                                                              self.encoder.content_space))

    def scaled(self, factor: float) -> SubjectTrainingConfig:
        """This recipe with every stage's iterations multiplied by `factor`."""
        return self if factor == 1.0 else replace(self, train=self.train.scaled(factor))

    def build_model(self) -> TalkingHeadModel:
        # One shared appearance code: per-frame codes would let the colour MLP paint each
        # frame's mouth from its index and the audio path would learn nothing (it collapsed
        # to a constant when we tried).
        return TalkingHeadModel(head=replace(self.head, num_latents=1), torso=replace(self.torso, num_latents=1),
                                occupancy_resolution=self.occupancy_resolution, render=RenderConfig())

    def encoder_config(self, content_dim: int | None = None) -> EncoderConfig:
        """The audio encoder's config; `content_dim` is the content model's width (content variants)."""
        return replace(self.encoder, variant=self.variant,
                       content_dim=self.encoder.content_dim if content_dim is None else content_dim)

    def build_encoder(self, content_dim: int | None = None) -> AudioCodeEncoder:
        return build_encoder(self.encoder_config(content_dim))

    def build_trainer(self, model: TalkingHeadModel, encoder: AudioCodeEncoder, data: TrainingData,
                      workdir: Path | None = None) -> Trainer:
        return Trainer(model, encoder, data, self.train, workdir)


_PRESETS = MappingProxyType({c.name: c for c in (
    # Fits a 2-core laptop in about 90 minutes at 256².
    SubjectTrainingConfig(
        name="cpu",
        head=HeadFieldConfig(num_levels=12, desired_resolution=256, log2_hashmap_size=14),
        torso=TorsoFieldConfig(num_levels=12, desired_resolution=512, log2_hashmap_size=14),
        encoder=EncoderConfig(conv_width=8, conv_norm="group", content_space="phones"),
        train=TrainConfig(head_iters=6000, lips_iters=2500, torso_iters=800, rays=2048, audio_pretrain_steps=3000,
                          occupancy_cells=1 << 16, eval_every=1000, checkpoint_every=250),
        occupancy_resolution=64,
    ),
    # Paper-sized (ER-NeRF / RAE-NeRF): 512², 14 levels, 256² rays per step on a GPU.
    SubjectTrainingConfig(
        name="gpu",
        head=HeadFieldConfig(num_levels=14, desired_resolution=512),
        torso=TorsoFieldConfig(),
        encoder=EncoderConfig(conv_width=32, conv_norm="group", content_space="phones"),
        train=TrainConfig(head_iters=100_000, lips_iters=25_000, torso_iters=50_000, rays=65_536,
                          eval_every=5000, checkpoint_every=2000),
        occupancy_resolution=128,
    ),
    # Seconds, for tests and smoke runs.
    SubjectTrainingConfig(
        name="tiny",
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
)})

#: The preset names, in the order `subject train --preset` offers them.
PRESET_NAMES = tuple(_PRESETS)


def preset(name: str) -> SubjectTrainingConfig:
    """The named recipe (immutable: derive variants with `dataclasses.replace`)."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise InvalidInput(f"unknown preset {name!r}: choose one of {', '.join(PRESET_NAMES)}") from None
