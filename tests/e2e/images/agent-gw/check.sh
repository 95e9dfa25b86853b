#!/bin/bash
# The agent's command in the gateway tests: real requests with curl, Python
# (urllib, requests), Node's fetch (NODE_USE_ENV_PROXY) and git, using only
# what corpnet exported (the gateway, no credentials). Prints one
# "E2E-OK <tool>: <answer>" or "E2E-FAIL <tool>: <error>" line per tool, then
# "E2E-DONE <0|1>"; with E2E_HOLD set it then stays up (the test inspects the
# running container: the gateway lives as long as the agent).
set -u
url=${E2E_URL:-https://api.corp.test/}
tools=${E2E_TOOLS:-curl urllib requests node git}
node=${E2E_NODE:-/opt/node24/bin/node}
failed=0
report() {  # tool, status, output
    if [ "$2" -eq 0 ]; then
        echo "E2E-OK $1: $(printf '%s' "$3" | tail -n 1)"
    else
        echo "E2E-FAIL $1: $(printf '%s' "$3" | tr '\n' ' ')"
        failed=1
    fi
}
for tool in $tools; do
    case $tool in
    curl)
        args=()
        if [ -n "${CLAUDE_CODE_CLIENT_CERT:-}" ]; then
            args=(--cert "$CLAUDE_CODE_CLIENT_CERT" --key "$CLAUDE_CODE_CLIENT_KEY")
        fi
        out=$(curl -sS --fail --max-time 15 "${args[@]}" "$url" 2>&1)
        report curl $? "$out"
        ;;
    urllib | requests)
        out=$(python3 /opt/e2e/check.py "$tool" "$url" 2>&1)
        report "$tool" $? "$out"
        ;;
    node)
        out=$("$node" /opt/e2e/gw/fetch.mjs "$url" 2>&1)
        report node $? "$out"
        ;;
    git)
        out=$(git ls-remote "${E2E_REPO:-https://api.corp.test/repo.git}" 2>&1)
        report git $? "$out"
        ;;
    get:*)
        # A plain-HTTP URL through the gateway (HTTP_PROXY): its forwarding path.
        out=$(curl -sS --fail --max-time 15 "${tool#get:}" 2>&1)
        report get $? "$out"
        ;;
    connect:*)
        # A bare CONNECT to the gateway: the status line and body it answers.
        out=$(python3 /opt/e2e/gw/connect.py "${tool#connect:}" 2>&1)
        echo "E2E-CONNECT ${tool#connect:}: $out"
        ;;
    esac
done
echo "E2E-ENV HTTPS_PROXY=${HTTPS_PROXY:-} NO_PROXY=${NO_PROXY:-}"
echo "E2E-DONE $failed"
if [ -n "${E2E_HOLD:-}" ]; then
    exec sleep 600
fi
exit $failed
