# Shared provisioning for scripts/test and scripts/demo. Sourced, not run.
# Each step is idempotent and cheap when already done; each failure says what
# to do. Nothing here names a registry or mirror host: apt's own sources are
# read at run time.

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages the tests drive for real.
PACKAGES=(docker.io debootstrap squid nginx-light git curl openssl ca-certificates nodejs iproute2)

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
    apt-get update -qq || die "apt-get update failed: check the apt sources and the network"
    # Services must not start at install time: the tests start their own.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
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
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e '.[test]' || die "pip install failed: check the package index is reachable"
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
    :  # filled in by the image issue: bootstrap debian:bookworm-slim when missing
}
