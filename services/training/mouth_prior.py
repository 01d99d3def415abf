"""The mouth prior: a content-variant audio encoder pretrained on many TTS sentences to
carry the viseme mouth (opening, rounding) in its codes, the start of every subject's
content encoder that fits it.

    python -m services.training.mouth_prior [--sentences 1200] [--steps 8000] [--voices mix]

Why. A subject's own speech is a few dozen sentences (a photo subject's two minutes, the
demo's three). Trained from scratch on them the encoder learns their words: a linear probe
of its codes reaches 0.93 on the training sentences and 0.81–0.83 on held-out ones. Started
from codes that already track the mouth over a thousand sentences of several voices, the
same fine-tune holds 0.85–0.86 on held-out sentences (BENCHMARKS "A mouth prior for the
content encoder"). Audio-only data is cheap to make: TTS gives phoneme timings, and the
viseme track (services.subjects.visemes) turns them into the mouth every oracle and photo
subject is animated with, so no frame is rendered.

Data: training sentences of services.common.corpus, three quarters English, spoken by a
voice mix weighted towards the bundled voice (what subjects are trained on) with drawn
speaking rate and prosody noise; held-out metrics on the corpus's held-out source spoken
by the bundled voice at its defaults. The prior is tied to the content model it was
trained on (its weights' sha256) and to the encoder's shape and frame rate; `load_prior`
returns None for anything else, and the subject's encoder then starts from scratch.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from services.common.audio import pad_to_frames, to_analysis_rate
from services.common.bundle import sha256
from services.common.errors import InvalidInput
from services.common.types import Speech, SpeechSource
from services.encoder.content import DEFAULT_CONTENT_MODEL, ContentModel
from services.encoder.features import VIDEO_FPS, AudioFeatures, extract_features
from services.encoder.model import AudioCodeEncoder, EncoderConfig, build_encoder
from services.training.config import TrainConfig
from services.training.evaluation import pearson
from services.training.mouth_probe import MouthProbe

PRIOR_DIR = Path(__file__).resolve().parents[1] / "encoder" / "weights" / "mouth_prior"
#: The encoder fields a prior must share with a subject's encoder (the mel path's fields
#: do not shape a content-variant encoder).
MATCH_FIELDS = ("variant", "content_dim", "content_space", "fusion_dim", "heads", "attn_radius",
                "smooth_radius", "code_dim")
#: A subject's schedule when its encoder starts from the prior: a short, gentle warm-up and
#: a low encoder rate in the NeRF stages, so the subject's own sentences adapt the codes
#: without overwriting what the prior generalises (a 1000-step warm-up at 1e-3 lost 0.015
#: of held-out correlation against 3e-4; the NeRF stages at 1e-4 instead of 5e-4 gave
#: photo subjects +0.01 to +0.03 mouth_corr on held-out text).
WARMUP_STEPS = 500
WARMUP_LR = 3e-4
FINE_TUNE_LR_AUDIO = 1e-4
PROBE_PREFIX = "probe."
#: Voice mix of the prior's speech: half the bundled voice, the rest other voices so the
#: codes do not hinge on one speaker's timbre.
PRIOR_VOICES = {"joe": 0.5, "joe~shifted": 0.2, "espeak": 0.2, "espeak~shifted": 0.1}


@dataclass(frozen=True)
class PriorConfig:
    sentences: int = 1200
    zh_fraction: float = 0.25
    held_out: int = 40
    steps: int = 8000
    lr: float = 1e-3
    frames: int = 32  # consecutive frames per step
    fps: float = VIDEO_FPS
    voices: str = "mix"  # "mix" (PRIOR_VOICES) or "bundled"
    seed: int = 0


@dataclass
class Example:
    features: AudioFeatures
    mouth: torch.Tensor  # float [n_frames, 2]: viseme (opening, rounding)


def content_model_id(model_dir: str | Path) -> str:
    """What ties a prior to its content model: the sha256 of the model's weights."""
    return sha256((Path(model_dir) / "model.safetensors").read_bytes())


def viseme_mouth(speech: Speech, n_frames: int, fps: float) -> np.ndarray:
    """float32 [n_frames, 2]: the viseme (opening, rounding) at each frame's time i/fps."""
    from services.subjects.visemes import mouth_track, speech_units

    opening, rounding = mouth_track(speech_units(speech), np.arange(n_frames) / fps)
    return np.stack([opening, rounding], 1).astype(np.float32)


def make_example(speech: Speech, content_model: ContentModel, fps: float, space: str) -> Example:
    clip16 = to_analysis_rate(speech.audio)
    n = max(1, int(np.floor(clip16.duration * fps + 1e-6)))
    clip, _ = pad_to_frames(clip16, fps, n)
    features = extract_features(clip, fps, content=content_model.frames(clip, speech.lang, space), mel=False)
    return Example(features, torch.from_numpy(viseme_mouth(speech, features.n_frames, fps)))


def speak_examples(texts: Sequence[tuple[str, str]], voice: SpeechSource, content_model: ContentModel,
                   fps: float, space: str, desc: str = "speech", progress: bool = True) -> list[Example]:
    from tqdm import tqdm

    out = []
    for text, lang in tqdm(texts, desc=desc, unit="sentence", disable=not progress):
        out.append(make_example(voice(text, lang), content_model, fps, space))
    return out


def train_prior(encoder: AudioCodeEncoder, examples: Sequence[Example], config: PriorConfig,
                progress: Callable[[int, int, float], None] | None = None) -> MouthProbe:
    """Train `encoder` (and a linear probe, returned) on runs of consecutive frames of the
    examples, against their z-scored viseme mouth."""
    allm = torch.cat([e.mouth for e in examples])
    mean, std = allm.mean(0), allm.std(0).clamp(min=1e-6)
    probe = MouthProbe(encoder.config.code_dim, 2)
    opt = torch.optim.AdamW(list(encoder.parameters()) + list(probe.parameters()), lr=config.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(config.seed)
    encoder.train()
    for step in range(1, config.steps + 1):
        lr = config.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / config.steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        ex = examples[int(torch.randint(len(examples), (1,), generator=g))]
        n = ex.features.n_frames
        start = int(torch.randint(max(1, n - config.frames + 1), (1,), generator=g))
        idx = torch.arange(start, min(start + config.frames, n))
        loss = F.mse_loss(probe(encoder.encode_frames(ex.features, idx)), (ex.mouth[idx] - mean) / std)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress and step % 100 == 0:
            progress(step, config.steps, float(loss.detach()))
    encoder.eval()
    return probe


@torch.no_grad()
def opening_corr(encoder: AudioCodeEncoder, probe: MouthProbe, examples: Sequence[Example]) -> float:
    """Pearson correlation of the probe's opening with the viseme opening over all frames."""
    encoder.eval()
    pred = np.concatenate([probe(encoder(e.features))[:, 0].numpy() for e in examples])
    return pearson(pred, np.concatenate([e.mouth[:, 0].numpy() for e in examples]))


def prior_texts(config: PriorConfig) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(training, held-out) (text, lang) pairs, shuffled deterministically."""
    from services.common.corpus import sentences

    n_zh = round(config.sentences * config.zh_fraction)
    train = [(s, "en") for s in sentences(config.sentences - n_zh, "en", seed=config.seed)] + \
            [(s, "zh") for s in sentences(n_zh, "zh", seed=config.seed)]
    random.Random(config.seed).shuffle(train)
    h_zh = round(config.held_out * config.zh_fraction)
    held = [(s, "en") for s in sentences(config.held_out - h_zh, "en", seed=config.seed, split="heldout")] + \
           [(s, "zh") for s in sentences(h_zh, "zh", seed=config.seed, split="heldout")]
    return train, held


def _matches(a: EncoderConfig, b: EncoderConfig) -> bool:
    return all(getattr(a, k) == getattr(b, k) for k in MATCH_FIELDS)


def fine_tune_schedule(train: TrainConfig) -> TrainConfig:
    """`train` for an encoder that starts from the prior (see WARMUP_STEPS)."""
    return replace(train, audio_pretrain_lr=WARMUP_LR, lr_audio=min(train.lr_audio, FINE_TUNE_LR_AUDIO),
                   audio_pretrain_steps=min(train.audio_pretrain_steps, WARMUP_STEPS))


def load_prior(config: EncoderConfig, fps: float, content_model_dir: str | Path = DEFAULT_CONTENT_MODEL,
               prior_dir: Path = PRIOR_DIR) -> tuple[dict[str, torch.Tensor], str] | None:
    """(encoder state dict, prior id) when the prior in `prior_dir` fits an encoder of
    `config` fed by `content_model_dir` at `fps`; None otherwise."""
    meta_path, weights = prior_dir / "config.json", prior_dir / "model.safetensors"
    if config.variant != "content" or not meta_path.is_file() or not weights.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if not _matches(EncoderConfig.from_dict(meta["encoder"]), config) or abs(meta["fps"] - fps) > 1e-6:
        return None
    model_weights = Path(content_model_dir) / "model.safetensors"
    if not model_weights.is_file() or content_model_id(content_model_dir) != meta["content_model_sha256"]:
        return None
    state = {k: v for k, v in load_file(str(weights)).items() if not k.startswith(PROBE_PREFIX)}
    return state, f"mouth_prior {sha256(weights.read_bytes())[:12]}"


def load_probe(prior_dir: Path = PRIOR_DIR) -> MouthProbe:
    """The probe the prior was trained with: codes → z-scored viseme (opening, rounding)."""
    state = {k[len(PROBE_PREFIX):]: v for k, v in load_file(str(prior_dir / "model.safetensors")).items()
             if k.startswith(PROBE_PREFIX)}
    probe = MouthProbe(state["weight"].shape[1], state["weight"].shape[0])
    probe.load_state_dict(state)
    return probe


def save_prior(out: Path, encoder: AudioCodeEncoder, probe: MouthProbe, meta: dict) -> None:
    """The encoder's weights with the probe's (under `probe.`: what a test reads the mouth
    with) and config.json."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.safetensors.tmp"
    tensors = {**encoder.state_dict(), **{PROBE_PREFIX + k: v for k, v in probe.state_dict().items()}}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.replace(out / "model.safetensors")
    (out / "config.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")


def build(config: PriorConfig, encoder_config: EncoderConfig, content_model_dir: Path = DEFAULT_CONTENT_MODEL,
          out: Path = PRIOR_DIR, progress: bool = True) -> dict:
    """Make the data, train, measure and save a prior; returns its config.json."""
    from services.training.speech import VoiceMix, bundled_voice

    if config.voices not in ("mix", "bundled"):
        raise InvalidInput(f"unknown voices {config.voices!r}: use mix or bundled")
    voice = VoiceMix(config.seed, PRIOR_VOICES) if config.voices == "mix" else bundled_voice()
    content_model = ContentModel.load(content_model_dir)
    cfg = EncoderConfig(**{**encoder_config.to_dict(), "variant": "content",
                           "content_dim": content_model.dim_for(encoder_config.content_space)})
    torch.manual_seed(config.seed)
    t0 = time.perf_counter()
    train_texts, held_texts = prior_texts(config)
    space = cfg.content_space
    train = speak_examples(train_texts, voice, content_model, config.fps, space, "training speech", progress)
    held = speak_examples(held_texts, bundled_voice(), content_model, config.fps, space, "held-out speech", progress)
    data_s = time.perf_counter() - t0
    encoder = build_encoder(cfg)

    def report(step: int, steps: int, loss: float) -> None:
        if progress and step % 1000 == 0:
            print(f"step {step}/{steps}  loss {loss:.4f}", flush=True)

    probe = train_prior(encoder, train, config, report)
    meta = {
        "encoder": cfg.to_dict(), "fps": config.fps,
        "content_model": Path(content_model_dir).name,
        "content_model_sha256": content_model_id(content_model_dir),
        "training": {**asdict(config), "total_frames": int(sum(e.features.n_frames for e in train)),
                     "data_seconds": round(data_s, 1), "train_seconds": round(time.perf_counter() - t0 - data_s, 1)},
        "metrics": {"opening_corr_train": round(opening_corr(encoder, probe, train), 4),
                    "opening_corr_heldout": round(opening_corr(encoder, probe, held), 4)},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    save_prior(out, encoder, probe, meta)
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    from services.training import presets

    d = PriorConfig()
    p = argparse.ArgumentParser(prog="python -m services.training.mouth_prior",
                                description="Pretrain the content encoder's mouth prior on TTS speech "
                                            "(viseme targets, no frames) and write it to the weights dir.")
    p.add_argument("--sentences", type=int, default=d.sentences, help="training sentences (default %(default)s)")
    p.add_argument("--steps", type=int, default=d.steps, help="training steps (default %(default)s)")
    p.add_argument("--voices", choices=("mix", "bundled"), default=d.voices,
                   help="mix: the bundled voice and shifted/espeak voices; bundled: the Piper voice alone")
    p.add_argument("--preset", default="cpu", help="recipe whose encoder sizes the prior takes (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--out", type=Path, default=PRIOR_DIR, help="output directory (default: the bundled weights)")
    args = p.parse_args(argv)
    if args.sentences < 10 or args.steps < 1:
        print("error: --sentences must be ≥ 10 and --steps ≥ 1", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        meta = build(PriorConfig(sentences=args.sentences, steps=args.steps, voices=args.voices),
                     presets.preset(args.preset).encoder, out=args.out)
    except InvalidInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(meta["metrics"]), "→", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
