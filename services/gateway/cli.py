"""`talking-head say`, `eval`, and `subject train|list|rm|push|pull`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: This module extends the `subject` group that services.subjects.cli creates.
EXTENDS = ("subjects",)


def register(sub: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]) -> None:
    p = sub.add_parser(
        "say", help="text → talking-head mp4 (the main job)",
        description="Synthesise TEXT, encode the speech, render the subject saying it and write an "
                    "H.264 + AAC mp4. Prints the output path and the time per stage.")
    p.add_argument("text", help="what the subject says (≤ 5000 characters)")
    p.add_argument("--subject", default="demo", help="subject id (default: demo, bundled)")
    p.add_argument("--lang", default="en", help="en (default) or zh")
    p.add_argument("--voice", default=None, help="TTS voice (default: the language's default)")
    p.add_argument("--out", type=Path, default=Path("out.mp4"), help="output mp4 (default out.mp4)")
    p.add_argument("--static-pose", action="store_true", help="hold the head still instead of replaying motion")
    p.add_argument("--denoise", action="store_true", help="denoise the TTS audio before encoding (off by default)")
    p.add_argument("--seed", type=int, default=0, help="seed for head motion and blinks")
    p.set_defaults(func=_say)

    ev = sub.add_parser(
        "eval", help="quality of a subject against the oracle's ground truth",
        description="Render each line of --texts with the subject (trained on the synthetic oracle) using the "
                    "oracle's own camera and blinks, and compare with the oracle's exact frames: psnr, bg_psnr "
                    "(background pixels only: floaters), ssim, lmd (mouth opening distance, px) and mouth_corr, "
                    "per text and averaged. Lines with hanzi are spoken in Mandarin. The speech is seeded: "
                    "every run scores the same audio.")
    ev.add_argument("--subject", default="demo", help="subject id (default demo)")
    ev.add_argument("--texts", type=Path, default=None,
                    help="file with one sentence per line (default: 8 held-out sentences, 6 en + 2 zh)")
    ev.add_argument("--json", type=Path, default=None, help="write the full result here")
    ev.set_defaults(func=_eval)

    sv = sub.add_parser(
        "serve", help="run the Ray Serve app: gRPC on :9000, HTTP on :8000",
        description="Deploy the talking-head Ray Serve application (TTS, Denoise, Encoder, Renderer and the "
                    "Avatar ingress) from a Serve config file and keep serving until Ctrl-C. Subjects come from "
                    "Redis ($TALKING_HEAD_REDIS_URL) with the local store as a fallback; API keys from "
                    "$TALKING_HEAD_API_KEYS (comma-separated; unset = no auth). Without GPUs the renderer runs "
                    "on CPU. Connects to an existing Ray cluster when $RAY_ADDRESS is set.")
    sv.add_argument("--config", type=Path, default=None,
                    help="Serve config YAML (default: the packaged services/gateway/serve_config.yaml)")
    sv.add_argument("--http-port", type=int, default=None, help="override http_options.port (8000)")
    sv.add_argument("--grpc-port", type=int, default=None, help="override grpc_options.port (9000)")
    sv.add_argument("--host", default=None, help="override http_options.host (0.0.0.0)")
    sv.set_defaults(func=_serve)

    group = groups.get("subjects")
    if group is None:  # pragma: no cover - subjects' CLI creates the group
        raise RuntimeError("the `subject` command group is missing")
    t = group.add_parser(
        "train", help="train a subject from an ER-NeRF-layout dataset",
        description="Jointly train the audio encoder and the tri-plane NeRF (head, lips, torso stages) on "
                    "DATASET and store the subject bundle. Resumes from the run directory when interrupted.")
    t.add_argument("dataset", help="dataset directory, or a name under $TALKING_HEAD_HOME/datasets")
    t.add_argument("--name", required=True, help="subject id to store the result as")
    t.add_argument("--preset", default="cpu", choices=("cpu", "gpu", "tiny"),
                   help="cpu: a 2-core laptop in ≤ 90 min; gpu: paper-sized (512²); tiny: a smoke run")
    t.add_argument("--run-dir", type=Path, default=None,
                   help="checkpoints, curve and summary (default $TALKING_HEAD_HOME/runs/NAME)")
    t.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in the run directory")
    t.add_argument("--scale", type=float, default=1.0, help="multiply every stage's iterations (e.g. 0.5)")
    t.add_argument("--encoder", default=None, metavar="dynamic|content|concat|cross|csfm",
                   help="audio encoder fusion variant (default: the preset's); all but `dynamic` run the "
                        "bundled content model over the dataset's audio first")
    t.set_defaults(func=_train)

    ls = group.add_parser("list", help="list stored subjects", description="List subjects in the local store "
                          "(and the ones bundled with the package); with --redis, the ones in Redis.")
    ls.add_argument("--redis", action="store_true", help="list the Redis store ($TALKING_HEAD_REDIS_URL)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_list)

    rm = group.add_parser("rm", help="remove a stored subject", description="Remove a subject from the local "
                          "store (or from Redis with --redis). Bundled subjects cannot be removed.")
    rm.add_argument("name")
    rm.add_argument("--redis", action="store_true")
    rm.set_defaults(func=_rm)

    push = group.add_parser("push", help="copy a subject to Redis", description="Verify a local subject bundle "
                            "and store it in Redis ($TALKING_HEAD_REDIS_URL) as a new version.")
    push.add_argument("name")
    push.set_defaults(func=_push)
    pull = group.add_parser("pull", help="copy a subject from Redis", description="Fetch a subject bundle from "
                            "Redis, verify every sha256, and store it locally.")
    pull.add_argument("name")
    pull.set_defaults(func=_pull)


def _say(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest, check_request
    from services.gateway.sinks import Mp4FileSink

    t0 = time.perf_counter()
    bar = tqdm(desc="rendering", unit="frame", disable=not sys.stderr.isatty())
    req = check_request(SpeakRequest(text=args.text, subject=args.subject, lang=args.lang, voice=args.voice,
                                     static_pose=args.static_pose, denoise=args.denoise or None, seed=args.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".part.mp4")
    try:
        result = Pipeline().run(req, Mp4FileSink(tmp), progress=lambda n, total: bar.update(n))
        tmp.replace(args.out)
    finally:
        bar.close()
        tmp.unlink(missing_ok=True)
    total = time.perf_counter() - t0
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.times.as_dict().items() if k != "first_chunk")
    print(f"{args.out}  ({result.frames} frames, {result.seconds:.2f} s at {result.fps:g} fps; "
          f"{stages}; total {total:.1f}s)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from services.common.errors import InvalidInput
    from services.common.sentences import random_sentences
    from services.gateway.evaluation import evaluate_oracle
    from services.gateway.pipeline import Pipeline

    if args.texts is not None:
        if not args.texts.is_file():
            raise InvalidInput(f"texts file not found: {args.texts}")
        texts = args.texts.read_text(encoding="utf-8").splitlines()
    else:
        texts = random_sentences(6, "en", seed=11, split="heldout") + random_sentences(2, "zh", seed=11, split="heldout")
    import onnxruntime

    onnxruntime.set_seed(11)  # Piper draws its prosody noise in onnxruntime: same speech every run
    result = evaluate_oracle(Pipeline(), args.subject, texts)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "per_text"}, indent=1, ensure_ascii=False))
    return 0


def _dataset_path(value: str) -> Path:
    from services.common.paths import datasets_dir

    p = Path(value)
    return p if p.exists() or "/" in value else datasets_dir() / value


def _train(args: argparse.Namespace) -> int:
    from services.common.bundle import check_subject_id
    from services.common.paths import home
    from services.common.subject_store import LocalSubjectStore
    from services.gateway.subject_training import train_subject

    check_subject_id(args.name)
    run_dir = args.run_dir or home() / "runs" / args.name
    bundle = train_subject(_dataset_path(args.dataset), args.name, preset=args.preset, workdir=run_dir,
                           resume=not args.fresh, iterations_scale=args.scale, encoder=args.encoder)
    path = LocalSubjectStore().save(bundle)
    tr = bundle.manifest["training"]
    print(f"{path}  (val PSNR {tr['val_psnr']} dB, {tr['train_seconds'] / 60:.1f} min; curve: "
          f"{run_dir / 'training_curve.png'})")
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.redis:
        from services.common.redis_store import RedisSubjectStore

        store = RedisSubjectStore()
        rows = [{"id": i, "version": store.version(i), **_summary(store.manifest(i))} for i in store.ids()]
    else:
        from services.common.subject_store import LocalSubjectStore

        store = LocalSubjectStore()
        rows = [{"id": i, "path": str(store.path(i)), **_summary(store.manifest(i))} for i in store.ids()]
    if args.json:
        print(json.dumps(rows, indent=1))
    elif not rows:
        print("no subjects")
    for r in rows if not args.json else []:
        print(f"{r['id']:<16} {r['resolution']:<9} {r['fps']:>4g} fps  val PSNR {r['val_psnr']}  "
              f"{r.get('path', 'v' + str(r.get('version')))}")
    return 0


def _summary(manifest: dict) -> dict:
    h, w = manifest.get("resolution", [0, 0])
    return {"resolution": f"{w}x{h}", "fps": manifest.get("fps", 0),
            "val_psnr": manifest.get("training", {}).get("val_psnr")}


def _rm(args: argparse.Namespace) -> int:
    if args.redis:
        from services.common.redis_store import RedisSubjectStore

        RedisSubjectStore().remove(args.name)
    else:
        from services.common.subject_store import LocalSubjectStore

        LocalSubjectStore().remove(args.name)
    print(f"removed {args.name}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from services.common.redis_store import RedisSubjectStore
    from services.common.subject_store import LocalSubjectStore

    bundle = LocalSubjectStore().load(args.name)
    version = RedisSubjectStore().push(bundle)
    print(f"pushed {args.name} as version {version} ({sum(len(b) for b in bundle.blobs.values()) / 1e6:.1f} MB)")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from services.common.redis_store import RedisSubjectStore
    from services.common.subject_store import LocalSubjectStore

    bundle = RedisSubjectStore().pull(args.name)
    path = LocalSubjectStore().save(bundle)
    print(f"pulled {args.name} → {path}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from services.gateway import serving

    gpus = serving.gpus_available()
    config = serving.adapt_config(serving.read_config(args.config), gpus=gpus, http_port=args.http_port,
                                  grpc_port=args.grpc_port, http_host=args.host)
    if gpus <= 0:
        print("no GPU found: the renderer runs on CPU (num_gpus dropped from the config)")
    serving.start(config)
    http = config.get("http_options", {})
    grpc_port = config.get("grpc_options", {}).get("port", 9000)
    print(f"serving: HTTP http://{http.get('host', '127.0.0.1')}:{http.get('port', 8000)}  gRPC :{grpc_port}  "
          "(Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        from ray import serve

        serve.shutdown()
    return 0
