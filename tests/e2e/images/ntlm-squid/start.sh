#!/bin/sh
# One local NTLM user (NTLM_USER / NTLM_PASSWORD, test values), winbindd
# without a domain, then Squid. Squid's helpers run as user proxy, which needs
# winbindd's privileged pipe (group winbindd_priv).
set -eu
useradd -M -s /usr/sbin/nologin "$NTLM_USER"
printf '%s\n%s\n' "$NTLM_PASSWORD" "$NTLM_PASSWORD" | smbpasswd -a -s "$NTLM_USER" >/dev/null
winbindd -D
usermod -aG winbindd_priv proxy
# ntlm_auth fails until winbindd answers on its pipe.
i=0
until wbinfo -p >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || { echo "ntlm-rig: winbindd did not start" >&2; exit 1; }
    sleep 0.1
done
echo "ntlm-rig: winbindd ready" >&2
exec squid -N -f /etc/squid/squid.conf
