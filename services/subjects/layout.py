"""The ER-NeRF dataset layout (REFERENCE.md §1): reader, validator and streaming writer.

    <root>/
      <name>.mp4                optional source video
      aud.wav                   16 kHz mono speech
      ori_imgs/<i>.jpg, <i>.lms original frames + 68×2 landmarks (text, pixels)
      parsing/<i>.png           head (255,0,0), neck (0,255,0), torso (0,0,255), background white
      gt_imgs/<i>.jpg           frames over the clean background
      torso_imgs/<i>.png        neck + torso RGBA (head removed)
      bc.jpg                    background
      au.csv                    OpenFace-style action units; AU45_r (blink) in [0, 2]
      transforms_train.json     {focal_len, cx, cy, frames[{img_id, aud_id, transform_matrix}]}
      transforms_val.json       first 10/11 of the frames train, the last 1/11 validate

`transform_matrix` is a 4×4 camera-to-world matrix in the OpenGL convention (camera
looks down −z) whose translation is in ER-NeRF file units: the NeRF scene is the
file multiplied by POSE_SCALE (ER-NeRF's default `--scale 4`, offset 0), where the
head fits the AABB [−1,−0.5,−1, 1,0.5,1]. Datasets made by ER-NeRF, RAD-NeRF or
SyncTalk preprocessing load unchanged; extra files (aud*.npy, oracle.json…) are kept.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from services.common.errors import InvalidInput
from services.common.types import ANALYSIS_SAMPLE_RATE, VIDEO_FPS, AudioClip

#: NeRF scene units per file unit of camera translation (ER-NeRF `--scale 4`).
POSE_SCALE = 4.0
#: Fraction of frames (from the start) used for training; the rest validate.
TRAIN_FRACTION = 10 / 11
N_LANDMARKS = 68

LABEL_BG, LABEL_HEAD, LABEL_NECK, LABEL_TORSO = 0, 1, 2, 3
#: Parsing colours by label.
PARSING_RGB = np.array([(255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255)], np.uint8)
#: OpenFace writes ", "-separated headers; ER-NeRF reads the column ' AU45_r'.
AU_COLUMNS = ("frame", "face_id", "timestamp", "confidence", "success", "AU45_r")


def labels_to_parsing(labels: np.ndarray) -> np.ndarray:
    """uint8 labels [H,W] (0 bg, 1 head, 2 neck, 3 torso) → parsing colours [H,W,3]."""
    return np.take(PARSING_RGB, np.asarray(labels), axis=0)  # a few times faster than PARSING_RGB[labels]


def parsing_to_labels(rgb: np.ndarray) -> np.ndarray:
    """Parsing image [H,W,3] → labels; colours other than the three parts count as background."""
    rgb = np.asarray(rgb)
    out = np.zeros(rgb.shape[:2], np.uint8)
    for label in (LABEL_HEAD, LABEL_NECK, LABEL_TORSO):
        out[np.all(rgb == PARSING_RGB[label], axis=-1)] = label
    return out


def split_ids(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) frame ids: the first 10/11 train, the last 1/11 validate."""
    n_train = int(n * TRAIN_FRACTION) if n > 1 else n
    return np.arange(n_train), np.arange(n_train, n)


def blink_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """RAD-NeRF-style eye closure in [0, 1] from the eye aspect ratio, when au.csv is absent."""
    lm = np.asarray(landmarks, np.float64)

    def ear(a: int) -> np.ndarray:
        p = lm[:, a:a + 6]
        v = np.linalg.norm(p[:, 1] - p[:, 5], axis=1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=1)
        return v / (2 * np.maximum(np.linalg.norm(p[:, 0] - p[:, 3], axis=1), 1e-6))

    ratio = (ear(36) + ear(42)) / 2
    open_ratio = max(float(np.percentile(ratio, 95)), 1e-6)
    return np.clip(1 - ratio / open_ratio, 0, 1).astype(np.float32)


def _read_rgb(path: Path, mode: str = "RGB") -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert(mode))


@dataclass
class SubjectDataset:
    """A loaded, validated ER-NeRF dataset. Images load lazily (`image(k)`…) so a long
    video costs only its poses, landmarks and audio in memory; `k` is a frame position
    (0…len−1) and `frame_ids[k]` its file number."""

    root: Path
    width: int
    height: int
    focal: float
    cx: float
    cy: float
    fps: float
    frame_ids: np.ndarray  #: int [N] file numbers, ascending
    aud_ids: np.ndarray  #: int [N] audio-feature index per frame
    poses: np.ndarray  #: float32 [N,4,4] camera-to-world as in the files (OpenGL, file units)
    train: np.ndarray  #: positions of training frames
    val: np.ndarray  #: positions of validation frames
    landmarks: np.ndarray  #: float32 [N,68,2] pixels
    blink: np.ndarray  #: float32 [N] eye closure 0…1 (AU45_r / 2)
    blink_source: str  #: "au.csv" or "landmarks"
    audio: AudioClip  #: 16 kHz
    background: np.ndarray  #: uint8 [H,W,3]
    extras: dict = field(default_factory=dict)  #: oracle.json, prepare.json ("oracle", "prepare"), if present

    def __len__(self) -> int:
        return len(self.frame_ids)

    @property
    def soundless(self) -> np.ndarray:
        """Positions of the frames whose own sound is not in aud.wav, ascending. `subject
        prepare` moves the audio av_offset.frames earlier (later when negative) to line it up
        with the lips and fills the gap with silence: the sound of the last (first) that many
        frames lies outside the recording. No audio-driven mouth can match those frames."""
        offset = (self.extras.get("prepare") or {}).get("av_offset") or {}
        k = int(offset.get("frames", 0)) if offset.get("applied") else 0
        if k == 0:
            return np.zeros(0, np.int64)
        n_audio = round(self.audio.duration * self.fps)
        return np.flatnonzero(self.aud_ids >= n_audio - k if k > 0 else self.aud_ids < -k).astype(np.int64)

    @property
    def name(self) -> str:
        return self.root.name

    def scene_poses(self) -> np.ndarray:
        """Camera-to-world in NeRF scene units (translation × POSE_SCALE), OpenGL convention."""
        p = self.poses.copy()
        p[:, :3, 3] *= POSE_SCALE
        return p

    def _path(self, folder: str, k: int, ext: str) -> Path:
        return self.root / folder / f"{int(self.frame_ids[k])}.{ext}"

    def _load(self, folder: str, k: int, ext: str, mode: str) -> np.ndarray:
        arr = _read_rgb(self._path(folder, k, ext), mode)
        if arr.shape[:2] != (self.height, self.width):
            raise InvalidInput(f"{self._path(folder, k, ext)} is {arr.shape[1]}x{arr.shape[0]}, "
                               f"expected {self.width}x{self.height}")
        return arr

    def image(self, k: int) -> np.ndarray:
        """Original frame ori_imgs/<id>.jpg, uint8 [H,W,3]."""
        return self._load("ori_imgs", k, "jpg", "RGB")

    def gt_image(self, k: int) -> np.ndarray:
        """Frame over the clean background, gt_imgs/<id>.jpg, uint8 [H,W,3]."""
        return self._load("gt_imgs", k, "jpg", "RGB")

    def labels(self, k: int) -> np.ndarray:
        """Parsing labels uint8 [H,W]: 0 bg, 1 head, 2 neck, 3 torso."""
        return parsing_to_labels(self._load("parsing", k, "png", "RGB"))

    def torso(self, k: int) -> np.ndarray:
        """Neck + torso layer torso_imgs/<id>.png, uint8 RGBA [H,W,4]."""
        return self._load("torso_imgs", k, "png", "RGBA")


def load_dataset(root: str | Path, fps: float = VIDEO_FPS) -> SubjectDataset:
    """Read and validate a dataset; one InvalidInput line names every problem found."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"dataset not found: {root} is not a directory")
    problems: list[str] = []

    def fail() -> None:
        if problems:
            shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
            raise InvalidInput(f"dataset {root} is invalid: {shown}")

    splits = {}
    for split in ("train", "val"):
        path = root / f"transforms_{split}.json"
        if not path.is_file():
            problems.append(f"missing {path.name}")
            continue
        try:
            splits[split] = _parse_transforms(json.loads(path.read_text()), path.name)
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name} is not valid JSON ({exc.msg} at line {exc.lineno})")
        except ValueError as exc:
            problems.append(str(exc))
    for name in ("aud.wav", "bc.jpg"):
        if not (root / name).is_file():
            problems.append(f"missing {name}")
    fail()

    tr, va = splits["train"], splits["val"]
    for key in ("focal_len", "cx", "cy"):
        if abs(tr[key] - va[key]) > 1e-6:
            problems.append(f"{key} differs between transforms_train.json ({tr[key]}) and transforms_val.json ({va[key]})")
    frames = tr["frames"] + va["frames"]
    ids = [f[0] for f in frames]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        problems.append(f"img_id repeated across frames: {dup}")
    fail()

    order = np.argsort(ids)
    frame_ids = np.array(ids, np.int64)[order]
    aud_ids = np.array([f[1] for f in frames], np.int64)[order]
    poses = np.stack([f[2] for f in frames]).astype(np.float32)[order]
    position = {int(i): k for k, i in enumerate(frame_ids)}
    train = np.array([position[f[0]] for f in tr["frames"]], np.int64)
    val = np.array([position[f[0]] for f in va["frames"]], np.int64)

    missing = [f"{folder}/{i}.{ext}" for i in frame_ids
               for folder, ext in (("ori_imgs", "jpg"), ("ori_imgs", "lms"), ("parsing", "png"),
                                   ("gt_imgs", "jpg"), ("torso_imgs", "png"))
               if not (root / folder / f"{i}.{ext}").is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        problems.append(f"{len(missing)} frame files missing: {', '.join(missing[:5])}{more}")
    fail()

    # sizes: every folder's first and last frame must agree with bc.jpg
    with Image.open(root / "bc.jpg") as bc:
        width, height = bc.size
    for folder, ext in (("ori_imgs", "jpg"), ("parsing", "png"), ("gt_imgs", "jpg"), ("torso_imgs", "png")):
        for i in {int(frame_ids[0]), int(frame_ids[-1])}:
            with Image.open(root / folder / f"{i}.{ext}") as im:
                if im.size != (width, height):
                    problems.append(f"{folder}/{i}.{ext} is {im.size[0]}x{im.size[1]} but bc.jpg is {width}x{height}")

    landmarks = np.zeros((len(frame_ids), N_LANDMARKS, 2), np.float32)
    for k, i in enumerate(frame_ids):
        try:
            lm = np.loadtxt(root / "ori_imgs" / f"{i}.lms", dtype=np.float64, ndmin=2)
        except ValueError:
            lm = np.zeros((0, 0))
        if lm.shape != (N_LANDMARKS, 2) or not np.all(np.isfinite(lm)):
            problems.append(f"ori_imgs/{i}.lms must hold 68 rows of 2 finite numbers (got shape {lm.shape})")
            break
        landmarks[k] = lm

    audio = _read_audio(root / "aud.wav", problems)
    if audio is not None:
        expected = audio.duration * fps
        # preprocessing trims video and audio independently: allow a few frames either way
        if abs(len(frame_ids) - expected) > max(3.0, 0.02 * expected):
            problems.append(f"{len(frame_ids)} frames but aud.wav lasts {audio.duration:.2f} s "
                            f"(≈{expected:.0f} frames at {fps:g} fps)")

    blink, source = None, "landmarks"
    if (root / "au.csv").is_file():
        blink = _read_blink(root / "au.csv", int(frame_ids.max()) + 1, problems)
        source = "au.csv"
    fail()
    if blink is None:
        blink = blink_from_landmarks(landmarks)
    else:
        blink = blink[frame_ids]

    extras = {}
    for key in ("oracle", "prepare"):
        path = root / f"{key}.json"
        if path.is_file():
            try:
                extras[key] = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                problems.append(f"{path.name} is not valid JSON ({exc.msg} at line {exc.lineno})")
    fail()
    return SubjectDataset(
        root=root, width=width, height=height, focal=tr["focal_len"], cx=tr["cx"], cy=tr["cy"], fps=fps,
        frame_ids=frame_ids, aud_ids=aud_ids, poses=poses, train=train, val=val, landmarks=landmarks,
        blink=blink, blink_source=source, audio=audio, background=_read_rgb(root / "bc.jpg"), extras=extras)


def _parse_transforms(data: object, name: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{name} must be a JSON object")
    out: dict = {}
    for key in ("focal_len", "cx", "cy"):
        v = data.get(key)
        if not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} needs a positive number '{key}' (got {v!r})")
        out[key] = float(v)
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{name} needs a non-empty 'frames' list")
    parsed = []
    for j, f in enumerate(frames):
        if not isinstance(f, dict) or "img_id" not in f or "transform_matrix" not in f:
            raise ValueError(f"{name} frame {j} needs 'img_id' and 'transform_matrix'")
        try:
            m = np.array(f["transform_matrix"], dtype=np.float64)
        except (TypeError, ValueError):
            m = np.zeros(0)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)) or not np.allclose(m[3], (0, 0, 0, 1), atol=1e-4):
            raise ValueError(f"{name} frame {j} (img_id {f['img_id']}): transform_matrix must be a 4x4 "
                             "finite matrix with last row [0, 0, 0, 1]")
        img_id = int(f["img_id"])
        parsed.append((img_id, int(f.get("aud_id", img_id)), m))
    out["frames"] = parsed
    return out


def _read_audio(path: Path, problems: list[str]) -> AudioClip | None:
    import soundfile as sf

    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:
        problems.append("aud.wav is not a readable WAV file")
        return None
    if rate != ANALYSIS_SAMPLE_RATE:
        problems.append(f"aud.wav is {rate} Hz; the layout needs {ANALYSIS_SAMPLE_RATE} Hz")
        return None
    if len(samples) == 0:
        problems.append("aud.wav has no samples")
        return None
    return AudioClip(samples.mean(axis=1).astype(np.float32), rate)


def _read_blink(path: Path, n_rows: int, problems: list[str]) -> np.ndarray | None:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        problems.append("au.csv is empty")
        return None
    header = [h.strip() for h in rows[0]]
    if "AU45_r" not in header:
        problems.append("au.csv has no AU45_r column")
        return None
    col = header.index("AU45_r")
    try:
        values = np.array([float(r[col]) for r in rows[1:] if r], np.float32)
    except (ValueError, IndexError):
        problems.append("au.csv AU45_r has non-numeric values")
        return None
    if len(values) < n_rows:
        problems.append(f"au.csv has {len(values)} rows but frames go up to img_id {n_rows - 1}")
        return None
    return np.clip(values / 2.0, 0.0, 1.0)


class DatasetWriter:
    """Streams frames into a new dataset directory; `finish` writes the rest atomically.

    Files go to `<root>.partial/` and the directory is renamed to `<root>` only when
    complete, so an interrupted run never leaves something that looks like a dataset.
    """

    def __init__(self, root: str | Path, width: int, height: int, focal: float, cx: float, cy: float,
                 overwrite: bool = False, jpeg_quality: int = 95) -> None:
        self.root = Path(root)
        if self.root.exists() and not overwrite:
            raise InvalidInput(f"{self.root} already exists (use --force to replace it)")
        self.tmp = self.root.with_name(self.root.name + ".partial")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        for folder in ("ori_imgs", "parsing", "gt_imgs", "torso_imgs"):
            (self.tmp / folder).mkdir(parents=True)
        self.width, self.height = width, height
        self.intrinsics = {"focal_len": float(focal), "cx": float(cx), "cy": float(cy)}
        self.quality = jpeg_quality
        self._poses: list[np.ndarray] = []
        self._blink: list[float] = []

    def __len__(self) -> int:
        return len(self._poses)

    def add(self, image: np.ndarray, landmarks: np.ndarray, c2w: np.ndarray, blink: float,
            labels: np.ndarray, torso_rgba: np.ndarray, gt_image: np.ndarray | None = None) -> int:
        """Write one frame (pose in file units); returns its img_id."""
        i = len(self._poses)
        shape = (self.height, self.width)
        for what, arr, ch in (("image", image, 3), ("labels", labels, None), ("torso", torso_rgba, 4)):
            if arr.shape[:2] != shape or (ch and arr.shape[2] != ch):
                raise InvalidInput(f"frame {i}: {what} has shape {arr.shape}, expected {shape}")
        lm = np.asarray(landmarks, np.float32)
        if lm.shape != (N_LANDMARKS, 2):
            raise InvalidInput(f"frame {i}: landmarks must be 68x2, got {lm.shape}")
        # 4:4:4 chroma: lips and eyes are small, 4:2:0 would smear their colour
        Image.fromarray(image).save(self.tmp / "ori_imgs" / f"{i}.jpg", quality=self.quality, subsampling=0)
        np.savetxt(self.tmp / "ori_imgs" / f"{i}.lms", lm, fmt="%.9g")
        Image.fromarray(labels_to_parsing(labels)).save(self.tmp / "parsing" / f"{i}.png")
        Image.fromarray(gt_image if gt_image is not None else image).save(
            self.tmp / "gt_imgs" / f"{i}.jpg", quality=self.quality, subsampling=0)
        # zlib level 3: a quarter of the default's time on these large RGBA layers, ~10 % more bytes
        Image.fromarray(torso_rgba, "RGBA").save(self.tmp / "torso_imgs" / f"{i}.png", compress_level=3)
        self._poses.append(np.asarray(c2w, np.float64))
        self._blink.append(float(blink))
        return i

    def finish(self, audio: AudioClip, background: np.ndarray, fps: float = VIDEO_FPS,
               metadata: dict[str, dict] | None = None, video_name: str | None = None) -> Path:
        """Write aud.wav, bc.jpg, au.csv, transforms and metadata JSON files; publish the directory.

        `metadata` maps file names (e.g. "oracle.json") to JSON objects. `video_name`
        also writes `<video_name>.mp4` from the frames (H.264 + AAC).
        """
        from services.common.audio import save_wav

        if not self._poses:
            raise InvalidInput("no frames were added to the dataset")
        audio.require_rate(ANALYSIS_SAMPLE_RATE, "dataset aud.wav")
        save_wav(self.tmp / "aud.wav", audio)
        Image.fromarray(background).save(self.tmp / "bc.jpg", quality=self.quality, subsampling=0)
        with (self.tmp / "au.csv").open("w", newline="") as fh:
            fh.write(", ".join(AU_COLUMNS) + "\n")
            for i, b in enumerate(self._blink):
                fh.write(f"{i + 1}, 0, {i / fps:.3f}, 0.98, 1, {2.0 * b:.4f}\n")
        train, val = split_ids(len(self._poses))
        for split, ids in (("train", train), ("val", val)):
            frames = [{"img_id": int(i), "aud_id": int(i), "transform_matrix": self._poses[i].tolist()} for i in ids]
            doc = dict(self.intrinsics, w=self.width, h=self.height, frames=frames)
            (self.tmp / f"transforms_{split}.json").write_text(json.dumps(doc, indent=1))
        for name, doc in (metadata or {}).items():
            (self.tmp / name).write_text(json.dumps(doc))
        if video_name:
            self._write_video(self.tmp / f"{video_name}.mp4", audio, fps)
        if self.root.exists():
            shutil.rmtree(self.root)
        self.tmp.rename(self.root)
        return self.root

    def _write_video(self, path: Path, audio: AudioClip, fps: float) -> None:
        from services.common.video import Mp4Muxer, VideoSpec, fit_audio

        muxer = Mp4Muxer(VideoSpec(self.width, self.height, int(fps), audio.sample_rate), path=path)
        n = len(self._poses)
        samples = fit_audio(audio.samples, n, int(fps), audio.sample_rate)
        per = audio.sample_rate / fps
        for s in range(0, n, 50):
            e = min(n, s + 50)
            frames = np.stack([_read_rgb(self.tmp / "ori_imgs" / f"{i}.jpg") for i in range(s, e)])
            muxer.add(frames, samples[int(round(s * per)):int(round(e * per))])
        muxer.finish()

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
