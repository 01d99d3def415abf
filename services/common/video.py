"""PyAV muxing: uint8 RGB frames + mono audio → H.264 (yuv420p) + AAC in MP4 or fragmented MP4.

`Mp4Muxer` is incremental: feed frame batches with the audio that spans them and take
the bytes that are ready. In fragmented mode the first bytes are one self-contained
init segment (ftyp + empty moov) and every later piece is whole fragments (moof + mdat),
so a client can play chunks as they arrive; each batch's fragment is closed by its own
`add` (`services.common.fragment_flush`), so it is out as soon as its frames are; in file mode the result is a progressive
mp4 with the index at the front (faststart). Both carry the provenance tags
(`services.common.provenance`: synthetic, generator and version, creation time, plus the
spec's `metadata`, e.g. the subject id) in the moov box.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from services.common.errors import InvalidInput
from services.common.fragment_flush import FragmentFlusher
from services.common.provenance import is_labelled, provenance_tags
from services.common.types import AudioClip

_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


class _AppendOnlyBuffer(io.RawIOBase):
    """An in-memory file that also remembers how much of it has been handed out."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._taken = 0
        self._pos = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        b = bytes(b)
        end = self._pos + len(b)
        if end > len(self._data):
            self._data.extend(b"\0" * (end - len(self._data)))
        self._data[self._pos:end] = b
        self._pos = end
        return len(b)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        out = bytes(self._data[self._taken:])
        self._taken = len(self._data)
        return out

    def getvalue(self) -> bytes:
        return bytes(self._data)


@dataclass(frozen=True)
class VideoSpec:
    width: int
    height: int
    fps: int = 25
    sample_rate: int = 16_000
    crf: int = 20
    preset: str = "veryfast"
    #: Extra container tags (e.g. {"subject": id}); the provenance label is always added.
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)


class Mp4Muxer:
    """Incremental H.264 + AAC muxer. Call `add` per batch, then `finish`."""

    def __init__(self, spec: VideoSpec, fragmented: bool = False, path: str | Path | None = None) -> None:
        """`path` (file mode only) writes there instead of returning bytes from `finish`."""
        import av

        if spec.width % 2 or spec.height % 2 or spec.width <= 0 or spec.height <= 0:
            raise InvalidInput(f"video size must be positive and even for yuv420p, got {spec.width}x{spec.height}")
        if spec.sample_rate not in _AAC_RATES:
            raise InvalidInput(f"AAC cannot carry {spec.sample_rate} Hz audio")
        self.spec = spec
        self.fragmented = fragmented
        self._sink = _AppendOnlyBuffer()
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        if fragmented:
            if path is not None:
                raise ValueError("fragmented output is returned as bytes, not written to a path")
            target: object = self._sink
            movflags = "frag_keyframe+empty_moov+default_base_moof"
        else:
            # faststart re-reads the finished file by name, so file mode needs a real file.
            if path is None:
                self._tmpdir = tempfile.TemporaryDirectory(prefix="th-mux-")
                path = Path(self._tmpdir.name) / "out.mp4"
            target = str(path)
            movflags = "faststart"
        self._path = Path(path) if path is not None else None
        tags = provenance_tags(spec.metadata)
        # use_metadata_tags: any key (subject, software) goes into moov/udta/meta as an mdta key.
        self._container = av.open(target, mode="w", format="mp4", options={"movflags": movflags + "+use_metadata_tags"})
        self._container.metadata.update(tags)
        v = self._container.add_stream("libx264", rate=spec.fps)
        v.width, v.height, v.pix_fmt = spec.width, spec.height, "yuv420p"
        v.codec_context.time_base = Fraction(1, spec.fps)
        v.options = {"crf": str(spec.crf), "preset": spec.preset, "tune": "zerolatency"}
        a = self._container.add_stream("aac", rate=spec.sample_rate)
        a.layout = "mono"
        a.bit_rate = 64_000
        self._video, self._audio = v, a
        self._to_drop = 1024 if fragmented else 0  # FFmpeg's AAC encoder delay (initial_padding)
        self._flusher = FragmentFlusher(self._container) if fragmented else None
        self._muxed = 0  # packets handed to the container (its header is written by the first)
        self._n_frames = 0
        self._n_samples = 0
        self._closed = False

    @property
    def frames_written(self) -> int:
        return self._n_frames

    def add(self, frames: np.ndarray, audio: np.ndarray | None = None) -> bytes:
        """Encode a batch of [N, H, W, 3] uint8 frames and (optionally) the audio that spans them.

        Returns the bytes that became ready (in fragmented mode: init and/or whole fragments).
        """
        import av

        if self._closed:
            raise RuntimeError("muxer already finished")
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (self.spec.height, self.spec.width, 3) or frames.dtype != np.uint8:
            raise InvalidInput(f"frames must be uint8 [N, {self.spec.height}, {self.spec.width}, 3], got "
                               f"{frames.dtype} {list(frames.shape)}")
        if audio is not None and len(audio):
            samples = np.ascontiguousarray(np.clip(audio, -1, 1), dtype=np.float32).reshape(1, -1)
            if self.fragmented and self._to_drop:
                # Fragments carry no edit list to hide the AAC encoder's priming samples, so
                # players would hear everything late by that much. Drop as many leading
                # samples (TTS leading silence) and start timestamps so priming lands at 0.
                k = min(self._to_drop, samples.shape[1])
                samples = samples[:, k:]
                self._to_drop -= k
                self._n_samples += k
        if audio is not None and len(audio) and samples.shape[1]:
            aframe = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            aframe.sample_rate = self.spec.sample_rate
            aframe.pts = self._n_samples
            aframe.time_base = Fraction(1, self.spec.sample_rate)
            self._n_samples += samples.shape[1]
            for packet in self._audio.encode(aframe):
                self._mux(packet)
        for i, rgb in enumerate(frames):
            vframe = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vframe.pts = self._n_frames
            vframe.time_base = Fraction(1, self.spec.fps)
            if i == 0 and self.fragmented:
                vframe.pict_type = av.video.frame.PictureType.I  # each batch opens a fragment
            self._n_frames += 1
            for packet in self._video.encode(vframe):
                self._mux(packet)
        if not self.fragmented:
            return b""
        if self._muxed and self._flusher is not None:
            self._flusher.flush()
        return self._sink.take()

    def _mux(self, packet: object) -> None:
        self._container.mux(packet)
        self._muxed += 1

    def finish(self) -> bytes:
        """Flush encoders and close; returns the remaining bytes (the whole file in file mode)."""
        if self._closed:
            return b""
        for packet in self._video.encode(None):
            self._container.mux(packet)
        for packet in self._audio.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._closed = True
        if self.fragmented:
            return self._sink.take()
        assert self._path is not None
        if self._tmpdir is None:
            return b""
        data = self._path.read_bytes()
        self._tmpdir.cleanup()
        return data


def split_init(data: bytes) -> tuple[bytes, bytes]:
    """(init segment, fragments) of a fragmented mp4's first bytes: the top-level boxes
    before the first moof (or styp), and the rest."""
    i = 0
    while i + 8 <= len(data):
        size, kind = int.from_bytes(data[i:i + 4], "big"), data[i + 4:i + 8]
        if kind in (b"moof", b"styp"):
            break
        if size == 1:
            size = int.from_bytes(data[i + 8:i + 16], "big")
        if size < 8:  # 0: to the end of the file
            return data, b""
        i += size
    return data[:i], data[i:]


def fit_audio(audio: np.ndarray, n_frames: int, fps: int, sample_rate: int) -> np.ndarray:
    """Pad with silence or trim so the audio lasts exactly n_frames / fps."""
    n = int(round(n_frames * sample_rate / fps))
    audio = np.asarray(audio, dtype=np.float32)
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))


def frames_for_duration(duration_s: float, fps: int) -> int:
    """Video frames that cover `duration_s` of audio (rounded up, at least one)."""
    return max(1, int(np.ceil(duration_s * fps - 1e-6)))


def write_mp4(path: str | Path, frames: np.ndarray, audio: AudioClip, fps: int = 25, crf: int = 20) -> Path:
    """One-shot: frames + audio → mp4 file whose audio and video lengths match."""
    frames = np.asarray(frames)
    spec = VideoSpec(width=frames.shape[2], height=frames.shape[1], fps=fps, sample_rate=audio.sample_rate, crf=crf)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.mp4")
    muxer = Mp4Muxer(spec, path=tmp)
    muxer.add(frames, fit_audio(audio.samples, len(frames), fps, audio.sample_rate))
    muxer.finish()
    tmp.replace(path)  # never leave a half-written video behind
    return path


@dataclass(frozen=True)
class ProbeResult:
    n_frames: int
    fps: float
    width: int
    height: int
    video_codec: str
    pix_fmt: str
    video_seconds: float
    audio_codec: str
    sample_rate: int
    audio_seconds: float
    #: The container's tags (provenance: comment, description, software, creation_time, subject).
    tags: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def synthetic(self) -> bool:
        """Whether the file carries this package's synthetic-media label."""
        return is_labelled(self.tags)


def probe_mp4(data: bytes | str | Path) -> ProbeResult:
    """Measure an mp4: decoded video frames, and each stream's presented length from its
    packet timestamps (what a player shows, edit lists and AAC priming accounted for)."""
    import av

    def open_():
        return av.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else str(data))

    with open_() as c:
        tags = dict(c.metadata)
        vs = c.streams.video[0]
        n_frames = sum(1 for _ in c.decode(vs))
        cc = vs.codec_context
        vinfo = (cc.name, cc.pix_fmt or "", cc.width, cc.height)
    ends: dict[str, float] = {}
    acodec, rate = "", 0
    with open_() as c:
        if c.streams.audio:
            acodec = c.streams.audio[0].codec_context.name
            rate = c.streams.audio[0].codec_context.sample_rate
        for p in c.demux():
            if p.pts is None or p.duration is None:
                continue
            end = float((p.pts + p.duration) * p.time_base)
            ends[p.stream.type] = max(ends.get(p.stream.type, 0.0), end)
    video_seconds = ends.get("video", 0.0)
    return ProbeResult(n_frames=n_frames, fps=n_frames / video_seconds if video_seconds else 0.0,
                       width=vinfo[2], height=vinfo[3], video_codec=vinfo[0], pix_fmt=vinfo[1],
                       video_seconds=video_seconds, audio_codec=acodec, sample_rate=rate,
                       audio_seconds=ends.get("audio", 0.0), tags=tags)
