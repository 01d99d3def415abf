"""One request check: every entry point (CLI, HTTP, gRPC, in-process) builds a `SpeakRequest`
and passes it through `check_request` once, against one `Limits`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from services.common.bundle import check_subject_id
from services.common.errors import InvalidInput, ResourceExhausted
from services.common.text import MAX_TEXT_CHARS, check_language, check_text
from services.common.types import AudioClip

#: Frames a chunk may hold: one frame up to ten seconds at 25 fps.
FRAMES_PER_CHUNK_RANGE = (1, 250)


@dataclass(frozen=True)
class Limits:
    """Per-process safety limits (the Serve config's `args.limits`)."""

    max_text_chars: int = MAX_TEXT_CHARS  # over → RESOURCE_EXHAUSTED / 429; may only be lowered
    max_audio_seconds: float = 120.0      # over → RESOURCE_EXHAUSTED / 429
    max_streams: int = 4                  # concurrent Speak streams + jobs per replica
    max_request_seconds: float = 600.0    # server-side deadline per request
    frames_per_chunk: int = 8             # when a request leaves it at 0

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Limits":
        """Limits from a config mapping; unknown keys and bad values are one clear error."""
        d = dict(d or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise InvalidInput(f"unknown limit(s) {', '.join(unknown)}: the limits are {', '.join(known)}")
        values: dict[str, Any] = {}
        for key, value in d.items():
            kind = int if known[key].type in ("int", int) else float
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 \
                    or (kind is int and value != int(value)):
                raise InvalidInput(f"limit {key} must be a positive {kind.__name__}, got {value!r}")
            values[key] = kind(value)
        limits = cls(**values)
        if limits.max_text_chars > MAX_TEXT_CHARS:
            raise InvalidInput(f"limit max_text_chars is at most {MAX_TEXT_CHARS}, got {limits.max_text_chars}")
        lo, hi = FRAMES_PER_CHUNK_RANGE
        if not lo <= limits.frames_per_chunk <= hi:
            raise InvalidInput(f"limit frames_per_chunk must be between {lo} and {hi}")
        return limits


@dataclass(frozen=True)
class SpeakRequest:
    text: str | None = None
    audio: AudioClip | None = None
    subject: str = "demo"
    lang: str = "en"
    voice: str | None = None
    static_pose: bool = False
    denoise: bool | None = None  # None: on for uploaded audio, off for TTS
    frames_per_chunk: int = 0    # 0: the limits' default
    seed: int = 0
    exact: bool = False          # render every ray (no fast render path)


@dataclass(frozen=True)
class CheckedRequest(SpeakRequest):
    """A request that passed `check_request`: normalised text, defaults resolved."""

    denoise: bool = False
    frames_per_chunk: int = 8


def check_request(req: SpeakRequest, limits: Limits = Limits()) -> CheckedRequest:
    """The request with its text normalised and defaults filled in, or one clear error:
    InvalidInput (malformed) or ResourceExhausted (over a limit)."""
    if isinstance(req, CheckedRequest):
        return req
    if (req.text is None) == (req.audio is None):
        raise InvalidInput("give exactly one of text or audio")
    lang = req.lang or "en"
    text = None
    if req.text is not None:
        text = check_text(req.text, lang, limits.max_text_chars, too_long=ResourceExhausted)
    else:
        check_language(lang)
        assert req.audio is not None
        if req.audio.duration > limits.max_audio_seconds:
            raise ResourceExhausted(f"audio is {req.audio.duration:.1f} s; the limit is {limits.max_audio_seconds:g} s")
        if req.audio.duration <= 0:
            raise InvalidInput("audio is empty")
    subject = check_subject_id(req.subject or "demo")
    if req.voice is not None and not isinstance(req.voice, str):
        raise InvalidInput("voice must be a string")
    frames = req.frames_per_chunk or limits.frames_per_chunk
    lo, hi = FRAMES_PER_CHUNK_RANGE
    if not isinstance(frames, int) or not lo <= frames <= hi:
        raise InvalidInput(f"frames_per_chunk must be between {lo} and {hi}")
    denoise = req.denoise if req.denoise is not None else req.audio is not None
    return CheckedRequest(text=text, audio=req.audio, subject=subject, lang=lang, voice=req.voice or None,
                          static_pose=bool(req.static_pose), denoise=bool(denoise), frames_per_chunk=frames,
                          seed=int(req.seed), exact=bool(req.exact))
