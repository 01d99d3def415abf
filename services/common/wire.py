"""Protobuf ⇄ project types for the gRPC servicers (talkinghead.v1). No Ray, no models."""

from __future__ import annotations

from typing import Any

import numpy as np

from services.common.audio import MAX_AUDIO_SECONDS, check_audio, load_audio, too_long_message
from services.common.errors import InvalidInput, TalkingHeadError
from services.common.types import AudioClip, PhonemeTiming
from services.protos.talkinghead.v1 import common_pb2

MP4_MIME = 'video/mp4; codecs="avc1.64001f,mp4a.40.2"'


def audio_to_proto(clip: AudioClip) -> common_pb2.AudioClip:
    return common_pb2.AudioClip(pcm_f32le=np.asarray(clip.samples, "<f4").tobytes(), sample_rate=clip.sample_rate)


def audio_from_proto(msg: common_pb2.AudioClip, max_seconds: float = MAX_AUDIO_SECONDS,
                     too_long: type[TalkingHeadError] = InvalidInput) -> AudioClip:
    """Raw PCM or an encoded file → a checked mono clip: InvalidInput when bad, `too_long`
    when over `max_seconds` (PCM: from its byte length, before any copy)."""
    kind = msg.WhichOneof("data")
    if kind == "encoded":
        return load_audio(bytes(msg.encoded), max_seconds=max_seconds, too_long=too_long)
    if kind == "pcm_f32le":
        if len(msg.pcm_f32le) % 4:
            raise InvalidInput("pcm_f32le must hold whole float32 samples")
        if msg.sample_rate <= 0:
            raise InvalidInput("pcm_f32le audio needs a sample_rate")
        seconds = len(msg.pcm_f32le) / 4 / msg.sample_rate
        if seconds > max_seconds:
            raise too_long(too_long_message(seconds, max_seconds))
        return check_audio(np.frombuffer(msg.pcm_f32le, "<f4").astype(np.float32), int(msg.sample_rate),
                           max_seconds, too_long)
    raise InvalidInput("audio has neither pcm_f32le nor encoded data")


def timings_to_proto(items: list[PhonemeTiming]) -> list[common_pb2.PhonemeTiming]:
    return [common_pb2.PhonemeTiming(phoneme=p.phoneme, start_s=p.start, end_s=p.end) for p in items]


def codes_to_proto(codes: np.ndarray, fps: float) -> common_pb2.AudioCodes:
    codes = np.ascontiguousarray(codes, "<f4")
    return common_pb2.AudioCodes(n_frames=codes.shape[0], dim=codes.shape[1], fps=fps, values_f32le=codes.tobytes())


def codes_from_proto(msg: common_pb2.AudioCodes) -> np.ndarray:
    if msg.n_frames * msg.dim * 4 != len(msg.values_f32le) or msg.n_frames == 0:
        raise InvalidInput(f"codes hold {len(msg.values_f32le)} bytes, not {msg.n_frames}×{msg.dim} float32")
    return np.frombuffer(msg.values_f32le, "<f4").reshape(msg.n_frames, msg.dim).astype(np.float32)


def subject_info(manifest: dict[str, Any], digest: str = "") -> common_pb2.SubjectInfo:
    h, w = (int(v) for v in manifest.get("resolution", (0, 0)))
    summary = {k: str(v) for k, v in (manifest.get("training") or {}).items() if not isinstance(v, (dict, list))}
    return common_pb2.SubjectInfo(id=manifest["id"], format_version=int(manifest.get("format_version", 0)),
                                  width=w, height=h, fps=float(manifest.get("fps", 0)), sha256=digest,
                                  languages=list(manifest.get("languages", [])), summary=summary)
