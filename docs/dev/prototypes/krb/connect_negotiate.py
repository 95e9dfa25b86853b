"""CONNECT through a Negotiate (Kerberos) proxy with pyspnego. Usage:
   connect_negotiate.py ccache|password|keytab|keytab-env [principal] [secret-or-keytab]"""
import base64, socket, sys, time, os
import spnego

PROXY = ("proxy.corp.test", 3128)
TARGET = "target.corp.test:8080"

def read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("proxy closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest

mode = sys.argv[1]
t0 = time.perf_counter()
if mode == "ccache":          # whatever kinit left in KRB5CCNAME / default ccache
    ctx = spnego.client(hostname=PROXY[0], service="HTTP", protocol=os.environ.get("PROTO", "negotiate"))
elif mode == "password":      # pyspnego calls krb5_get_init_creds_password into a MEMORY: ccache
    ctx = spnego.client(username=sys.argv[2], password=sys.argv[3], hostname=PROXY[0],
                        service="HTTP", protocol=os.environ.get("PROTO", "negotiate"))
elif mode == "keytab":        # pyspnego calls krb5_get_init_creds_keytab into a MEMORY: ccache
    cred = spnego.KerberosKeytab(keytab="FILE:" + sys.argv[3], principal=sys.argv[2])
    ctx = spnego.client(cred, hostname=PROXY[0], service="HTTP", protocol=os.environ.get("PROTO", "negotiate"))
elif mode == "keytab-env":    # MIT's client keytab: KRB5_CLIENT_KTNAME, gssapi acquires on demand
    ctx = spnego.client(username=sys.argv[2], hostname=PROXY[0], service="HTTP", protocol=os.environ.get("PROTO", "negotiate"))
token = ctx.step()
t1 = time.perf_counter()
s = socket.create_connection(PROXY)
s.sendall((f"CONNECT {TARGET} HTTP/1.1\r\nHost: {TARGET}\r\n"
           f"Proxy-Authorization: Negotiate {base64.b64encode(token).decode()}\r\n\r\n").encode())
head, rest = read_head(s)
status = head.split("\r\n")[0]
t2 = time.perf_counter()
print(f"{mode}: {status}  (token {len(token)} B, ticket+token {1000*(t1-t0):.1f} ms, CONNECT {1000*(t2-t1):.1f} ms)")
for line in head.split("\r\n")[1:]:
    if line.lower().startswith("proxy-authenticate"):
        # mutual auth: Squid returns the AP-REP; let the context verify it
        ctx.step(base64.b64decode(line.split(" ", 2)[2]))
        print("  mutual auth verified, ctx.complete =", ctx.complete)
if status.split()[1] == "200":
    s.sendall(b"GET / HTTP/1.1\r\nHost: target.corp.test:8080\r\nConnection: close\r\n\r\n")
    head, _ = read_head(s)
    print("  through tunnel:", head.split("\r\n")[0])
