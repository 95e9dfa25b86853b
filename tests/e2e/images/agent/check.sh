#!/bin/bash
# The agent's command in the e2e tests: real requests with curl, Python
# (urllib, requests), Node and git, using only what corpnet exported. Prints
# one "E2E-OK <tool>: <answer>" or "E2E-FAIL <tool>: <error>" line per tool and
# exits 1 when any failed. E2E_URL, E2E_REPO and E2E_TOOLS are set by the test.
set -u
url=${E2E_URL:-https://api.corp.test/}
tools=${E2E_TOOLS:-curl urllib requests node git}
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
        # curl reads no variable for a client certificate: pass the exported paths.
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
        out=$(node /opt/e2e/check.mjs "$url" 2>&1)
        report node $? "$out"
        ;;
    git)
        out=$(git ls-remote "${E2E_REPO:-https://api.corp.test/repo.git}" 2>&1)
        report git $? "$out"
        ;;
    esac
done
exit $failed
