"""Start the Ray Serve application from the Serve config file (`talking-head serve`)."""

from __future__ import annotations

import copy
import math
import os
import time
from pathlib import Path
from typing import Any

from services.common.errors import InvalidInput, Unavailable

DEFAULT_CONFIG = Path(__file__).resolve().with_name("serve_config.yaml")
APP_NAME = "talking-head"


def read_config(path: str | Path | None = None) -> dict[str, Any]:
    import yaml

    p = Path(path) if path is not None else DEFAULT_CONFIG
    if not p.is_file():
        raise InvalidInput(f"serve config not found: {p}")
    data = yaml.safe_load(p.read_text())
    if not isinstance(data, dict) or not data.get("applications"):
        raise InvalidInput(f"{p} is not a Ray Serve config (no applications)")
    return data


def adapt_config(config: dict[str, Any], *, gpus: float = 0, http_port: int | None = None,
                 grpc_port: int | None = None, http_host: str | None = None,
                 app_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config for this machine: no GPUs → drop num_gpus; optional port/host/args overrides."""
    cfg = copy.deepcopy(config)
    if http_port is not None:
        cfg.setdefault("http_options", {})["port"] = http_port
    if http_host is not None:
        cfg.setdefault("http_options", {})["host"] = http_host
    if grpc_port is not None:
        cfg.setdefault("grpc_options", {})["port"] = grpc_port
    for app in cfg["applications"]:
        if app_args:
            app["args"] = {**(app.get("args") or {}), **app_args}
        for dep in app.get("deployments", []):
            opts = dep.get("ray_actor_options") or {}
            if gpus <= 0 and opts.get("num_gpus"):
                opts.pop("num_gpus")
    return cfg


def sets_render_threads(config: dict[str, Any]) -> bool:
    """Whether an application of the config sets the renderer's threads itself."""
    return any("render_threads" in (app.get("args") or {}) for app in config["applications"])


def validate(config: dict[str, Any]) -> Any:
    from ray.serve.schema import ServeDeploySchema

    return ServeDeploySchema.model_validate(config)


def cpus_needed(config: dict[str, Any]) -> float:
    """Logical CPUs the minimum replicas ask for."""
    total = 0.0
    for app in config["applications"]:
        for dep in app.get("deployments", []):
            n = (dep.get("autoscaling_config") or {}).get("min_replicas", dep.get("num_replicas", 1)) or 1
            total += n * float((dep.get("ray_actor_options") or {}).get("num_cpus", 1))
    return total


#: Serve marks a proxy unhealthy after 3 ready/health checks of 5–10 s; on a busy 2-core
#: laptop (or CI runner) a starting proxy can miss them and is killed in a loop.
PATIENT_HEALTH_CHECKS = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "30",
                         "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "30"}


def patient_health_checks() -> None:
    """Lengthen Serve's proxy checks for a Ray started from this process (call before
    ray.init: the controller inherits the environment); explicit settings win."""
    for key, value in PATIENT_HEALTH_CHECKS.items():
        os.environ.setdefault(key, value)


#: Smallest gRPC message cap for Serve's proxies (Ray's own default is 2 GiB): room for
#: rendered frame batches of the stage services.
MIN_GRPC_MESSAGE_BYTES = 64 << 20


def grpc_message_bytes(config: dict[str, Any]) -> int:
    """The gRPC message cap for this config: the largest Avatar body cap plus room for the
    rest of the message, at least MIN_GRPC_MESSAGE_BYTES."""
    from services.gateway.request import Limits

    body = max((Limits.from_dict((app.get("args") or {}).get("limits")).max_body_bytes
                for app in config["applications"]), default=0)
    return max(MIN_GRPC_MESSAGE_BYTES, body + (1 << 20))


def prepare_local_ray(config: dict[str, Any]) -> None:
    """Environment for a Ray cluster this process starts (call before ray.init: its processes
    inherit it; explicit settings win): patient proxy checks and the gRPC message cap, which
    Ray 2.60 reads only from $RAY_SERVE_GRPC_MAX_MESSAGE_SIZE; and every port but the Serve
    proxies' on loopback (services/gateway/loopback.py)."""
    from services.gateway.loopback import keep_ray_on_loopback

    patient_health_checks()
    os.environ.setdefault("RAY_SERVE_GRPC_MAX_MESSAGE_SIZE", str(grpc_message_bytes(config)))
    schema = validate(config)
    keep_ray_on_loopback([schema.http_options.port, schema.grpc_options.port])


def start(config: dict[str, Any], wait_s: float = 300.0) -> None:
    """Connect to (or start) Ray, start Serve's proxies and deploy the config; wait until RUNNING."""
    import ray
    from ray.serve._private import api as serve_api
    from ray.serve.config import gRPCOptions

    schema = validate(config)
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(namespace="serve")
        else:  # a laptop: enough logical CPUs for the minimum replicas (the OS shares the cores)
            prepare_local_ray(config)
            ray.init(namespace="serve", include_dashboard=False,
                     num_cpus=max(os.cpu_count() or 1, math.ceil(cpus_needed(config) + 1)))
    client = serve_api.serve_start(http_options=schema.http_options.model_dump(),
                                   grpc_options=gRPCOptions(**schema.grpc_options.model_dump()),
                                   proxy_location=schema.proxy_location)
    client.deploy_apps(schema, _blocking=False)
    wait_running([a.name for a in schema.applications], wait_s)


def wait_running(names: list[str], wait_s: float) -> None:
    from ray import serve

    deadline = time.time() + wait_s
    while True:
        apps = serve.status().applications
        states = {n: (apps[n].status if n in apps else "NOT_STARTED") for n in names}
        if all(s == "RUNNING" for s in states.values()):
            return
        failed = {n: apps[n].message for n, s in states.items() if s in ("DEPLOY_FAILED", "UNHEALTHY")}
        if failed:
            raise Unavailable(f"deployment failed: {failed}")
        if time.time() > deadline:
            raise Unavailable(f"applications not running after {wait_s:g} s: {states}")
        time.sleep(0.5)


def gpus_available() -> float:
    try:
        import torch

        return float(torch.cuda.device_count())
    except Exception:  # noqa: BLE001
        return 0.0
