"""Artifacts: reproducible bytes, manifest + signature verification, refusal of unsafe tarballs."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardening.deploy import artifacts
from hardening.errors import CheckFailed, ConfigError
from tests.conftest import hardening_cmd

COMMIT = "a3f2c1e" + "0" * 33
WHEN = datetime(2026, 1, 14, 15, 30, 45, tzinfo=UTC)


def make_source(root: Path) -> Path:
    (root / "dist").mkdir(parents=True)
    (root / "dist" / "server.js").write_text("console.log('hello');\n")
    (root / "dist" / "run.sh").write_text("#!/bin/sh\nexec node server.js\n")
    (root / "dist" / "run.sh").chmod(0o775)
    (root / "package.json").write_text('{"name": "backend"}\n')
    return root


def build(src: Path, out: Path, **kw) -> artifacts.BuildResult:
    return artifacts.build_artifact("backend", [Path("dist"), Path("package.json")], out, commit=COMMIT,
                                    base=src, when=WHEN, **kw)


def rewrite_tar(src_tar: Path, dest: Path, extra: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    with tarfile.open(src_tar, "r:gz") as tin, tarfile.open(dest, "w:gz", format=tarfile.PAX_FORMAT) as tout:
        for member in tin.getmembers():
            tout.addfile(member, tin.extractfile(member))
        for info, data in extra:
            tout.addfile(info, io.BytesIO(data) if data is not None else None)


def test_version_format_and_parse():
    version = artifacts.make_version("backend", WHEN, COMMIT)
    assert version == "backend-20260114-153045-a3f2c1e"
    assert artifacts.parse_version(version)["timestamp"] == WHEN
    with pytest.raises(ConfigError):
        artifacts.make_version("Backend!", WHEN, COMMIT)
    with pytest.raises(ConfigError):
        artifacts.make_version("backend", WHEN, "not-a-sha")


def test_two_builds_are_byte_identical(tmp_path):
    src = make_source(tmp_path / "src")
    first = build(src, tmp_path / "a")
    # Touch every input: a different file mtime must not change a byte of the tarball.
    for path in src.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    second = build(src, tmp_path / "b")
    assert first.tarball.name == "backend-20260114-153045-a3f2c1e.tar.gz"
    assert first.tarball.read_bytes() == second.tarball.read_bytes()
    assert first.manifest.read_bytes() == second.manifest.read_bytes()
    with tarfile.open(first.tarball) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["dist/run.sh", "dist/server.js", "package.json"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", int(WHEN.timestamp()))}
    assert {m.name: m.mode for m in members} == {"dist/run.sh": 0o755, "dist/server.js": 0o644, "package.json": 0o644}
    raw = first.tarball.read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip header mtime = 0
    assert not raw[3] & 0x08        # no FNAME flag: no file name in the gzip header


def test_manifest_fields_and_provenance(tmp_path):
    result = build(make_source(tmp_path / "src"), tmp_path / "out", branch="main", actor="octocat")
    manifest = json.loads(result.manifest.read_text())
    assert {"version", "commit", "timestamp", "branch", "actor"} <= manifest.keys()
    assert manifest["branch"] == "main" and manifest["actor"] == "octocat"
    assert manifest["tarball"]["sha256"] == artifacts.sha256_file(result.tarball)
    assert [f["path"] for f in manifest["files"]] == ["dist/run.sh", "dist/server.js", "package.json"]
    assert result.service_manifest.name == "backend-manifest.json"
    statement = json.loads(result.provenance.read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"][0]["digest"]["sha256"] == manifest["tarball"]["sha256"]


def test_verify_accepts_a_good_signed_artifact(tmp_path):
    key, pub = tmp_path / "k" / "a.key", tmp_path / "k" / "a.pub"
    artifacts.generate_keypair(key, pub)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    result = build(make_source(tmp_path / "src"), tmp_path / "out", sign_key=key)
    manifest = artifacts.verify_artifact(result.tarball, public_key=pub, expect_service="backend",
                                         expect_commit="a3f2c1e")
    assert manifest["version"] == result.version
    with pytest.raises(CheckFailed, match="expected commit"):
        artifacts.verify_artifact(result.tarball, expect_commit="bbbbbbb")


def test_flipped_byte_fails_verify(tmp_path):
    result = build(make_source(tmp_path / "src"), tmp_path / "out")
    data = bytearray(result.tarball.read_bytes())
    data[len(data) // 2] ^= 0x01
    result.tarball.write_bytes(bytes(data))
    with pytest.raises(CheckFailed, match="sha256"):
        artifacts.verify_artifact(result.tarball)


def test_added_file_fails_verify_even_with_matching_tarball_hash(tmp_path):
    result = build(make_source(tmp_path / "src"), tmp_path / "out")
    info = tarfile.TarInfo("dist/backdoor.js")
    payload = b"steal()"
    info.size = len(payload)
    tampered = tmp_path / "tampered.tar.gz"
    rewrite_tar(result.tarball, tampered, [(info, payload)])
    os.replace(tampered, result.tarball)
    # An attacker without the signing key can fix the tarball hash in an unsigned manifest...
    manifest = json.loads(result.manifest.read_text())
    manifest["tarball"]["sha256"] = artifacts.sha256_file(result.tarball)
    result.manifest.write_text(json.dumps(manifest))
    # ...but the unlisted file is still caught.
    with pytest.raises(CheckFailed, match="does not list"):
        artifacts.verify_artifact(result.tarball)


def test_wrong_signature_fails_verify(tmp_path):
    key_a, pub_a = tmp_path / "a.key", tmp_path / "a.pub"
    key_b, pub_b = tmp_path / "b.key", tmp_path / "b.pub"
    artifacts.generate_keypair(key_a, pub_a)
    artifacts.generate_keypair(key_b, pub_b)
    result = build(make_source(tmp_path / "src"), tmp_path / "out", sign_key=key_a)
    with pytest.raises(CheckFailed, match="signature"):
        artifacts.verify_artifact(result.tarball, public_key=pub_b)
    # Right key, but the manifest was edited after signing.
    manifest = json.loads(result.manifest.read_text())
    manifest["actor"] = "mallory"
    result.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    with pytest.raises(CheckFailed, match="signature"):
        artifacts.verify_artifact(result.tarball, public_key=pub_a)
    # A pinned key with no signature file is a failure, not a pass.
    unsigned = build(make_source(tmp_path / "src2"), tmp_path / "out2")
    with pytest.raises(CheckFailed, match="missing"):
        artifacts.verify_artifact(unsigned.tarball, public_key=pub_a)


def _evil_member(kind: str) -> tuple[tarfile.TarInfo, bytes | None]:
    if kind == "dotdot":
        info = tarfile.TarInfo("../evil")
    elif kind == "absolute":
        info = tarfile.TarInfo("/tmp/hardening-evil-absolute")
    elif kind == "symlink":
        info = tarfile.TarInfo("dist/passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "../../evil-link-target"
        return info, None
    else:
        info = tarfile.TarInfo("dist/hard")
        info.type, info.linkname = tarfile.LNKTYPE, "../evil"
        return info, None
    info.size = 4
    return info, b"evil"


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_unsafe_tarballs_are_refused_and_write_nothing(tmp_path, kind):
    result = build(make_source(tmp_path / "src"), tmp_path / "out")
    evil = tmp_path / "out" / "evil.tar.gz"
    rewrite_tar(result.tarball, evil, [_evil_member(kind)])
    target = tmp_path / "sandbox" / "release"
    target.parent.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(CheckFailed, match="refused"):
        artifacts.safe_extract(evil, target)
    assert not target.exists(), "nothing may be extracted from a refused tarball"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not Path("/tmp/hardening-evil-absolute").exists()
    # verify refuses it too (manifest hash patched so the member check is what fails).
    os.replace(evil, result.tarball)
    manifest = json.loads(result.manifest.read_text())
    manifest["tarball"]["sha256"] = artifacts.sha256_file(result.tarball)
    result.manifest.write_text(json.dumps(manifest))
    with pytest.raises(CheckFailed, match="refused"):
        artifacts.verify_artifact(result.tarball)


def test_build_refuses_symlinked_input(tmp_path):
    src = make_source(tmp_path / "src")
    (src / "dist" / "link").symlink_to("/etc/hostname")
    with pytest.raises(ConfigError, match="symbolic link"):
        build(src, tmp_path / "out")


def test_prune_keeps_recent_and_protected(tmp_path):
    src = make_source(tmp_path / "src")
    out = tmp_path / "artifacts"
    old = artifacts.build_artifact("backend", [Path("dist")], out, commit="1111111" + "0" * 33, base=src,
                                   when=datetime(2026, 1, 1, tzinfo=UTC))
    green = artifacts.build_artifact("backend", [Path("dist")], out, commit="2222222" + "0" * 33, base=src,
                                     when=datetime(2026, 1, 2, tzinfo=UTC))
    recent = artifacts.build_artifact("backend", [Path("dist")], out, commit="3333333" + "0" * 33, base=src,
                                      when=datetime(2026, 2, 10, tzinfo=UTC))
    removed = artifacts.prune(out, 30, now=datetime(2026, 2, 15, tzinfo=UTC), protect={green.version})
    assert {p.name for p in removed} == {f"{old.version}.tar.gz", f"{old.version}.manifest.json",
                                         f"{old.version}.provenance.json"}
    assert not old.tarball.exists() and green.tarball.exists() and recent.tarball.exists()


def test_cli_build_verify_keygen_exit_codes(tmp_path, cli_env):
    make_source(tmp_path / "src")
    env = {**cli_env, "SOURCE_DATE_EPOCH": str(int(WHEN.timestamp()))}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*hardening_cmd(), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    assert run("artifact", "keygen", "--out-dir", "keys").returncode == 0
    again = run("artifact", "keygen", "--out-dir", "keys")
    assert again.returncode == 2 and "already exists" in again.stderr
    built = run("artifact", "build", "--service", "backend", "--base", "src", "dist", "package.json",
                "--commit", COMMIT, "--sign-key", "keys/artifact.key", "--out", "artifacts")
    assert built.returncode == 0, built.stderr
    tarball = "artifacts/backend-20260114-153045-a3f2c1e.tar.gz"
    ok = run("artifact", "verify", tarball, "--public-key", "keys/artifact.pub")
    assert ok.returncode == 0 and "OK backend-20260114-153045-a3f2c1e" in ok.stdout
    data = bytearray((tmp_path / tarball).read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / tarball).write_bytes(bytes(data))
    bad = run("artifact", "verify", tarball, "--public-key", "keys/artifact.pub")
    assert bad.returncode == 1 and "sha256" in bad.stderr
    missing = run("artifact", "verify", "artifacts/nope.tar.gz")
    assert missing.returncode == 2 and "not found" in missing.stderr


# ------------------------------------------------------------------ issue 12: provenance signature, '..' in manifest
@pytest.fixture
def signed(tmp_path):
    key, pub = tmp_path / "k" / "a.key", tmp_path / "k" / "a.pub"
    artifacts.generate_keypair(key, pub)
    return build(make_source(tmp_path / "src"), tmp_path / "out", sign_key=key), key, pub


def test_verify_checks_the_provenance_signature(signed):
    result, _, pub = signed
    artifacts.verify_artifact(result.tarball, public_key=pub)
    good = result.provenance.read_bytes()
    statement = json.loads(good)
    statement["predicate"]["runDetails"]["builder"]["id"] = "https://evil.example/builder"
    result.provenance.write_text(json.dumps(statement, indent=2, sort_keys=True) + "\n")
    with pytest.raises(CheckFailed, match=r"signature of .*\.provenance\.json does not match"):
        artifacts.verify_artifact(result.tarball, public_key=pub)
    result.provenance.write_bytes(good)
    artifacts.signature_path(result.provenance).unlink()
    with pytest.raises(CheckFailed, match=r"provenance signature .*\.provenance\.json\.sig missing"):
        artifacts.verify_artifact(result.tarball, public_key=pub)
    result.provenance.unlink()
    with pytest.raises(CheckFailed, match=r"provenance .*\.provenance\.json missing"):
        artifacts.verify_artifact(result.tarball, public_key=pub)
    artifacts.verify_artifact(result.tarball)  # without a pinned key, provenance is not required


def test_verify_refuses_a_signed_provenance_of_another_artifact(signed, tmp_path):
    result, key, pub = signed
    other_src = make_source(tmp_path / "other")
    (other_src / "package.json").write_text('{"name": "other"}\n')
    other = build(other_src, tmp_path / "out2", sign_key=key)
    assert other.version == result.version and other.tarball.read_bytes() != result.tarball.read_bytes()
    for src in (other.provenance, artifacts.signature_path(other.provenance)):  # validly signed, wrong subject
        os.replace(src, result.provenance.parent / src.name)  # same version name, other bytes
    with pytest.raises(CheckFailed, match=r"provenance .* is about another artifact"):
        artifacts.verify_artifact(result.tarball, public_key=pub)


def test_cli_verify_reports_both_signatures(signed, cli_env):
    result, _, pub = signed
    proc = subprocess.run([*hardening_cmd(), "artifact", "verify", str(result.tarball), "--public-key", str(pub)],
                          env=cli_env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "signatures (manifest, provenance) verified" in proc.stdout, proc.stderr
    artifacts.signature_path(result.provenance).write_text("AAAA\n")
    proc = subprocess.run([*hardening_cmd(), "artifact", "verify", str(result.tarball), "--public-key", str(pub)],
                          env=cli_env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "provenance.json does not match the pinned key" in proc.stderr


@pytest.mark.parametrize("path", ["../evil", "dist/../../evil", "/etc/passwd", "C:/evil", ""])
def test_manifest_listing_an_unsafe_path_is_refused_for_that_reason(tmp_path, path):
    result = build(make_source(tmp_path / "src"), tmp_path / "out")
    manifest = json.loads(result.manifest.read_text())
    manifest["files"].append({"path": path, "size": 4, "sha256": "0" * 64})
    result.manifest.write_text(json.dumps(manifest))
    with pytest.raises(CheckFailed, match=r"manifest .* refused: it lists an unsafe path") as caught:
        artifacts.verify_artifact(result.tarball)
    if ".." in path:
        assert f"path with '..' {path!r}" in str(caught.value)
