#!/bin/sh
# Build Squid's password file from the compose secret, then run Squid in the
# foreground. PROXY_USER names the account; the password is never printed.
set -eu
secret=${PROXY_PASSWORD_FILE:-/run/secrets/proxy_password}
[ -r "$secret" ] || { echo "start-proxy: $secret is missing: mount the proxy_password secret" >&2; exit 78; }
install -d -m 0750 -o root -g proxy /run/squid-auth
umask 027
# Squid's basic_ncsa_auth reads APR1-MD5 hashes (htpasswd format).
printf '%s:%s\n' "${PROXY_USER:?set PROXY_USER}" "$(head -n1 "$secret" | tr -d '\r\n' | openssl passwd -apr1 -stdin)" \
    > /run/squid-auth/passwd
chgrp proxy /run/squid-auth/passwd
exec squid -N -f /etc/squid/squid.conf
