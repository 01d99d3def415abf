"""`talking-head say`, `serve`, and `subject list|rm|push|pull`."""

from __future__ import annotations

import argparse
import json
import os
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
    p.add_argument("--exact", action="store_true",
                   help="render every ray of every frame (default: the subject's fast render path, "
                        "within 38 dB PSNR of this and several times faster)")
    p.set_defaults(func=_say)

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
    sv.add_argument("--render-threads", type=int, default=None, metavar="N",
                    help="intra-op threads of each renderer replica (default: on a machine without GPUs, "
                         "every core, so one stream renders on all of them; else the replica's num_cpus)")
    sv.set_defaults(func=_serve)

    group = groups.get("subjects")
    if group is None:  # pragma: no cover - subjects' CLI creates the group
        raise RuntimeError("the `subject` command group is missing")
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
    t0 = time.perf_counter()  # the total counts loading: the pipeline's imports and its models
    from tqdm import tqdm

    from services.gateway.pipeline import Pipeline
    from services.gateway.request import SpeakRequest, check_request
    from services.gateway.sinks import Mp4FileSink

    bar = tqdm(desc="rendering", unit="frame", disable=not sys.stderr.isatty())
    req = check_request(SpeakRequest(text=args.text, subject=args.subject, lang=args.lang, voice=args.voice,
                                     static_pose=args.static_pose, denoise=args.denoise or None, seed=args.seed,
                                     exact=args.exact))
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
    if args.render_threads is not None and args.render_threads < 0:
        from services.common.errors import InvalidInput

        raise InvalidInput(f"--render-threads must be ≥ 0, got {args.render_threads}")
    config = serving.read_config(args.config)
    threads = args.render_threads
    if threads is None and gpus <= 0 and not serving.sets_render_threads(config):
        threads = os.cpu_count() or 1  # one stream's frames over every core (the fast path splits them)
    config = serving.adapt_config(config, gpus=gpus, http_port=args.http_port, grpc_port=args.grpc_port,
                                  http_host=args.host, app_args=None if threads is None else {"render_threads": threads})
    if gpus <= 0:
        on = f" on {threads} intra-op threads" if threads else ""
        print(f"no GPU found: the renderer runs on CPU{on} (num_gpus dropped from the config)")
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
