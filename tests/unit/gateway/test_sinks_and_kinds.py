"""Frame sinks, and subjects opened by the kind their manifest names."""

from collections.abc import Iterator

import numpy as np
import pytest

from services.common.bundle import SubjectBundle
from services.common.errors import IntegrityError
from services.common.subject_store import LocalSubjectStore
from services.common.video import VideoSpec, probe_mp4
from services.gateway.sinks import FragmentedMp4Sink, Mp4FileSink


def _frames(n: int, h: int = 32, w: int = 48) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 255, (n, h, w, 3), dtype=np.uint8)


def _write(sink, batches: int = 3, per: int = 5) -> None:
    spec = VideoSpec(width=48, height=32, fps=25, sample_rate=16000)
    sink.open(spec)
    for _ in range(batches):
        sink.write(_frames(per), np.zeros(per * 16000 // 25, np.float32))


def test_file_sink_writes_a_playable_mp4(tmp_path):
    sink = Mp4FileSink(tmp_path / "a.mp4")
    _write(sink)
    sink.close(complete=True)
    info = probe_mp4(tmp_path / "a.mp4")
    assert info.n_frames == 15 and (info.width, info.height) == (48, 32)
    assert sink.first_media_at is None


def test_fragmented_sink_hands_on_chunks_that_form_one_mp4():
    chunks = []
    sink = FragmentedMp4Sink(chunks.append)
    _write(sink)
    assert sink.first_media_at is not None and not chunks[-1].is_last
    sink.close(complete=True)
    assert chunks[0].is_init and chunks[-1].is_last and [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].frames_so_far == 15 and chunks[-1].seconds_so_far == pytest.approx(0.6)
    assert probe_mp4(b"".join(c.data for c in chunks)).n_frames == 15


def test_an_aborted_fragmented_stream_has_no_last_chunk():
    chunks = []
    sink = FragmentedMp4Sink(chunks.append)
    _write(sink, batches=1)
    sink.close(complete=False)
    assert chunks and not any(c.is_last for c in chunks)


@pytest.fixture(scope="module")
def demo() -> SubjectBundle:
    return LocalSubjectStore().load("demo")


def _with_kind(bundle: SubjectBundle, kind: str) -> SubjectBundle:
    return SubjectBundle({**bundle.manifest, "kind": kind}, bundle.blobs).verify()


def test_open_subject_reads_the_manifest_kind(demo):
    from services.encoder.model import AudioEncoder
    from services.gateway.subjects import open_subject
    from services.renderer.service import SubjectRenderer

    s = open_subject(demo)
    assert demo.kind == "triplane-nerf"  # bundles that name no kind
    assert isinstance(s.audio_encoder, AudioEncoder) and isinstance(s.renderer, SubjectRenderer)
    assert s.id == "demo" and s.digest == demo.digest
    with pytest.raises(IntegrityError, match="renderer kind 'gaussian-splats'"):
        open_subject(_with_kind(demo, "gaussian-splats"))


class FlatRenderer:
    """A second renderer kind for the test: each frame is one grey level driven by the codes."""

    def __init__(self, bundle: SubjectBundle, device: object = "cpu") -> None:
        self.id, self.digest, self.manifest = bundle.id, bundle.digest, bundle.manifest
        self.fps = float(bundle.manifest["fps"])
        self.size = (32, 32)
        self.pose_frames = 1  # its poses hold still

    def conditions(self, n_frames, static_pose=False, seed=0, start=None, span=0):
        return np.repeat(np.eye(4, dtype=np.float32)[None], n_frames, 0), np.zeros(n_frames, np.float32)

    def render(self, codes, poses, blinks, frames_per_batch=8, fps=None, exact=False) -> Iterator[np.ndarray]:
        level = (np.tanh(codes.mean(axis=1)) * 100 + 128).astype(np.uint8)
        for s in range(0, len(codes), frames_per_batch):
            yield np.broadcast_to(level[s:s + frames_per_batch, None, None, None], (len(level[s:s + frames_per_batch]), 32, 32, 3)).copy()


def test_a_new_renderer_kind_plugs_in_without_touching_the_pipeline(demo, tts, tmp_path, monkeypatch):
    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest
    from services.renderer import service

    monkeypatch.setitem(service.RENDERER_KINDS, "flat", FlatRenderer)
    store = LocalSubjectStore(tmp_path / "subjects", bundled=None)
    flat = _with_kind(demo, "flat")
    store.save(SubjectBundle({**flat.manifest}, flat.blobs))
    chunks = []
    res = Pipeline(subjects=store, tts=tts).run(SpeakRequest(text="Hello there.", subject="demo"),
                                                FragmentedMp4Sink(chunks.append))
    info = probe_mp4(b"".join(c.data for c in chunks))
    assert info.n_frames == res.frames > 10 and (info.width, info.height) == (32, 32)
    assert res.times.first_chunk is not None and res.times.first_chunk > 0
    assert info.synthetic and info.tags["subject"] == "demo"  # the pipeline labels what it makes


class ExactRecorder(FlatRenderer):
    """FlatRenderer that notes whether each render was asked to be exact."""

    calls: list[bool] = []

    def render(self, codes, poses, blinks, frames_per_batch=8, fps=None, exact=False) -> Iterator[np.ndarray]:
        ExactRecorder.calls.append(exact)
        return super().render(codes, poses, blinks, frames_per_batch, fps)


def test_an_exact_request_reaches_the_renderer(demo, tts, tmp_path, monkeypatch):
    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest
    from services.renderer import service

    monkeypatch.setitem(service.RENDERER_KINDS, "flat", ExactRecorder)
    monkeypatch.setattr(ExactRecorder, "calls", [])
    store = LocalSubjectStore(tmp_path / "subjects", bundled=None)
    store.save(_with_kind(demo, "flat"))
    pipeline = Pipeline(subjects=store, tts=tts)
    seen = []
    for exact in (False, True):
        ExactRecorder.calls.clear()
        pipeline.run(SpeakRequest(text="Hello there.", subject="demo", exact=exact), FragmentedMp4Sink(lambda c: None))
        seen.append(set(ExactRecorder.calls))  # the small first batch is a render call of its own
    assert seen == [{False}, {True}]


def test_uploaded_audio_is_resampled_to_16k_once(demo, tmp_path, monkeypatch):
    """44.1 kHz upload, denoised: one resampling (44.1 → 16 kHz) feeds denoiser and encoder."""
    from services.common import audio
    from services.common.types import AudioClip
    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest
    from services.renderer import service

    monkeypatch.setitem(service.RENDERER_KINDS, "flat", FlatRenderer)
    store = LocalSubjectStore(tmp_path / "subjects", bundled=None)
    store.save(_with_kind(demo, "flat"))
    calls = []
    real = audio.resample_poly
    monkeypatch.setattr(audio, "resample_poly", lambda x, up, down, **kw: calls.append((up, down)) or real(x, up, down, **kw))
    t = np.arange(44100) / 44100
    clip = AudioClip((0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
    res = Pipeline(subjects=store).run(SpeakRequest(audio=clip, subject="demo"), FragmentedMp4Sink(lambda c: None))
    assert res.frames == 25 and res.times.denoise > 0
    assert calls == [(160, 441)]


def test_the_first_chunk_waits_only_for_a_small_first_batch(demo, tts, tmp_path, monkeypatch):
    import threading

    from services.gateway.pipeline import FIRST_BATCH_FRAMES, Pipeline
    from services.gateway.request import SpeakRequest
    from services.renderer import service

    monkeypatch.setitem(service.RENDERER_KINDS, "flat", FlatRenderer)
    store = LocalSubjectStore(tmp_path / "subjects", bundled=None)
    store.save(_with_kind(demo, "flat"))
    chunks, threads = [], set()

    def on_chunk(c):
        chunks.append(c)
        if not c.is_last:
            threads.add(threading.current_thread().name)

    sink = FragmentedMp4Sink(on_chunk)
    res = Pipeline(subjects=store, tts=tts).run(
        SpeakRequest(text="Hello there. How are you today?", subject="demo", frames_per_chunk=8), sink)
    media = [c.frames_so_far for c in chunks if not c.is_init and c.data and not c.is_last]
    assert media[:3] == [FIRST_BATCH_FRAMES, FIRST_BATCH_FRAMES + 8, FIRST_BATCH_FRAMES + 16]
    assert res.sentences == 2 and probe_mp4(b"".join(c.data for c in chunks)).n_frames == res.frames
    assert 0 < res.times.first_frame <= res.times.first_chunk
    assert threading.current_thread().name not in threads  # batches are muxed beside the render


class FailingSink(FragmentedMp4Sink):
    """Delivery fails at the second media batch (a client gone mid-stream)."""

    def write(self, frames, audio):
        if self._chunks >= 2:
            raise ConnectionError("client went away")
        super().write(frames, audio)


def test_a_failed_write_ends_the_request_incomplete(demo, tts, tmp_path, monkeypatch):
    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest
    from services.renderer import service

    monkeypatch.setitem(service.RENDERER_KINDS, "flat", FlatRenderer)
    store = LocalSubjectStore(tmp_path / "subjects", bundled=None)
    store.save(_with_kind(demo, "flat"))
    chunks = []
    with pytest.raises(ConnectionError, match="went away"):
        Pipeline(subjects=store, tts=tts).run(SpeakRequest(text="Hello there, how are you today?", subject="demo"),
                                              FailingSink(chunks.append))
    assert chunks and not any(c.is_last for c in chunks)
