"""`subject prepare VIDEO`: a real person's talking video → an ER-NeRF-layout dataset.

Three passes over the decoded video, each cheap: (1) FaceMesh landmarks and a face count
on the whole frame, which decide the crop, the camera and the blink track; (2) the person
on a sample of cropped frames, for the clean background; (3) every cropped frame segmented,
parsed and written with its torso layer and its frame over the background. The dataset is
built in `<root>.partial` by `DatasetWriter` and renamed into place at the end, so a run
that fails or is interrupted leaves nothing that `train` would accept.

Modules: decode (PyAV), landmarks (FaceMesh, 478 → 68), crop, pose (rigid shape, PnP,
focal), parsing, background, blink, preview.
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
from services.subjects.prepare.blink import blink_track
from services.subjects.prepare.crop import choose_crop
from services.subjects.prepare.parsing import Segmenter, over_background, parse, torso_layer
from services.subjects.prepare.pose import track_pose
from services.subjects.prepare.preview import Sample, write_sheet

SIZES = (256, 512)
#: Longest side the landmark pass decodes at (FaceMesh looks at 192² face crops anyway).
LANDMARK_SIDE = 1280
#: Frames shown on the preview sheet.
PREVIEW_FRAMES = 4


@dataclass(frozen=True)
class PrepareConfig:
    size: int = 256
    fps: int = VIDEO_FPS
    min_seconds: float = decode.MIN_SECONDS


def _mediapipe_version() -> str:
    try:
        return version("mediapipe")
    except PackageNotFoundError:
        return "unknown"


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
    fps, size = config.fps, config.size
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    info = decode.probe(video, config.min_seconds)
    decoded_w = decode.decoded_size(info, LANDMARK_SIDE)
    scale = max(info.width, info.height) / max(decoded_w)
    points, counts = landmarks.track(decode.frames(info, fps, LANDMARK_SIDE), info.n_frames(fps), fps, scale,
                                     progress)
    n = len(points)
    if n < config.min_seconds * fps:
        raise InvalidInput(f"{info.path.name} decodes to {n / fps:.1f} s of video; prepare needs at least "
                           f"{config.min_seconds:g} s")
    landmarks.check_faces(points, counts, fps, info.path.name)
    found = np.isfinite(points[:, 0, 0])
    points = landmarks.fill_gaps(points)
    source_face_px = float(np.median(np.ptp(points[:, :, 1], axis=1)))
    crop = choose_crop(points, info.width, info.height, size)
    mesh = crop.points(points)  # crop pixels, continuous coordinates
    cx, cy = crop.principal_point()
    timings["landmarks_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    poses = track_pose(mesh, size, cx, cy, fps)
    blink = blink_track(mesh)
    lms = landmarks.to_ibug68(mesh) - 0.5  # .lms: pixel i centred at i
    audio = decode.audio(info, n, fps)
    timings["pose_s"] = time.perf_counter() - t1

    writer = DatasetWriter(root, size, size, poses.focal, cx, cy, overwrite=force)
    segmenter = None
    # PNG/JPEG encoding runs beside segmentation (both release the GIL); a few frames queue at most
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare-write")
    try:
        t1 = time.perf_counter()
        segmenter = Segmenter()
        builder = BackgroundBuilder(n, size)
        for k, rgb in decode.frames_at(info, fps, set(range(0, n, builder.step))):
            img = crop.apply(rgb)
            builder.add(img, parse(img, mesh[k], segmenter.person(img)))
        background, inpainted = builder.build()
        timings["background_s"] = time.perf_counter() - t1

        t1 = time.perf_counter()
        shown = set(np.linspace(0, n - 1, PREVIEW_FRAMES + 2).round().astype(int)[1:-1].tolist())
        samples: list[Sample] = []
        areas = np.zeros((n, 4), np.float32)
        pending: deque[Future] = deque()
        frames = (crop.apply(rgb) for rgb in islice(decode.frames(info, fps), n))
        for k, img in enumerate(tqdm(frames, total=n, desc="frames", unit="frame", disable=not progress)):
            labels = parse(img, mesh[k], segmenter.person(img))
            areas[k] = np.bincount(labels.reshape(-1), minlength=4)[:4] / labels.size
            pending.append(pool.submit(writer.add, img, lms[k], poses.c2w[k], float(blink[k]), labels,
                                       torso_layer(img, labels, mesh[k]), over_background(img, labels, background)))
            while len(pending) > 4 or (pending and pending[0].done()):
                pending.popleft().result()
            if k in shown:
                samples.append(Sample(k, img, lms[k], labels))
        while pending:
            pending.popleft().result()
        timings["frames_s"] = time.perf_counter() - t1
        timings["total_s"] = time.perf_counter() - t0

        fov = float(np.degrees(2 * np.arctan(size / 2 / poses.focal)))
        title = (f"{name}: {info.path.name} {info.width}x{info.height} {info.codec} {info.source_fps:g} fps "
                 f"→ {n} frames at {fps} fps, {size}² crop of {crop.side}² at ({crop.x0}, {crop.y0})"
                 f"{' padded' if crop.padded else ''}\nfocal {poses.focal:.0f} px (fov {fov:.0f}°), pose fit "
                 f"{np.median(poses.reprojection_px):.2f} px median, face {source_face_px:.0f} px tall in the "
                 f"source, detected in {found.mean():.0%} of frames, background {inpainted:.0%} inpainted")
        write_sheet(writer.tmp / "preview.png", title, samples, background, poses.c2w, blink,
                    poses.reprojection_px, fps)
        meta = {
            "source": info.path.name, "container": info.container, "codec": info.codec,
            "source_size": [info.width, info.height], "rotation": info.rotation,
            "source_fps": info.source_fps, "fps": fps, "frames": n, "seconds": n / fps,
            "audio": {"codec": info.audio_codec, "sample_rate": info.audio_rate},
            "crop": crop.as_dict(), "focal": poses.focal, "fov_deg": fov, "focal_search": poses.focal_curve,
            "reprojection_px": {"median": float(np.median(poses.reprojection_px)),
                                "p95": float(np.percentile(poses.reprojection_px, 95))},
            "face_px": source_face_px, "face_found": float(found.mean()),
            "interpolated_frames": int((~found).sum()), "background_inpainted": inpainted,
            "parsing_area": dict(zip(("background", "head", "neck", "torso"), areas.mean(0).round(4).tolist())),
            "blinks": int(((blink[1:] >= 0.5) & (blink[:-1] < 0.5)).sum()),
            "landmarks": "MediaPipe FaceMesh 478 → iBUG 68 (services/subjects/prepare/landmarks.py IBUG68)",
            "mediapipe": _mediapipe_version(),
            "timings": {k: round(v, 2) for k, v in timings.items()},
        }
        return writer.finish(audio, background, fps, metadata={"prepare.json": meta}, video_name=None)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        writer.abort()
        raise
    finally:
        pool.shutdown(wait=True)
        if segmenter is not None:
            segmenter.close()
