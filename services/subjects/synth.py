"""`subject synth`: a full ER-NeRF-layout dataset of the oracle subject saying random sentences."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from services.common.audio import resample
from services.common.errors import InvalidInput
from services.common import corpus
from services.common.types import ANALYSIS_SAMPLE_RATE, VIDEO_FPS, AudioClip, Speech, SpeechSource, join_speech
from services.subjects.layout import DatasetWriter
from services.subjects.oracle import OracleSubject
from services.common.paths import datasets_dir


@dataclass(frozen=True)
class SynthConfig:
    minutes: float = 3.0
    size: int = 256
    seed: int = 0
    fps: int = VIDEO_FPS
    #: share of Mandarin sentences (the rest English)
    zh_fraction: float = 0.2
    video: bool = True
    #: text source of the sentences (services.common.corpus.TEXT_SOURCES)
    texts: str = "natural"


def training_speech(speak: SpeechSource, minutes: float, seed: int = 0, zh_fraction: float = 0.2,
                    progress: bool = True, texts: str = "natural") -> tuple[Speech, list[dict]]:
    """Training-split sentences of the text source `texts` spoken by `speak` until `minutes`
    of audio exist, joined into one Speech (native rate); also returns each sentence's text,
    lang and span."""
    if minutes <= 0:
        raise InvalidInput(f"--minutes must be positive, got {minutes}")
    rng = random.Random(f"synth:{seed}")
    pools = {lang: iter(corpus.sentences(2000, lang, seed=seed, split="train", source=texts)) for lang in ("en", "zh")}
    target = minutes * 60.0
    parts: list[Speech] = []
    info: list[dict] = []
    total = 0.0
    bar = tqdm(total=round(target), desc="tts", unit="s", disable=not progress)
    while total < target:
        lang = "zh" if rng.random() < zh_fraction else "en"
        text = next(pools[lang])
        speech = speak(text, lang)
        info.append({"text": text, "lang": lang, "start": total, "end": total + speech.audio.duration})
        parts.append(speech)
        total += speech.audio.duration
        bar.update(round(min(total, target)) - bar.n)
    bar.close()
    return join_speech(parts), info


def write_oracle_dataset(root: str | Path, speech: Speech, oracle: OracleSubject, fps: int = VIDEO_FPS,
                         sentences: list[dict] | None = None, force: bool = False, video: bool = True,
                         progress: bool = True, meta_name: str = "oracle.json", meta: dict | None = None) -> Path:
    """Render `speech` with the oracle (or anything with its interface: size, focal, cx, cy,
    background, render_frames) into an ER-NeRF dataset at `root` (atomic). The tracks go to
    `meta_name`, headed by `meta` (default: the oracle's kind, seed and size)."""
    root = Path(root)
    audio16 = AudioClip(resample(speech.audio.samples, speech.audio.sample_rate, ANALYSIS_SAMPLE_RATE),
                        ANALYSIS_SAMPLE_RATE)
    n_frames = max(1, int(np.floor(audio16.duration * fps + 1e-6)))
    writer = DatasetWriter(root, oracle.size, oracle.size, oracle.focal, oracle.cx, oracle.cy, overwrite=force)
    tracks: dict[str, list[float]] = {"mouth_open": [], "mouth_round": [], "blink": [], "inner_lip_gap": [],
                                      "mouth_interior": []}
    try:
        for f in tqdm(oracle.render_frames(speech, fps, n_frames=n_frames), total=n_frames, desc="render",
                      unit="frame", disable=not progress):
            m = f.meta
            writer.add(f.image, m.landmarks, m.c2w, m.blink, f.labels, f.torso)
            tracks["mouth_open"].append(round(m.mouth_open, 5))
            tracks["mouth_round"].append(round(m.mouth_round, 5))
            tracks["blink"].append(round(m.blink, 5))
            tracks["inner_lip_gap"].append(round(m.inner_lip_gap, 4))
            tracks["mouth_interior"].append(int(f.mouth_interior.sum()))
        head = meta if meta is not None else {"kind": "oracle", "seed": oracle.seed, "size": oracle.size}
        doc = {**head, "fps": fps, "frames": n_frames, "sentences": sentences or [], **tracks}
        return writer.finish(audio16, oracle.background, fps, metadata={meta_name: doc},
                             video_name=root.name if video else None)
    except BaseException:
        writer.abort()
        raise


def synth(name: str, config: SynthConfig = SynthConfig(), out: str | Path | None = None, force: bool = False,
          progress: bool = True, *, speak: SpeechSource) -> Path:
    """The `subject synth NAME` job: random sentences spoken by `speak` (the TTS) → oracle
    frames → dataset directory."""
    if not name or "/" in name or name.startswith("."):
        raise InvalidInput(f"invalid dataset name {name!r}")
    if config.texts not in corpus.TEXT_SOURCES:
        raise InvalidInput(f"unknown text source {config.texts!r}: choose one of {', '.join(corpus.TEXT_SOURCES)}")
    if config.fps <= 0 or not 0.0 <= config.zh_fraction <= 1.0:
        raise InvalidInput(f"fps must be positive and zh-fraction in [0, 1], got {config.fps} and {config.zh_fraction}")
    root = Path(out) if out else datasets_dir() / name
    if root.exists() and not force:
        raise InvalidInput(f"{root} already exists (use --force to replace it)")
    oracle = OracleSubject(config.size, config.seed)
    speech, sentences = training_speech(speak, config.minutes, config.seed, config.zh_fraction, progress,
                                        config.texts)
    return write_oracle_dataset(root, speech, oracle, config.fps, sentences, force, config.video, progress)
