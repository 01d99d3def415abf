"""The Ray Serve application: the `Avatar` ingress composing the stage deployments.

One application, one ingress (Ray's gRPC proxy routes to an application's ingress by method
name), so clients need no `application` metadata:
- gRPC (:9000): talkinghead.v1 Avatar (Speak, Converse, ListSubjects, GetSubject), the per-stage
  services (Tts, Denoise, Encoder, Renderer — forwarded to their own deployments, which
  scale alone) and grpc.health.v1.Health/Check.
- HTTP (:8000): POST /v1/videos, GET /v1/videos/{id}[/content], POST /v1/streams (the fMP4
  chunks as a chunked body), GET /v1/subjects, /healthz, /metrics, the web page (GET /), and
  /docs, /redoc, /openapi.json while API keys are off.
`Speak` runs the shared `Pipeline` over `RemoteStages` (the deployments) into a fMP4 sink:
sentence-level pipelining (TTS streams sentence k+1 while sentence k renders), fMP4
chunks as soon as a frame batch exists, cancellation within one frame batch.
"""

import asyncio
import base64
import concurrent.futures
import functools
import json
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from typing import Any  # NB: no `from __future__ import annotations`: FastAPI must see the real `Request`

import numpy as np
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from ray import serve

from services.common.audio import load_audio, too_long_message
from services.common.bundle import SubjectBundle
from services.common.errors import (Cancelled, DeadlineExceeded, InvalidInput, NotFound, PayloadTooLarge,
                                    ResourceExhausted, TalkingHeadError)
from services.common.rpc import as_project_error, grpc_method, report, status_of
from services.common.subject_source import SubjectSource
from services.common.text import check_text
from services.common.types import AudioClip, Speech
from services.common.wire import MP4_MIME, audio_from_proto, subject_info
from services.gateway.auth import ApiKeys, key_hash
from services.gateway.jobs import JobQueue, JobStore
from services.gateway.live.host import LiveRouter
from services.gateway.live.session import check_ice_servers
from services.gateway.metrics import GatewayMetrics
from services.gateway.pipeline import Pipeline
from services.gateway.request import FRAMES_PER_CHUNK_RANGE, CheckedRequest, Limits, SpeakRequest, check_request
from services.gateway.retry import call_once_more, stream_once_more
from services.gateway.sinks import Chunk, FragmentedMp4Sink
from services.gateway.slots import StreamSlots
from services.gateway.stages import SubjectInfo
from services.gateway.web import page_html
from services.gateway.webhooks import WebhookPolicy, WebhookSender
from services.protos.talkinghead.v1 import avatar_pb2, common_pb2

#: The JSON fields of POST /v1/videos: SpeakRequest's, plus the async-job ones.
SPEAK_FIELDS = ("text", "audio", "subject", "lang", "voice", "static_pose", "denoise", "frames_per_chunk", "seed")
JOB_FIELDS = ("async", "webhook")
#: The JSON fields of POST /v1/sessions/{id}/speak (the session fixes the subject and the pose).
SESSION_SPEAK_FIELDS = ("text", "audio", "lang", "voice", "denoise", "seed")
#: The JSON fields of POST /v1/sessions.
SESSION_FIELDS = ("type", "sdp", "subject")
#: Frames per second the stage services assume when capping a Render call by max_audio_seconds.
_STAGE_FPS = 25
log = logging.getLogger("ray.serve")

# ---- the stages as deployment handles ------------------------------------------------------
class RemoteStages:
    """The pipeline's `Stages` answered by the Tts, Denoise, Encoder and Renderer deployments
    (called from worker threads). Each stage replica fetches a subject's bundle once and keeps
    it (Serve multiplexing); this ingress fetches none. A call whose replica dies is retried
    once on another where that is safe (services.gateway.retry), else ends Unavailable."""

    def __init__(self, tts: Any, denoise: Any, encoder: Any, renderer: Any, metrics: GatewayMetrics) -> None:
        self._tts, self._denoise, self._encoder, self._renderer = tts, denoise, encoder, renderer
        self._metrics = metrics

    def sentences(self, text: str, lang: str, voice: str | None) -> Iterator[Speech]:
        # the TTS replica runs ahead: sentence k+1 is made while k renders
        return stream_once_more(lambda: self._tts.options(stream=True).sentences.remote(text, lang, voice), "tts")

    def enhance(self, clip16k: AudioClip) -> AudioClip:
        return call_once_more(lambda: self._denoise.enhance.remote(clip16k).result(), "denoise")

    def subject(self, subject_id: str) -> SubjectInfo:
        info = call_once_more(
            lambda: self._renderer.options(multiplexed_model_id=subject_id).prepare.remote().result(), "prepare")
        self._metrics.record_subject(info)
        return SubjectInfo(info["id"], float(info["fps"]), tuple(info["size"]), info["digest"],
                           pose_frames=int(info.get("pose_frames", 0)))

    def encode(self, subject: SubjectInfo, clip16k: AudioClip, lang: str) -> np.ndarray:
        return call_once_more(lambda: self._encoder.options(multiplexed_model_id=subject.id).encode.remote(
            clip16k, subject.fps, lang).result(), "encode")

    def render(self, subject: SubjectInfo, codes: np.ndarray, static_pose: bool, seed: int, start: int,
               frames_per_batch: int, exact: bool = False, first_batch: int = 0,
               pose_span: int = 0) -> Iterator[np.ndarray]:
        # closing the result cancels the remote stream: the renderer stops when we stop early
        return stream_once_more(lambda: self._renderer.options(multiplexed_model_id=subject.id, stream=True)
                                .render.remote(codes, static_pose, seed, start, frames_per_batch, exact, first_batch,
                                               pose_span),
                                "render")


def _error_response(exc: BaseException) -> Response:
    _, http, message = report(exc, "HTTP request")
    retry_after = getattr(as_project_error(exc), "retry_after_s", None)
    headers = {"Retry-After": str(int(math.ceil(retry_after)))} if retry_after is not None else None
    return JSONResponse({"error": message}, status_code=http, headers=headers)


_Route = Callable[..., Awaitable[Response]]


def _answered(count: str | None = None) -> Callable[[_Route], _Route]:
    """An HTTP route whose failures are answered by `_error_response`, counted in the request
    metrics as method `count` when one is given. `functools.wraps` keeps the route's name and
    signature, which Serve's ingress and FastAPI read."""
    def wrap(route: _Route) -> _Route:
        @functools.wraps(route)
        async def answered(self: "Avatar", *args: Any, **kwargs: Any) -> Response:
            exc: BaseException | None = None
            try:
                return await route(self, *args, **kwargs)
            except BaseException as e:
                exc = e
                return _error_response(e)
            finally:
                if count is not None:
                    self._count("http", count, exc)
        return answered
    return wrap


def _converse_event(ev: dict) -> avatar_pb2.ConverseEvent | None:
    """A session event as a Converse event (None for those gRPC does not carry: stats)."""
    kind = ev.get("type")
    if kind == "queued":
        return avatar_pb2.ConverseEvent(queued=avatar_pb2.ConverseQueued(utterance=ev["utterance"],
                                                                          queued=ev["queued"]))
    if kind == "interrupted":
        return avatar_pb2.ConverseEvent(interrupted=avatar_pb2.ConverseInterrupted(utterances=ev["interrupted"]))
    if kind == "state":
        return avatar_pb2.ConverseEvent(state=avatar_pb2.ConverseState(
            state=ev["state"], utterance=ev["utterance"], media_seconds=ev["media_seconds"], pts=ev["pts"]))
    if kind == "error":
        return avatar_pb2.ConverseEvent(error=avatar_pb2.ConverseError(
            utterance=ev.get("utterance"), code=ev.get("code", "INTERNAL"), message=ev["error"]))
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes, fields: tuple[str, ...]) -> dict:
    """The body as a JSON object with only `fields`, or InvalidInput."""
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body must be JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(map(repr, unknown))}: the fields are {', '.join(fields)}")
    return body


# Docs are routes of the Avatar (below), so they can be off while API keys are on.
api = FastAPI(title="talking-head", description="Text or audio in, a talking-head mp4 out.",
              docs_url=None, redoc_url=None, openapi_url=None)


@serve.deployment(name="Avatar")
@serve.ingress(api)
class Avatar:
    def __init__(self, tts: Any, denoise: Any, encoder: Any, renderer: Any, redis_url: str | None = None,
                 api_keys: list[str] | None = None, limits: dict | None = None,
                 webhooks: dict | None = None, live: dict | None = None) -> None:
        redis_url = redis_url if redis_url is not None else os.environ.get("TALKING_HEAD_REDIS_URL", "")
        self.tts, self.denoise, self.encoder, self.renderer = tts, denoise, encoder, renderer
        self.limits = Limits.from_dict(limits)
        self.keys = ApiKeys(api_keys)
        self.metrics = GatewayMetrics()
        self.pipeline = Pipeline(RemoteStages(tts, denoise, encoder, renderer, self.metrics), limits=self.limits)
        self.subjects = SubjectSource(redis_url)
        self.slots = StreamSlots(self.limits.max_streams)
        self.webhook_policy = WebhookPolicy.from_dict(webhooks)
        if not self.webhook_policy.signing_secret:
            log.warning("webhooks are sent unsigned: set $TALKING_HEAD_WEBHOOK_SECRET (docs/serving.md)")
        self.jobs = JobQueue(JobStore(redis_url, self.limits.job_ttl_seconds), self.slots,
                             self._render_job, WebhookSender(self.webhook_policy),
                             self.limits.max_queued_jobs)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.limits.max_streams + 2,
                                                           thread_name_prefix="speak")
        self.live = LiveRouter(serve.get_replica_context().app_name, self.limits,
                               check_ice_servers((live or {}).get("ice_servers")))

    def __del__(self) -> None:
        # Serve calls this when it stops the replica: unfinished jobs are recorded as failed
        jobs = getattr(self, "jobs", None)
        if jobs is not None:
            jobs.close()

    # ---- shared request handling ------------------------------------------------------------
    def _grpc_auth(self, grpc_context: Any) -> str | None:
        if not self.keys.enabled:
            return None
        meta = dict(grpc_context.invocation_metadata()) if grpc_context is not None else {}
        return self.keys.check(meta.get("authorization"))

    @asynccontextmanager
    async def _counted(self, slot: Any):
        async with slot:
            self.metrics.in_flight.inc()
            try:
                yield
            finally:
                self.metrics.in_flight.dec()

    async def _chunks(self, req: CheckedRequest, api_name: str) -> AsyncIterator[Chunk]:
        """Run the pipeline in a worker thread; chunks arrive here as they exist. Leaving early
        (client gone, deadline) sets the cancel flag: the worker stops at its next frame batch."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        deadline = time.monotonic() + self.limits.max_request_seconds
        t0 = time.perf_counter()

        def stop() -> bool:
            return cancel.is_set() or time.monotonic() > deadline

        def on_chunk(chunk: Chunk) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ("chunk", chunk))

        def work() -> None:
            try:
                result = self.pipeline.run(req, FragmentedMp4Sink(on_chunk), cancelled=stop)
                loop.call_soon_threadsafe(queue.put_nowait, ("done", result))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

        loop.run_in_executor(self._pool, work)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "chunk":
                    yield value
                elif kind == "done":
                    self.metrics.record_result(value, time.perf_counter() - t0, api_name)
                    return
                else:
                    if isinstance(as_project_error(value), Cancelled) and time.monotonic() > deadline:
                        raise DeadlineExceeded(f"request ran past {self.limits.max_request_seconds:g} s")
                    raise value
        finally:
            cancel.set()

    def _count(self, api_name: str, method: str, exc: BaseException | None) -> None:
        code = "OK" if exc is None else status_of(exc)[0].name
        self.metrics.requests.labels(api_name, method, code).inc()

    def _check_audio_size(self, msg: common_pb2.AudioClip) -> None:
        """Caps a stage-service audio message before it is forwarded: PCM by its duration,
        an encoded file by its bytes (it is decoded in the stage replica)."""
        kind = msg.WhichOneof("data")
        if kind == "pcm_f32le" and msg.sample_rate > 0:
            seconds = len(msg.pcm_f32le) / 4 / msg.sample_rate
            if seconds > self.limits.max_audio_seconds:
                raise ResourceExhausted(too_long_message(seconds, self.limits.max_audio_seconds))
        elif kind == "encoded" and len(msg.encoded) > self.limits.max_body_bytes:
            raise PayloadTooLarge(f"encoded audio is {len(msg.encoded)} bytes; the limit is "
                                  f"{self.limits.max_body_bytes} bytes")

    # ---- gRPC: talkinghead.v1.Avatar ------------------------------------------------------------
    @grpc_method
    async def Speak(self, request: avatar_pb2.SpeakRequest, grpc_context: Any = None):
        exc: BaseException | None = None
        try:
            self._grpc_auth(grpc_context)
            kind = request.WhichOneof("input")
            audio = None
            if kind == "audio":
                self._check_audio_size(request.audio)
                audio = await asyncio.to_thread(audio_from_proto, request.audio, self.limits.max_audio_seconds,
                                                ResourceExhausted)
            if request.fps and request.fps != 25:
                raise InvalidInput("fps: subjects render at their own rate (25); leave fps at 0")
            req = check_request(SpeakRequest(text=request.text if kind != "audio" else None, audio=audio,
                                             subject=request.subject, lang=request.lang, voice=request.voice or None,
                                             static_pose=request.static_pose,
                                             denoise=request.denoise if request.HasField("denoise") else None,
                                             frames_per_chunk=request.frames_per_chunk), self.limits)
            # aclosing: when the stream is closed at a `yield`, stop the render now, not when
            # the abandoned inner generator happens to be garbage-collected
            async with self._counted(self.slots.take()), aclosing(self._chunks(req, "grpc")) as chunks:
                async for c in chunks:
                    yield common_pb2.VideoChunk(index=c.index, data=c.data, is_init_segment=c.is_init,
                                                is_last=c.is_last, frames_so_far=c.frames_so_far,
                                                media_seconds_so_far=c.seconds_so_far, mime_type=MP4_MIME)
        except BaseException as e:
            exc = e
            raise
        finally:
            self._count("grpc", "Speak", exc)

    @grpc_method
    async def Converse(self, requests: Any, grpc_context: Any = None):
        """A live session over a bidirectional stream: open (→ opened), then speak (→ queued)
        and interrupt (→ interrupted), state and error events as they happen; the session
        ends with the client's side of the stream. A refused speak is an error event, not
        the end of the session."""
        exc: BaseException | None = None
        sid: str | None = None
        owner = ""
        tasks: list[asyncio.Task] = []
        try:
            owner = key_hash(self._grpc_auth(grpc_context))
            incoming = aiter(requests)
            first = await anext(incoming, None)
            if first is None or first.WhichOneof("action") != "open":
                raise InvalidInput("the first Converse message must be open (an SDP offer)")
            sid, answer = await self.live.create(first.open.offer_sdp, first.open.subject or "demo", owner)
            yield avatar_pb2.ConverseEvent(opened=avatar_pb2.ConverseOpened(session_id=sid, answer_sdp=answer))
            out: asyncio.Queue = asyncio.Queue()

            async def events() -> None:
                try:
                    async for ev in self.live.events(sid, owner):
                        await out.put(ev)
                finally:
                    await out.put(None)

            async def actions() -> None:
                try:
                    async for msg in incoming:
                        await out.put(await self._converse_action(sid, owner, msg))
                finally:
                    await out.put(None)  # the client closed its side: the session ends

            tasks = [asyncio.create_task(events()), asyncio.create_task(actions())]
            while (ev := await out.get()) is not None:
                proto = _converse_event(ev)
                if proto is not None:
                    yield proto
            for t in tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    raise t.exception()
        except BaseException as e:
            exc = e
            raise
        finally:
            for t in tasks:
                t.cancel()
            if sid is not None:
                try:
                    await self.live.end(sid, owner)
                except NotFound:  # it ended on its own (peer gone, timeout)
                    pass
            self._count("grpc", "Converse", exc)

    async def _converse_action(self, sid: str, owner: str, msg: Any) -> dict:
        """One Converse message after `open`, done: the event that answers it."""
        kind = msg.WhichOneof("action")
        try:
            if kind == "speak":
                sp = msg.speak
                audio = None
                if sp.WhichOneof("input") == "audio":
                    self._check_audio_size(sp.audio)
                    audio = await asyncio.to_thread(audio_from_proto, sp.audio, self.limits.max_audio_seconds,
                                                    ResourceExhausted)
                req = SpeakRequest(text=sp.text if audio is None else None, audio=audio, lang=sp.lang or "en",
                                   voice=sp.voice or None, denoise=sp.denoise if sp.HasField("denoise") else None)
                return {"type": "queued", **await self.live.speak(sid, req, owner)}
            if kind == "interrupt":
                return {"type": "interrupted", **await self.live.interrupt(sid, owner)}
            raise InvalidInput("after open, a Converse message is speak or interrupt")
        except TalkingHeadError as e:
            if isinstance(e, NotFound):
                raise  # the session is gone: so is the stream
            return {"type": "error", "utterance": None, "code": e.grpc_code.name, "error": e.message}

    @grpc_method
    async def ListSubjects(self, request: Any, grpc_context: Any = None) -> avatar_pb2.ListSubjectsResponse:
        self._grpc_auth(grpc_context)
        infos, degraded = await asyncio.to_thread(self._subject_infos)
        return avatar_pb2.ListSubjectsResponse(subjects=infos, degraded=degraded)

    @grpc_method
    async def GetSubject(self, request: avatar_pb2.GetSubjectRequest, grpc_context: Any = None):
        self._grpc_auth(grpc_context)
        return await asyncio.to_thread(self._subject_info, request.id)

    def _subject_info(self, subject_id: str) -> common_pb2.SubjectInfo:
        manifest = self.subjects.manifest(subject_id)
        return subject_info(manifest, SubjectBundle(manifest).digest)

    def _subject_infos(self) -> tuple[list[common_pb2.SubjectInfo], bool]:
        """Every subject's info and whether the listing is `degraded` (Redis down: the local
        subjects only). One bounded exchange with Redis, not one per subject."""
        listing = self.subjects.listing(manifests=True)
        return [subject_info(m, SubjectBundle(m).digest) for m in listing.manifests.values()], listing.degraded

    # ---- gRPC: grpc.health.v1.Health ----------------------------------------------------------
    async def Check(self, request: Any, grpc_context: Any = None) -> Any:
        from grpc_health.v1 import health_pb2

        # The process answers; the subject store being down degrades (uncached subjects fail)
        # but does not take the service out of rotation.
        known = {"", "talkinghead.v1.Avatar", "talkinghead.v1.Tts", "talkinghead.v1.Denoise",
                 "talkinghead.v1.Encoder", "talkinghead.v1.Renderer"}
        if request.service not in known:
            if grpc_context is not None:
                import grpc

                grpc_context.set_code(grpc.StatusCode.NOT_FOUND)
                grpc_context.set_details(f"unknown service {request.service!r}")
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    # ---- gRPC: per-stage services, forwarded to their deployments -----------------------------
    # The Avatar's limits apply here too, checked before forwarding.
    def _check_synthesize(self, request: Any) -> None:
        check_text(request.text, request.lang or "en", self.limits.max_text_chars, too_long=ResourceExhausted)

    @grpc_method
    async def Synthesize(self, request: Any, grpc_context: Any = None) -> Any:
        self._grpc_auth(grpc_context)
        self._check_synthesize(request)
        return await self.tts.Synthesize.remote(request)

    @grpc_method
    async def SynthesizeStream(self, request: Any, grpc_context: Any = None):
        self._grpc_auth(grpc_context)
        self._check_synthesize(request)
        async for r in self.tts.options(stream=True).SynthesizeStream.remote(request):
            yield r

    @grpc_method
    async def Enhance(self, request: Any, grpc_context: Any = None) -> Any:
        self._grpc_auth(grpc_context)
        self._check_audio_size(request.audio)
        return await self.denoise.Enhance.remote(request)

    @grpc_method
    async def Encode(self, request: Any, grpc_context: Any = None) -> Any:
        self._grpc_auth(grpc_context)
        self._check_audio_size(request.audio)
        return await self.encoder.options(multiplexed_model_id=request.subject or "demo").Encode.remote(request)

    @grpc_method
    async def ComputeMel(self, request: Any, grpc_context: Any = None) -> Any:
        self._grpc_auth(grpc_context)
        self._check_audio_size(request.audio)
        return await self.encoder.ComputeMel.remote(request)

    @grpc_method
    async def Render(self, request: Any, grpc_context: Any = None):
        self._grpc_auth(grpc_context)
        max_frames = int(self.limits.max_audio_seconds * _STAGE_FPS)
        if request.codes.n_frames > max_frames:
            raise ResourceExhausted(f"{request.codes.n_frames} frames to render; the limit is {max_frames} "
                                    f"({self.limits.max_audio_seconds:g} s at {_STAGE_FPS} fps)")
        lo, hi = FRAMES_PER_CHUNK_RANGE
        if request.frames_per_batch > hi:
            raise InvalidInput(f"frames_per_batch must be between {lo} and {hi} (or 0: the default)")
        handle = self.renderer.options(stream=True, multiplexed_model_id=request.subject or "demo")
        async for r in handle.Render.remote(request):
            yield r

    # ---- HTTP -------------------------------------------------------------------------------------
    def _http_auth(self, request: Request) -> str:
        """The owner of what this request creates or reads: a hash of its key ("" with keys off)."""
        return key_hash(self.keys.check(request.headers.get("authorization")))

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused past max_body_bytes: by Content-Length first, then while reading."""
        cap = self.limits.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise InvalidInput("bad Content-Length")
            if int(length) > cap:
                raise PayloadTooLarge(f"the body is {int(length)} bytes; the limit is {cap} bytes")
        parts, size = [], 0
        async for part in request.stream():
            size += len(part)
            if size > cap:
                raise PayloadTooLarge(f"the body is over the limit of {cap} bytes")
            parts.append(part)
        return b"".join(parts)

    async def _http_speak_request(self, request: Request, extra_fields: tuple[str, ...] = JOB_FIELDS,
                                  speak_fields: tuple[str, ...] = SPEAK_FIELDS) -> tuple[CheckedRequest, dict]:
        body = _json_object(await self._read_body(request), speak_fields + extra_fields)
        fields = {k: v for k, v in body.items() if k in speak_fields and v is not None}  # null: the default
        if "audio" in fields:
            if not isinstance(fields["audio"], str):
                raise InvalidInput("audio must be a base64-encoded audio file (a string)")
            try:
                data = base64.b64decode(fields["audio"], validate=True)
            except ValueError as exc:
                raise InvalidInput("audio must be a base64-encoded audio file") from exc
            fields["audio"] = await asyncio.to_thread(load_audio, data, self.limits.max_audio_seconds,
                                                      ResourceExhausted)
        return check_request(SpeakRequest(**fields), self.limits), body

    async def _render_all(self, req: CheckedRequest, api_name: str) -> tuple[bytes, dict]:
        parts: list[bytes] = []
        last: Chunk | None = None
        async with aclosing(self._chunks(req, api_name)) as chunks:
            async for c in chunks:
                parts.append(c.data)
                last = c
        meta = {"frames": last.frames_so_far if last else 0, "seconds": round(last.seconds_so_far, 3) if last else 0}
        return b"".join(parts), meta

    async def _render_job(self, req: CheckedRequest) -> tuple[bytes, dict]:
        """A job's render (the job queue holds its stream slot)."""
        self.metrics.in_flight.inc()
        try:
            return await self._render_all(req, "http-async")
        finally:
            self.metrics.in_flight.dec()

    @api.post("/v1/videos")
    @_answered(count="POST /v1/videos")
    async def create_video(self, request: Request) -> Response:
        owner = self._http_auth(request)
        req, body = await self._http_speak_request(request)
        run_async = body.get("async", False)
        if not isinstance(run_async, bool):
            raise InvalidInput("async must be true or false")
        webhook = body.get("webhook")
        if webhook is not None and not run_async:
            raise InvalidInput("webhook needs \"async\": true")
        if run_async:
            if webhook is not None:
                self.webhook_policy.check_url(webhook)
            job = await self.jobs.submit(req, owner, webhook)
            return JSONResponse({**job, "url": f"/v1/videos/{job['id']}"}, status_code=202)
        async with self._counted(self.slots.take()):
            video, meta = await self._render_all(req, "http")
        return Response(video, media_type="video/mp4",
                        headers={"X-Frames": str(meta["frames"]), "X-Media-Seconds": str(meta["seconds"])})

    @api.post("/v1/streams")
    async def create_stream(self, request: Request) -> Response:
        """The fMP4 chunks of one request as one chunked `video/mp4` body, each sent as soon as
        it exists (the page plays it with Media Source Extensions). Errors before the first
        chunk are answered as usual; a failure later ends the body early."""
        stack = AsyncExitStack()
        try:
            self._http_auth(request)
            req, _ = await self._http_speak_request(request, extra_fields=())
            await stack.enter_async_context(self._counted(self.slots.take()))
            chunks = await stack.enter_async_context(aclosing(self._chunks(req, "http-stream")))
            first = await anext(chunks)
        except BaseException as e:
            await stack.aclose()
            self._count("http", "POST /v1/streams", e)
            return _error_response(e)

        async def body() -> AsyncIterator[bytes]:
            exc: BaseException | None = None
            try:
                yield first.data
                async for c in chunks:
                    yield c.data
            except BaseException as e:
                exc = e
                if not isinstance(e, (GeneratorExit, asyncio.CancelledError)):
                    report(e, "HTTP stream")
                raise
            finally:
                await stack.aclose()
                self._count("http", "POST /v1/streams",
                            Cancelled("the client went away") if isinstance(exc, GeneratorExit) else exc)

        return StreamingResponse(body(), media_type="video/mp4")

    # ---- live sessions (WebRTC): services/gateway/live ------------------------------------------
    @api.post("/v1/sessions")
    @_answered(count="POST /v1/sessions")
    async def create_session(self, request: Request) -> Response:
        """An SDP offer in, the answer and a session id out. JSON `{"type": "offer", "sdp",
        "subject"}` → 201 `{"id", "type": "answer", "sdp", "url"}`; or WHIP-style, the offer
        as the body (`Content-Type: application/sdp`, subject in `?subject=`) → 201 with the
        answer as the body and the session's URL in `Location`."""
        owner = self._http_auth(request)
        raw = await self._read_body(request)
        whip = request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/sdp"
        if whip:
            offer, subject = raw.decode("utf-8", "replace"), request.query_params.get("subject", "demo")
        else:
            body = _json_object(raw, SESSION_FIELDS)
            if body.get("type", "offer") != "offer":
                raise InvalidInput('type must be "offer"')
            offer, subject = body.get("sdp"), body.get("subject") or "demo"
        sid, answer = await self.live.create(offer, subject, owner)
        url = f"/v1/sessions/{sid}"
        if whip:
            return Response(answer, status_code=201, media_type="application/sdp", headers={"Location": url})
        return JSONResponse({"id": sid, "type": "answer", "sdp": answer, "url": url}, status_code=201,
                            headers={"Location": url})

    @api.post("/v1/sessions/{session_id}/speak")
    @_answered(count="POST /v1/sessions/{id}/speak")
    async def session_speak(self, session_id: str, request: Request) -> Response:
        """Queue speech (`{"text"}` or `{"audio": base64}`, with lang, voice, denoise, seed) → 202."""
        owner = self._http_auth(request)
        req, _ = await self._http_speak_request(request, extra_fields=(), speak_fields=SESSION_SPEAK_FIELDS)
        return JSONResponse(await self.live.speak(session_id, req, owner), status_code=202)

    @api.post("/v1/sessions/{session_id}/interrupt")
    @_answered(count="POST /v1/sessions/{id}/interrupt")
    async def session_interrupt(self, session_id: str, request: Request) -> Response:
        """Barge-in: stop the current utterance, drop the queued ones; the next frame is idle."""
        owner = self._http_auth(request)
        return JSONResponse(await self.live.interrupt(session_id, owner))

    @api.get("/v1/sessions/{session_id}")
    @_answered()
    async def session_status(self, session_id: str, request: Request) -> Response:
        owner = self._http_auth(request)
        return JSONResponse(await self.live.info(session_id, owner))

    @api.delete("/v1/sessions/{session_id}")
    @_answered(count="DELETE /v1/sessions/{id}")
    async def delete_session(self, session_id: str, request: Request) -> Response:
        owner = self._http_auth(request)
        await self.live.end(session_id, owner)
        return Response(status_code=204)

    @api.get("/", include_in_schema=False)
    async def page(self) -> Response:
        return HTMLResponse(page_html())

    @api.get("/v1/videos/{job_id}")
    @_answered()
    async def video_status(self, job_id: str, request: Request) -> Response:
        owner = self._http_auth(request)
        return JSONResponse(await asyncio.to_thread(self.jobs.store.get, job_id, owner))

    @api.get("/v1/videos/{job_id}/content")
    @_answered()
    async def video_content(self, job_id: str, request: Request) -> Response:
        owner = self._http_auth(request)
        return Response(await asyncio.to_thread(self.jobs.store.video, job_id, owner), media_type="video/mp4")

    @api.get("/v1/subjects")
    @_answered()
    async def list_subjects(self, request: Request) -> Response:
        from google.protobuf.json_format import MessageToDict

        self._http_auth(request)
        infos, degraded = await asyncio.to_thread(self._subject_infos)
        return JSONResponse({"subjects": [MessageToDict(i, preserving_proto_field_name=True) for i in infos],
                             "degraded": degraded})

    @api.get("/healthz")
    async def healthz(self) -> Response:
        store = await asyncio.to_thread(self.subjects.healthy)
        return JSONResponse({"status": "ok" if store else "degraded", "subject_store": "ok" if store else "down",
                             "streams_in_flight": self.slots.active, "jobs_queued": self.jobs.queued})

    @api.get("/metrics")
    async def metrics_text(self) -> Response:
        body, content_type = self.metrics.exposition()
        try:
            body += await asyncio.wait_for(self.live.exposition(), 5)
        except Exception as exc:  # noqa: BLE001 - the rest of the metrics still answer
            log.warning("live session metrics unavailable: %s", exc)
        return Response(body, media_type=content_type.split(";")[0], headers={"Content-Type": content_type})

    # ---- API docs: only while API keys are off (they describe every route to anyone) ------------
    def _docs_off(self) -> Response | None:
        return JSONResponse({"error": "not found"}, status_code=404) if self.keys.enabled else None

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi_json(self) -> Response:
        return self._docs_off() or JSONResponse(api.openapi())

    @api.get("/docs", include_in_schema=False)
    async def swagger_docs(self) -> Response:
        return self._docs_off() or get_swagger_ui_html(openapi_url="/openapi.json", title="talking-head")

    @api.get("/redoc", include_in_schema=False)
    async def redoc_docs(self) -> Response:
        return self._docs_off() or get_redoc_html(openapi_url="/openapi.json", title="talking-head")


def build_app(args: dict | None = None) -> Any:
    """Serve config `import_path: services.gateway.app:build_app`; `args` (all optional):
    redis_url (default $TALKING_HEAD_REDIS_URL), api_keys (default $TALKING_HEAD_API_KEYS,
    comma-separated), limits (`Limits`: max_text_chars, max_audio_seconds, max_streams,
    max_request_seconds, frames_per_chunk, max_body_bytes, max_queued_jobs, job_ttl_seconds,
    max_sessions, session_idle_seconds, max_session_seconds),
    webhooks (`WebhookPolicy`: allow_hosts, allow_http, secret (default
    $TALKING_HEAD_WEBHOOK_SECRET), timeout_s, retries, backoff_s, workers, max_pending),
    live (`ice_servers`: STUN/TURN servers for the sessions' peers, `[{urls, username,
    credential}]`), device (renderer: cuda|cpu, default auto), render_threads (the renderer's
    intra-op threads; 0, the default: as many as its replica's num_cpus)."""
    from services.denoise.deployment import DenoiseDeployment
    from services.encoder.deployment import EncoderDeployment
    from services.renderer.deployment import RendererDeployment
    from services.tts.deployment import TtsDeployment

    args = dict(args or {})
    redis_url = args.get("redis_url")
    limits = dict(args.get("limits") or {})
    webhooks = dict(args.get("webhooks") or {})
    frames_per_batch = Limits.from_dict(limits).frames_per_chunk  # a bad config fails here, before deploying
    WebhookPolicy.from_dict(webhooks)
    live = dict(args.get("live") or {})
    unknown = sorted(set(live) - {"ice_servers"})
    if unknown:
        raise InvalidInput(f"unknown live setting(s) {', '.join(unknown)}: the settings are ice_servers")
    check_ice_servers(live.get("ice_servers"))
    render_threads = args.get("render_threads", 0)
    if not isinstance(render_threads, int) or isinstance(render_threads, bool) or render_threads < 0:
        raise InvalidInput(f"render_threads must be a whole number ≥ 0, got {render_threads!r}")
    return Avatar.bind(TtsDeployment.bind(), DenoiseDeployment.bind(), EncoderDeployment.bind(redis_url),
                       RendererDeployment.bind(redis_url, args.get("device"), frames_per_batch, render_threads),
                       redis_url=redis_url, api_keys=args.get("api_keys"), limits=limits, webhooks=webhooks,
                       live=live)
