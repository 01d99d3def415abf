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
