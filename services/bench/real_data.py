"""Real recordings the benchmarks measure on, read from `services.common.paths.real_media_dir()`
(../shared/data/real: third-party media, never copied into the repo; absent on some machines).

- speech/: LJ Speech clips LJ001-0001..0010 (one female reader, 22.05 kHz) with
  `metadata_first10.csv` (id|text|normalised text: the normalised column is the transcript),
  and the VoiceBank-DEMAND pair p232_001 (16 kHz, "Please call Stella.").
- noise/: recorded household noise at 16 kHz (Speech Commands background noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.common.audio import load_audio, to_analysis_rate
from services.common.paths import real_media_dir
from services.common.types import AudioClip

SKIPPED = "skipped: ../shared/data/real absent"
VOICEBANK_TRANSCRIPT = "Please call Stella."


@dataclass(frozen=True)
class RealUtterance:
    """One recording with its transcript, at 16 kHz."""

    id: str
    text: str
    lang: str
    audio: AudioClip


def available(root: Path | None = None) -> bool:
    root = root or real_media_dir()
    return (root / "speech" / "metadata_first10.csv").is_file()


def _clip16(path: Path) -> AudioClip:
    return to_analysis_rate(load_audio(path))


def speech(root: Path | None = None, voicebank: bool = True) -> list[RealUtterance]:
    """The LJ Speech clips (normalised transcripts) and, with `voicebank`, the clean VoiceBank clip."""
    root = (root or real_media_dir()) / "speech"
    out = []
    for line in (root / "metadata_first10.csv").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        uid, _, normalised = line.split("|", 2)
        out.append(RealUtterance(uid, normalised.strip(), "en", _clip16(root / f"{uid}.wav")))
    if voicebank:
        out.append(RealUtterance("voicebank_p232_001", VOICEBANK_TRANSCRIPT, "en",
                                 _clip16(root / "voicebank_p232_001_clean.wav")))
    return out


def voicebank_pair(root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) float32 at 16 kHz, sample-aligned."""
    root = (root or real_media_dir()) / "speech"
    noisy = _clip16(root / "voicebank_p232_001_noisy.wav").samples
    clean = _clip16(root / "voicebank_p232_001_clean.wav").samples
    n = min(len(noisy), len(clean))
    return noisy[:n].astype(np.float32), clean[:n].astype(np.float32)


def noises(root: Path | None = None) -> dict[str, np.ndarray]:
    """Recorded noise name → float32 samples at 16 kHz."""
    root = (root or real_media_dir()) / "noise"
    return {p.stem: _clip16(p).samples.astype(np.float32) for p in sorted(root.glob("*.wav"))}
