"""`subject from-photo PHOTO`: one photo → a trained NeRF subject.

Stages: the face (every bad-input check before any slow work), the head proxy, training
sentences spoken by the bundled voice, the proxy rendered saying them into a dataset
(atomic, as `subject synth` writes the oracle's), the dataset trained with the preset
(`train_subject`), and the bundle stored (atomic). A run that stops midway leaves no
subject: the dataset stays for a rerun, which trains it again instead of rendering it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from services.common.bundle import check_subject_id
from services.common.errors import InvalidInput
from services.common.paths import datasets_dir, home


@dataclass(frozen=True)
class FromPhotoConfig:
    size: int = 256
    #: minutes of training speech the proxy renders
    minutes: float = 2.0
    preset: str = "cpu"
    seed: int = 0
    #: share of Mandarin sentences
    zh_fraction: float = 0.2
    iterations_scale: float = 1.0
    #: seconds of the default pose walk baked into the bundle (services.renderer.pose_bake)
    bake_seconds: float = 20.0
    #: audio encoder variant. The training speech is clean TTS, where the mel path adds
    #: nothing the content path lacks and costs most of the encoder's time: the content
    #: variant learns the mouth in a third of the warm-up steps and generalises better to
    #: held-out sentences (BENCHMARKS "The content encoder for a photo subject").
    encoder: str = "content"
    #: start a content encoder from the bundled mouth prior (services.training.mouth_prior)
    prior: bool = True


def from_photo(photo: str | Path, name: str, config: FromPhotoConfig = FromPhotoConfig(), force: bool = False,
               progress: bool = True, dataset: Path | None = None) -> tuple[Path, dict]:
    """Make subject `name` from `photo`; returns (the stored version's directory, timings)."""
    from services.common.subject_store import LocalSubjectStore
    from services.encoder.model import check_variant
    from services.subjects.layout import load_dataset
    from services.subjects.photo.dataset import META_NAME, photo_head, write_photo_dataset
    from services.subjects.photo.face import find_face, read_photo
    from services.training.bundle import bake_bundle, bake_with_bar, has_fast_path
    from services.subjects.synth import training_speech
    from services.training.speech import bundled_voice
    from services.training.subject import train_subject

    check_subject_id(name)
    check_variant(config.encoder)
    if config.size not in (256, 512):
        raise InvalidInput(f"--size must be 256 or 512, got {config.size}")
    store = LocalSubjectStore()
    if store.path(name) is not None and not force:
        raise InvalidInput(f"subject {name!r} already exists (use --force to replace it)")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def stage(label: str, k: int) -> None:
        if progress:
            print(f"[{k}/4] {label}", flush=True)

    stage("face and head proxy", 1)
    path = Path(photo)
    face = find_face(read_photo(path), path.name, config.size)
    head = photo_head(face, config.seed)
    timings["proxy_s"] = time.perf_counter() - t0
    root = dataset or datasets_dir() / f"{name}-photo"
    reuse = root.is_dir() and not force and _same_photo(root / META_NAME, face.name, config)
    if root.exists() and not reuse and not force:
        raise InvalidInput(f"{root} already exists from another photo or size (use --force to replace it)")
    if not reuse:
        t1 = time.perf_counter()
        stage(f"speech: {config.minutes:g} min of training sentences", 2)
        speech, sentences = training_speech(bundled_voice(), config.minutes, config.seed, config.zh_fraction,
                                            progress)
        timings["tts_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        stage("render the head proxy into a dataset", 3)
        write_photo_dataset(root, head, speech, sentences, force=True, progress=progress)
        timings["render_s"] = time.perf_counter() - t1
    elif progress:
        print(f"[2-3/4] reusing the dataset {root}", flush=True)
    load_dataset(root)
    t1 = time.perf_counter()
    stage(f"train ({config.preset} preset)", 4)
    bundle = train_subject(root, name, preset=config.preset, workdir=home() / "runs" / name,
                           resume=reuse, iterations_scale=config.iterations_scale, progress=progress,
                           encoder=config.encoder, prior=config.prior)
    timings["train_s"] = time.perf_counter() - t1
    if config.bake_seconds > 0 and has_fast_path(bundle):
        t1 = time.perf_counter()
        bundle = bake_with_bar(bundle, config.bake_seconds) if progress else bake_bundle(bundle, config.bake_seconds)
        timings["bake_s"] = time.perf_counter() - t1
    version = store.save(bundle)
    timings["total_s"] = time.perf_counter() - t0
    return version, {k: round(v, 1) for k, v in timings.items()}


def _same_photo(meta_path: Path, source: str, config: FromPhotoConfig) -> bool:
    import json

    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    return meta.get("source") == source and meta.get("size") == config.size and meta.get("seed") == config.seed
