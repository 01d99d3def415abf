"""Shared helpers for the deploy/ checks (loaded by conftest.py): the rendered overlays, the
KubeRay CRD schemas (from <repo>/../shared/schemas/, as CI lays it out) and strict validators."""

from __future__ import annotations

import os

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
SCHEMAS = REPO.parent / "shared" / "schemas"
OVERLAYS = ("cpu", "gpu")
K8S_VERSION = "1.30"  # kubernetes-validate ships schemas for 1.30 (and newer)


def load_module(name: str, path: Path | None = None):
    """Import deploy/<name>.py (deploy/ is not a package) once."""
    key = f"_talking_head_deploy_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, path or DEPLOY / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        spec.loader.exec_module(mod)
    return sys.modules[key]


render_manifests = load_module("render_manifests")


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Both overlays as `kubectl kustomize` renders them (what `kubectl apply -k` applies)."""
    return {o: render_manifests.render(o) for o in OVERLAYS}


def find(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def strict_schema(schema: Any) -> Any:
    """A CRD openAPIV3Schema as a strict JSON Schema: unknown fields are errors (what
    `kubectl apply --validate=strict` reports), `nullable` and int-or-string mapped;
    CEL rules (x-kubernetes-validations) cannot be evaluated offline and are dropped."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if ("properties" in out and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="session")
def crd_validators() -> dict[str, Any]:
    import jsonschema

    if not SCHEMAS.is_dir():
        # CI always has the team's shared folder beside the clone: there a missing schema is
        # a failure. A checkout elsewhere (a laptop) skips these checks and says why.
        msg = (f"KubeRay CRD schemas not found at {SCHEMAS} (expected the shared folder beside the "
               "repository: ../shared/schemas/)")
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    validators = {}
    for kind, fname in (("RayService", "ray.io_rayservices.yaml"), ("RayCluster", "ray.io_rayclusters.yaml")):
        path = SCHEMAS / fname
        if not path.is_file():
            pytest.fail(f"missing CRD schema {path}", pytrace=False)
        crd = yaml.safe_load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        schema = strict_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
        validators[kind] = jsonschema.Draft7Validator(schema)
    return validators


def validate_core(obj: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def validate_crd(validators: dict[str, Any], obj: dict[str, Any]) -> None:
    import jsonschema

    errors = sorted(validators[obj["kind"]].iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise jsonschema.ValidationError(f"{'/'.join(map(str, e.absolute_path))}: {e.message}")


def pod_templates(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, pod template) for every pod template in a workload or RayService."""
    if obj["kind"] == "RayService":
        rc = obj["spec"]["rayClusterConfig"]
        return ([("head", rc["headGroupSpec"]["template"])]
                + [(g["groupName"], g["template"]) for g in rc.get("workerGroupSpecs", [])])
    if obj["kind"] in ("StatefulSet", "Deployment", "Job", "DaemonSet"):
        return [(obj["metadata"]["name"], obj["spec"]["template"])]
    return []


def check_policy(obj: dict[str, Any]) -> None:
    """Project rules on top of the schemas: every container names an image and has resource
    requests and limits; long-running containers have readiness and liveness probes."""
    for label, tmpl in pod_templates(obj):
        for c in tmpl["spec"].get("containers", []) + tmpl["spec"].get("initContainers", []):
            where = f"{obj['kind']}/{obj['metadata']['name']} {label}/{c.get('name')}"
            if not c.get("image"):
                raise ValueError(f"{where}: no image")
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(part) or {}):
                        raise ValueError(f"{where}: no {part}.{r}")
            if obj["kind"] != "Job" and not (c.get("readinessProbe") and c.get("livenessProbe")):
                raise ValueError(f"{where}: readiness and liveness probes required")


def validate_serve_config(config: dict[str, Any]) -> Any:
    """Ray's ServeDeploySchema, plus no unknown fields: Ray 2.60's models ignore extra keys,
    so a typo (`max_replica: 8`) would silently fall back to a default."""
    from pydantic import BaseModel
    from ray.serve.config import AutoscalingConfig
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(config)

    def walk(data: Any, model: Any, where: str) -> None:
        if isinstance(model, BaseModel) and isinstance(data, dict):
            fields = type(model).model_fields
            names = set(fields) | {f.alias for f in fields.values() if f.alias}
            for key, value in data.items():
                if key not in names:
                    raise ValueError(f"serveConfigV2: unknown field {where}{key}")
                sub = getattr(model, key, None)
                if key == "autoscaling_config" and isinstance(sub, dict):  # a plain dict in the schema
                    sub = AutoscalingConfig.model_validate(sub)
                walk(value, sub, f"{where}{key}.")
        elif isinstance(model, list) and isinstance(data, list):
            for i, (d, m) in enumerate(zip(data, model)):
                walk(d, m, f"{where[:-1]}[{i}].")

    walk(config, schema, "")
    return schema
