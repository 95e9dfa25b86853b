#!/bin/sh
set -eu
rm -rf /var/spool/squid/ssl_db
/usr/lib/squid/security_file_certgen -c -s /var/spool/squid/ssl_db -M 4MB >/dev/null
chown -R proxy:proxy /var/spool/squid
exec squid -N -f /etc/squid/squid.conf
