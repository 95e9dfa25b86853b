"""``corpnet build``: build a Dockerfile behind a TLS-inspecting proxy.

The host side of corpnet, and the only module that imports the docker SDK
(never imported on the container start path). A build behind a corporate
egress needs the host's extra CA certificates and proxy settings in its
``RUN`` steps, and a published image must carry neither. The docker SDK drives
Docker's classic builder, which has no build secrets and commits everything a
``RUN`` step sees, so corpnet does it in three moves:

1. Proxies go in as Docker's predefined build arguments (``HTTP_PROXY``,
   ``HTTPS_PROXY``, ``NO_PROXY``, ``ALL_PROXY``, both cases): every ``RUN``
   step sees them and Docker leaves them out of the image history.
2. Each local image a ``FROM`` line names is replaced, for this build, by a
   *trust image*: that image plus one layer with the host's CA bundle and
   ``ENV`` lines pointing OpenSSL, curl, git, pip, requests and Node at it.
   The Dockerfile itself stays unchanged.
3. The built image is loaded back without that layer, its history entries and
   its variables (:mod:`corpnet.build._strip`), then its own layers are
   scanned: a build CA left in a file fails the build. Temporary images are
   removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import ssl
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpnet import log as logmod
from corpnet.build._base import bootstrap_base
from corpnet.build._strip import TRUST_BUNDLE, TrustImage, needles_for, rewrite_image
from corpnet.errors import (
    ConfigError,
    CorpnetError,
    DataError,
    ExitCode,
    UnreachableError,
    UsageError,
)

__all__ = [
    "BuildError",
    "BuildInputs",
    "bootstrap_base",
    "build",
    "connect",
    "host_inputs",
    "image_exists",
    "parse_froms",
    "proxy_build_args",
]

# Where the host keeps the bundle its own tools trust, by distribution.
HOST_BUNDLES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu, Alpine (ca-certificates)
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # Fedora, RHEL
    Path("/etc/ssl/cert.pem"),  # macOS, Alpine's LibreSSL path
)
# Debian/Ubuntu's directory for locally added CAs: the "extra" certificates
# that must never end up in a published image.
HOST_EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")
# Docker's predefined ARGs: passed to RUN steps without an ARG line and kept
# out of `docker history` (Dockerfile reference, "Predefined ARGs").
PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
# The variables the trust layer sets for RUN steps; each tool's own name.
TRUST_ENV_NAMES = (
    "SSL_CERT_FILE",  # OpenSSL, Python's ssl module, Debian's pip via requests
    "CURL_CA_BUNDLE",  # curl
    "REQUESTS_CA_BUNDLE",  # requests
    "PIP_CERT",  # pip, whatever its vendored certifi says
    "NODE_EXTRA_CA_CERTS",  # Node.js and npm
    "GIT_SSL_CAINFO",  # git over https
)
_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")


class BuildError(CorpnetError):
    """The Dockerfile itself failed to build (a RUN step exited non-zero, ...)."""

    exit_code = ExitCode.FAILURE


@dataclass(frozen=True)
class BuildInputs:
    """What the host hands to a build, for the build only."""

    bundle: bytes  # PEM: every CA the build's tools trust
    extra_ders: tuple[bytes, ...] = ()  # the host's own CAs: must not reach the image
    proxy: Mapping[str, str] = field(default_factory=dict)  # predefined proxy build args
    sources: tuple[str, ...] = ()  # where the bundle came from, for messages


def pem_certificates(data: bytes) -> list[bytes]:
    """DER of every PEM certificate in ``data``."""
    return [ssl.PEM_cert_to_DER_cert(m.decode("ascii")) for m in _PEM_RE.findall(data)]


def proxy_build_args(env: Mapping[str, str]) -> dict[str, str]:
    """The host's proxy variables as Docker's predefined build arguments, both cases.

    Both cases are passed because tools disagree on which they read (curl only
    reads lower-case ``http_proxy``; Go and Python read either).
    """
    args: dict[str, str] = {}
    for upper in PROXY_ARGS:
        value = env.get(upper) or env.get(upper.lower())
        if value:
            args[upper] = value
            args[upper.lower()] = value
    return args


def host_inputs(
    env: Mapping[str, str],
    *,
    ca_files: Sequence[Path] = (),
    host_bundle: bool = True,
    bundles: Sequence[Path] = HOST_BUNDLES,
    extra_dir: Path = HOST_EXTRA_CA_DIR,
) -> BuildInputs:
    """Collect the host's CA bundle, extra CAs and proxy settings.

    The bundle is ``SSL_CERT_FILE`` when set, else the distribution's bundle,
    plus every ``ca_files`` entry. Extra CAs (what must not reach the image)
    are ``ca_files`` and the certificates in ``extra_dir``.

    Raises:
        DataError: a ``ca_files`` entry holds no PEM certificate.
        ConfigError: ``ca_files`` entry missing, or no bundle found and none given.
    """
    parts: list[bytes] = []
    sources: list[str] = []
    if host_bundle:
        candidates = [Path(env["SSL_CERT_FILE"])] if env.get("SSL_CERT_FILE") else []
        for path in [*candidates, *bundles]:
            with contextlib.suppress(OSError):
                data = path.read_bytes()
                if _BEGIN in data:
                    parts.append(data)
                    sources.append(str(path))
                    break
    extras: list[bytes] = []
    for path in ca_files:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ConfigError(
                f"--ca-file {path}: cannot read it ({e.strerror})",
                hint="name a PEM file with the CA certificates the build must trust",
                path=path,
            ) from e
        ders = pem_certificates(data)
        if not ders:
            raise DataError(
                f"--ca-file {path} holds no PEM certificate",
                hint="pass a file with -----BEGIN CERTIFICATE----- blocks",
                path=path,
            )
        extras += ders
        parts.append(data)
        sources.append(str(path))
    if extra_dir.is_dir():
        for path in sorted(extra_dir.rglob("*.crt")):
            with contextlib.suppress(OSError, ValueError):
                extras += pem_certificates(path.read_bytes())
    if not parts:
        raise ConfigError(
            "found no CA bundle on this host to hand to the build",
            hint=f"set SSL_CERT_FILE or pass --ca-file (looked at {', '.join(map(str, bundles))})",
            variable="SSL_CERT_FILE",
        )
    bundle = b"\n".join(p.rstrip(b"\n") for p in parts) + b"\n"
    return BuildInputs(
        bundle=bundle,
        extra_ders=tuple(dict.fromkeys(extras)),
        proxy=proxy_build_args(env),
        sources=tuple(sources),
    )


# --- Dockerfile FROM lines ------------------------------------------------------------------


@dataclass(frozen=True)
class FromLine:
    """One ``FROM`` instruction: where it is and which image it names."""

    index: int  # line number (0-based) of the instruction
    image: str  # the image reference, build arguments substituted
    stage: str | None  # the ``AS name``, if any
    platform: str | None = None


_FROM_RE = re.compile(
    r"^\s*FROM\s+(?:--platform=(?P<platform>\S+)\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?\s*$",
    re.IGNORECASE,
)
_ARG_RE = re.compile(r"^\s*ARG\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:=(?P<value>\S*))?\s*$", re.I)
_VAR_RE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}|"
                     r"(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")  # fmt: skip


def _substitute(text: str, values: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        value = values.get(name, "")
        return value or (m.group("default") or "")

    return _VAR_RE.sub(one, text)


def parse_froms(dockerfile: str, buildargs: Mapping[str, str]) -> list[FromLine]:
    """Every ``FROM`` of ``dockerfile``, with global ``ARG`` defaults and ``buildargs`` applied."""
    values: dict[str, str] = {}
    froms: list[FromLine] = []
    for i, line in enumerate(dockerfile.splitlines()):
        if not froms and (m := _ARG_RE.match(line)):
            name = m.group("name")
            values[name] = buildargs.get(name, m.group("value") or "")
            continue
        if m := _FROM_RE.match(line):
            froms.append(
                FromLine(
                    index=i,
                    image=_substitute(m.group("image"), values),
                    stage=m.group("stage"),
                    platform=m.group("platform"),
                )
            )
    return froms


def rewrite_froms(dockerfile: str, froms: Iterable[FromLine], images: Mapping[str, str]) -> str:
    """``dockerfile`` with each FROM naming a key of ``images`` pointed at its value."""
    lines = dockerfile.splitlines()
    for f in froms:
        if f.image in images:
            platform = f"--platform={f.platform} " if f.platform else ""
            stage = f" AS {f.stage}" if f.stage else ""
            lines[f.index] = f"FROM {platform}{images[f.image]}{stage}"
    return "\n".join(lines) + "\n"


# --- the docker edge ------------------------------------------------------------------------


def connect() -> Any:
    """A docker SDK client from the environment (``DOCKER_HOST``, ...).

    Raises:
        ConfigError: the docker SDK is not installed.
        UnreachableError: no Docker engine answers.
    """
    try:
        import docker  # type: ignore[import-untyped]  # host side only; no stubs published
    except ModuleNotFoundError as e:
        raise ConfigError(
            "corpnet build needs the docker SDK, which is not installed",
            hint="pip install docker (the host extra: pip install '.[host]' in a corpnet checkout)",
        ) from e
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        raise UnreachableError(
            f"no Docker engine answers at {os.environ.get('DOCKER_HOST', 'the default socket')}",
            hint="start dockerd (or set DOCKER_HOST) and make sure you may use its socket",
        ) from e
    return client


def _trust_env(base_env: Mapping[str, str]) -> dict[str, str]:
    env = dict.fromkeys(TRUST_ENV_NAMES, str(TRUST_BUNDLE))
    # Node reads NODE_EXTRA_CA_CERTS *in addition* to its own store; keep a
    # user's extra file working by leaving theirs when the base sets one.
    if base_env.get("NODE_EXTRA_CA_CERTS"):
        del env["NODE_EXTRA_CA_CERTS"]
    return env


def _make_trust_image(client: Any, ref: str, inputs: BuildInputs, *, keep: bool) -> TrustImage:
    import docker

    base = client.images.get(ref)
    base_env = dict(e.split("=", 1) for e in (base.attrs["Config"].get("Env") or []) if "=" in e)
    env = _trust_env(base_env)
    env_line = " \\\n    ".join(f"{k}={v}" for k, v in env.items())
    dockerfile = f"FROM {base.id}\nENV {env_line}\nCOPY ca-bundle.pem {TRUST_BUNDLE}\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile.encode()), ("ca-bundle.pem", inputs.bundle)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    if keep:
        # Kept for the next build: one per base and bundle, so Docker's layer cache
        # (keyed by the parent image) finds the previous build's steps.
        digest = hashlib.sha256(dockerfile.encode() + inputs.bundle).hexdigest()[:16]
        tag = f"corpnet-build-trust:{digest}"
    else:
        tag = f"corpnet-build-trust:{os.getpid()}-{secrets.token_hex(4)}"
    try:
        if keep and image_exists(client, tag):
            image = client.images.get(tag)
        else:
            # nocache when not kept: a cached trust image would be shared with a
            # concurrent build, and removing it would pull it from under that build.
            image, _ = client.images.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                nocache=not keep,
            )
    except docker.errors.BuildError as e:
        raise BuildError(f"could not add the build CA layer to {ref}: {e.msg}") from e
    layers = tuple(image.attrs["RootFS"]["Layers"])
    return TrustImage(
        ref=ref,
        image_id=image.id,
        layers=layers,
        env=env,
        base_env={k: v for k, v in base_env.items() if k in env},
    )


def _stream(client: Any, log: logmod.Log, quiet: bool, **kwargs: Any) -> str:
    """Run a classic build, echo its output, return the built image id."""
    image_id: str | None = None
    last: list[str] = []
    for chunk in client.api.build(decode=True, **kwargs):
        if "error" in chunk:
            detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
            context = " | ".join(line.strip() for line in last[-3:] if line.strip())
            raise BuildError(
                f"the build failed: {detail.strip()}",
                hint=f"last output: {context}" if context else "see the build output above",
            )
        if "stream" in chunk:
            text = chunk["stream"]
            last = (last + text.splitlines())[-20:]
            if not quiet:
                log.stream.write(text)
                log.stream.flush()
        aux = chunk.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            image_id = aux["ID"]
    if image_id is None:
        raise BuildError("the build ended without an image", hint="see the build output above")
    return image_id


def _descendants(client: Any, roots: Iterable[str]) -> list[str]:
    """Every image built on ``roots`` (intermediate images included), children first."""
    children: dict[str, list[str]] = {}
    for img in client.api.images(all=True):
        children.setdefault(img.get("ParentId") or "", []).append(img["Id"])
    order: list[str] = []

    def walk(image_id: str) -> None:
        for child in children.get(image_id, []):
            walk(child)
        order.append(image_id)

    for root in roots:
        walk(root)
    return order


def _remove(client: Any, image_ids: Iterable[str], keep: set[str]) -> None:
    import docker

    for image_id in image_ids:
        if image_id in keep:
            continue
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_image(image_id, force=True)


@contextlib.contextmanager
def _trust_images(
    client: Any, refs: Iterable[str], inputs: BuildInputs, *, keep: bool
) -> Iterator[list[TrustImage]]:
    made: list[TrustImage] = []
    try:
        for ref in refs:
            made.append(_make_trust_image(client, ref, inputs, keep=keep))
        yield made
    finally:
        if not keep:
            _remove(client, _descendants(client, [t.image_id for t in made]), keep=set())


def build(
    client: Any,
    context: Path,
    *,
    tag: str | None,
    inputs: BuildInputs,
    dockerfile: Path | None = None,
    buildargs: Mapping[str, str] | None = None,
    network: str | None = None,
    nocache: bool = False,
    quiet: bool = False,
    labels: Mapping[str, str] | None = None,
    keep_cache: bool = False,
) -> str:
    """Build ``context`` with the host's CAs and proxies, for the build only; return the image id.

    With ``keep_cache`` the build-time images (the trust images, and the steps
    built on them) stay on this host, so the next build reuses Docker's layer
    cache; otherwise they are removed.

    Raises:
        UsageError: no Dockerfile.
        BuildError: the Dockerfile failed.
        DataError: a build CA or proxy setting ended up in the image anyway.
    """
    log = logmod.get()
    dockerfile = dockerfile or context / "Dockerfile"
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(
            f"cannot read the Dockerfile {dockerfile} ({e.strerror})",
            hint="pass the build context directory, and --file when the Dockerfile is elsewhere",
            path=dockerfile,
        ) from e
    args = {**inputs.proxy, **(buildargs or {})}
    froms = parse_froms(text, args)
    stages = {f.stage.lower() for f in froms if f.stage}
    refs = [f.image for f in froms if f.image.lower() not in stages | {"scratch"}]
    local = [r for r in dict.fromkeys(refs) if image_exists(client, r)]
    for missing in (r for r in dict.fromkeys(refs) if r not in local):
        log.warning(
            f"{missing} is not a local image: Docker will pull it, and its RUN steps get no "
            "build CA; pull or load it first (corpnet build --bootstrap-base for Debian)"
        )
    with _trust_images(client, local, inputs, keep=keep_cache) as trust:
        generated = rewrite_froms(text, froms, {t.ref: t.image_id for t in trust})
        # Outside the context: the SDK embeds such a Dockerfile into the context tar.
        fd, name = tempfile.mkstemp(prefix="corpnet-dockerfile-")
        dockerfile_path = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(generated)
        built: str | None = None
        try:
            log.info(
                f"building {context} (CAs from {', '.join(inputs.sources)}; "
                f"proxy: {'yes' if inputs.proxy else 'none'}; for the build only)"
            )
            built = _stream(
                client,
                log,
                quiet,
                path=str(context),
                dockerfile=str(dockerfile_path),
                buildargs=args,
                rm=True,
                forcerm=True,
                nocache=nocache,
                network_mode=network,
                labels=dict(labels or {}),
                use_config_proxy=False,  # inputs.proxy already holds them, from the host
            )
            needles = needles_for(inputs.extra_ders)
            result = rewrite_image(
                client,
                built,
                trust,
                tag=tag,
                needles=needles,
                forbidden=[v for k, v in inputs.proxy.items() if k.lower() != "no_proxy"],
            )
        finally:
            dockerfile_path.unlink(missing_ok=True)
    log.info(f"built {tag or result[:19]} ({result[:19]}); build CAs and proxies removed")
    return result


def image_exists(client: Any, ref: str) -> bool:
    import docker

    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True
