#!/bin/sh
# The realm CORP.TEST, made fresh at every start (about 0.1 s):
# - alice: a user with a password (KRB_ALICE_PASSWORD), pre-authentication
#   required as in Active Directory, so a wrong password or a skewed clock is
#   refused by the KDC itself;
# - bot: a user with a random key, exported to /out/bot.keytab for the test
#   to copy out (docker's archive API); never committed anywhere;
# - HTTP/proxy-krb.corp.test: Squid's service principal, in a keytab only
#   Squid's helper (user proxy) can read;
# - HTTP/proxy-krb-stale.corp.test: a principal the KDC issues tickets for but
#   Squid's keytab lacks (a proxy whose keytab is out of date): Squid cannot
#   read the ticket and answers 407 again. proxy-krb-unknown.corp.test (the
#   same Squid) has no principal at all.
set -eu
master=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
kdb5_util create -s -r CORP.TEST -P "$master" >/dev/null
echo '*/admin@CORP.TEST *' > /etc/krb5kdc/kadm5.acl
kadmin.local -q "addprinc +requires_preauth -pw $KRB_ALICE_PASSWORD alice" >/dev/null
kadmin.local -q "addprinc -randkey bot" >/dev/null
kadmin.local -q "addprinc -randkey HTTP/proxy-krb.corp.test" >/dev/null
kadmin.local -q "addprinc -randkey HTTP/proxy-krb-stale.corp.test" >/dev/null
install -d -m 0755 /out
kadmin.local -q "ktadd -k /etc/squid/HTTP.keytab HTTP/proxy-krb.corp.test" >/dev/null
kadmin.local -q "ktadd -k /out/bot.keytab bot" >/dev/null
chown proxy:proxy /etc/squid/HTTP.keytab
chmod 0600 /etc/squid/HTTP.keytab
chmod 0644 /out/bot.keytab
krb5kdc
echo "krb-rig: realm CORP.TEST ready" >&2
exec squid -N -f /etc/squid/squid.conf
