"""The checked-in Serve config: valid for Ray's ServeDeploySchema, every deployment the app
builds is configured there, and its gRPC servicer functions import."""

from __future__ import annotations

import importlib

from services.gateway import serving


def test_config_validates_and_covers_every_deployment():
    config = serving.read_config()
    schema = serving.validate(config)
    app = schema.applications[0]
    assert app.import_path == "services.gateway.app:build_app"
    names = {d.name for d in app.deployments}
    assert names == {"Avatar", "Tts", "Denoise", "Encoder", "Renderer"}
    for d in app.deployments:
        assert d.autoscaling_config and d.ray_actor_options, d.name
    renderer = next(d for d in app.deployments if d.name == "Renderer")
    assert renderer.ray_actor_options.num_gpus == 1
    assert schema.grpc_options.port == 9000 and schema.http_options.port == 8000


def test_cpu_machines_drop_gpus_and_overrides_apply():
    config = serving.adapt_config(serving.read_config(), gpus=0, http_port=18000, grpc_port=19000,
                                  app_args={"redis_url": "redis://x:1/0"})
    serving.validate(config)
    deps = config["applications"][0]["deployments"]
    assert all("num_gpus" not in (d.get("ray_actor_options") or {}) for d in deps)
    assert config["http_options"]["port"] == 18000 and config["grpc_options"]["port"] == 19000
    assert config["applications"][0]["args"]["redis_url"] == "redis://x:1/0"
    assert config["applications"][0]["args"]["limits"]["max_streams"] >= 1
    # the original is untouched
    assert serving.read_config()["applications"][0]["deployments"][-1]["ray_actor_options"]["num_gpus"] == 1


def test_grpc_servicer_functions_import():
    for path in serving.read_config()["grpc_options"]["grpc_servicer_functions"]:
        module, name = path.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), path


def test_config_limits_and_webhooks_parse_strictly():
    from services.gateway.request import Limits
    from services.gateway.webhooks import WebhookPolicy

    args = serving.read_config()["applications"][0]["args"]
    limits = Limits.from_dict(args["limits"])
    policy = WebhookPolicy.from_dict(args["webhooks"])
    assert policy.allow_hosts == () and policy.allow_http is False and policy.secret == ""  # secrets: env only
    assert limits.max_queued_jobs >= 1 and limits.max_body_bytes > limits.max_audio_seconds * 48_000 * 4
    # the proxies' gRPC cap holds the largest body the Avatar accepts, and is far below Ray's 2 GiB
    assert limits.max_body_bytes < serving.grpc_message_bytes(serving.read_config()) < 2**31 - 1


def test_prepare_local_ray_sets_the_grpc_cap_unless_set(monkeypatch):
    import ray._private.ray_constants as constants

    monkeypatch.setattr(constants, "ENABLE_RAY_CLUSTER", constants.ENABLE_RAY_CLUSTER)  # restored after
    config = serving.read_config()
    for var in ("RAY_SERVE_GRPC_MAX_MESSAGE_SIZE", *serving.PATIENT_HEALTH_CHECKS,
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "LD_PRELOAD", "TALKING_HEAD_PUBLIC_PORTS"):
        monkeypatch.delenv(var, raising=False)  # and restored afterwards
    serving.prepare_local_ray(config)
    import os

    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"  # Ray's own ports on loopback

    assert int(os.environ["RAY_SERVE_GRPC_MAX_MESSAGE_SIZE"]) == serving.grpc_message_bytes(config)
    monkeypatch.setenv("RAY_SERVE_GRPC_MAX_MESSAGE_SIZE", "123")
    serving.prepare_local_ray(config)
    assert os.environ["RAY_SERVE_GRPC_MAX_MESSAGE_SIZE"] == "123"
