"""deploy/k8s: both overlays render and every object validates offline (kubernetes-validate
strict for core objects, the KubeRay v1.7.0 CRD schemas for RayService/RayCluster, a
structural check for Prometheus Operator objects, Ray's ServeDeploySchema for serveConfigV2);
broken manifests are rejected; the embedded Serve config cannot drift from
services/gateway/serve_config.yaml."""

from __future__ import annotations

import copy
import re

import jsonschema
import pytest
import yaml

from services.gateway import serving

# k8s_checks.py, registered under this name by conftest.py
from _talking_head_deploy_k8s_checks import (DEPLOY, OVERLAYS, REPO, check_policy, find, pod_templates,
                                              render_manifests, validate_core, validate_crd,
                                              validate_serve_config)

GRPC_CAP = serving.grpc_message_bytes(serving.read_config())
CORE_KINDS = {"Secret", "Service", "StatefulSet", "Job", "PodDisruptionBudget", "NetworkPolicy"}
MONITORING_KINDS = {"PodMonitor", "ServiceMonitor"}
ENDPOINT = {"type": "object", "required": ["port"], "additionalProperties": False,
            "properties": {"port": {"type": "string"}, "path": {"type": "string", "pattern": "^/"},
                           "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                           "scheme": {"enum": ["http", "https"]}}}
SELECTOR = {"type": "object", "additionalProperties": False, "minProperties": 1,
            "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                           "matchExpressions": {"type": "array", "items": {
                               "type": "object", "required": ["key", "operator"],
                               "properties": {"key": {"type": "string"}, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                                              "values": {"type": "array", "items": {"type": "string"}}}}}}}
MONITOR_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {"type": "object", "required": ["selector"], "additionalProperties": False,
                 "properties": {"selector": SELECTOR,
                                "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": ENDPOINT},
                                "endpoints": {"type": "array", "minItems": 1, "items": ENDPOINT}}}},
}


def rayservice(objs):
    (rs,) = find(objs, "RayService", "talking-head")
    return rs


def serve_config(objs):
    return yaml.safe_load(rayservice(objs)["spec"]["serveConfigV2"])


def validate_monitor(obj):
    jsonschema.validate(obj, MONITOR_SCHEMA)
    key = "podMetricsEndpoints" if obj["kind"] == "PodMonitor" else "endpoints"
    assert obj["spec"].get(key), f"{obj['kind']} needs spec.{key}"


def validate_all(objs, crd_validators):
    for obj in objs:
        check_policy(obj)
        if obj["kind"] in CORE_KINDS:
            validate_core(obj)
        elif obj["kind"] in ("RayService", "RayCluster"):
            validate_crd(crd_validators, obj)
            for label, tmpl in pod_templates(obj):  # the embedded pods, strictly, as core objects
                validate_core({"apiVersion": "v1", "kind": "PodTemplate",
                               "metadata": {"name": f"check-{label}"}, "template": tmpl})
        elif obj["kind"] in MONITORING_KINDS:
            validate_monitor(obj)
        else:
            pytest.fail(f"no validator for {obj['kind']}")


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda o: f"{o}-overlay")
def test_every_object_validates(rendered, crd_validators, overlay):
    objs = rendered[overlay]
    assert {o["kind"] for o in objs} == CORE_KINDS | MONITORING_KINDS | {"RayService"}
    validate_all(objs, crd_validators)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda o: f"{o}-overlay")
def test_serve_config_v2_validates_with_ray(rendered, overlay):
    schema = validate_serve_config(serve_config(rendered[overlay]))
    assert {d.name for d in schema.applications[0].deployments} == {"Avatar", "Tts", "Denoise", "Encoder", "Renderer"}


def test_serve_config_cannot_drift(rendered):
    from services.gateway import serving

    local = serving.read_config()
    # GPU layout: the file itself, verbatim; CPU layout: what `talking-head serve` runs without GPUs
    assert rayservice(rendered["gpu"])["spec"]["serveConfigV2"] == serving.DEFAULT_CONFIG.read_text()
    assert serve_config(rendered["gpu"]) == local
    assert serve_config(rendered["cpu"]) == serving.adapt_config(local, gpus=0)
    assert render_manifests.main(["--check"]) == 0


def test_drift_is_detected(tmp_path, monkeypatch, capsys):
    changed = render_manifests.SERVE_CONFIG.read_text().replace("max_replicas: 8", "max_replicas: 9")
    assert "max_replicas: 9" in changed
    (tmp_path / "serve_config.yaml").write_text(changed)
    monkeypatch.setattr(render_manifests, "SERVE_CONFIG", tmp_path / "serve_config.yaml")
    assert render_manifests.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err


def test_ray_cluster_layout(rendered):
    for overlay, objs in rendered.items():
        rc = rayservice(objs)["spec"]["rayClusterConfig"]
        assert rc["enableInTreeAutoscaling"] is True
        head = rc["headGroupSpec"]
        assert head["rayStartParams"]["num-cpus"] == "0"  # no Serve replica on the head
        for c in head["template"]["spec"]["containers"]:
            assert "nvidia.com/gpu" not in str(c["resources"])
        groups = {g["groupName"]: g for g in rc["workerGroupSpecs"]}
        assert set(groups) == ({"cpu", "gpu"} if overlay == "gpu" else {"cpu"})
        for g in groups.values():
            assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        for label, tmpl in pod_templates(rayservice(objs)):
            for c in tmpl["spec"]["containers"]:
                ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                assert ports["serve"] == 8000 and ports["serve-grpc"] == 9000, label
                env = {e["name"]: e for e in c["env"]}
                assert env["TALKING_HEAD_API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "talking-head-api-keys"
                assert env["TALKING_HEAD_REDIS_URL"]["value"] == "redis://talking-head-redis:6379/0"
                assert env["TALKING_HEAD_WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]["optional"] is True
                # Serve's gRPC proxy cap (Ray's default is 2 GiB; grpc_options cannot set it)
                assert int(env["RAY_SERVE_GRPC_MAX_MESSAGE_SIZE"]["value"]) == GRPC_CAP
                if label != "head":
                    assert c["readinessProbe"]["httpGet"] == {"path": "/-/healthz", "port": 8000}
        # the serve Service declares both ports, too
        svc_ports = {p["name"]: p["port"] for p in rayservice(objs)["spec"]["serveService"]["spec"]["ports"]}
        assert svc_ports == {"serve": 8000, "serve-grpc": 9000}
    gpu = next(g for g in rayservice(rendered["gpu"])["spec"]["rayClusterConfig"]["workerGroupSpecs"]
               if g["groupName"] == "gpu")
    spec = gpu["template"]["spec"]
    (c,) = spec["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1 and "cuda" in c["image"]
    assert spec["nodeSelector"] and spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    # the CPU layout asks Ray for no GPU anywhere
    for d in serve_config(rendered["cpu"])["applications"][0]["deployments"]:
        assert "num_gpus" not in d.get("ray_actor_options", {})


def test_ray_version_matches_images(rendered):
    import ray

    version = rayservice(rendered["gpu"])["spec"]["rayClusterConfig"]["rayVersion"]
    for name in ("Dockerfile.cpu", "Dockerfile.cuda"):
        text = (DEPLOY / "docker" / name).read_text()
        assert re.search(rf"^ARG RAY_VERSION={re.escape(version)}$", text, re.M), name
    assert version == ray.__version__, "rayVersion should match the Ray the project is tested with"


def test_redis_and_subject_push(rendered):
    objs = rendered["gpu"]
    (sts,) = find(objs, "StatefulSet", "talking-head-redis")
    (svc,) = find(objs, "Service", "talking-head-redis")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert {p["port"] for p in svc["spec"]["ports"]} == {6379}
    # the subject Redis is not GCS fault tolerance's
    assert "gcsFaultToleranceOptions" not in rayservice(objs)["spec"]["rayClusterConfig"]
    (job,) = find(objs, "Job")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["command"][-3:] == ["subject", "push", "demo"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["TALKING_HEAD_REDIS_URL"] == "redis://talking-head-redis:6379/0"


def _selects(selector, labels):
    ok = selector.get("matchLabels", {}).items() <= labels.items()
    for e in selector.get("matchExpressions", []):
        ok &= (labels.get(e["key"]) in e["values"]) if e["operator"] == "In" else True
    return ok


def test_monitors_and_pdbs_select_something(rendered):
    objs = rendered["gpu"]
    rs = rayservice(objs)
    pod_labels = [t["metadata"]["labels"] for o in objs for _, t in pod_templates(o)]
    (pm,) = find(objs, "PodMonitor")
    ray_pods = [t for _, t in pod_templates(rs) if _selects(pm["spec"]["selector"], t["metadata"]["labels"])]
    assert len(ray_pods) == 3
    for t in ray_pods:
        assert "metrics" in {p["name"] for c in t["spec"]["containers"] for p in c["ports"]}
    (sm,) = find(objs, "ServiceMonitor")
    assert _selects(sm["spec"]["selector"], rs["spec"]["serveService"]["metadata"]["labels"])
    assert sm["spec"]["endpoints"][0]["port"] == "serve"
    for pdb in find(objs, "PodDisruptionBudget"):
        assert any(_selects(pdb["spec"]["selector"], lab) for lab in pod_labels), pdb["metadata"]["name"]


def _admits(policy, labels, port, same_namespace=True):
    """Does `policy`'s ingress admit a pod with `labels` (same namespace, or another one) to `port`?"""
    for rule in policy["spec"].get("ingress", []):
        if "ports" in rule and port not in {p["port"] for p in rule["ports"]}:
            continue
        for peer in rule.get("from", [{}]):  # no `from`: every source
            if "ipBlock" in peer:
                continue
            if "namespaceSelector" not in peer and not same_namespace:
                continue
            if "namespaceSelector" in peer and peer["namespaceSelector"] != {}:
                continue  # a labelled namespace: not the ones these checks use
            if _selects(peer.get("podSelector", {}), labels):
                return True
    return False


def test_network_policies_admit_the_proxy_ports_and_keep_ray_and_redis_internal(rendered):
    objs = rendered["gpu"]
    policies = {p["metadata"]["name"]: p for p in find(objs, "NetworkPolicy")}
    ray_policy, redis_policy = policies["talking-head-ray"], policies["talking-head-redis"]
    ray_pods = [t["metadata"]["labels"] for _, t in pod_templates(rayservice(objs))]
    (redis_pod,) = [t["metadata"]["labels"] for o in find(objs, "StatefulSet") for _, t in pod_templates(o)]
    (job_pod,) = [t["metadata"]["labels"] for o in find(objs, "Job") for _, t in pod_templates(o)]
    assert len(ray_pods) == 3 and all(_selects(ray_policy["spec"]["podSelector"], lab) for lab in ray_pods)
    assert _selects(redis_policy["spec"]["podSelector"], redis_pod)
    assert not _selects(ray_policy["spec"]["podSelector"], redis_pod)
    for policy in policies.values():  # egress stays open: webhooks reach public receivers
        assert policy["spec"]["policyTypes"] == ["Ingress"]
    client = {"app": "some-client"}  # any pod, in any namespace
    operator = {"app.kubernetes.io/name": "kuberay-operator"}
    for port in (8000, 9000):
        assert _admits(ray_policy, client, port, same_namespace=False)
    for port in (6379, 8265, 10001, 52365, 20000):  # GCS, dashboard, client, agent, a worker port
        assert not _admits(ray_policy, client, port) and not _admits(ray_policy, redis_pod, port)
        assert not _admits(ray_policy, job_pod, port)
        assert all(_admits(ray_policy, lab, port) for lab in ray_pods)
        assert not _admits(ray_policy, ray_pods[0], port, same_namespace=False)  # another RayCluster elsewhere
    assert _admits(ray_policy, operator, 8265, same_namespace=False)
    assert not _admits(ray_policy, operator, 6379, same_namespace=False)
    assert all(_admits(redis_policy, lab, 6379) for lab in ray_pods + [job_pod])
    assert not _admits(redis_policy, client, 6379) and not _admits(redis_policy, client, 6379, same_namespace=False)


def test_secret_holds_api_keys(rendered):
    (secret,) = find(rendered["gpu"], "Secret", "talking-head-api-keys")
    assert "TALKING_HEAD_API_KEYS" in secret["stringData"]


# --- broken manifests are rejected -------------------------------------------------------

def test_rejects_rayservice_with_wrong_field_type(rendered, crd_validators):
    rs = copy.deepcopy(rayservice(rendered["gpu"]))
    rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplicas"] = "one"
    with pytest.raises(jsonschema.ValidationError, match="minReplicas"):
        validate_crd(crd_validators, rs)


def test_rejects_rayservice_with_unknown_field(rendered, crd_validators):
    rs = copy.deepcopy(rayservice(rendered["gpu"]))
    rs["spec"]["rayClusterConfig"]["enableInTreeAutoscalling"] = True
    with pytest.raises(jsonschema.ValidationError, match="enableInTreeAutoscalling"):
        validate_crd(crd_validators, rs)


def test_rejects_raycluster_with_bad_container(rendered, crd_validators):
    rc = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "x"},
          "spec": copy.deepcopy(rayservice(rendered["gpu"])["spec"]["rayClusterConfig"])}
    validate_crd(crd_validators, rc)
    del rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(jsonschema.ValidationError, match="name"):
        validate_crd(crd_validators, rc)


def test_rejects_deployment_without_image():
    dep = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers:
        - name: app
          resources: {requests: {cpu: 1, memory: 1Gi}, limits: {cpu: 1, memory: 1Gi}}
          readinessProbe: {tcpSocket: {port: 80}}
          livenessProbe: {tcpSocket: {port: 80}}
""")
    validate_core(dep)  # the API allows it (image is optional in the schema) ...
    with pytest.raises(ValueError, match="no image"):
        check_policy(dep)  # ... the project's rules do not


def test_rejects_core_object_with_unknown_or_mistyped_field(rendered):
    import kubernetes_validate

    (sts,) = find(rendered["gpu"], "StatefulSet")
    bad = copy.deepcopy(sts)
    bad["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_core(bad)
    bad = copy.deepcopy(sts)
    bad["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_core(bad)


def test_rejects_serve_config_with_unknown_field_or_wrong_type(rendered):
    from pydantic import ValidationError

    for where in ("top", "deployment", "autoscaling"):
        cfg = serve_config(rendered["gpu"])
        dep = cfg["applications"][0]["deployments"][4]
        {"top": cfg, "deployment": dep, "autoscaling": dep["autoscaling_config"]}[where]["max_replica"] = 8
        with pytest.raises(ValueError, match="unknown field .*max_replica"):
            validate_serve_config(cfg)
    cfg = serve_config(rendered["gpu"])
    cfg["applications"][0]["deployments"][0]["max_ongoing_requests"] = "many"
    with pytest.raises(ValidationError):
        validate_serve_config(cfg)


def test_rejects_monitor_without_endpoints(rendered):
    pm = copy.deepcopy(find(rendered["gpu"], "PodMonitor")[0])
    pm["spec"]["podMetricEndpoints"] = pm["spec"].pop("podMetricsEndpoints")
    with pytest.raises(jsonschema.ValidationError):
        validate_monitor(pm)


def test_kustomize_failures_are_errors(tmp_path):
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n")
    (tmp_path / "p.yaml").write_text("- {op: test, path: /data/k, value: other}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n  - path: p.yaml\n    target: {kind: ConfigMap, name: a}\n")
    with pytest.raises(ValueError, match="test failed"):
        render_manifests.kustomize(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n  - patch: |\n      apiVersion: v1\n      kind: ConfigMap\n"
        "      metadata: {name: a}\n      data: {k: w, j: null}\n")
    (obj,) = render_manifests.kustomize(tmp_path)
    assert obj["data"] == {"k": "w"}


def test_repo_root_layout():
    assert (REPO / "services" / "gateway" / "serve_config.yaml").is_file()
