"""CONNECT through an NTLM proxy with pyspnego's NTLM initiator; all legs on one socket."""
import base64, socket, sys, time
import spnego

proxy_host, proxy_port, target, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def request(sock, f, auth):
    sock.sendall((f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Connection: keep-alive\r\n"
                  f"Proxy-Authorization: NTLM {base64.b64encode(auth).decode()}\r\n\r\n").encode())
    status = f.readline().decode().strip(); hdrs = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        k, v = line.decode().split(":", 1); hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    if "content-length" in hdrs:
        f.read(int(hdrs["content-length"][0]))  # keep the connection in step for the next leg
    return status, hdrs

t0 = time.perf_counter()
ctx = spnego.client(username=user, password=password, protocol="ntlm")
s = socket.create_connection((proxy_host, proxy_port)); f = s.makefile("rb")
status, hdrs = request(s, f, ctx.step())                      # leg 1: NEGOTIATE
challenge = next(v for v in hdrs.get("proxy-authenticate", []) if v.startswith("NTLM "))
status, hdrs = request(s, f, ctx.step(base64.b64decode(challenge[5:])))  # leg 3: AUTHENTICATE, same socket
print(f"{user}: {status} ({(time.perf_counter()-t0)*1000:.1f} ms)")
if status.split()[1] == "200":
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    print("  through tunnel:", f.readline().decode().strip())
