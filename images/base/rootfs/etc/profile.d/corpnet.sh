# corpnet: give this shell the environment the agent got at container start
# (CA bundle, client certificate, proxy variables), for shells that do not
# descend from the entrypoint: `docker exec`, `kubectl exec`, IDE terminals.
#
# POSIX sh: /etc/profile sources it for login shells (sh -l, bash -l), and
# /etc/corpnet/bashrc.sh for interactive bash (bash.bashrc) and non-interactive
# bash (BASH_ENV). Silent when corpnet has not run or the file is not readable
# by this user (env.sh can hold a proxy password, so it is 0600/0640).
#
# The file is in the runtime directory, or in the per-user fallback that
# corpnet uses when the runtime directory is not writable
# (corpnet.files.fallback_runtime_dir: Python's tempfile.gettempdir() reads
# TMPDIR first, then /tmp).
#
# Sourced only when owned by root or by this shell's own user, and writable by
# nobody else: a file the agent could write must never run in a root shell
# (`docker exec -u 0`), which would make the agent root (docs/security.md).
#
# Sourced once per process tree: CORPNET_ENV_SOURCED is exported, so a script
# run from a shell that changed a variable (NO_PROXY=... ./script) keeps the
# change instead of getting env.sh again through BASH_ENV.
#
# Interactive shells also print the notice `corpnet init` left (what it warned
# about: a missing CA or password file, a host it could not reach), once per
# shell, on stderr: in a devcontainer, the terminal is where a user looks, not
# `docker logs`. The same owner and mode rule applies: a root shell never shows
# text the agent wrote.

# True when FILE is a regular file of root's or of this shell's user that
# nobody else can write ("uid mode" from stat: no group/other write bit).
__corpnet_trusted() {
    [ -f "$1" ] || return 1
    __corpnet_st=$(stat -L -c '%u %a' "$1" 2>/dev/null) || return 1
    case "${__corpnet_st%% *}" in
        0 | "$(id -u)") ;;
        *) return 1 ;;
    esac
    case "${__corpnet_st##* }" in
        *[2367]? | *[2367]) return 1 ;;
    esac
    return 0
}

if [ -z "${CORPNET_ENV_SOURCED:-}" ]; then
    __corpnet_env="${CORPNET_RUNTIME_DIR:-/run/corpnet}/env.sh"
    # The fallback only when needed: BASH_ENV runs this for every `bash -c`.
    if [ ! -r "$__corpnet_env" ]; then
        __corpnet_env="${TMPDIR:-/tmp}/corpnet-$(id -u)/env.sh"
    fi
    if [ -r "$__corpnet_env" ] && __corpnet_trusted "$__corpnet_env"; then
        . "$__corpnet_env" && export CORPNET_ENV_SOURCED="$__corpnet_env"
    fi
    unset __corpnet_env
fi

case $- in
    *i*)
        if [ -z "${__corpnet_noticed:-}" ]; then
            __corpnet_noticed=1
            __corpnet_notice="${CORPNET_RUNTIME_DIR:-/run/corpnet}/notice"
            if [ -s "$__corpnet_notice" ] && __corpnet_trusted "$__corpnet_notice"; then
                cat "$__corpnet_notice" >&2
            fi
            unset __corpnet_notice
        fi
        ;;
esac
unset __corpnet_st
unset -f __corpnet_trusted
