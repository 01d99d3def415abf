"""One request check: every entry point (CLI, HTTP, gRPC, in-process) builds a `SpeakRequest`
and passes it through `check_request` once, against one `Limits`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from services.common.audio import too_long_message
from services.common.bundle import check_subject_id
from services.common.errors import InvalidInput, ResourceExhausted
from services.common.text import MAX_TEXT_CHARS, check_language, check_text
from services.common.types import AudioClip

#: Frames a chunk may hold: one frame up to ten seconds at 25 fps.
FRAMES_PER_CHUNK_RANGE = (1, 250)


#: Seeds are non-negative 63-bit integers (numpy's generators take no negative seed).
SEED_RANGE = (0, 2**63 - 1)
#: Bytes per second of the largest common uncompressed upload (48 kHz stereo 16-bit PCM), as base64.
_UPLOAD_BYTES_PER_S = 48_000 * 2 * 2 * 4 / 3
_BODY_SLACK = 1 << 20  # JSON keys, text, a webhook URL


@dataclass(frozen=True)
class Limits:
    """Per-process safety limits (the Serve config's `args.limits`)."""

    max_text_chars: int = MAX_TEXT_CHARS  # over → RESOURCE_EXHAUSTED / 429; may only be lowered
    max_audio_seconds: float = 120.0      # over → RESOURCE_EXHAUSTED / 429
    max_streams: int = 4                  # concurrent Speak streams + running jobs per replica
    max_request_seconds: float = 600.0    # server-side deadline per request
    frames_per_chunk: int = 8             # when a request leaves it at 0
    max_body_bytes: int = 0               # HTTP body / gRPC audio bytes; 0: derived from max_audio_seconds
    max_queued_jobs: int = 16             # async jobs waiting per replica; over → 429 + Retry-After
    job_ttl_seconds: float = 3600.0       # a job (status and video) is kept this long
    max_sessions: int = 4                 # live (WebRTC) sessions per replica; over → 429 + Retry-After
    session_idle_seconds: float = 300.0   # a live session with no speak/interrupt this long (and idle) ends
    max_session_seconds: float = 3600.0   # a live session ends this long after it opened

    def __post_init__(self) -> None:
        if not self.max_body_bytes:  # a 48 kHz stereo WAV of max_audio_seconds fits, as base64 JSON
            derived = int(self.max_audio_seconds * _UPLOAD_BYTES_PER_S) + _BODY_SLACK
            object.__setattr__(self, "max_body_bytes", derived)

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
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0 or (kind is int and value != int(value)):
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
    # Phase of the subject's pose track the speech starts at (services.common.types.track_position),
    # None: one drawn from the seed; pose_span > 0: of the track's first frames only. Set by live
    # sessions, whose idle loop shows those frames; no API field.
    pose_start: int | None = None
    pose_span: int = 0


@dataclass(frozen=True)
class CheckedRequest(SpeakRequest):
    """A request that passed `check_request`: normalised text, defaults resolved."""

    denoise: bool = False
    frames_per_chunk: int = 8


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_types(req: SpeakRequest) -> None:
    """Field types, for entry points that build a request from untyped input (JSON)."""
    if req.text is not None and not isinstance(req.text, str):
        raise InvalidInput("text must be a string")
    if req.audio is not None and not isinstance(req.audio, AudioClip):
        raise InvalidInput("audio must be an audio clip")
    if req.subject is not None and not isinstance(req.subject, str):
        raise InvalidInput("subject must be a string (a subject id)")
    if req.lang is not None and not isinstance(req.lang, str):
        raise InvalidInput("lang must be a string (en or zh)")
    if req.voice is not None and not isinstance(req.voice, str):
        raise InvalidInput("voice must be a string")
    if not isinstance(req.static_pose, bool):
        raise InvalidInput("static_pose must be true or false")
    if req.denoise is not None and not isinstance(req.denoise, bool):
        raise InvalidInput("denoise must be true, false or absent")
    if not isinstance(req.exact, bool):
        raise InvalidInput("exact must be true or false")
    if req.pose_start is not None and not _is_int(req.pose_start):
        raise InvalidInput("pose_start must be a whole number or absent")
    if not _is_int(req.pose_span) or req.pose_span < 0:
        raise InvalidInput("pose_span must be a whole number ≥ 0")
    lo, hi = FRAMES_PER_CHUNK_RANGE
    if not _is_int(req.frames_per_chunk) or not (req.frames_per_chunk == 0 or lo <= req.frames_per_chunk <= hi):
        raise InvalidInput(f"frames_per_chunk must be a whole number between {lo} and {hi} (or 0: the default)")
    lo, hi = SEED_RANGE
    if not _is_int(req.seed) or not lo <= req.seed <= hi:
        raise InvalidInput(f"seed must be a whole number between {lo} and 2^63-1")


def check_request(req: SpeakRequest, limits: Limits = Limits()) -> CheckedRequest:
    """The request with its text normalised and defaults filled in, or one clear error:
    InvalidInput (malformed, including a field of the wrong type) or ResourceExhausted (over
    a limit)."""
    if isinstance(req, CheckedRequest):
        return req
    _check_types(req)
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
            raise ResourceExhausted(too_long_message(req.audio.duration, limits.max_audio_seconds))
        if req.audio.duration <= 0:
            raise InvalidInput("audio is empty")
    subject = check_subject_id(req.subject or "demo")
    frames = req.frames_per_chunk or limits.frames_per_chunk
    denoise = req.denoise if req.denoise is not None else req.audio is not None
    return CheckedRequest(text=text, audio=req.audio, subject=subject, lang=lang, voice=req.voice or None,
                          static_pose=req.static_pose, denoise=denoise, frames_per_chunk=frames, seed=req.seed,
                          exact=req.exact, pose_start=req.pose_start, pose_span=req.pose_span)
