# corpnet-base: a Debian image whose entrypoint makes the container work inside
# a corporate network (CA trust, proxies, mTLS, waiting for the network path).
#
#   corpnet build --tag corpnet-base .      (hands the host's CAs and proxy to the build only)
#
# Three stages: `runtime` (Debian packages, user, trust-store layout), `build`
# (builds the corpnet wheel and installs it into a venv; the only stage that
# talks to the package index) and the final stage, which copies the finished
# venv. Nothing the build needed (CA certificates, proxy settings, pip, the
# wheel) reaches the final image.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS runtime
# dpkg filters: no docs, man pages or translations (like debian:*-slim), and
# none of the server and developer parts of git and perl, nor CPython's own
# test modules (see the file).
COPY images/base/dpkg-slim.cfg /etc/dpkg/dpkg.cfg.d/corpnet-slim
COPY images/base/stdlib-bytecode.txt /tmp/corpnet-stdlib-bytecode.txt
# Versions come from the Debian suite of BASE_IMAGE; pinning them here would
# break on every point release of the mirror. libgssapi-krb5-2 and libkrb5-3
# (MIT Kerberos, which the gateway's gssapi and krb5 modules link) come with
# python3 and curl already; named here so nothing removes them.
# Two cuts keep the image within its size budget (docs/image.md):
# - Debian's git ships /usr/bin/git and /usr/lib/git-core/git as two
#   identical 3.7 MB files: one becomes a hard link to the other;
# - the byte code Debian compiled for standard-library modules the start path
#   never imports goes (the list is images/base/stdlib-bytecode.txt; the start
#   time of issue 14 depends on the rest). Python compiles such a module when
#   something imports it; `python3 -m compileall /usr/lib/python3.11` as root
#   in a derived image brings all of it back.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates tini curl git \
        libgssapi-krb5-2 libkrb5-3 nftables \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old \
        /var/lib/dpkg/*-old \
    && if cmp -s /usr/bin/git /usr/lib/git-core/git; then \
        ln -f /usr/lib/git-core/git /usr/bin/git; \
    fi \
    && find /usr/lib/python3.*/ -path '*/__pycache__/*.pyc' -exec sh -c 'for pyc; do \
        rel=${pyc#/usr/lib/python3.*/}; name=${rel##*/}; \
        mod=$(echo "${rel%__pycache__/*}${name%%.*}" | tr / .); \
        grep -qxF "${mod%.__init__}" /tmp/corpnet-stdlib-bytecode.txt || rm "$pyc"; \
    done' sh {} + \
    && rm /tmp/corpnet-stdlib-bytecode.txt
# The trust-store layout (see docs/image.md and docs/security.md):
# - /var/lib/corpnet/system-ca-bundle.pem: the pristine Debian bundle, so a CA
#   removed from the mounts disappears on the next start;
# - /etc/ssl/certs/ca-certificates.crt stays a root-owned file: root's trust
#   anchors are never a file the agent can write. A root start (CORPNET_USER)
#   rewrites it; a non-root start reaches tools through the exported variables;
# - /run/corpnet is root's with mode 1777, like /tmp: any uid can start
#   (uid 1000, OpenShift's arbitrary uid with gid 0, a --user 1000:1000 with a
#   tmpfs there, which takes this mode), and a root start takes it back to 0755.
RUN useradd --uid 1000 --user-group --create-home --shell /bin/bash agent \
    && groupadd --system --gid 990 corpnet-gateway \
    && useradd --system --uid 990 --gid 990 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin corpnet-gateway \
    && install -d -m 0755 /var/lib/corpnet /etc/corpnet/ca.d /etc/corpnet/client \
        /etc/corpnet/entrypoint.d \
    && install -d -m 1777 /run/corpnet \
    && install -m 0644 /etc/ssl/certs/ca-certificates.crt /var/lib/corpnet/system-ca-bundle.pem \
    && ln -s /opt/corpnet/venv/bin/corpnet /usr/local/bin/corpnet \
    && printf '\n# corpnet: the persisted proxy/CA environment for interactive shells.\n%s\n' \
        '[ -r /etc/corpnet/bashrc.sh ] && . /etc/corpnet/bashrc.sh' >> /etc/bash.bashrc

FROM runtime AS build
# The compiler and headers are for the gateway's Kerberos modules: PyPI has
# only sdists of gssapi and krb5 for Linux, built against MIT Kerberos
# (libkrb5-dev), and pacparser has a wheel for x86_64 only (aarch64 builds its
# sdist here). None of this reaches the final stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip python3-venv python3-dev gcc \
        libc6-dev libkrb5-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md* LICENSE ./
COPY entrypoint/ entrypoint/
# pip (Debian's) reads the CA bundle and proxy `corpnet build` hands to this
# stage through PIP_CERT and the proxy build arguments. /wheels gets corpnet
# with its gateway extra and pyspnego's kerberos extra (gssapi, krb5: without
# krb5, pyspnego has no Kerberos at all), and everything they need; the venv
# gets all of /wheels. What the venv does not need at run time goes:
# - the symbol tables of the shared objects (for debuggers; cryptography's
#   alone is 2.9 MB);
# - cffi's Python package and pycparser, which build cffi modules: the built
#   one in cryptography loads only _cffi_backend, which stays (so do the
#   .dist-info directories, for scanners that list versions);
# - tests and type stubs (*.pyi) shipped inside packages.
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[gateway]" "pyspnego[kerberos]" \
    && python3 -m venv --without-pip /opt/corpnet/venv \
    && pip --python /opt/corpnet/venv/bin/python install --no-cache-dir --no-index \
        --find-links /wheels /wheels/*.whl \
    && find /opt/corpnet/venv -name '*.so' -exec strip --strip-unneeded {} + \
    && site=$(echo /opt/corpnet/venv/lib/python3.*/site-packages) \
    && rm -rf "$site/cffi" "$site/pycparser" "$site/gssapi/tests" "$site/certifi/tests" \
        /opt/corpnet/venv/bin/cffi-gen-src \
    && find "$site" -name '*.pyi' -delete \
    && /opt/corpnet/venv/bin/corpnet --version \
    && /opt/corpnet/venv/bin/python -c 'import cryptography.hazmat.bindings.openssl.binding, \
        cryptography.x509, gssapi, krb5, pacparser, spnego._gss as g; assert g.HAS_GSSAPI'

FROM runtime
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="corpnet-base" \
      org.opencontainers.image.description="Debian base image whose entrypoint sets up CA trust, proxies and mTLS for agents inside corporate networks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
COPY --from=build /opt/corpnet /opt/corpnet
COPY images/base/rootfs/ /
# Non-interactive bash (`docker exec c bash -c ...`, scripts) reads BASH_ENV;
# interactive shells read /etc/bash.bashrc, login shells /etc/profile.d/.
ENV BASH_ENV=/etc/corpnet/bashrc.sh
USER 1000
WORKDIR /home/agent
# tini reaps zombies and forwards signals to the whole process group (-g);
# corpnet sets the container up, then execs CMD in its own place.
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/opt/corpnet/venv/bin/corpnet", "run"]
CMD ["bash"]
# Devcontainer tooling (VS Code, the devcontainers CLI) replaces ENTRYPOINT with
# its own shell and runs each metadata "entrypoint" there as a line without
# arguments, before the container idles: `corpnet init` runs the same stages as
# `corpnet run` without the exec, and returns. "init": true puts Docker's init
# (tini) in front, which the replaced ENTRYPOINT would have provided.
LABEL devcontainer.metadata='[{"entrypoint":"/opt/corpnet/venv/bin/corpnet init","init":true}]'
