"""Ray Serve deployment for the audio encoder. The shared content model loads once per
replica; each subject's own audio encoder comes from its bundle, multiplexed by subject id."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from ray import serve

from services.common.audio import wav2lip_mel
from services.common.rpc import grpc_method
from services.common.subject_source import SubjectSource
from services.common.types import VIDEO_FPS, AudioClip
from services.common.wire import audio_from_proto, codes_to_proto
from services.protos.talkinghead.v1 import common_pb2, stages_pb2


@serve.deployment(name="Encoder")
class EncoderDeployment:
    def __init__(self, redis_url: str | None = None) -> None:
        from services.encoder.service import EncoderService

        self.service = EncoderService()
        self.source = SubjectSource(redis_url)

    @serve.multiplexed(max_num_models_per_replica=16)
    async def _audio_encoder(self, subject_id: str) -> Any:
        from services.encoder.service import subject_audio_encoder

        return await asyncio.to_thread(lambda: subject_audio_encoder(self.source.load(subject_id)))

    async def encode(self, clip: AudioClip, fps: float = VIDEO_FPS, lang: str | None = None,
                     subject_id: str | None = None) -> np.ndarray:
        """Codes [n_frames, 64] from the (multiplexed) subject's audio encoder."""
        audio_encoder = await self._audio_encoder(subject_id or serve.get_multiplexed_model_id())
        return (await asyncio.to_thread(self.service.encode, clip, audio_encoder, fps, lang)).codes

    @grpc_method
    async def Encode(self, request: stages_pb2.EncodeRequest, grpc_context: Any = None) -> stages_pb2.EncodeResponse:
        fps = request.fps or VIDEO_FPS
        clip = audio_from_proto(request.audio)
        codes = await self.encode(clip, fps, request.lang or None, subject_id=request.subject or "demo")
        return stages_pb2.EncodeResponse(codes=codes_to_proto(codes, fps))

    @grpc_method
    async def ComputeMel(self, request: stages_pb2.ComputeMelRequest, grpc_context: Any = None) -> common_pb2.Mel:
        from services.common.audio import to_analysis_rate

        clip = to_analysis_rate(audio_from_proto(request.audio))
        mel = np.ascontiguousarray(await asyncio.to_thread(wav2lip_mel, clip.samples), "<f4")
        return common_pb2.Mel(n_mels=mel.shape[0], n_frames=mel.shape[1], frames_per_second=80.0,
                              values_f32le=mel.tobytes())
