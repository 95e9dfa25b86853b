"""Remove the build-only trust layer from a built image, then prove it is gone.

``corpnet build`` builds on top of a *trust image*: the base image plus one
layer holding the host's CA bundle and ``ENV`` lines pointing the tools at it.
Docker's classic builder commits everything a ``RUN`` sees, so the layer is in
the built image's chain. Layers are independent tar change sets, so the layer,
its history entries and its variables can be taken out of the image
configuration and the image loaded back: the result is exactly what the
Dockerfile produced on the real base, sharing the base's layers.

The pure part (:func:`strip_config`) edits the configuration; the edge
(:func:`rewrite_image`) saves, rewrites and loads the image, and scans the
layers the Dockerfile added for the CA certificates that must not be there.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from corpnet.errors import CorpnetError, DataError

# Every path of the trust layer lives under this directory; history entries
# that mention it are the trust image's own.
TRUST_DIR = PurePosixPath("/usr/local/share/corpnet-build")
TRUST_BUNDLE = TRUST_DIR / "ca-bundle.pem"
_MAX_SCAN = 64 << 20  # certificate files are small; skip anything larger than 64 MiB


@dataclass(frozen=True)
class TrustImage:
    """A base image with the build-only trust layer on top."""

    ref: str  # the FROM reference it replaces
    image_id: str
    layers: tuple[str, ...]  # diff ids, the trust layer last
    env: Mapping[str, str]  # what the trust layer set
    base_env: Mapping[str, str]  # the base's own values of those names, to restore


def _env_map(entries: Iterable[str]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in entries if "=" in e)


def strip_config(config: Mapping[str, Any], trust: TrustImage) -> tuple[dict[str, Any], int] | None:
    """Return ``config`` without ``trust``'s layer, history and variables.

    Returns the new configuration and the index of the removed layer, or None
    when the image was not built on ``trust``.
    """
    diff_ids: list[str] = list(config["rootfs"]["diff_ids"])
    n = len(trust.layers)
    if tuple(diff_ids[:n]) != trust.layers:
        return None
    new = json.loads(json.dumps(config))
    new["rootfs"]["diff_ids"] = diff_ids[: n - 1] + diff_ids[n:]
    marker = str(TRUST_DIR)
    new["history"] = [h for h in config.get("history", []) if marker not in h.get("created_by", "")]
    for section in ("config", "container_config"):
        cfg = new.get(section)
        if not isinstance(cfg, dict):
            continue
        env = cfg.get("Env") or []
        kept: list[str] = []
        for entry in env:
            name, _, value = entry.partition("=")
            if trust.env.get(name) == value:
                if name in trust.base_env:
                    kept.append(f"{name}={trust.base_env[name]}")
                continue
            kept.append(entry)
        cfg["Env"] = kept
        # The parent image id names an intermediate image that had the trust layer.
        if "Image" in cfg:
            cfg["Image"] = ""
    return new, n - 1


def needles_for(ders: Iterable[bytes]) -> list[bytes]:
    """Byte strings whose presence in a file means a build CA leaked into it."""
    import base64

    result: list[bytes] = []
    for der in ders:
        result.append(der)
        # The first PEM line (64 base64 characters) of the certificate.
        result.append(base64.b64encode(der)[:64])
    return result


def _scan_layer(layer: io.BufferedIOBase, needles: Sequence[bytes]) -> str | None:
    with tarfile.open(fileobj=layer, mode="r|*") as tar:
        for member in tar:
            if not member.isreg() or member.size > _MAX_SCAN:
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            data = f.read()
            if any(n in data for n in needles):
                return "/" + member.name.lstrip("./")
    return None


def rewrite_image(
    client: Any,
    image_id: str,
    trust_images: Sequence[TrustImage],
    *,
    tag: str | None,
    needles: Sequence[bytes],
    forbidden: Sequence[str] = (),
    workdir: Path | None = None,
) -> str:
    """Load ``image_id`` back without its trust layer, tagged ``tag``; return the new id.

    Raises:
        DataError: a build CA certificate or a ``forbidden`` string (a proxy
            URL) is still in the image: in a file the Dockerfile wrote, or in
            its configuration.
    """
    with tempfile.TemporaryDirectory(prefix="corpnet-build-", dir=workdir) as tmp:
        saved = Path(tmp) / "saved.tar"
        with saved.open("wb") as f:
            for chunk in client.api.get_image(image_id):
                f.write(chunk)
        with tarfile.open(saved) as src:
            manifest = json.load(_member(src, "manifest.json"))[0]
            config = json.load(_member(src, manifest["Config"]))
            layers: list[str] = list(manifest["Layers"])
            base_count = 0
            for trust in trust_images:
                stripped = strip_config(config, trust)
                if stripped is not None:
                    config, index = stripped
                    del layers[index]
                    base_count = index
                    break
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            _check_config(config_bytes, needles, forbidden)
            for layer in layers[base_count:]:
                found = _scan_layer(_member(src, layer), needles)
                if found is not None:
                    raise DataError(
                        f"the built image contains a build-only CA certificate in {found}",
                        hint="a RUN step copied the build's CA bundle (SSL_CERT_FILE and friends) "
                        "into the image; copy only what the step produced",
                        path=found,
                    )
            config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
            new_manifest = [{"Config": config_name, "RepoTags": [_full_tag(tag)] if tag else None,
                             "Layers": layers}]  # fmt: skip
            out = Path(tmp) / "load.tar"
            with tarfile.open(out, "w") as dst:
                _add_bytes(dst, "manifest.json", json.dumps(new_manifest).encode())
                _add_bytes(dst, config_name, config_bytes)
                for layer in layers:
                    info = src.getmember(layer)
                    dst.addfile(info, _member(src, layer))
        with out.open("rb") as f:
            loaded = client.images.load(f)
        if not loaded:
            raise CorpnetError("docker load returned no image", hint="see the Docker daemon log")
        new_id: str = loaded[0].id
        return new_id


def _member(tar: tarfile.TarFile, name: str) -> Any:
    f = tar.extractfile(name)
    if f is None:
        raise CorpnetError(f"docker save produced no {name}", hint="see the Docker daemon log")
    return f


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _check_config(config: bytes, needles: Sequence[bytes], forbidden: Sequence[str]) -> None:
    text = config.decode(errors="replace")
    if any(n in config for n in needles):
        raise DataError(
            "the built image's configuration contains a build-only CA certificate",
            hint="do not put certificates into ENV or LABEL values",
        )
    for value in forbidden:
        if value and value in text:
            raise DataError(
                "the built image's configuration or history contains a build-only proxy setting",
                hint="do not declare the proxy variables with ARG or ENV in the Dockerfile: "
                "Docker passes HTTP_PROXY, HTTPS_PROXY and NO_PROXY to RUN steps by itself "
                "and keeps them out of the history",
            )


def _full_tag(tag: str) -> str:
    """``name`` -> ``name:latest``: ``docker load`` rejects a RepoTag without a tag,
    where ``docker build -t name`` accepts it."""
    last = tag.rsplit("/", 1)[-1]
    return tag if ":" in last or "@" in last else f"{tag}:latest"
