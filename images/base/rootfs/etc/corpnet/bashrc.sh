# corpnet: the bash hook. /etc/bash.bashrc sources it for interactive shells
# (`docker exec -it c bash`) and the image sets BASH_ENV to it for
# non-interactive ones (`docker exec c bash -c ...`), which read no startup
# file otherwise. The logic, and the guard against sourcing twice (a login
# shell reads /etc/profile and then bash.bashrc), live in the POSIX hook,
# found next to this file: /etc/corpnet/../profile.d/corpnet.sh.
__corpnet_hook="${BASH_SOURCE[0]%/*}/../profile.d/corpnet.sh"
if [ -r "$__corpnet_hook" ]; then
    . "$__corpnet_hook"
fi
unset __corpnet_hook
