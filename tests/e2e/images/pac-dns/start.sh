#!/bin/sh
# dnsmasq: wpad.corp.test is this container (--interface-name takes eth0's
# address); every other corp.test name it is asked for does not exist
# (--local: NXDOMAIN at once, where an unknown name would be REFUSED and look
# like a temporary failure). Docker's embedded DNS answers the network's own
# names before it forwards anything here.
set -eu
dnsmasq --no-resolv --no-hosts --log-queries --log-facility=/tmp/dnsmasq.log \
    --interface-name=wpad.corp.test,eth0 --local=/corp.test/
echo "pac-dns: dnsmasq started" >&2
exec nginx -g 'daemon off;'
