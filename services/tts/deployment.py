"""Ray Serve deployment for TTS: one Speech per sentence, streamed as soon as it exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ray import serve

from services.common.rpc import grpc_method
from services.common.types import Speech
from services.common.wire import audio_to_proto, timings_to_proto
from services.protos.talkinghead.v1 import stages_pb2


def _options(length_scale: float) -> Any:
    from services.common.types import SynthesisOptions

    return SynthesisOptions(length_scale=length_scale) if length_scale else None


def _response(s: Speech) -> stages_pb2.SynthesizeResponse:
    return stages_pb2.SynthesizeResponse(audio=audio_to_proto(s.audio), phonemes=timings_to_proto(s.phonemes),
                                         syllables=timings_to_proto(s.syllables or []),
                                         sentence_index=s.sentence, text=s.text, voice=s.voice or "")


@serve.deployment(name="Tts")
class TtsDeployment:
    def __init__(self) -> None:
        from services.tts.service import TtsService

        self.service = TtsService()

    def sentences(self, text: str, lang: str = "en", voice: str | None = None,
                  length_scale: float = 0.0) -> Iterator[Speech]:
        """A sync generator: Ray Serve runs it in a worker thread and streams each sentence."""
        yield from self.service.sentences(text, lang, voice, _options(length_scale))

    @grpc_method
    async def Synthesize(self, request: Any, grpc_context: Any = None) -> stages_pb2.SynthesizeResponse:
        import asyncio

        speech = await asyncio.to_thread(self.service.synthesize, request.text, request.lang or "en",
                                         request.voice or None, _options(request.length_scale))
        return _response(speech)

    @grpc_method
    async def SynthesizeStream(self, request: Any, grpc_context: Any = None):
        import asyncio

        it = self.service.sentences(request.text, request.lang or "en", request.voice or None,
                                    _options(request.length_scale))
        end = object()
        while (s := await asyncio.to_thread(next, it, end)) is not end:
            yield _response(s)
