"""`subject prepare VIDEO`: a real person's talking video → an ER-NeRF-layout dataset.

Three passes over the decoded video, each cheap: (1) FaceMesh landmarks and a face count on
the whole picture, which decide the crop, the camera, the poses and the blink track; (2) the
person on a sample of cropped frames, for the clean background; (3) every cropped frame
segmented, parsed and written with its torso layer and its frame over the background. The
dataset is built in `<root>.partial` by `DatasetWriter` and renamed into place at the end, so
a run that fails or is interrupted leaves nothing that `train` would accept; a rerun starts
afresh (a minute of video takes well under a minute).

Modules: decode (PyAV), landmarks (FaceMesh, 478 → 68, bad-input checks), sync (the sound's
offset from the lips), crop, pose (rigid shape, PnP, focal search), parsing, background,
blink, preview.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from services.common.errors import InvalidInput
from services.common.paths import datasets_dir
from services.common.types import VIDEO_FPS
from services.subjects.layout import DatasetWriter
from services.subjects.prepare import decode, landmarks
from services.subjects.prepare.background import BackgroundBuilder
from services.subjects.prepare.blink import blink_track, eyes_closing
from services.subjects.prepare.crop import Crop, choose_crop
from services.subjects.prepare.parsing import Segmenter, over_background, parse, torso_layer
from services.subjects.prepare.pose import PoseTrack, track_pose
from services.subjects.prepare.preview import Sample, write_sheet
from services.subjects.prepare.sync import estimate_offset, shift_audio

SIZES = (256, 512)
#: Longest side the landmark pass decodes at (FaceMesh looks at 192² face crops anyway).
LANDMARK_SIDE = 1280
#: Frames shown on the preview sheet.
PREVIEW_FRAMES = 4
#: Frames queued for the writer thread at most.
WRITE_QUEUE = 4


@dataclass(frozen=True)
class PrepareConfig:
    size: int = 256
    fps: int = VIDEO_FPS
    min_seconds: float = decode.MIN_SECONDS


@dataclass(frozen=True)
class _Track:
    """What the landmark pass decides, in crop pixels."""

    info: decode.VideoInfo
    crop: Crop
    mesh: np.ndarray  #: [N,478,3] FaceMesh points, continuous coordinates, gaps filled
    found: np.ndarray  #: bool [N] frames where FaceMesh found the face
    face_px: float  #: median face height in source pixels


def prepare(video: str | Path, name: str, config: PrepareConfig = PrepareConfig(), out: str | Path | None = None,
            force: bool = False, progress: bool = True) -> Path:
    """Prepare `video` into the dataset `name` (under $TALKING_HEAD_HOME/datasets unless `out`)."""
    if not name or "/" in name or name.startswith("."):
        raise InvalidInput(f"invalid dataset name {name!r}")
    if config.size not in SIZES:
        raise InvalidInput(f"--size must be one of {', '.join(map(str, SIZES))}, got {config.size}")
    if not 1 <= config.fps <= 60:
        raise InvalidInput(f"--fps must be between 1 and 60, got {config.fps}")
    root = Path(out) if out else datasets_dir() / name
    if root.exists() and not force:
        raise InvalidInput(f"{root} already exists (use --force to replace it)")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    track = _landmarks(video, config, progress)
    timings["landmarks_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    n, fps = len(track.mesh), config.fps
    cx, cy = track.crop.principal_point()
    blink = blink_track(track.mesh)
    poses = track_pose(track.mesh, config.size, cx, cy, fps, unreliable=eyes_closing(blink))
    audio = decode.audio(track.info, n, fps)
    sync = estimate_offset(track.mesh, audio, fps)
    if sync.applied:
        audio = shift_audio(audio, sync.frames, fps)
    timings["pose_s"] = time.perf_counter() - t1

    writer = DatasetWriter(root, config.size, config.size, poses.focal, cx, cy, overwrite=force)
    segmenter = None
    try:
        segmenter = Segmenter()
        t1 = time.perf_counter()
        background, seen = _background(track, fps, segmenter)
        timings["background_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        samples, areas = _write_frames(writer, track, fps, poses, blink, segmenter, background, seen, progress)
        timings["frames_s"] = time.perf_counter() - t1
        timings["total_s"] = time.perf_counter() - t0
        meta = _metadata(track, config, poses, blink, seen, areas, timings)
        meta["av_offset"] = {**sync.as_dict(), "seconds": round(sync.frames / fps, 3),
                             "how": "mouth opening vs loudness, best of ±0.6 s; the audio was moved to match"
                                    if sync.applied else "mouth opening vs loudness: no clear offset, audio as decoded"}
        write_sheet(writer.tmp / "preview.png", _title(name, track, config, poses, seen), samples, background,
                    poses.c2w, blink, poses.reprojection_px, fps)
        return writer.finish(audio, background, fps, metadata={"prepare.json": meta}, video_name=None)
    except BaseException:
        writer.abort()
        raise
    finally:
        if segmenter is not None:
            segmenter.close()


def _landmarks(video: str | Path, config: PrepareConfig, progress: bool) -> _Track:
    """Pass 1: probe, FaceMesh on every frame, the bad-input checks, gaps, the crop."""
    fps = config.fps
    info = decode.probe(video, config.min_seconds)
    scale = max(info.width, info.height) / max(decode.decoded_size(info, LANDMARK_SIDE))
    points, counts = landmarks.track(decode.frames(info, fps, LANDMARK_SIDE), info.n_frames(fps), fps, scale,
                                     progress)
    if len(points) < config.min_seconds * fps:
        raise InvalidInput(f"{info.path.name} decodes to {len(points) / fps:.1f} s of video; prepare needs at "
                           f"least {config.min_seconds:g} s")
    landmarks.check_faces(points, counts, fps, info.path.name)
    found = np.isfinite(points[:, 0, 0])
    points = landmarks.fill_gaps(points)
    crop = choose_crop(points, info.width, info.height, config.size)
    face_px = float(np.median(np.ptp(points[:, :, 1], axis=1)))
    return _Track(info, crop, crop.points(points), found, face_px)


def _background(track: _Track, fps: int, segmenter: Segmenter) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: the clean background from a sample of frames; (image, pixels seen)."""
    builder = BackgroundBuilder(len(track.mesh), track.crop.size)
    for k, rgb in decode.frames_at(track.info, fps, set(range(0, len(track.mesh), builder.step))):
        img = track.crop.apply(rgb)
        builder.add(img, parse(img, track.mesh[k], segmenter.person(img)))
    return builder.build()


def _write_frames(writer: DatasetWriter, track: _Track, fps: int, poses: PoseTrack, blink: np.ndarray,
                  segmenter: Segmenter, background: np.ndarray, seen: np.ndarray,
                  progress: bool) -> tuple[list[Sample], np.ndarray]:
    """Pass 3: every frame parsed and written; (preview samples, [N,4] label areas)."""
    n = len(track.mesh)
    lms = landmarks.to_ibug68(track.mesh) - 0.5  # .lms: pixel i centred at i
    shown = set(np.linspace(0, n - 1, PREVIEW_FRAMES + 2).round().astype(int)[1:-1].tolist())
    samples: list[Sample] = []
    areas = np.zeros((n, 4), np.float32)
    frames = (track.crop.apply(rgb) for rgb in islice(decode.frames(track.info, fps), n))
    # image encoding runs beside segmentation (both release the GIL)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare-write") as pool:
        pending: deque[Future] = deque()
        try:
            for k, img in enumerate(tqdm(frames, total=n, desc="frames", unit="frame", disable=not progress)):
                mesh = track.mesh[k]
                labels = parse(img, mesh, segmenter.person(img))
                areas[k] = np.bincount(labels.reshape(-1), minlength=4)[:4] / labels.size
                pending.append(pool.submit(writer.add, img, lms[k], poses.c2w[k], float(blink[k]), labels,
                                           torso_layer(img, labels, mesh),
                                           over_background(img, labels, background, seen)))
                while len(pending) > WRITE_QUEUE or (pending and pending[0].done()):
                    pending.popleft().result()
                if k in shown:
                    samples.append(Sample(k, img, lms[k], labels))
            while pending:
                pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()
    return samples, areas


def _fov(poses: PoseTrack, size: int) -> float:
    return float(np.degrees(2 * np.arctan(size / 2 / poses.focal)))


def _title(name: str, track: _Track, config: PrepareConfig, poses: PoseTrack, seen: np.ndarray) -> str:
    info, crop = track.info, track.crop
    return (f"{name}: {info.path.name} {info.width}x{info.height} {info.codec} {info.source_fps:g} fps → "
            f"{len(track.mesh)} frames at {config.fps} fps, {crop.size}² crop of {crop.side}² at ({crop.x0}, "
            f"{crop.y0}){' padded' if crop.padded else ''}\nfocal {poses.focal:.0f} px (fov "
            f"{_fov(poses, crop.size):.0f}°), pose fit {np.median(poses.reprojection_px):.2f} px median, face "
            f"{track.face_px:.0f} px tall in the source, found in {track.found.mean():.0%} of frames, background "
            f"{1 - seen.mean():.0%} inpainted")


def _metadata(track: _Track, config: PrepareConfig, poses: PoseTrack, blink: np.ndarray, seen: np.ndarray,
              areas: np.ndarray, timings: dict[str, float]) -> dict:
    """prepare.json: where the dataset came from and what preparing it found."""
    info, n = track.info, len(track.mesh)
    try:
        mp_version = version("mediapipe")
    except PackageNotFoundError:
        mp_version = "unknown"
    return {
        "source": info.path.name, "container": info.container, "codec": info.codec,
        "source_size": [info.width, info.height], "rotation": info.rotation, "source_fps": info.source_fps,
        "fps": config.fps, "frames": n, "seconds": n / config.fps,
        "audio": {"codec": info.audio_codec, "sample_rate": info.audio_rate},
        "crop": track.crop.as_dict(), "focal": poses.focal, "fov_deg": _fov(poses, config.size),
        "focal_search": poses.focal_curve,
        "reprojection_px": {"median": float(np.median(poses.reprojection_px)),
                            "p95": float(np.percentile(poses.reprojection_px, 95))},
        "face_px": track.face_px, "face_found": float(track.found.mean()),
        "interpolated_frames": int((~track.found).sum()), "background_inpainted": float(1 - seen.mean()),
        "parsing_area": dict(zip(("background", "head", "neck", "torso"), areas.mean(0).round(4).tolist())),
        "blinks": int(((blink[1:] >= 0.5) & (blink[:-1] < 0.5)).sum()),
        "landmarks": "MediaPipe FaceMesh 478 → iBUG 68 (services/subjects/prepare/landmarks.py IBUG68)",
        "mediapipe": mp_version,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
