#!/bin/sh
# Runs inside protogw-krb as the KDC + Squid container (aliases kdc.corp.test, proxy.corp.test).
set -eu
t0=$(date +%s.%N)
cp /cfg/krb5.conf /etc/krb5.conf
cp /cfg/kdc.conf /etc/krb5kdc/kdc.conf
echo '*/admin@CORP.TEST *' > /etc/krb5kdc/kadm5.acl
kdb5_util create -s -r CORP.TEST -P master-pw-not-secret >/dev/null
t1=$(date +%s.%N)
kadmin.local -q "addprinc -pw alice-pw alice" >/dev/null
kadmin.local -q "addprinc -randkey bot" >/dev/null
kadmin.local -q "addprinc -randkey HTTP/proxy.corp.test" >/dev/null
kadmin.local -q "ktadd -k /etc/squid/HTTP.keytab HTTP/proxy.corp.test" >/dev/null
# client keytab for "bot" (ktadd re-randomises its key: fine, it has no password)
kadmin.local -q "ktadd -k /out/bot.keytab bot" >/dev/null
# alice gets a keytab too, without changing her password (-norandkey: kadmin.local only)
kadmin.local -q "ktadd -norandkey -k /out/alice.keytab alice" >/dev/null
chmod 644 /out/*.keytab
chown proxy:proxy /etc/squid/HTTP.keytab; chmod 600 /etc/squid/HTTP.keytab
t2=$(date +%s.%N)
krb5kdc
t3=$(date +%s.%N)
cp /cfg/squid.conf /etc/squid/squid.conf
squid -f /etc/squid/squid.conf
t4=$(date +%s.%N)
echo "timing: kdb5_util create $(echo "$t1 - $t0" | bc 2>/dev/null || python3 -c "print(round($t1-$t0,3))")s; principals+keytabs $(python3 -c "print(round($t2-$t1,3))")s; krb5kdc start $(python3 -c "print(round($t3-$t2,3))")s; squid start $(python3 -c "print(round($t4-$t3,3))")s; total $(python3 -c "print(round($t4-$t0,3))")s"
klist -k /etc/squid/HTTP.keytab
