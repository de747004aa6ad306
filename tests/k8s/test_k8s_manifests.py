"""Every rendered object is valid for Kubernetes 1.33, and the manifests agree with the code.

Built-in kinds are checked against the JSON schemas that `kubernetes-validate` ships (strict:
an unknown field fails). Custom resources (KEDA, Prometheus Operator, Strimzi) have no schema
there, so they get a structural check of apiVersion, kind and required fields instead.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from streamer.settings import StreamerSettings

K8S = Path(__file__).resolve().parents[2] / "k8s"
K8S_VERSION = "1.33.0"
SCALERS = {"keda": "ScaledObject", "hpa": "HorizontalPodAutoscaler"}

# apiVersion/kind -> required paths (dotted) for the custom resources we ship.
CRD_REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): (
        "metadata.name",
        "spec.scaleTargetRef.name",
        "spec.triggers",
        "spec.maxReplicaCount",
    ),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): ("metadata.name",),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): (
        "metadata.name",
        "spec.selector.matchLabels",
        "spec.endpoints",
    ),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): (
        "metadata.name",
        "metadata.labels.strimzi.io/cluster",
        "spec.partitions",
        "spec.replicas",
        "spec.config",
    ),
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): (
        "metadata.name",
        "metadata.labels.strimzi.io/cluster",
        "spec.authentication.type",
        "spec.authorization.acls",
    ),
}


def _get(obj: dict[str, Any], dotted: str) -> Any:
    # Label keys contain dots and slashes: match the longest key at each level.
    parts = dotted.split(".")
    while parts:
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if isinstance(obj, dict) and key in obj:
                obj, parts = obj[key], parts[n:]
                break
        else:
            raise KeyError(dotted)
    return obj


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(docs: list[dict]) -> list[str]:
    return [d["kind"] for d in docs]


def _unique_docs(rendered: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    """Each distinct object once (most are the same in every combination), with a source."""
    seen: dict[str, tuple[str, dict]] = {}
    for name, docs in rendered.items():
        for doc in docs:
            seen.setdefault(json.dumps(doc, sort_keys=True), (name, doc))
    return list(seen.values())


def test_every_object_is_valid(rendered: dict[str, list[dict]]) -> None:
    errors = []
    for name, doc in _unique_docs(rendered):
        key = (doc["apiVersion"], doc["kind"])
        what = f"{name}: {doc['kind']}/{doc['metadata'].get('name')}"
        if key in CRD_REQUIRED:
            for path in CRD_REQUIRED[key]:
                try:
                    value = _get(doc, path)
                except KeyError:
                    errors.append(f"{what}: missing {path}")
                    continue
                if value in (None, "", [], {}):
                    errors.append(f"{what}: empty {path}")
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{what}: no schema for {key}; add a structural check to CRD_REQUIRED")
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{what}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)


def test_every_combination_rendered(rendered: dict[str, list[dict]], combo_id: str) -> None:
    overlay, *components = combo_id.split("+")
    docs = rendered[combo_id]
    for component, kind in SCALERS.items():
        assert (kind in kinds(docs)) == (component in components)
    assert ("ServiceMonitor" in kinds(docs)) == ("servicemonitor" in components)
    assert ("PersistentVolumeClaim" in kinds(docs)) != ("bundle-init" in components)
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert namespaces == {"logprompt"}, f"{combo_id}: {namespaces}"


def _env(docs: list[dict]) -> dict[str, str]:
    deployment = one(docs, "Deployment", "logprompt-streamer")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (ref,) = container["envFrom"]
    return one(docs, "ConfigMap", ref["configMapRef"]["name"])["data"]


def _load_settings_from(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[StreamerSettings, list[str]]:
    """The settings the streamer would build from `env` alone, and the keys it did not read.

    extra="forbid" rejects an unknown nested name (LOGPROMPT_KAFKA__TYPO) but pydantic-settings
    silently ignores an unknown top-level one (LOGPROMPT_TYPO): hence the second list.
    """
    for key in list(os.environ):
        if key.startswith("LOGPROMPT_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = StreamerSettings()
    set_fields = settings.model_dump(exclude_unset=True)
    unread = []
    for key in env:
        node: Any = set_fields
        for part in key.removeprefix("LOGPROMPT_").lower().split("__"):
            if not (isinstance(node, dict) and part in node):
                unread.append(key)
                break
            node = node[part]
    return settings, unread


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_configmap_is_valid_streamer_settings(
    rendered: dict[str, list[dict]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(rendered[overlay])
    assert all(key.startswith("LOGPROMPT_") for key in env), sorted(env)
    settings, unread = _load_settings_from(env, monkeypatch)
    assert unread == [], f"keys that set no StreamerSettings field: {unread}"
    assert settings.kafka.sasl_password is None, "the password comes from a mounted file"
    assert settings.kafka.sasl_password_file is not None
    assert settings.execution_provider == {"cpu": "cpu", "gpu": "cuda"}[overlay]


def test_misspelled_setting_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    _, unread = _load_settings_from(
        {"LOGPROMPT_ALERTS_TOPC": "x", "LOGPROMPT_ALERTS_TOPIC": "y"}, monkeypatch
    )
    assert unread == ["LOGPROMPT_ALERTS_TOPC"]
    with pytest.raises(ValueError, match="extra"):
        _load_settings_from({"LOGPROMPT_KAFKA__BOOTSTRAP_SERVER": "x"}, monkeypatch)


def test_deployment_matches_settings(rendered: dict[str, list[dict]], combo_id: str) -> None:
    docs = rendered[combo_id]
    env = _env(docs)
    pod = one(docs, "Deployment", "logprompt-streamer")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    shutdown = float(env.get("LOGPROMPT_SHUTDOWN_TIMEOUT_S", StreamerSettings().shutdown_timeout_s))
    assert pod["terminationGracePeriodSeconds"] > shutdown
    port = int(env["LOGPROMPT_HTTP_PORT"])
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["command"] == ["logprompt", "stream"]

    # Every path the settings name is a mounted file or directory.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for key in ("LOGPROMPT_KAFKA__SASL_PASSWORD_FILE", "LOGPROMPT_KAFKA__SSL_CA_LOCATION"):
        parent, _, filename = env[key].rpartition("/")
        assert parent in mounts and mounts[parent]["readOnly"], key
        volume = next(v for v in pod["volumes"] if v["name"] == mounts[parent]["name"])
        assert [i["path"] for i in volume["secret"]["items"]] == [filename], key
    assert env["LOGPROMPT_BUNDLE_PATH"].startswith("/models/")
    assert mounts["/models"]["readOnly"] is True
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"]["name"])

    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"

    gpu = combo_id.startswith("gpu")
    assert ("nvidia.com/gpu" in container["resources"]["limits"]) == gpu
    assert container["image"].endswith("-gpu:0.1.0" if gpu else "-cpu:0.1.0")
    assert bool(pod.get("tolerations")) == gpu


def _partitions(rendered: dict[str, list[dict]], topic: str) -> int:
    return one(rendered["strimzi"], "KafkaTopic", topic)["spec"]["partitions"]


def test_autoscalers_capped_at_partitions(rendered: dict[str, list[dict]]) -> None:
    env = _env(rendered["cpu"])
    (topic,) = json.loads(env["LOGPROMPT_INPUT_TOPICS"])
    partitions = _partitions(rendered, topic)
    scaled = one(rendered["cpu+keda"], "ScaledObject")
    assert scaled["spec"]["maxReplicaCount"] == partitions
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["topic"] == topic
    assert trigger["metadata"]["consumerGroup"] == env["LOGPROMPT_GROUP_ID"]
    assert trigger["metadata"]["bootstrapServers"] == env["LOGPROMPT_KAFKA__BOOTSTRAP_SERVERS"]
    assert int(trigger["metadata"]["lagThreshold"]) > 0
    hpa = one(rendered["cpu+hpa"], "HorizontalPodAutoscaler")
    assert hpa["spec"]["maxReplicas"] == partitions


def test_strimzi_topics_and_acls_match_settings(rendered: dict[str, list[dict]]) -> None:
    env = _env(rendered["cpu"])
    docs = rendered["strimzi"]
    inputs = json.loads(env["LOGPROMPT_INPUT_TOPICS"])
    outputs = [env["LOGPROMPT_ALERTS_TOPIC"], env["LOGPROMPT_DEAD_LETTER_TOPIC"]]
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "KafkaTopic"} == {
        *inputs,
        *outputs,
    }
    for topic in (d for d in docs if d["kind"] == "KafkaTopic"):
        assert topic["spec"]["config"]["cleanup.policy"] == "delete"
        assert int(topic["spec"]["config"]["retention.ms"]) > 0
    user = one(docs, "KafkaUser", env["LOGPROMPT_KAFKA__SASL_USERNAME"])
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    assert env["LOGPROMPT_KAFKA__SASL_MECHANISM"] == "SCRAM-SHA-512"
    acls = {
        (a["resource"]["type"], a["resource"]["name"], a["resource"].get("patternType", "literal")): set(
            a["operations"]
        )
        for a in user["spec"]["authorization"]["acls"]
    }
    expected = {("topic", t, "literal"): {"Read", "Describe"} for t in inputs}
    expected[("group", env["LOGPROMPT_GROUP_ID"], "literal")] = {"Read", "Describe"}
    expected |= {("topic", t, "literal"): {"Write", "Describe"} for t in outputs}
    expected[("transactionalId", env["LOGPROMPT_TRANSACTIONAL_ID_PREFIX"], "prefix")] = {
        "Write",
        "Describe",
    }
    assert acls == expected  # least privilege: nothing more


def test_network_policy(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["cpu"]
    policy = one(docs, "NetworkPolicy", "logprompt-streamer")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"port": 8080, "protocol": "TCP"}]
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    broker_port = int(_env(docs)["LOGPROMPT_KAFKA__BOOTSTRAP_SERVERS"].rsplit(":", 1)[1])
    assert ports == {53, broker_port}


def test_config_change_renames_configmap(build: Callable[[Path], list[dict]], tmp_path: Path) -> None:
    """The generator's hash suffix is what rolls the pods when a setting changes."""
    shutil.copytree(K8S, tmp_path / "k8s")
    before = _env_name(build(tmp_path / "k8s/overlays/cpu"))
    env_file = tmp_path / "k8s/base/streamer.env"
    env_file.write_text(env_file.read_text().replace("LOG_LEVEL=INFO", "LOG_LEVEL=DEBUG"))
    after = _env_name(build(tmp_path / "k8s/overlays/cpu"))
    assert before != after


def _env_name(docs: list[dict]) -> str:
    pod = one(docs, "Deployment", "logprompt-streamer")["spec"]["template"]["spec"]
    return pod["containers"][0]["envFrom"][0]["configMapRef"]["name"]


def test_train_job_publishes_atomically() -> None:
    (job,) = yaml.safe_load_all((K8S / "jobs" / "train-job.yaml").read_text())
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "logprompt train" in script and "export-onnx" in script
    assert script.index("export-onnx") < script.index('mv "$staging"') < script.index("mv -T")
    for name in ("manifest.json", "model.onnx", "model.int8.onnx", "tokenizer.json"):
        assert name in script


def test_train_job_commands_parse_with_the_real_command_lines() -> None:
    """The job's `logprompt train` and `export-onnx` lines are accepted by the CLIs' own
    parsers (they were not: `--data`, `--checkpoint` and `--output` do not exist there)."""
    import shlex
    import string

    import typer

    from export.cli import build_parser
    from training.cli import register

    (job,) = yaml.safe_load_all((K8S / "jobs" / "train-job.yaml").read_text())
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]} | {"staging": "/models/.staging-x"}
    script = container["args"][0].replace("\\\n", " ")
    lines = {line.split()[0] + " " + line.split()[1]: line for line in
             (raw.strip() for raw in script.splitlines()) if line.startswith(
                 ("logprompt train", "export-onnx"))}
    train = shlex.split(string.Template(lines["logprompt train"]).substitute(env))
    export = shlex.split(string.Template(next(v for k, v in lines.items()
                                              if k.startswith("export-onnx"))).substitute(env))
    app = typer.Typer()
    register(app)
    group = typer.main.get_command(app)
    root = group.make_context("logprompt", ["train"], resilient_parsing=True)
    ctx = group.get_command(root, "train").make_context("train", train[2:])  # type: ignore[attr-defined]
    assert ctx.params["dataset"] == "hdfs" and str(ctx.params["datasets_root"]) == "/data"
    args = build_parser().parse_args(export[1:])
    assert str(args.checkpoint) == "/scratch/run" and str(args.output) == "/models/.staging-x"
