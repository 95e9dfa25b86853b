"""The trust stage's edges: files written, idempotency, Kubernetes layout, system store.

Every test points the system paths (/etc bundles, /var/lib/corpnet) at
temporary files: the suite runs as root on a real host and must never touch
its trust store.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from corpnet import config, trust
from corpnet.errors import ExitCode
from corpnet.trust import _system
from support.pki import NOW, der, ders_in, make_cert, pem, system_bundle

SYSTEM_PEM, SYSTEM = system_bundle()
CA1 = make_cert("Corp Root One", serial=11)
CA2 = make_cert("Corp Root Two", serial=12)


@pytest.fixture(autouse=True)
def no_host_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a test that forgets to inject paths cannot reach the host's /etc."""
    monkeypatch.setattr(_system, "DISTRO_BUNDLES", (tmp_path / "unused-etc" / "bundle.crt",))
    monkeypatch.setattr(_system, "PRISTINE", tmp_path / "unused-var" / "pristine.pem")


class Box:
    """A container's view: config dir, runtime dir, /etc bundle, pristine copy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "etc-corpnet"
        self.ca_d = self.config / "ca.d"
        self.ca_d.mkdir(parents=True)
        self.runtime = root / "run-corpnet"
        self.runtime.mkdir()
        self.etc_bundle = root / "etc" / "ssl" / "certs" / "ca-certificates.crt"
        self.etc_bundle.parent.mkdir(parents=True)
        self.etc_bundle.write_bytes(SYSTEM_PEM)
        self.pristine = root / "var" / "lib" / "corpnet" / "system-ca-bundle.pem"

    def settings(self, **env: str) -> config.Settings:
        base = {"CORPNET_CONFIG_DIR": str(self.config), "CORPNET_RUNTIME_DIR": str(self.runtime)}
        return config.load({**base, **env})

    def apply(self, *, euid: int = 1000, java: bool = False, **env: str) -> trust.TrustResult:
        jvm_env = {"PATH": "/nonexistent"}
        if java:
            java_home = self.root / "jdk"
            (java_home / "bin").mkdir(parents=True, exist_ok=True)
            (java_home / "bin" / "java").write_text("#!/bin/sh\n")
            jvm_env["JAVA_HOME"] = str(java_home)
        return trust.apply(
            self.settings(**env),
            runtime_dir=self.runtime,
            euid=euid,
            env=jvm_env,
            now=NOW,
            pristine=self.pristine,
            candidates=(self.etc_bundle,),
        )


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory`` (links followed): content and mtime."""
    result = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            result[str(path.relative_to(directory))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return result


def test_outputs_and_exports(box: Box) -> None:
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    result = box.apply()
    assert result.bundle == box.runtime / "ca-bundle.pem"
    assert ders_in(result.bundle.read_bytes()) == [*map(der, SYSTEM), der(CA1)]
    assert result.bundle.stat().st_mode & 0o777 == 0o644
    assert (result.certificates, result.system_certificates, result.added) == (4, 3, 1)
    assert result.system_source == box.etc_bundle
    # The hashed dir: one file per certificate, named by subject hash.
    files = sorted(p for p in result.cert_dir.iterdir() if not p.name.startswith("."))
    assert len(files) == 4
    assert all(len(f.name) == 10 and f.name[8:] == ".0" for f in files)
    assert sorted(der for f in files for der in ders_in(f.read_bytes())) == sorted(
        [*map(der, SYSTEM), der(CA1)]
    )
    assert result.exports.env["SSL_CERT_FILE"] == str(result.bundle)
    assert result.exports.env["SSL_CERT_DIR"] == str(result.cert_dir)
    assert result.truststore is None
    assert result.exports.java_options == ()
    assert not result.system_store_updated
    assert box.etc_bundle.read_bytes() == SYSTEM_PEM  # not root: /etc untouched


def test_second_run_rewrites_nothing_and_files_are_identical(box: Box) -> None:
    (box.ca_d / "corp.pem").write_bytes(pem(CA1, CA2))
    first = box.apply(java=True)
    assert first.truststore is not None
    assert set(first.written) == {first.bundle, first.cert_dir, first.truststore}
    before = snapshot(box.runtime)
    link = first.cert_dir.readlink()
    second = box.apply(java=True)
    assert second.written == ()
    assert snapshot(box.runtime) == before  # same bytes, same mtimes
    assert second.cert_dir.readlink() == link


def test_truststore_holds_the_merged_bundle_for_java(box: Box) -> None:
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    result = box.apply(java=True)
    assert result.truststore == box.runtime / "java-truststore.p12"
    store = pkcs12.load_pkcs12(result.truststore.read_bytes(), b"changeit")
    assert sorted(der(c.certificate) for c in store.additional_certs) == sorted(
        [*map(der, SYSTEM), der(CA1)]
    )
    assert store.key is None
    options = " ".join(result.exports.java_options)
    assert f"-Djavax.net.ssl.trustStore={result.truststore}" in options


def test_changed_input_swaps_the_hashed_dir_and_drops_the_old_one(box: Box) -> None:
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    first = box.apply()
    old_target = first.cert_dir.resolve()
    (box.ca_d / "corp.pem").write_bytes(pem(CA2))
    second = box.apply()
    assert second.cert_dir.resolve() != old_target
    assert not old_target.exists()
    assert [p.name for p in box.runtime.iterdir() if p.name.startswith(".certs-")] == [
        second.cert_dir.resolve().name
    ]
    assert der(CA1) not in ders_in(second.bundle.read_bytes())


def kubernetes_volume(ca_d: Path, stamp: str, contents: dict[str, bytes]) -> None:
    """What the kubelet's AtomicWriter does: a new timestamped dir, then swap ..data."""
    new = ca_d / f"..{stamp}"
    new.mkdir()
    for key, data in contents.items():
        (new / key).write_bytes(data)
    tmp_link = ca_d / "..data_tmp"
    tmp_link.symlink_to(new.name)
    old = (ca_d / "..data").resolve() if (ca_d / "..data").is_symlink() else None
    tmp_link.replace(ca_d / "..data")  # the atomic swap
    for key in contents:
        if not (ca_d / key).is_symlink():
            (ca_d / key).symlink_to(f"..data/{key}")
    if old is not None:
        for f in old.iterdir():
            f.unlink()
        old.rmdir()


def test_kubernetes_layout_is_read_once_and_follows_an_atomic_swap(box: Box) -> None:
    kubernetes_volume(box.ca_d, "2026_06_01_00_00_00.1", {"ca.crt": pem(CA1)})
    first = box.apply()
    assert [f.path.name for f in first.files] == ["ca.crt"]  # not ..data/ nor ..2026_.../
    assert ders_in(first.bundle.read_bytes()).count(der(CA1)) == 1
    kubernetes_volume(box.ca_d, "2026_06_02_00_00_00.2", {"ca.crt": pem(CA2)})
    second = box.apply()
    bundle = ders_in(second.bundle.read_bytes())
    assert der(CA2) in bundle
    assert der(CA1) not in bundle  # the rotated-out CA is gone


def test_inputs_in_order_recursive_and_deduplicated_by_path(box: Box, tmp_path: Path) -> None:
    (box.ca_d / "b").mkdir()
    (box.ca_d / "b" / "nested.pem").write_bytes(pem(CA2))
    (box.ca_d / "a.crt").write_bytes(pem(CA1))
    (box.ca_d / "loop").symlink_to(box.ca_d)  # a symlink loop must not hang
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "x.der").write_bytes(der(make_cert("Extra", serial=77)))
    node = tmp_path / "node.pem"
    node.write_bytes(pem(make_cert("Node Extra", serial=78)))
    result = box.apply(
        CORPNET_CA_FILES=f"{box.ca_d / 'a.crt'},{node}",  # a.crt again: read once
        CORPNET_CA_DIRS=str(extra),
        NODE_EXTRA_CA_CERTS=str(node),
    )
    assert [(f.path.name, f.source) for f in result.files] == [
        ("a.crt", "ca.d"),
        ("nested.pem", "ca.d"),
        ("node.pem", "CORPNET_CA_FILES"),
        ("x.der", "CORPNET_CA_DIRS"),
    ]
    assert result.added == 4


def test_a_hard_link_and_a_symlink_to_one_file_are_read_once(box: Box, tmp_path: Path) -> None:
    """Inputs are told apart by device and inode, whatever path reached them."""
    (box.ca_d / "a.crt").write_bytes(pem(CA1))
    (box.ca_d / "b-hard.crt").hardlink_to(box.ca_d / "a.crt")
    (box.ca_d / "c-soft.crt").symlink_to("a.crt")
    result = box.apply(CORPNET_CA_FILES=str(box.ca_d / "c-soft.crt"))
    assert [f.path.name for f in result.files] == ["a.crt"]
    assert result.added == 1


def test_pieces_are_written_and_compared_without_joining(tmp_path: Path) -> None:
    from corpnet import files

    path = tmp_path / "bundle.pem"
    assert files.write_atomic(path, [b"one\n", b"two\n"])
    assert path.read_bytes() == b"one\ntwo\n"
    assert not files.write_atomic(path, [b"one\ntw", b"o\n"])  # same bytes, other cut
    assert not files.write_atomic(path, b"one\ntwo\n")
    assert files.write_atomic(path, [b"one\n", b"two\n", b"three\n"])
    assert files.write_atomic(path, [b"one\n", b"TWO\n", b"three\n"])  # same size, other bytes
    assert path.read_bytes() == b"one\nTWO\nthree\n"


def test_truststore_written_as_it_is_made_holds_every_certificate_and_alias(box: Box) -> None:
    from corpnet.trust import _java

    ders = [*map(der, SYSTEM), der(CA1)]
    aliases = ["a", "b" * 70, "\u00e9", "d"]  # a long alias needs a long-form length
    store = pkcs12.load_pkcs12(_java.truststore(ders, aliases), b"changeit")
    assert [der(c.certificate) for c in store.additional_certs] == ders
    assert [c.friendly_name for c in store.additional_certs] == [a.encode() for a in aliases]


def test_node_extra_ca_certs_alone_is_trusted_everywhere(box: Box, tmp_path: Path) -> None:
    node = tmp_path / "corp-ca.pem"
    node.write_bytes(pem(CA1))
    result = box.apply(NODE_EXTRA_CA_CERTS=str(node))
    assert der(CA1) in ders_in(result.bundle.read_bytes())
    assert result.exports.env["NODE_EXTRA_CA_CERTS"] == str(result.bundle)  # merged, not the input


def test_errors_raise_before_anything_is_written(box: Box, tmp_path: Path) -> None:
    (box.ca_d / "bad.pem").write_bytes(b"not a certificate")
    with pytest.raises(trust.TrustErrors) as raised:
        box.apply(CORPNET_CA_FILES=str(tmp_path / "missing.pem"))
    messages = [str(e) for e in raised.value.errors]
    assert any("CORPNET_CA_FILES names" in m and "missing.pem" in m for m in messages)
    assert any("bad.pem" in m for m in messages)
    assert raised.value.exit_code == ExitCode.CONFIG  # two kinds: the configuration code
    assert list(box.runtime.iterdir()) == []


def test_root_rewrites_the_system_bundle_and_keeps_the_pristine_copy(box: Box) -> None:
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    result = box.apply(euid=0)
    assert result.system_store_updated
    assert box.pristine.read_bytes() == SYSTEM_PEM
    assert box.etc_bundle.read_bytes() == result.bundle.read_bytes()
    # The CA is removed from the mounts: the next start restores the original.
    (box.ca_d / "corp.pem").unlink()
    again = box.apply(euid=0)
    assert again.system_source == box.pristine
    assert box.etc_bundle.read_bytes() == SYSTEM_PEM
    assert ders_in(again.bundle.read_bytes()) == list(map(der, SYSTEM))


def test_system_store_off_leaves_etc_alone_even_as_root(box: Box) -> None:
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    result = box.apply(euid=0, CORPNET_SYSTEM_STORE="off")
    assert not result.system_store_updated
    assert box.etc_bundle.read_bytes() == SYSTEM_PEM
    assert not box.pristine.exists()


def test_system_bundle_linked_into_the_runtime_dir_is_not_written(box: Box) -> None:
    """The image links /etc's bundle to the runtime bundle so non-root starts reach it."""
    box.pristine.parent.mkdir(parents=True)
    box.pristine.write_bytes(SYSTEM_PEM)
    box.etc_bundle.unlink()
    box.etc_bundle.symlink_to(box.runtime / "ca-bundle.pem")
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    result = box.apply(euid=0)
    assert box.etc_bundle.is_symlink()  # not replaced by a file
    assert result.system_source == box.pristine
    assert not result.system_store_updated
    assert ders_in(box.etc_bundle.read_bytes()) == [*map(der, SYSTEM), der(CA1)]


def test_without_pristine_a_linked_system_bundle_is_not_read_back(box: Box) -> None:
    """Reading our own output back would keep removed CAs alive: use certifi instead."""
    box.etc_bundle.unlink()
    box.etc_bundle.symlink_to(box.runtime / "ca-bundle.pem")
    (box.runtime / "ca-bundle.pem").write_bytes(pem(CA2))  # a previous run's output
    result = box.apply()
    import certifi

    assert result.system_source == Path(certifi.where())
    assert der(CA2) not in ders_in(result.bundle.read_bytes())


def test_merged_bundle_pem_writes_nothing(box: Box) -> None:
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    data = trust.merged_bundle_pem(
        box.settings().trust, now=NOW, pristine=box.pristine, candidates=(box.etc_bundle,)
    )
    assert ders_in(data) == [*map(der, SYSTEM), der(CA1)]
    assert list(box.runtime.iterdir()) == []
    # A key-shaped block (built here, so no key header sits in a tracked file).
    label = b"PRIVATE " + b"KEY"
    (box.ca_d / "key.pem").write_bytes(
        b"-----BEGIN " + label + b"-----\nAA==\n-----END " + label + b"-----\n"
    )
    with pytest.raises(trust.TrustErrors) as raised:
        trust.merged_bundle_pem(box.settings().trust, candidates=(box.etc_bundle,))
    assert raised.value.exit_code == ExitCode.DATA


@pytest.fixture
def unshare() -> Iterator[list[str]]:
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"],
        capture_output=True,
        check=False,
    )
    assert probe.returncode == 0, (
        "the read-only test needs `unshare --user --map-root-user --mount` (util-linux) and "
        f"user namespaces: {probe.stderr.decode().strip()}"
    )
    yield ["unshare", "--user", "--map-root-user", "--mount"]


def test_read_only_system_dir_warns_and_still_succeeds(box: Box, unshare: list[str]) -> None:
    """Root with /etc/ssl mounted read-only (a real ro bind mount in a private namespace)."""
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    script = f"""
from pathlib import Path
from corpnet import config, trust
from datetime import datetime, UTC
settings = config.load({{"CORPNET_CONFIG_DIR": {str(box.config)!r}}})
result = trust.apply(
    settings,
    runtime_dir=Path({str(box.runtime)!r}),
    env={{"PATH": "/nonexistent"}},
    now=datetime.now(UTC),
    pristine=Path({str(box.pristine)!r}),
    candidates=(Path({str(box.etc_bundle)!r}),),
)
print(result.system_store_updated)
print("\\n".join(result.warnings))
"""
    etc = box.etc_bundle.parent
    mount = f'mount --bind -o ro {etc} {etc} && exec {sys.executable} -c "$0"'
    done = subprocess.run(
        [*unshare, "sh", "-c", mount, script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "False"
    assert "read-only, not updated" in done.stdout
    assert str(box.etc_bundle) in done.stdout
    assert box.etc_bundle.read_bytes() == SYSTEM_PEM
    assert der(CA1) in ders_in((box.runtime / "ca-bundle.pem").read_bytes())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_non_root_run_uses_the_fallback_dir_and_never_touches_etc() -> None:
    """The real CLI as `nobody`, with the system store left on auto."""
    root = Path(tempfile.mkdtemp(prefix="corpnet-nonroot-"))
    try:
        root.chmod(0o755)
        (root / "ca.d").mkdir()
        (root / "ca.d" / "corp.pem").write_bytes(pem(CA1))
        (root / "system.pem").write_bytes(SYSTEM_PEM)
        tmp = root / "tmp"
        tmp.mkdir()
        tmp.chmod(0o1777)
        unwritable = root / "run"
        unwritable.mkdir()  # root's, 0755: nobody cannot write it
        for p in root.rglob("*"):
            if p.is_file():
                p.chmod(0o644)
        host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        before = _sha(host_bundle)
        env = {
            "PATH": "/usr/bin:/bin",
            "TMPDIR": str(tmp),
            "CORPNET_CONFIG_DIR": str(root),
            "CORPNET_RUNTIME_DIR": str(unwritable),
            "CORPNET_SYSTEM_BUNDLE": str(root / "system.pem"),
        }
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-m", "corpnet", "trust", "--json"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        import json

        report = json.loads(done.stdout)
        fallback = tmp / "corpnet-65534"
        assert report["bundle"] == str(fallback / "ca-bundle.pem")
        assert report["system_store_updated"] is False
        assert der(CA1) in ders_in((fallback / "ca-bundle.pem").read_bytes())
        assert (fallback / "ca-bundle.pem").stat().st_uid == 65534
        assert "warning" not in done.stderr
        assert _sha(host_bundle) == before
        assert list(unwritable.iterdir()) == []
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_an_unlistable_ca_directory_is_a_permission_error() -> None:
    """As `nobody`, a 0700 directory under ca.d cannot be listed: exit 77 naming it."""
    root = Path(tempfile.mkdtemp(prefix="corpnet-unlistable-"))
    try:
        root.chmod(0o755)
        (root / "ca.d" / "private").mkdir(parents=True)
        (root / "ca.d" / "private").chmod(0o700)
        (root / "system.pem").write_bytes(SYSTEM_PEM)
        (root / "system.pem").chmod(0o644)
        (root / "tmp").mkdir(mode=0o1777)
        (root / "tmp").chmod(0o1777)
        env = {
            "PATH": "/usr/bin:/bin",
            "CORPNET_CONFIG_DIR": str(root),
            "CORPNET_RUNTIME_DIR": str(root / "run"),
            "CORPNET_SYSTEM_BUNDLE": str(root / "system.pem"),
            "TMPDIR": str(root / "tmp"),
        }
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-m", "corpnet", "trust"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 77, done.stderr
        assert f"cannot list CA directory {root / 'ca.d' / 'private'}" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_a_full_runtime_dir_is_77_naming_it(box: Box, unshare: list[str]) -> None:
    """A tiny tmpfs that cannot hold the outputs: one line, no traceback."""
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    script = f"""
import sys
from pathlib import Path
from corpnet import config, trust
from corpnet.errors import CorpnetError
try:
    trust.apply(
        config.load({{"CORPNET_CONFIG_DIR": {str(box.config)!r}}}),
        runtime_dir=Path({str(box.runtime)!r}),
        env={{"PATH": "/nonexistent"}},
        candidates=(),
    )
except CorpnetError as e:
    print(int(e.exit_code), e)
"""
    mount = f'mount -t tmpfs -o size=4k tmpfs {box.runtime} && exec {sys.executable} -c "$0"'
    done = subprocess.run(
        [*unshare, "sh", "-c", mount, script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("77 cannot write "), done.stdout
    assert "No space left on device" in done.stdout
    assert "CORPNET_RUNTIME_DIR" in done.stdout


def test_truststore_is_deterministic_and_its_mac_verifies(box: Box, tmp_path: Path) -> None:
    from corpnet.trust import _java

    ders = [*map(der, SYSTEM), der(CA1)]
    store = _java.truststore(ders, ["a", "b", "c", "d"])
    assert store == _java.truststore(ders, ["a", "b", "c", "d"])  # restarts: byte-identical
    path = tmp_path / "store.p12"
    path.write_bytes(store)

    def openssl(password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["openssl", "pkcs12", "-in", str(path), "-nokeys", "-info", "-passin",
             f"pass:{password}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    good = openssl("changeit")
    assert good.returncode == 0, good.stderr
    assert good.stdout.count("BEGIN CERTIFICATE") == 4
    assert "2.16.840.1.113894.746875.1.1" in good.stdout + good.stderr  # Java's trust marker
    assert openssl("wrong").returncode != 0  # the MAC is checked


def test_a_system_bundle_changed_behind_corpnet_becomes_the_new_original(box: Box) -> None:
    """A package update or a derived image's update-ca-certificates must not be undone."""
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    box.apply(euid=0)  # pristine = SYSTEM_PEM, /etc = merged
    # A restart: /etc holds what corpnet wrote, so the pristine copy stays the source.
    assert box.apply(euid=0).system_source == box.pristine
    # Now apt upgrades ca-certificates: /etc gets a new distro bundle with a new root.
    new_root = make_cert("New Distro Root", serial=99)
    upgraded = SYSTEM_PEM + pem(new_root)
    box.etc_bundle.write_bytes(upgraded)
    result = box.apply(euid=0)
    assert result.system_source == box.etc_bundle
    assert box.pristine.read_bytes() == upgraded
    assert ders_in(box.etc_bundle.read_bytes()) == [*map(der, SYSTEM), der(new_root), der(CA1)]
    # And removing the corporate CA still restores exactly the upgraded original.
    (box.ca_d / "corp.pem").unlink()
    box.apply(euid=0)
    assert box.etc_bundle.read_bytes() == upgraded


def test_a_crash_between_marker_and_etc_keeps_the_original(box: Box) -> None:
    (box.ca_d / "corp.pem").write_bytes(pem(CA1))
    box.apply(euid=0)
    merged_once = box.etc_bundle.read_bytes()
    # Simulate: the next start recorded its new bundle, then died before writing /etc.
    (box.ca_d / "corp2.pem").write_bytes(pem(CA2))
    marker = box.pristine.with_name(box.pristine.name + ".written")
    new = hashlib.sha256(merged_once + pem(CA2)).hexdigest()
    marker.write_text(new + "\n" + marker.read_text().split()[0] + "\n")
    result = box.apply(euid=0)
    assert result.system_source == box.pristine  # /etc (merged_once) is known as ours
    assert box.pristine.read_bytes() == SYSTEM_PEM
