"""``hardening k6-operator manifest``: the manifests for one k6 test split across Kubernetes pods.

Writes pvc.yaml, configmap.yaml, testrun.yaml and collector.yaml into ``--out`` (docs/distributed.md).
Exit codes: 0 written; 2 bad input (missing or broken script, bad SLO file, ``--parallelism`` < 1 or above
the script's VUs, bad name, a secret in ``--env``, unwritable ``--out``); 3 k6 missing or crashed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hardening.errors import EXIT_OK, ConfigError
from hardening.loadtest import DEFAULT_SLO


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: use KEY=VALUE")
    return key, value


def register(sub) -> None:
    p = sub.add_parser(
        "k6-operator", help="run one k6 test on Kubernetes with the k6-operator (writes manifests)",
        description="Distributed k6 on Kubernetes through the k6-operator (k6.io/v1alpha1 TestRun).",
    )
    group = p.add_subparsers(dest="k6_operator_command", metavar="SUBCOMMAND")
    m = group.add_parser(
        "manifest", help="write the ConfigMap, TestRun, results volume and collector pod for a script",
        description="Check SCRIPT and the SLO file with the real k6, then write into --out: configmap.yaml "
        "(the script, the SLO file as JSON and the generated wrapper that hands every threshold to k6), "
        "testrun.yaml (k6.io/v1alpha1, --parallelism runners, each writing its raw NDJSON and summary export "
        "to the results volume under its own name), pvc.yaml (that volume, ReadWriteMany) and collector.yaml "
        "(a pod to kubectl cp the results from). Prints each runner's k6 command and the kubectl steps.",
        epilog="exit codes: 0 written; 2 bad input (missing/broken script, bad SLO file, --parallelism < 1 or "
        "above the script's VUs, bad name, a secret in --env, unwritable --out); 3 k6 missing or crashed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("--script", type=Path, required=True, help="the k6 script (one module: .js, .mjs or .ts)")
    slo = m.add_mutually_exclusive_group()
    slo.add_argument("--slo", type=Path, default=None,
                     help=f"SLO file (JSON or YAML), merged with the script's own thresholds (default {DEFAULT_SLO} "
                     "when it exists here, else only the script's thresholds)")
    slo.add_argument("--no-slo", action="store_true", help="allow a test without any threshold")
    m.add_argument("--parallelism", type=int, required=True, metavar="N", help="number of k6 runner pods")
    m.add_argument("--name", default=None, help="TestRun name (default k6-<script stem>); also prefixes "
                   "<name>-script, <name>-results, <name>-collector")
    m.add_argument("--namespace", default=None, help="namespace written into every object (default: none, "
                   "kubectl's current namespace)")
    m.add_argument("--image", default=None, help="runner image (default grafana/k6:1.1.0, the k6 hardening pins)")
    m.add_argument("--env", type=_env_pair, action="append", default=[], metavar="KEY=VALUE",
                   help="environment of every runner (k6's __ENV), e.g. BASE_URL=http://api.shop:8080; repeatable")
    m.add_argument("--env-from-secret", default=None, metavar="SECRET",
                   help="a Kubernetes Secret whose keys become environment variables of every runner")
    m.add_argument("--storage", default=None, help="size of the results volume (default 5Gi)")
    m.add_argument("--storage-class", default=None, help="StorageClass of the results volume (one that offers "
                   "ReadWriteMany: NFS, CephFS, EFS, Azure Files, Filestore, ...)")
    m.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the YAML files")
    m.set_defaults(func=cmd_manifest)
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])


def cmd_manifest(args) -> int:
    from hardening.distributed.operator import DEFAULT_IMAGE, DEFAULT_STORAGE, ManifestRequest, manifest

    slo = args.slo
    if slo is None and not args.no_slo and DEFAULT_SLO.is_file():
        print(f"hardening: using SLO file {DEFAULT_SLO} (found in the current directory; --slo FILE to choose "
              "another, --no-slo for none)", file=sys.stderr)
        slo = DEFAULT_SLO
    env = dict(args.env)
    if len(env) != len(args.env):
        raise ConfigError("--env: the same KEY is given twice")
    req = ManifestRequest(
        script=args.script, parallelism=args.parallelism, slo=slo, name=args.name, namespace=args.namespace,
        image=args.image or DEFAULT_IMAGE, env=env, env_from_secret=args.env_from_secret,
        storage=args.storage or DEFAULT_STORAGE, storage_class=args.storage_class, no_slo=args.no_slo,
    )
    manifest(req, args.out)
    return EXIT_OK
