"""`subject prepare` decoding: frames picked by timestamp at any rate, the display rotation
honoured, the audio aligned and resampled to 16 kHz (synthetic clips with a known timeline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.common.errors import InvalidInput
from services.subjects.prepare import decode

BITS, STRIPE, H = 10, 12, 48


def _coded(k: int) -> np.ndarray:
    """A frame showing its index k in binary: BITS vertical stripes, white for 1, and a red
    block in the top-left corner (to see which way is up)."""
    img = np.zeros((H, BITS * STRIPE, 3), np.uint8)
    for b in range(BITS):
        if k >> b & 1:
            img[H // 2:, b * STRIPE:(b + 1) * STRIPE] = 255
    img[:H // 4, :STRIPE] = (255, 0, 0)
    return img


def _index(img: np.ndarray) -> int:
    bottom = img[H // 2 + 4:H - 4].mean(axis=(0, 2))
    return sum(1 << b for b in range(BITS) if bottom[b * STRIPE + 3:(b + 1) * STRIPE - 3].mean() > 128)


def _tone(seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("source_fps", [30, 50, 24])
def test_any_frame_rate_becomes_25_fps_by_timestamp(tmp_path: Path, clip_writer, source_fps: int) -> None:
    seconds = 10.4
    path = clip_writer(tmp_path / "v.mp4", (_coded(k) for k in range(round(seconds * source_fps))), source_fps,
                       _tone(seconds))
    info = decode.probe(path)
    assert info.source_fps == pytest.approx(source_fps) and info.duration == pytest.approx(seconds, abs=0.05)
    got = [_index(f) for f in decode.frames(info, 25)]
    assert len(got) == info.n_frames(25) == round(seconds * 25)
    # output frame i (time i/25) shows the source frame nearest that time
    want = [min(int(np.floor(i * source_fps / 25 + 0.5)), round(seconds * source_fps) - 1) for i in range(len(got))]
    assert got == want


def test_display_rotation_is_honoured(tmp_path: Path, clip_writer) -> None:
    upright = [_coded(k) for k in range(275)]
    # stored turned clockwise, with a display matrix that turns it back counter-clockwise
    path = clip_writer(tmp_path / "r.mp4", (np.rot90(f, -1) for f in upright), 25, _tone(11), rotation=90)
    info = decode.probe(path)
    assert info.rotation == 90 and (info.width, info.height) == (BITS * STRIPE, H)
    frames = list(decode.frames(info, 25))
    assert frames[0].shape == upright[0].shape
    assert frames[0][:H // 4, :STRIPE, 0].mean() > 200  # the red block is top-left again
    assert [_index(f) for f in frames[:50]] == list(range(50))


def test_frames_at_converts_only_the_chosen_frames(tmp_path: Path, clip_writer) -> None:
    path = clip_writer(tmp_path / "v.mp4", (_coded(k) for k in range(300)), 30, _tone(10))
    info = decode.probe(path)
    got = {i: _index(f) for i, f in decode.frames_at(info, 25, {0, 7, 100, 249})}
    assert got == {0: 0, 7: 8, 100: 120, 249: 299}


def test_audio_is_16_khz_mono_and_as_long_as_the_frames(tmp_path: Path, clip_writer) -> None:
    rate = 44_100
    path = clip_writer(tmp_path / "v.mp4", (_coded(k) for k in range(260)), 25, _tone(10.2, rate), rate)
    info = decode.probe(path)
    clip = decode.audio(info, 255, 25)
    assert clip.sample_rate == 16_000 and len(clip.samples) == round(255 / 25 * 16_000)
    spectrum = np.abs(np.fft.rfft(clip.samples[16_000:32_000]))
    assert np.argmax(spectrum) == pytest.approx(220, abs=2)  # the tone survives, 1 Hz per bin


def test_silent_audio_track_is_refused(tmp_path: Path, clip_writer) -> None:
    path = clip_writer(tmp_path / "v.mp4", (_coded(k) for k in range(260)), 25, np.zeros(16_000 * 11, np.float32))
    with pytest.raises(InvalidInput, match="silent"):
        decode.audio(decode.probe(path), 255, 25)


@pytest.mark.parametrize("suffix, codec, audio_codec, rate", [
    ("mkv", "libx264", "aac", 44_100), ("mov", "libx264", "aac", 48_000), ("mp4", "libx265", "aac", 48_000),
    ("webm", "libvpx-vp9", "libopus", 48_000)])
def test_common_containers_and_codecs_decode(tmp_path: Path, clip_writer, suffix: str, codec: str,
                                             audio_codec: str, rate: int) -> None:
    path = clip_writer(tmp_path / f"v.{suffix}", (_coded(k) for k in range(260)), 25, _tone(10.4, rate), rate,
                       codec=codec, audio_codec=audio_codec)
    info = decode.probe(path)
    assert info.duration == pytest.approx(10.4, abs=0.1)
    got = [_index(f) for f in decode.frames(info, 25)]
    assert got[:200] == list(range(200))
    clip = decode.audio(info, len(got), 25)
    assert clip.duration == pytest.approx(len(got) / 25) and np.sqrt(np.mean(clip.samples[8000:-8000] ** 2)) > 0.1
