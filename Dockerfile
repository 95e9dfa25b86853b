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
# none of the server and developer parts of git and perl (see the file).
COPY images/base/dpkg-slim.cfg /etc/dpkg/dpkg.cfg.d/corpnet-slim
# Versions come from the Debian suite of BASE_IMAGE; pinning them here would
# break on every point release of the mirror. The byte code Debian compiles
# for standard-library parts the entrypoint never imports goes (Python
# compiles a module when something does import it): it keeps the image within
# its size budget (docs/image.md).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates tini curl git \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old \
        /var/lib/dpkg/*-old \
    && for unused in asyncio curses dbm distutils lib2to3 multiprocessing pydoc_data sqlite3 \
            test unittest wsgiref xml xmlrpc; do \
        find /usr/lib/python3.*/"$unused" -name __pycache__ -prune -exec rm -rf {} +; \
    done \
    && rm -f /usr/lib/python3.*/__pycache__/_pydecimal.* /usr/lib/python3.*/__pycache__/doctest.* \
        /usr/lib/python3.*/__pycache__/mailbox.* /usr/lib/python3.*/__pycache__/pydoc.* \
        /usr/lib/python3.*/__pycache__/turtle.*
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
    && install -d -m 0755 /var/lib/corpnet /etc/corpnet/ca.d /etc/corpnet/client \
        /etc/corpnet/entrypoint.d \
    && install -d -m 1777 /run/corpnet \
    && install -m 0644 /etc/ssl/certs/ca-certificates.crt /var/lib/corpnet/system-ca-bundle.pem \
    && ln -s /opt/corpnet/venv/bin/corpnet /usr/local/bin/corpnet \
    && printf '\n# corpnet: the persisted proxy/CA environment for interactive shells.\n%s\n' \
        '[ -r /etc/corpnet/bashrc.sh ] && . /etc/corpnet/bashrc.sh' >> /etc/bash.bashrc

FROM runtime AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY entrypoint/ entrypoint/
# pip (Debian's) reads the CA bundle and proxy `corpnet build` hands to this
# stage through PIP_CERT and the proxy build arguments.
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
    && python3 -m venv --without-pip /opt/corpnet/venv \
    && pip --python /opt/corpnet/venv/bin/python install --no-cache-dir --no-index \
        --find-links /wheels /wheels/corpnet-*.whl \
    && /opt/corpnet/venv/bin/corpnet --version

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
