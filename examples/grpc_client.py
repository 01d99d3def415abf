"""Stream a talking-head video over gRPC and write it to a file as the chunks arrive.

    python examples/grpc_client.py "Hello! How can I help?" --subject demo --out hello.mp4 \
        [--target localhost:9000] [--key $TALKING_HEAD_API_KEY]

Chunks are fragmented MP4: the first is the init segment, every later one holds whole
fragments; written in order they form one playable mp4 (or feed them to MSE in a browser).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import grpc

from services.protos.talkinghead.v1 import avatar_pb2, avatar_pb2_grpc


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("text")
    ap.add_argument("--subject", default="demo")
    ap.add_argument("--lang", default="en")
    ap.add_argument("--out", default="out.mp4")
    ap.add_argument("--target", default="localhost:9000")
    ap.add_argument("--key", default=os.environ.get("TALKING_HEAD_API_KEY"))
    args = ap.parse_args()

    metadata = [("authorization", f"Bearer {args.key}")] if args.key else []
    with grpc.insecure_channel(args.target) as channel:
        stub = avatar_pb2_grpc.AvatarStub(channel)
        request = avatar_pb2.SpeakRequest(text=args.text, subject=args.subject, lang=args.lang)
        t0 = time.perf_counter()
        try:
            with open(args.out, "wb") as f:
                for chunk in stub.Speak(request, metadata=metadata, timeout=300):
                    f.write(chunk.data)
                    if chunk.index == 1:
                        print(f"first frames after {time.perf_counter() - t0:.2f} s", file=sys.stderr)
                    if chunk.is_last:
                        print(f"{args.out}: {chunk.frames_so_far} frames, {chunk.media_seconds_so_far:.2f} s "
                              f"in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
        except grpc.RpcError as exc:  # e.g. NOT_FOUND (unknown subject), UNAUTHENTICATED, RESOURCE_EXHAUSTED
            print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
