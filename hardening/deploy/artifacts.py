"""Versioned, reproducible, verifiable deployment artifacts.

An artifact is ``<service>-<YYYYMMDD-HHMMSS>-<sha7>.tar.gz`` plus a manifest (the seed's fields
version/commit/timestamp/branch/actor, every file's size and sha256, the tarball's sha256), an in-toto /
SLSA v1 provenance statement, and optional Ed25519 signatures of both. With a pinned public key,
``verify_artifact`` requires and checks both signatures and that the provenance is about this tarball.

Reproducible: sorted paths, uid/gid 0, empty owner names, mtime = ``SOURCE_DATE_EPOCH``, modes 0644/0755,
PAX format, gzip header with mtime 0 and no file name. The same inputs give byte-identical tarballs.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import stat
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hardening import __version__
from hardening.errors import CheckFailed, ConfigError
from hardening.masking import mask_obj

MANIFEST_SCHEMA = 1
VERSION_RE = re.compile(r"^(?P<service>[a-z0-9][a-z0-9_.-]*)-(?P<date>\d{8})-(?P<time>\d{6})-(?P<sha7>[0-9a-f]{7})$")
SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
PUBLIC_KEY_ENV = "HARDENING_ARTIFACT_PUBKEY"
PROVENANCE_BUILD_TYPE = "https://github.com/hardening/hardening/artifact-build/v1"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BuildResult:
    version: str
    tarball: Path
    manifest: Path
    service_manifest: Path
    provenance: Path
    signature: Path | None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def make_version(service: str, when: datetime, commit: str) -> str:
    """``backend-20260114-153045-a3f2c1e`` (the seed's ``{service}-{timestamp}-{commit-sha}``)."""
    if not SERVICE_RE.match(service):
        raise ConfigError(f"service name {service!r} must be lower-case letters, digits, '.', '_' or '-'")
    sha7 = commit.lower()[:7]
    if not re.fullmatch(r"[0-9a-f]{7}", sha7):
        raise ConfigError(f"commit {commit!r} is not a hex git sha (need at least 7 hex digits)")
    return f"{service}-{when.astimezone(UTC):%Y%m%d-%H%M%S}-{sha7}"


def parse_version(version: str) -> dict[str, Any]:
    """Split a version into service, timestamp (UTC datetime) and sha7; ConfigError if malformed."""
    m = VERSION_RE.match(version)
    if not m:
        raise ConfigError(f"{version!r} is not a version of the form <service>-<YYYYMMDD-HHMMSS>-<sha7>")
    when = datetime.strptime(m["date"] + m["time"], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return {"service": m["service"], "timestamp": when, "sha7": m["sha7"]}


def build_time(env: dict[str, str] | None = None) -> datetime:
    """``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now."""
    env = os.environ if env is None else env
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return datetime.now(UTC).replace(microsecond=0)
    if not raw.isdigit():
        raise ConfigError(f"SOURCE_DATE_EPOCH must be an integer number of seconds, got {raw!r}")
    return datetime.fromtimestamp(int(raw), UTC)


# ---------------------------------------------------------------- collecting inputs

def collect_files(paths: list[Path], base: Path) -> list[tuple[str, Path]]:
    """(archive name, file) for every regular file under ``paths``, relative to ``base``, sorted.

    Symlinks and special files are refused: a deployable artifact holds regular files only.
    """
    base = base.resolve()
    found: dict[str, Path] = {}
    for given in paths:
        path = given if given.is_absolute() else base / given
        if not path.exists() and not path.is_symlink():
            raise ConfigError(f"input path {given} does not exist (relative to {base})")
        candidates = [path] if not path.is_dir() or path.is_symlink() else sorted(path.rglob("*"))
        for item in candidates:
            if item.is_symlink():
                raise ConfigError(f"{item} is a symbolic link; artifacts hold regular files only")
            if item.is_dir():
                continue
            if not item.is_file():
                raise ConfigError(f"{item} is not a regular file")
            try:
                name = item.resolve().relative_to(base).as_posix()
            except ValueError:
                raise ConfigError(f"{item} is outside the base directory {base} (use --base)") from None
            found[name] = item
    if not found:
        raise ConfigError("no files to package: the given paths are empty")
    return sorted(found.items())


# ---------------------------------------------------------------- building

def _tar_info(name: str, size: int, executable: bool, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_reproducible_tarball(files: list[tuple[str, Path]], dest: Path, mtime: int) -> None:
    """Write a byte-for-byte reproducible tar.gz (atomically: temp file, then rename)."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, path in files:
                st = path.stat()
                info = _tar_info(name, st.st_size, bool(st.st_mode & stat.S_IXUSR), mtime)
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _dump_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def build_artifact(
    service: str,
    paths: list[Path],
    out_dir: Path,
    *,
    commit: str,
    commit_time: str | None = None,
    branch: str | None = None,
    actor: str | None = None,
    base: Path | None = None,
    when: datetime | None = None,
    sign_key: Path | None = None,
    run_url: str | None = None,
    repository: str | None = None,
) -> BuildResult:
    """Package ``paths`` into a versioned artifact with manifest, provenance and optional signature."""
    when = when or build_time()
    version = make_version(service, when, commit)
    files = collect_files(paths, base or Path.cwd())
    out_dir.mkdir(parents=True, exist_ok=True)
    tarball = out_dir / f"{version}.tar.gz"
    write_reproducible_tarball(files, tarball, int(when.timestamp()))

    manifest = mask_obj({
        "schema_version": MANIFEST_SCHEMA,
        "name": service,
        "version": version,
        "commit": commit,
        "commit_time": commit_time,
        "timestamp": when.isoformat(),
        "branch": branch,
        "actor": actor,
        "files": [
            {"path": name, "size": p.stat().st_size, "sha256": sha256_file(p)} for name, p in files
        ],
        "tarball": {"name": tarball.name, "size": tarball.stat().st_size, "sha256": sha256_file(tarball)},
        "builder": f"hardening {__version__}",
    })
    manifest_bytes = _dump_json(manifest)
    manifest_path = out_dir / f"{version}.manifest.json"
    service_manifest = out_dir / f"{service}-manifest.json"
    _write_atomic(manifest_path, manifest_bytes)
    _write_atomic(service_manifest, manifest_bytes)

    provenance_path = out_dir / f"{version}.provenance.json"
    statement = provenance_statement(manifest, run_url=run_url, repository=repository)
    _write_atomic(provenance_path, _dump_json(mask_obj(statement)))

    signature = None
    if sign_key is not None:
        key = load_private_key(sign_key)
        signature = signature_path(manifest_path)
        _write_atomic(signature, base64.b64encode(key.sign(manifest_bytes)) + b"\n")
        _write_atomic(signature_path(service_manifest), signature.read_bytes())
        _write_atomic(signature_path(provenance_path),
                      base64.b64encode(key.sign(provenance_path.read_bytes())) + b"\n")
    return BuildResult(version, tarball, manifest_path, service_manifest, provenance_path, signature)


def provenance_statement(manifest: dict[str, Any], *, run_url: str | None = None,
                         repository: str | None = None) -> dict[str, Any]:
    """An in-toto Statement v1 carrying a SLSA v1 provenance predicate for the tarball."""
    dependency: dict[str, Any] = {"digest": {"gitCommit": manifest["commit"]}}
    if repository:
        dependency["uri"] = f"git+{repository}@{manifest.get('branch') or manifest['commit']}"
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": manifest["tarball"]["name"], "digest": {"sha256": manifest["tarball"]["sha256"]}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": PROVENANCE_BUILD_TYPE,
                "externalParameters": {"service": manifest["name"], "branch": manifest.get("branch"),
                                       "files": [f["path"] for f in manifest["files"]]},
                "internalParameters": {"SOURCE_DATE_EPOCH": manifest["timestamp"]},
                "resolvedDependencies": [dependency],
            },
            "runDetails": {
                "builder": {"id": run_url or f"local:{manifest['builder']}"},
                "metadata": {"invocationId": run_url or "", "startedOn": manifest["timestamp"]},
            },
        },
    }


# ---------------------------------------------------------------- keys and signatures

def signature_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def generate_keypair(private_path: Path, public_path: Path, force: bool = False) -> None:
    """Write a new Ed25519 private key (PEM, mode 0600) and its public key (PEM)."""
    for p in (private_path, public_path):
        if p.exists() and not force:
            raise ConfigError(f"{p} already exists; pass --force to overwrite it")
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private_path.unlink(missing_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(private_path, 0o600)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_atomic(public_path, pub)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(f"signing key {path} not found (create one with `hardening artifact keygen`)") from None
    except ValueError as exc:
        raise ConfigError(f"signing key {path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"public key {path} not found") from None
    except ValueError as exc:
        raise ConfigError(f"public key {path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"public key {path} is not an Ed25519 key")
    return key


# ---------------------------------------------------------------- verifying

def find_manifest(tarball: Path) -> Path:
    """The manifest beside a tarball: ``<version>.manifest.json``, else ``<service>-manifest.json``."""
    version = tarball.name.removesuffix(".tar.gz")
    own = tarball.with_name(f"{version}.manifest.json")
    if own.exists():
        return own
    m = VERSION_RE.match(version)
    if m:
        shared = tarball.with_name(f"{m['service']}-manifest.json")
        if shared.exists():
            return shared
    raise ConfigError(f"no manifest found beside {tarball} (expected {own.name}); pass --manifest")


def unsafe_path_reason(name: str) -> str | None:
    """Why an archive path may not be deployed, or None: empty, absolute and '..' paths are refused."""
    if not name:
        return "an empty path"
    if name.startswith("/") or PurePosixPath(name).is_absolute() or re.match(r"^[A-Za-z]:", name):
        return f"absolute path {name!r}"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return f"path with '..' {name!r}"
    return None


def unsafe_member_reason(member: tarfile.TarInfo) -> str | None:
    """Why a tar member may not be deployed, or None: absolute paths, '..', links and specials are refused."""
    name = member.name
    reason = unsafe_path_reason(name)
    if reason:
        return reason
    if member.issym() or member.islnk():
        return f"link {name!r} -> {member.linkname!r}"
    if not (member.isfile() or member.isdir()):
        return f"special file {name!r}"
    return None


def check_members(tarball: Path) -> list[tarfile.TarInfo]:
    """Open ``tarball`` and refuse it (CheckFailed) if any member is unsafe. Returns the members."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CheckFailed(f"{tarball.name} is not a readable tar.gz: {exc}") from None
    for member in members:
        reason = unsafe_member_reason(member)
        if reason:
            raise CheckFailed(f"{tarball.name} refused: {reason}")
    return members


def verify_artifact(
    tarball: Path,
    manifest_path: Path | None = None,
    *,
    public_key: Path | None = None,
    expect_service: str | None = None,
    expect_version: str | None = None,
    expect_commit: str | None = None,
) -> dict[str, Any]:
    """Verify an artifact; return its manifest, or raise CheckFailed naming the first problem."""
    if not tarball.is_file():
        raise ConfigError(f"artifact {tarball} not found")
    manifest_path = manifest_path or find_manifest(tarball)
    try:
        manifest_bytes = manifest_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"manifest {manifest_path} cannot be read: {exc.strerror or exc}") from None
    if public_key is not None:
        sig_file = signature_path(manifest_path)
        if not sig_file.exists():
            raise CheckFailed(f"signature {sig_file.name} missing and a public key is pinned")
        try:
            load_public_key(public_key).verify(base64.b64decode(sig_file.read_bytes().strip(), validate=True),
                                               manifest_bytes)
        except (InvalidSignature, ValueError):
            raise CheckFailed(f"signature of {manifest_path.name} does not match the pinned key {public_key}") from None
    try:
        manifest = json.loads(manifest_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckFailed(f"manifest {manifest_path.name} is not valid JSON: {exc}") from None
    listed = _listed_files(manifest, manifest_path.name)

    version = str(manifest.get("version", ""))
    commit = str(manifest.get("commit", ""))
    name = str(manifest.get("name", ""))
    try:
        parsed = parse_version(version)
    except ConfigError as exc:
        raise CheckFailed(f"manifest version: {exc}") from None
    if tarball.name != f"{version}.tar.gz":
        raise CheckFailed(f"file name {tarball.name} does not match manifest version {version}")
    if parsed["service"] != name:
        raise CheckFailed(f"manifest name {name!r} does not match version {version}")
    if not commit.lower().startswith(parsed["sha7"]):
        raise CheckFailed(f"manifest commit {commit[:12]} does not match version {version}")
    for label, expected, actual in (("service", expect_service, name), ("version", expect_version, version)):
        if expected and expected != actual:
            raise CheckFailed(f"expected {label} {expected!r}, artifact has {actual!r}")
    if expect_commit and not commit.lower().startswith(expect_commit.lower()):
        raise CheckFailed(f"expected commit {expect_commit}, artifact has {commit}")

    tar_meta = manifest.get("tarball") if isinstance(manifest.get("tarball"), dict) else {}
    actual_sha = sha256_file(tarball)
    if tar_meta.get("sha256") != actual_sha:
        raise CheckFailed(f"{tarball.name} sha256 {actual_sha[:12]}… differs from the manifest "
                          f"({str(tar_meta.get('sha256'))[:12]}…): corrupted or tampered")
    if public_key is not None:
        verify_provenance(tarball, actual_sha, public_key)

    seen: set[str] = set()
    check_members(tarball)
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            if member.isdir():
                continue
            entry = listed.get(member.name)
            if entry is None:
                raise CheckFailed(f"{tarball.name} holds {member.name!r}, which the manifest does not list")
            if member.size != entry["size"]:
                raise CheckFailed(f"{member.name}: size {member.size} != manifest {entry['size']}")
            fh = tar.extractfile(member)
            digest = hashlib.sha256()
            while fh is not None and (chunk := fh.read(_CHUNK)):
                digest.update(chunk)
            if digest.hexdigest() != entry["sha256"]:
                raise CheckFailed(f"{member.name}: sha256 differs from the manifest")
            seen.add(member.name)
    missing = sorted(set(listed) - seen)
    if missing:
        raise CheckFailed(f"{tarball.name} lacks files listed in the manifest: {', '.join(missing[:5])}")
    return manifest


def provenance_path(tarball: Path) -> Path:
    """``<version>.provenance.json`` beside ``<version>.tar.gz``."""
    return tarball.with_name(tarball.name.removesuffix(".tar.gz") + ".provenance.json")


def verify_provenance(tarball: Path, tarball_sha256: str, public_key: Path) -> dict[str, Any]:
    """Check the provenance statement beside ``tarball``: present, signed by ``public_key``, and about this
    tarball (subject name and sha256). Returns the statement; CheckFailed naming the first problem."""
    path = provenance_path(tarball)
    sig_file = signature_path(path)
    if not path.is_file():
        raise CheckFailed(f"provenance {path.name} missing and a public key is pinned")
    if not sig_file.is_file():
        raise CheckFailed(f"provenance signature {sig_file.name} missing and a public key is pinned")
    data = path.read_bytes()
    try:
        load_public_key(public_key).verify(base64.b64decode(sig_file.read_bytes().strip(), validate=True), data)
    except (InvalidSignature, ValueError):
        raise CheckFailed(f"signature of {path.name} does not match the pinned key {public_key}: "
                          "the provenance was altered or signed by another key") from None
    try:
        statement = json.loads(data)
        subjects = {(s["name"], s["digest"]["sha256"]) for s in statement["subject"]}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise CheckFailed(f"provenance {path.name} is not an in-toto statement with subjects ({exc})") from None
    if (tarball.name, tarball_sha256) not in subjects:
        raise CheckFailed(f"provenance {path.name} is about another artifact: its subject is not "
                          f"{tarball.name} with sha256 {tarball_sha256[:12]}…")
    return statement


def _listed_files(manifest: Any, label: str) -> dict[str, dict[str, Any]]:
    """The manifest's ``files`` by path; CheckFailed when the manifest is not shaped like one of ours."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("size"), int)
            and isinstance(f.get("sha256"), str) for f in files):
        raise CheckFailed(f"manifest {label} is malformed: it needs a 'files' list of {{path, size, sha256}} "
                          "entries (rebuild the artifact with `hardening artifact build`)")
    for f in files:
        reason = unsafe_path_reason(f["path"])
        if reason:
            raise CheckFailed(f"manifest {label} refused: it lists an unsafe path, {reason} "
                              "(an artifact may only hold relative paths inside its release directory)")
    return {f["path"]: f for f in files}


def safe_extract(tarball: Path, dest: Path) -> None:
    """Extract into ``dest`` after refusing unsafe members; uses tarfile's ``data`` filter as well."""
    check_members(tarball)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(dest, filter="data")


# ---------------------------------------------------------------- retention

def newest_versions(directory: Path) -> dict[str, str]:
    """The newest artifact version of each service in ``directory`` (by the version's timestamp)."""
    newest: dict[str, tuple[datetime, str]] = {}
    for tarball in directory.glob("*.tar.gz"):
        version = tarball.name.removesuffix(".tar.gz")
        try:
            parsed = parse_version(version)
        except ConfigError:
            continue
        key = (parsed["timestamp"], version)
        if parsed["service"] not in newest or key > newest[parsed["service"]]:
            newest[parsed["service"]] = key
    return {service: version for service, (_, version) in newest.items()}


def prune(directory: Path, keep_days: int, *, now: datetime | None = None, protect: set[str] | None = None,
          dry_run: bool = False) -> list[Path]:
    """Delete artifacts (tarball, manifests, signatures, provenance) older than ``keep_days``.

    Age comes from the version's timestamp (not file times). Never deleted, whatever their age: each
    service's newest artifact (the one a rollback or redeploy may still need) and the versions in
    ``protect`` (the command passes every version the ledger marks green). Returns the removed (or
    would-be removed) files.
    """
    if keep_days < 0:
        raise ConfigError("--keep-days must be >= 0")
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=keep_days)
    keep = set(protect or ()) | set(newest_versions(directory).values())
    removed: list[Path] = []
    for tarball in sorted(directory.glob("*.tar.gz")):
        version = tarball.name.removesuffix(".tar.gz")
        try:
            when = parse_version(version)["timestamp"]
        except ConfigError:
            continue
        if when >= cutoff or version in keep:
            continue
        for path in sorted(directory.glob(f"{version}.*")):
            removed.append(path)
            if not dry_run:
                path.unlink(missing_ok=True)
    return removed


__all__ = [
    "BuildResult",
    "build_artifact",
    "check_members",
    "find_manifest",
    "generate_keypair",
    "make_version",
    "newest_versions",
    "parse_version",
    "provenance_path",
    "prune",
    "safe_extract",
    "verify_artifact",
    "verify_provenance",
]
