"""Real servers for integration tests: a private redis-server on a free port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real redis-server with AOF persistence in a temp dir; can be killed and restarted."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed: `make test` installs it")
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def redis_module(tmp_path_factory):
    """One redis-server for a whole module (e.g. one Ray Serve start per module)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


#: The API key the `served` fixture turns on (modules may add keys through SERVE_APP_ARGS).
SERVE_KEY = "test-key-1"


@pytest.fixture(scope="module")
def served(redis_module, tmp_path_factory, request):
    """Ray Serve (CPU) from the checked-in Serve config, started once per test module, with a
    real redis-server and two tiny random-initialised subjects (tiny-a, tiny-b) pushed to it.

    A module may define SERVE_APP_ARGS (merged over the app args below; `limits` merged key
    by key) and edit_serve_config(config) -> config (e.g. to pin a deployment's replicas)."""
    import os

    grpc = pytest.importorskip("grpc")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    from services.common.redis_store import RedisSubjectStore
    from services.gateway import serving
    from services.training.random_subject import random_subject

    work = tmp_path_factory.mktemp("subjects")
    store = RedisSubjectStore(redis_module.url)
    bundles = {n: random_subject(n, work, seed=i) for i, n in enumerate(("tiny-a", "tiny-b"))}
    for b in bundles.values():
        store.push(b)
    extra = dict(getattr(request.module, "SERVE_APP_ARGS", {}))
    limits = {"max_text_chars": 400, "max_streams": 4, "frames_per_chunk": 4, **extra.pop("limits", {})}
    app_args = {"redis_url": redis_module.url, "api_keys": [SERVE_KEY], "limits": limits, **extra}
    http_port, grpc_port = free_port(), free_port()
    config = serving.adapt_config(serving.read_config(), gpus=0, http_port=http_port, grpc_port=grpc_port,
                                  http_host="127.0.0.1", app_args=app_args)
    edit = getattr(request.module, "edit_serve_config", None)
    if edit is not None:
        config = edit(config)
    os.environ["TALKING_HEAD_HOME"] = str(work / "home")  # no user subjects leak in
    serving.prepare_local_ray(config)
    ray.init(num_cpus=4, include_dashboard=False, namespace="serve",
             runtime_env={"env_vars": {"TALKING_HEAD_HOME": str(work / "home"), "OMP_NUM_THREADS": "1"}})
    try:
        serving.start(config, wait_s=240)
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield {"http": f"http://127.0.0.1:{http_port}", "channel": channel, "store": store, "redis": redis_module,
               "bundles": bundles, "key": SERVE_KEY, "config": config}
        channel.close()
    finally:
        serve.shutdown()
        ray.shutdown()
