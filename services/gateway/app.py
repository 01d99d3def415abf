"""The Ray Serve application: the `Avatar` ingress composing the stage deployments.

One application, one ingress (Ray's gRPC proxy routes to an application's ingress by method
name), so clients need no `application` metadata:
- gRPC (:9000): talkinghead.v1 Avatar (Speak, ListSubjects, GetSubject), the per-stage
  services (Tts, Denoise, Encoder, Renderer — forwarded to their own deployments, which
  scale alone) and grpc.health.v1.Health/Check.
- HTTP (:8000): POST /v1/videos, GET /v1/videos/{id}[/content], GET /v1/subjects,
  /healthz, /metrics.
`Speak` runs the shared `Pipeline` over `RemoteStages` (the deployments) into a fMP4 sink:
sentence-level pipelining (TTS streams sentence k+1 while sentence k renders), fMP4
chunks as soon as a frame batch exists, cancellation within one frame batch.
"""

import asyncio
import base64
import concurrent.futures
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray import serve

from services.common.errors import (Cancelled, DeadlineExceeded, InvalidInput, NotFound, ResourceExhausted,
                                    TalkingHeadError, Unauthenticated)
from services.common.rpc import as_project_error, grpc_method, status_of
from services.common.subject_source import SubjectSource
from services.common.types import AudioClip, Speech
from services.common.wire import MP4_MIME, audio_from_proto, subject_info
from services.gateway.metrics import GatewayMetrics
from services.gateway.pipeline import Pipeline
from services.gateway.request import CheckedRequest, Limits, SpeakRequest, check_request
from services.gateway.sinks import Chunk, FragmentedMp4Sink
from services.gateway.stages import SubjectInfo
from services.protos.talkinghead.v1 import avatar_pb2, common_pb2


def api_keys_from_env() -> set[str]:
    return {k.strip() for k in os.environ.get("TALKING_HEAD_API_KEYS", "").split(",") if k.strip()}


# NB: no `from __future__ import annotations` here: FastAPI must see the real `Request` type.

# ---- the stages as deployment handles ------------------------------------------------------
class RemoteStages:
    """The pipeline's `Stages` answered by the Tts, Denoise, Encoder and Renderer deployments
    (called from worker threads). Each stage replica fetches a subject's bundle once and keeps
    it (Serve multiplexing); this ingress fetches none."""

    def __init__(self, tts: Any, denoise: Any, encoder: Any, renderer: Any, metrics: GatewayMetrics) -> None:
        self._tts, self._denoise, self._encoder, self._renderer = tts, denoise, encoder, renderer
        self._metrics = metrics

    def sentences(self, text: str, lang: str, voice: str | None) -> Iterator[Speech]:
        gen = self._tts.options(stream=True).sentences.remote(text, lang, voice)
        try:
            yield from gen  # the TTS replica runs ahead: sentence k+1 is made while k renders
        finally:
            gen.cancel()

    def enhance(self, clip16k: AudioClip) -> AudioClip:
        return self._denoise.enhance.remote(clip16k).result()

    def subject(self, subject_id: str) -> SubjectInfo:
        info = self._renderer.options(multiplexed_model_id=subject_id).prepare.remote().result()
        self._metrics.record_subject(info)
        return SubjectInfo(info["id"], float(info["fps"]), tuple(info["size"]), info["digest"])

    def encode(self, subject: SubjectInfo, clip16k: AudioClip, lang: str) -> np.ndarray:
        return self._encoder.options(multiplexed_model_id=subject.id).encode.remote(
            clip16k, subject.fps, lang).result()

    def render(self, subject: SubjectInfo, codes: np.ndarray, static_pose: bool, seed: int, start: int,
               frames_per_batch: int, exact: bool = False) -> Iterator[np.ndarray]:
        gen = self._renderer.options(multiplexed_model_id=subject.id, stream=True).render.remote(
            codes, static_pose, seed, start, frames_per_batch, exact)
        try:
            yield from gen
        finally:
            gen.cancel()  # no-op when finished; stops the renderer when we stop early


# ---- async jobs -------------------------------------------------------------------------------
class JobStore:
    """Video jobs: in Redis when configured (any ingress replica can answer), else in memory."""

    TTL_S = 3600

    def __init__(self, redis_url: str) -> None:
        self._mem: dict[str, dict] = {}
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    def _call(self, fn, *args):
        import redis

        try:
            return fn(*args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            from services.common.errors import Unavailable

            raise Unavailable(f"job store is unreachable: {exc}") from exc

    def put(self, job_id: str, status: dict, video: bytes | None = None) -> None:
        import json

        if self._redis is None:
            self._mem[job_id] = {**status, "_video": video if video is not None else self._mem.get(job_id, {}).get("_video")}
            return
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(f"th:job:{job_id}", json.dumps(status), ex=self.TTL_S)
        if video is not None:
            pipe.set(f"th:job:{job_id}:mp4", video, ex=self.TTL_S)
        self._call(pipe.execute)

    def get(self, job_id: str) -> dict:
        import json

        if self._redis is None:
            if job_id not in self._mem:
                raise NotFound(f"unknown video job {job_id!r}")
            return {k: v for k, v in self._mem[job_id].items() if k != "_video"}
        raw = self._call(self._redis.get, f"th:job:{job_id}")
        if raw is None:
            raise NotFound(f"unknown video job {job_id!r}")
        return json.loads(raw)

    def video(self, job_id: str) -> bytes:
        if self._redis is None:
            data = self._mem.get(job_id, {}).get("_video")
        else:
            data = self._call(self._redis.get, f"th:job:{job_id}:mp4")
        if data is None:
            raise NotFound(f"video job {job_id!r} has no video (yet)")
        return data


def _error_response(exc: BaseException) -> Response:
    _, http, message = status_of(exc)
    if http >= 500 and as_project_error(exc) is None:
        import logging

        logging.getLogger("ray.serve").exception("request failed")
    return JSONResponse({"error": message}, status_code=http)


def _post_json(url: str, payload: dict) -> None:
    """Best-effort webhook: one POST, 5 s timeout; failures are logged, never raised."""
    import json
    import logging
    import urllib.request

    try:
        req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).close()
    except Exception as exc:  # noqa: BLE001
        logging.getLogger("ray.serve").warning("webhook %s failed: %s", url, exc)


api = FastAPI(title="talking-head", description="Text or audio in, a talking-head mp4 out.")


@serve.deployment(name="Avatar")
@serve.ingress(api)
class Avatar:
    def __init__(self, tts: Any, denoise: Any, encoder: Any, renderer: Any, redis_url: str | None = None,
                 api_keys: list[str] | None = None, limits: dict | None = None) -> None:
        redis_url = redis_url if redis_url is not None else os.environ.get("TALKING_HEAD_REDIS_URL", "")
        self.tts, self.denoise, self.encoder, self.renderer = tts, denoise, encoder, renderer
        self.limits = Limits.from_dict(limits)
        self.api_keys = set(api_keys) if api_keys else api_keys_from_env()
        self.metrics = GatewayMetrics()
        self.pipeline = Pipeline(RemoteStages(tts, denoise, encoder, renderer, self.metrics), limits=self.limits)
        self.subjects = SubjectSource(redis_url)
        self.jobs = JobStore(redis_url)
        self._active = 0
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.limits.max_streams + 2,
                                                           thread_name_prefix="speak")
        self._tasks: set[asyncio.Task] = set()

    # ---- shared request handling ------------------------------------------------------------
    def _check_key(self, key: str | None) -> None:
        if self.api_keys and key not in self.api_keys:
            raise Unauthenticated("missing or invalid API key" if key else "an API key is required")

    def _grpc_auth(self, grpc_context: Any) -> None:
        if not self.api_keys:
            return
        meta = dict(grpc_context.invocation_metadata()) if grpc_context is not None else {}
        value = meta.get("authorization", "")
        self._check_key(value[7:].strip() if value.lower().startswith("bearer ") else value.strip() or None)

    @asynccontextmanager
    async def _slot(self):
        with self._lock:
            if self._active >= self.limits.max_streams:
                raise ResourceExhausted(f"this replica is serving its limit of {self.limits.max_streams} streams; "
                                        "retry later")
            self._active += 1
        self.metrics.in_flight.inc()
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
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

    # ---- gRPC: talkinghead.v1.Avatar ------------------------------------------------------------
    @grpc_method
    async def Speak(self, request: avatar_pb2.SpeakRequest, grpc_context: Any = None):
        exc: BaseException | None = None
        try:
            self._grpc_auth(grpc_context)
            kind = request.WhichOneof("input")
            audio = audio_from_proto(request.audio, self.limits.max_audio_seconds + 1) if kind == "audio" else None
            if request.fps and request.fps != 25:
                raise InvalidInput("fps: subjects render at their own rate (25); leave fps at 0")
            req = check_request(SpeakRequest(text=request.text if kind != "audio" else None, audio=audio,
                                             subject=request.subject, lang=request.lang, voice=request.voice or None,
                                             static_pose=request.static_pose,
                                             denoise=request.denoise if request.HasField("denoise") else None,
                                             frames_per_chunk=request.frames_per_chunk), self.limits)
            # aclosing: when the stream is closed at a `yield`, stop the render now, not when
            # the abandoned inner generator happens to be garbage-collected
            async with self._slot(), aclosing(self._chunks(req, "grpc")) as chunks:
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
    async def ListSubjects(self, request: Any, grpc_context: Any = None) -> avatar_pb2.ListSubjectsResponse:
        self._grpc_auth(grpc_context)
        infos = await asyncio.to_thread(self._subject_infos)
        return avatar_pb2.ListSubjectsResponse(subjects=infos)

    @grpc_method
    async def GetSubject(self, request: avatar_pb2.GetSubjectRequest, grpc_context: Any = None):
        self._grpc_auth(grpc_context)
        return await asyncio.to_thread(self._subject_info, request.id)

    def _subject_info(self, subject_id: str) -> common_pb2.SubjectInfo:
        from services.common.bundle import SubjectBundle

        manifest = self.subjects.manifest(subject_id)
        return subject_info(manifest, SubjectBundle(manifest).digest)

    def _subject_infos(self) -> list[common_pb2.SubjectInfo]:
        return [self._subject_info(i) for i in self.subjects.ids()]

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
    @grpc_method
    async def Synthesize(self, request: Any, grpc_context: Any = None) -> Any:
        self._grpc_auth(grpc_context)
        return await self.tts.Synthesize.remote(request)

    @grpc_method
    async def SynthesizeStream(self, request: Any, grpc_context: Any = None):
        self._grpc_auth(grpc_context)
        async for r in self.tts.options(stream=True).SynthesizeStream.remote(request):
            yield r

    @grpc_method
    async def Enhance(self, request: Any, grpc_context: Any = None) -> Any:
        self._grpc_auth(grpc_context)
        return await self.denoise.Enhance.remote(request)

    @grpc_method
    async def Encode(self, request: Any, grpc_context: Any = None) -> Any:
        self._grpc_auth(grpc_context)
        return await self.encoder.options(multiplexed_model_id=request.subject or "demo").Encode.remote(request)

    @grpc_method
    async def ComputeMel(self, request: Any, grpc_context: Any = None) -> Any:
        self._grpc_auth(grpc_context)
        return await self.encoder.ComputeMel.remote(request)

    @grpc_method
    async def Render(self, request: Any, grpc_context: Any = None):
        self._grpc_auth(grpc_context)
        handle = self.renderer.options(stream=True, multiplexed_model_id=request.subject or "demo")
        async for r in handle.Render.remote(request):
            yield r

    # ---- HTTP -------------------------------------------------------------------------------------
    def _http_auth(self, request: Request) -> None:
        if not self.api_keys:
            return
        value = request.headers.get("authorization", "")
        self._check_key(value[7:].strip() if value.lower().startswith("bearer ") else None)

    async def _http_speak_request(self, request: Request) -> tuple[CheckedRequest, dict]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise InvalidInput("the body must be JSON") from exc
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object")
        audio = None
        if body.get("audio") is not None:
            from services.common.audio import load_audio

            try:
                raw = base64.b64decode(body["audio"], validate=True)
            except (ValueError, TypeError) as exc:
                raise InvalidInput("audio must be a base64-encoded audio file") from exc
            audio = await asyncio.to_thread(load_audio, raw, self.limits.max_audio_seconds + 1)
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise InvalidInput("text must be a string")
        req = check_request(SpeakRequest(text=text, audio=audio, subject=str(body.get("subject") or "demo"),
                                         lang=str(body.get("lang") or "en"), voice=body.get("voice") or None,
                                         static_pose=bool(body.get("static_pose", False)), denoise=body.get("denoise"),
                                         frames_per_chunk=int(body.get("frames_per_chunk") or 0),
                                         seed=int(body.get("seed") or 0)), self.limits)
        return req, body

    async def _render_all(self, req: CheckedRequest, api_name: str) -> tuple[bytes, dict]:
        parts: list[bytes] = []
        last: Chunk | None = None
        async with self._slot(), aclosing(self._chunks(req, api_name)) as chunks:
            async for c in chunks:
                parts.append(c.data)
                last = c
        meta = {"frames": last.frames_so_far if last else 0, "seconds": round(last.seconds_so_far, 3) if last else 0}
        return b"".join(parts), meta

    @api.post("/v1/videos")
    async def create_video(self, request: Request) -> Response:
        exc: BaseException | None = None
        try:
            self._http_auth(request)
            req, body = await self._http_speak_request(request)
            if body.get("async"):
                job_id = uuid.uuid4().hex
                webhook = body.get("webhook")
                if webhook is not None and not (isinstance(webhook, str) and webhook.startswith(("http://", "https://"))):
                    raise InvalidInput("webhook must be an http(s) URL")
                await asyncio.to_thread(self.jobs.put, job_id, {"id": job_id, "status": "queued"})
                task = asyncio.create_task(self._job(job_id, req, webhook))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return JSONResponse({"id": job_id, "status": "queued", "url": f"/v1/videos/{job_id}"}, status_code=202)
            video, meta = await self._render_all(req, "http")
            return Response(video, media_type="video/mp4",
                            headers={"X-Frames": str(meta["frames"]), "X-Media-Seconds": str(meta["seconds"])})
        except BaseException as e:
            exc = e
            return _error_response(e)
        finally:
            self._count("http", "POST /v1/videos", exc)

    async def _job(self, job_id: str, req: CheckedRequest, webhook: str | None) -> None:
        status: dict[str, Any] = {"id": job_id, "status": "running"}
        try:
            await asyncio.to_thread(self.jobs.put, job_id, status)
            video, meta = await self._render_all(req, "http-async")
            status = {"id": job_id, "status": "done", **meta, "content_url": f"/v1/videos/{job_id}/content"}
            await asyncio.to_thread(self.jobs.put, job_id, status, video)
        except Exception as exc:  # noqa: BLE001 - recorded in the job
            code, http, message = status_of(exc)
            status = {"id": job_id, "status": "failed", "error": message, "code": code.name, "http_status": http}
            try:
                await asyncio.to_thread(self.jobs.put, job_id, status)
            except TalkingHeadError:
                pass
        if webhook:
            await asyncio.to_thread(_post_json, webhook, status)

    @api.get("/v1/videos/{job_id}")
    async def video_status(self, job_id: str, request: Request) -> Response:
        try:
            self._http_auth(request)
            return JSONResponse(await asyncio.to_thread(self.jobs.get, job_id))
        except BaseException as e:
            return _error_response(e)

    @api.get("/v1/videos/{job_id}/content")
    async def video_content(self, job_id: str, request: Request) -> Response:
        try:
            self._http_auth(request)
            return Response(await asyncio.to_thread(self.jobs.video, job_id), media_type="video/mp4")
        except BaseException as e:
            return _error_response(e)

    @api.get("/v1/subjects")
    async def list_subjects(self, request: Request) -> Response:
        from google.protobuf.json_format import MessageToDict

        try:
            self._http_auth(request)
            infos = await asyncio.to_thread(self._subject_infos)
            return JSONResponse({"subjects": [MessageToDict(i, preserving_proto_field_name=True) for i in infos]})
        except BaseException as e:
            return _error_response(e)

    @api.get("/healthz")
    async def healthz(self) -> Response:
        store = await asyncio.to_thread(self.subjects.healthy)
        return JSONResponse({"status": "ok" if store else "degraded", "subject_store": "ok" if store else "down",
                             "streams_in_flight": self._active})

    @api.get("/metrics")
    async def metrics_text(self) -> Response:
        body, content_type = self.metrics.exposition()
        return Response(body, media_type=content_type.split(";")[0], headers={"Content-Type": content_type})


def build_app(args: dict | None = None) -> Any:
    """Serve config `import_path: services.gateway.app:build_app`; `args` (all optional):
    redis_url (default $TALKING_HEAD_REDIS_URL), api_keys (default $TALKING_HEAD_API_KEYS,
    comma-separated), limits ({max_text_chars, max_audio_seconds, max_streams,
    max_request_seconds, frames_per_chunk}), device (renderer: cuda|cpu, default auto)."""
    from services.denoise.deployment import DenoiseDeployment
    from services.encoder.deployment import EncoderDeployment
    from services.renderer.deployment import RendererDeployment
    from services.tts.deployment import TtsDeployment

    args = dict(args or {})
    redis_url = args.get("redis_url")
    limits = dict(args.get("limits") or {})
    frames_per_batch = Limits.from_dict(limits).frames_per_chunk  # a bad config fails here, before deploying
    return Avatar.bind(TtsDeployment.bind(), DenoiseDeployment.bind(), EncoderDeployment.bind(redis_url),
                       RendererDeployment.bind(redis_url, args.get("device"), frames_per_batch),
                       redis_url=redis_url, api_keys=args.get("api_keys"), limits=limits)
