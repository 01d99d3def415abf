"""Prometheus metrics of the Avatar ingress (served on HTTP /metrics), named by Prometheus
conventions: base units (seconds), `_total` counters, one metric per quantity with labels.

Each ingress replica exposes its own view; replicas of the stage deployments also export
`talking_head_renderer_*` through Ray's metrics agent (ray.serve.metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GatewayMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.stage_seconds = Histogram("talking_head_stage_duration_seconds",
                                       "Time one request spent in each pipeline stage.", ["stage"],
                                       buckets=_LATENCY, registry=r)
        self.first_chunk_seconds = Histogram("talking_head_time_to_first_chunk_seconds",
                                             "Request start to the first media chunk.", buckets=_LATENCY, registry=r)
        self.request_seconds = Histogram("talking_head_request_duration_seconds", "Whole-request time.",
                                         ["api"], buckets=_LATENCY, registry=r)
        self.frames = Counter("talking_head_frames_rendered", "Video frames delivered.", registry=r)
        self.video_seconds = Counter("talking_head_video_rendered_seconds", "Seconds of video delivered.", registry=r)
        self.real_time_factor = Histogram("talking_head_real_time_factor",
                                          "Wall-clock seconds per second of video, per request.",
                                          buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64), registry=r)
        self.cache = Counter("talking_head_subject_cache_lookups", "Renderer subject lookups by result.",
                             ["result"], registry=r)
        self.subject_loads = Counter("talking_head_subject_loads", "Subject bundles loaded into a renderer.",
                                     registry=r)
        self.subject_load_seconds = Histogram("talking_head_subject_load_duration_seconds",
                                              "Time to load a subject into a renderer replica.",
                                              buckets=_LATENCY, registry=r)
        self.in_flight = Gauge("talking_head_streams_in_flight", "Speak streams and video jobs running now.",
                               registry=r)
        self.requests = Counter("talking_head_requests", "Finished requests by API, method and status code.",
                                ["api", "method", "code"], registry=r)
        for result in ("hit", "miss"):
            self.cache.labels(result)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def record_subject(self, info: dict) -> None:
        self.cache.labels(info.get("cache", "miss")).inc()
        if info.get("cache") == "miss":
            self.subject_loads.inc()
            self.subject_load_seconds.observe(float(info.get("load_seconds", 0.0)))

    def record_result(self, result, wall_seconds: float, api: str) -> None:
        for stage, secs in result.times.as_dict().items():
            if stage != "first_chunk":
                self.stage_seconds.labels(stage).observe(secs)
        if result.times.first_chunk is not None:
            self.first_chunk_seconds.observe(result.times.first_chunk)
        self.request_seconds.labels(api).observe(wall_seconds)
        self.frames.inc(result.frames)
        self.video_seconds.inc(result.seconds)
        if result.seconds > 0:
            self.real_time_factor.observe(wall_seconds / result.seconds)


class LiveMetrics:
    """Metrics of live sessions, observed per utterance (first frame, render rate) or per
    session at its end. Their own registry: under Ray Serve the sessions run in the replica's
    live host actor, whose exposition the Avatar's /metrics appends to its own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.sessions = Gauge("talking_head_live_sessions", "Live (WebRTC) sessions open now.", registry=r)
        self.ended = Counter("talking_head_live_sessions_ended", "Live sessions ended, by reason.", ["reason"],
                                  registry=r)
        self.first_frame_seconds = Histogram(
            "talking_head_live_first_speaking_frame_seconds",
            "A speak request to its first frame on the session's timeline.", buckets=_LATENCY, registry=r)
        self.render_fps = Histogram("talking_head_live_render_fps",
                                         "Frames per second an utterance rendered at (below the video rate: held "
                                         "frames).", buckets=(1, 2.5, 5, 10, 15, 20, 25, 30, 50, 100), registry=r)
        self.sent_fps = Histogram("talking_head_live_sent_fps", "Video frames per second a session sent.",
                                       buckets=(1, 2.5, 5, 10, 15, 20, 24, 25, 26, 30), registry=r)
        self.av_offset_seconds = Histogram(
            "talking_head_live_av_offset_seconds",
            "Largest gap per session between sending a slot's video frame and its first audio.",
            buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 1), registry=r)
        self.dropped_frames = Counter("talking_head_live_dropped_frames",
                                           "Video frames skipped because the video track fell behind the audio.",
                                           registry=r)
        self.held_frames = Counter("talking_head_live_held_frames",
                                        "Slots mid-utterance that repeated the last frame over silence (rendering "
                                        "slower than real time).", registry=r)
        for reason in ("deleted", "peer_gone", "idle_timeout", "max_length", "shutdown"):
            self.ended.labels(reason)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
