"""Ray Serve deployment for speech denoising (DenoiseService, any sample rate in and out)."""

from __future__ import annotations

import asyncio
from typing import Any

from ray import serve

from services.common.rpc import grpc_method
from services.common.types import AudioClip
from services.common.wire import audio_from_proto, audio_to_proto
from services.protos.talkinghead.v1 import stages_pb2


@serve.deployment(name="Denoise")
class DenoiseDeployment:
    def __init__(self, model: str | None = None) -> None:
        from services.denoise.service import DEFAULT_MODEL, DenoiseService

        self.service = DenoiseService()
        self.model = model or DEFAULT_MODEL

    async def enhance(self, clip: AudioClip, model: str | None = None) -> AudioClip:
        return await asyncio.to_thread(self.service.enhance, clip, model or self.model)

    @grpc_method
    async def Enhance(self, request: Any, grpc_context: Any = None) -> stages_pb2.EnhanceResponse:
        model = request.model or self.model
        out = await self.enhance(audio_from_proto(request.audio), model)
        return stages_pb2.EnhanceResponse(audio=audio_to_proto(out), model=model)
