"""The e2e world: images (built once, cached by content hash), test PKI, a
corporate topology on internal Docker networks, and agent containers.

Everything a test creates carries the label ``corpnet.e2e=<session>`` and is
removed by :meth:`Tracker.cleanup`; images are tagged ``corpnet-e2e/<name>:<hash
of their inputs>`` and kept between runs (a changed input gets a new tag and
the stale one is removed).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import subprocess
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trustme

from corpnet import build as corpnet_build
from support import progress
from support.env import host_environ

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "tests" / "e2e" / "images"
LABEL = "corpnet.e2e"
PROXY_USER = "agent"
API_HOST = "api.corp.test"


def host_env() -> dict[str, str]:
    """The host's environment without the CA and proxy variables it exports.

    Tests that want a proxy or CA for a build add their own.
    """
    return host_environ()


def content_hash(paths: Iterable[Path], *extra: str) -> str:
    """A short hash of the files under ``paths`` (and ``extra`` strings)."""
    h = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for p in files:
            if "__pycache__" in p.parts or p.suffix == ".pyc" or ".egg-info" in str(p):
                continue
            h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:12]


def base_inputs_hash() -> str:
    """What corpnet-base is built from (the allowlist in .dockerignore)."""
    return content_hash(
        [
            REPO / n
            for n in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "LICENSE")
        ]
        + [REPO / "entrypoint", REPO / "images/base"]
    )


@dataclass
class Tracker:
    """Labels what a session creates, and removes it all at the end."""

    client: Any
    session: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.session}

    def cleanup(self) -> None:
        flt = {"label": f"{LABEL}={self.session}"}
        for c in self.client.containers.list(all=True, filters=flt):
            with contextlib.suppress(Exception):
                c.remove(force=True, v=True)
        for n in self.client.networks.list(filters=flt):
            with contextlib.suppress(Exception):
                n.remove()
        for v in self.client.volumes.list(filters=flt):
            with contextlib.suppress(Exception):
                v.remove(force=True)


def ensure_image(
    client: Any,
    name: str,
    context: Path,
    digest: str,
    *,
    buildargs: Mapping[str, str] | None = None,
    inputs: corpnet_build.BuildInputs | None = None,
) -> str:
    """``corpnet-e2e/<name>:<digest>``, built with ``corpnet build`` unless it exists."""
    tag = f"corpnet-e2e/{name}:{digest}"
    if corpnet_build.image_exists(client, tag):
        return tag
    # Tags of older inputs go, once no session can still be using them (a
    # concurrent run on another checkout state may be, for a few minutes).
    stale_before = time.time() - 3600
    for old in client.images.list(name=f"corpnet-e2e/{name}"):
        created = datetime.fromisoformat(old.attrs["Created"][:19]).replace(tzinfo=UTC)
        if created.timestamp() > stale_before:
            continue
        for t in old.tags:
            if t != tag:
                with contextlib.suppress(Exception):
                    client.images.remove(t)
    # A first run builds every image here, minutes of silence otherwise.
    with progress.heartbeat(f"building {tag} (first run or changed inputs)"):
        corpnet_build.build(
            client,
            context,
            tag=tag,
            inputs=inputs or corpnet_build.host_inputs(host_env()),
            buildargs=dict(buildargs or {}),
            quiet=True,
        )
    return tag


# --- PKI ------------------------------------------------------------------------------------


@dataclass
class Pki:
    """Certificates for one session, written under ``root`` with mount-ready modes."""

    root: Path
    corp_ca: trustme.CA = field(default_factory=lambda: trustme.CA(organization_name="E2E Corp CA"))
    client_ca: trustme.CA = field(
        default_factory=lambda: trustme.CA(organization_name="E2E Client CA")
    )
    inspector_ca: trustme.CA = field(
        default_factory=lambda: trustme.CA(organization_name="E2E Inspecting Proxy CA")
    )
    other_ca: trustme.CA = field(default_factory=lambda: trustme.CA(organization_name="E2E Other"))

    def write(self) -> None:
        api = self.root / "api"
        api.mkdir(parents=True)
        server = self.corp_ca.issue_cert(API_HOST)
        server.cert_chain_pems[0].write_to_path(str(api / "server.pem"))
        for extra in server.cert_chain_pems[1:]:
            extra.write_to_path(str(api / "server.pem"), append=True)
        server.private_key_pem.write_to_path(str(api / "server.key"))
        self.client_ca.cert_pem.write_to_path(str(api / "client-ca.pem"))
        # The agent's mounts: the corporate CA, the client certificate and key.
        self.ca_dir("ca.d", self.corp_ca)
        self.ca_dir("inspector-ca.d", self.inspector_ca)
        self.client_dir("client", self.client_leaf("agent@corp.test"))
        # A pair whose key belongs to another certificate.
        mismatched = self.client_dir("client-mismatched", self.client_ca.issue_cert("a@corp.test"))
        self.client_ca.issue_cert("b@corp.test").private_key_pem.write_to_path(
            str(mismatched / "tls.key")
        )
        # The inspecting proxy: its CA (cert and key in one file) and upstream trust.
        insp = self.root / "inspector"
        insp.mkdir()
        self.inspector_ca.cert_pem.write_to_path(str(insp / "bump.pem"))
        self.inspector_ca.private_key_pem.write_to_path(str(insp / "bump.pem"), append=True)
        self.corp_ca.cert_pem.write_to_path(str(insp / "upstream-ca.pem"))
        for p in [api, insp, *api.iterdir(), *insp.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)

    def client_leaf(self, name: str) -> trustme.LeafCert:
        """A client certificate whose subject names ``name`` (nginx shows the subject DN)."""
        return self.client_ca.issue_cert(name, common_name=name)

    def ca_dir(self, name: str, ca: trustme.CA) -> Path:
        d = self.root / name
        d.mkdir()
        ca.cert_pem.write_to_path(str(d / "corp.crt"))
        d.chmod(0o755)
        (d / "corp.crt").chmod(0o644)
        return d

    def client_dir(self, name: str, leaf: trustme.LeafCert, uid: int = 1000) -> Path:
        d = self.root / name
        d.mkdir()
        leaf.cert_chain_pems[0].write_to_path(str(d / "tls.crt"))
        leaf.private_key_pem.write_to_path(str(d / "tls.key"))
        # The issuing CA beside them, as in a kubernetes.io/tls secret with ca.crt.
        self.client_ca.cert_pem.write_to_path(str(d / "ca.crt"))
        d.chmod(0o755)
        (d / "tls.crt").chmod(0o644)
        (d / "ca.crt").chmod(0o644)
        (d / "tls.key").chmod(0o600)
        os.chown(d / "tls.key", uid, uid)
        return d


def make_repo(root: Path) -> tuple[Path, str]:
    """A bare git repository served over git's dumb HTTP protocol; returns (path, HEAD)."""
    root.mkdir(parents=True, exist_ok=True)
    work = root / "work"
    env = {
        **host_env(),
        "GIT_AUTHOR_NAME": "e2e",
        "GIT_AUTHOR_EMAIL": "e2e@corp.test",
        "GIT_COMMITTER_NAME": "e2e",
        "GIT_COMMITTER_EMAIL": "e2e@corp.test",
    }

    def git(*args: str, cwd: Path = root) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "main", str(work))
    (work / "README").write_text("corpnet e2e\n")
    git("add", "README", cwd=work)
    git("commit", "-q", "-m", "e2e", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)
    bare = root / "srv" / "repo.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    git("update-server-info", cwd=bare)
    for p in [root / "srv", *bare.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root / "srv", head


# --- running containers ---------------------------------------------------------------------


@dataclass
class Result:
    """What an agent container did."""

    code: int
    out: str
    err: str
    seconds: float

    def ok(self, tool: str) -> str:
        """The answer ``tool`` got; fails the test with everything printed when it had none."""
        for line in self.out.splitlines():
            if line.startswith(f"E2E-OK {tool}: "):
                return line.split(": ", 1)[1]
        raise AssertionError(f"{tool} did not succeed (exit {self.code}):\n{self}")

    def __str__(self) -> str:
        return f"--- stdout\n{self.out}\n--- stderr\n{self.err}"


def wait_exit(container: Any, timeout: float) -> tuple[int, float]:
    start = time.monotonic()
    status = container.wait(timeout=timeout)
    return int(status["StatusCode"]), time.monotonic() - start


def logs(container: Any) -> tuple[str, str]:
    out = container.logs(stdout=True, stderr=False).decode(errors="replace")
    err = container.logs(stdout=False, stderr=True).decode(errors="replace")
    return out, err


def wait_for_log(container: Any, needle: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if needle in container.logs().decode(errors="replace"):
            return
        if container.status == "exited":
            break
        time.sleep(0.2)
    out, err = logs(container)
    raise AssertionError(f"{container.name}: no {needle!r} within {timeout}s\n{out}\n{err}")


def archive_files(container: Any, path: str) -> dict[str, tuple[int, bytes]]:
    """Every regular file under ``path`` in ``container``: name -> (mode, content)."""
    stream, _ = container.get_archive(path)
    data = io.BytesIO(b"".join(stream))
    result: dict[str, tuple[int, bytes]] = {}
    with tarfile.open(fileobj=data) as tar:
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                result[m.name] = (m.mode, f.read() if f else b"")
    return result


def find_in_export(container: Any, needles: Sequence[bytes]) -> list[str]:
    """Paths of files in ``container``'s filesystem that contain any of ``needles``."""
    found: list[str] = []
    stream = container.export()
    reader = _ChunkReader(stream)
    with tarfile.open(fileobj=reader, mode="r|") as tar:
        for m in tar:
            if not m.isfile() or m.size > 64 << 20:
                continue
            f = tar.extractfile(m)
            data = f.read() if f else b""
            if any(n in data for n in needles):
                found.append("/" + m.name)
    reader.drain()  # tar stops at its end marker; read the rest so the socket closes
    return found


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (docker's export stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        for _ in self._it:
            pass

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
