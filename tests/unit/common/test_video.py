import io
from datetime import datetime, timezone

import av
import numpy as np
import pytest

from services.common.errors import InvalidInput
from services.common.provenance import SYNTHETIC_LABEL, is_labelled, package_version
from services.common.types import AudioClip
from services.common.video import (Mp4Muxer, VideoSpec, fit_audio, frames_for_duration, probe_mp4, split_init,
                                   write_mp4)


def _frames(n: int, h: int = 64, w: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (1, h, w, 3), dtype=np.uint8)
    return np.repeat(base, n, axis=0)


def _audio(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_mux_decode_round_trip(tmp_path):
    fps, n, sr = 25, 37, 22_050
    path = write_mp4(tmp_path / "a.mp4", _frames(n), AudioClip(_audio(1.0, sr), sr), fps=fps)
    info = probe_mp4(path)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert info.n_frames == n and info.fps == pytest.approx(fps)
    assert info.sample_rate == sr
    assert abs(info.audio_seconds - n / fps) <= 1 / fps
    assert not list(tmp_path.glob("*.part*"))


def test_fragmented_chunks_concatenate_to_a_playable_mp4():
    fps, sr, n, batch = 25, 16_000, 30, 8
    audio = fit_audio(_audio(2.0, sr), n, fps, sr)
    m = Mp4Muxer(VideoSpec(96, 64, fps, sr), fragmented=True)
    frames = _frames(n)
    chunks = []
    per = sr // fps
    for i in range(0, n, batch):
        chunks.append(m.add(frames[i:i + batch], audio[i * per:(i + batch) * per]))
    chunks.append(m.finish())
    init, first = split_init(chunks[0])
    assert init[4:8] == b"ftyp" and b"moov" in init and b"moof" not in init
    # every batch's fragment comes out of its own add, not the next one's
    assert first[4:8] == b"moof" and all(c[4:8] == b"moof" for c in chunks[1:-1])
    later = [c for c in chunks[1:] if c]
    assert later and all(c[4:8] in (b"moof", b"styp", b"mfra") for c in later)
    info = probe_mp4(b"".join(chunks))
    assert info.n_frames == n and info.fps == pytest.approx(fps)
    assert abs(info.audio_seconds - info.video_seconds) <= 1 / fps


def test_muxer_rejects_bad_frames():
    with pytest.raises(InvalidInput):
        Mp4Muxer(VideoSpec(95, 64))
    m = Mp4Muxer(VideoSpec(96, 64))
    with pytest.raises(InvalidInput):
        m.add(np.zeros((2, 64, 96, 3), np.float32))


def test_fit_audio_and_frame_count():
    assert len(fit_audio(np.ones(10, np.float32), 25, 25, 16_000)) == 16_000
    assert len(fit_audio(np.ones(20_000, np.float32), 25, 25, 16_000)) == 16_000
    assert frames_for_duration(1.0, 25) == 25 and frames_for_duration(1.01, 25) == 26


def test_fragmented_single_frame_batches():
    """One frame per batch carries fewer audio samples than the AAC priming dropped at the start."""
    fps, sr, n = 25, 22_050, 12
    audio = fit_audio(_audio(1.0, sr), n, fps, sr)
    m = Mp4Muxer(VideoSpec(96, 64, fps, sr), fragmented=True)
    per = sr // fps
    chunks = [m.add(_frames(1), audio[i * per:(i + 1) * per]) for i in range(n)]
    chunks.append(m.finish())
    info = probe_mp4(b"".join(chunks))
    assert info.n_frames == n
    assert abs(info.audio_seconds - info.video_seconds) <= 1 / fps


def _write_file_and_fragments(tmp_path, metadata):
    fps, sr, n = 25, 16_000, 10
    audio = fit_audio(_audio(0.5, sr), n, fps, sr)
    spec = VideoSpec(96, 64, fps, sr, metadata=metadata)
    m = Mp4Muxer(spec, path=tmp_path / "file.mp4")
    m.add(_frames(n), audio)
    m.finish()
    m = Mp4Muxer(spec, fragmented=True)
    first = m.add(_frames(n), audio)
    return tmp_path / "file.mp4", split_init(first)[0], first + m.finish()


def test_every_mp4_is_labelled_synthetic_in_file_mode_and_in_the_init_segment(tmp_path):
    path, init, stream = _write_file_and_fragments(tmp_path, {"subject": "demo"})
    assert init[4:8] == b"ftyp" and b"moof" not in init  # the init segment: ftyp + moov
    assert b"udta" in init and SYNTHETIC_LABEL.encode() in init and b"demo" in init
    for info in (probe_mp4(path), probe_mp4(stream)):
        assert info.synthetic and info.tags["comment"] == info.tags["description"] == SYNTHETIC_LABEL
        assert info.tags["software"] == f"talking-head {package_version()}" and info.tags["subject"] == "demo"
        made = datetime.fromisoformat(info.tags["creation_time"].replace("Z", "+00:00"))
        assert abs((datetime.now(timezone.utc) - made).total_seconds()) < 60
    with av.open(io.BytesIO(init)) as c:  # the init segment alone carries the tags
        assert c.metadata["comment"] == SYNTHETIC_LABEL and c.metadata["subject"] == "demo"
    assert probe_mp4(write_mp4(tmp_path / "w.mp4", _frames(5), AudioClip(_audio(0.2, 16_000), 16_000))).synthetic


def test_the_label_cannot_be_replaced_and_tags_are_checked(tmp_path):
    path, _, stream = _write_file_and_fragments(tmp_path, {"comment": "a real recording", "software": "camera"})
    for info in (probe_mp4(path), probe_mp4(stream)):
        assert info.synthetic and info.tags["comment"] == SYNTHETIC_LABEL
    with pytest.raises(InvalidInput, match="metadata tag"):
        Mp4Muxer(VideoSpec(96, 64, metadata={"bad key": "x"}))
    assert not is_labelled({"comment": "a real recording"})


def test_split_init_at_the_first_fragment():
    m = Mp4Muxer(VideoSpec(96, 64, 25, 16_000), fragmented=True)
    data = m.add(_frames(3), np.zeros(1920, np.float32))
    init, rest = split_init(data)
    assert init + rest == data and init[4:8] == b"ftyp" and rest[4:8] == b"moof"
    assert split_init(init) == (init, b"")
