#!/bin/sh
# Squid's basic_ncsa_auth reads crypt/MD5 hashes: make one from the test password.
set -eu
printf '%s:%s\n' "$SQUID_USER" "$(openssl passwd -apr1 "$SQUID_PASSWORD")" > /etc/squid/passwd
chown proxy /etc/squid/passwd
exec squid -N -f /etc/squid/squid.conf
