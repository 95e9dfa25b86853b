"""Test-only NTLM proxy: the NTLM acceptor is pyspnego's (spnego.server, protocol="ntlm"),
checking users in the flat file named by NTLM_USER_FILE ("DOMAIN:user:password" lines).
NTLM authenticates the TCP connection: one spnego.server context per client connection,
so the 3 legs (negotiate -> 407 + challenge -> authenticate) must arrive on one socket."""
import base64, os, socket, socketserver, sys, threading, time

import spnego

LOG = sys.stdout

def read_head(f):
    lines = []
    while True:
        line = f.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line.decode("latin-1").rstrip("\r\n"))

def pipe(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass

class Handler(socketserver.StreamRequestHandler):
    def reply(self, status, headers=()):
        body = f"{status}\n".encode()
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        self.wfile.flush()

    def handle(self):
        ctx = None  # one acceptor per connection
        while (head := read_head(self.rfile)) is not None:
            method, target, _ = head[0].split(" ", 2)
            hdrs = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:])}
            auth = hdrs.get("proxy-authorization", "")
            if not auth.startswith("NTLM "):
                self.reply("407 Proxy Authentication Required", ["Proxy-Authenticate: NTLM"])
                continue
            token = base64.b64decode(auth[5:])
            if ctx is None or token[8:12] == b"\x01\x00\x00\x00":  # NEGOTIATE_MESSAGE starts a new handshake
                ctx = spnego.server(protocol="ntlm")
            try:
                out = ctx.step(token)
            except spnego.exceptions.SpnegoError as e:
                print(f"{time.time():.3f} {self.client_address[0]} DENIED {method} {target} ({e.__class__.__name__})", file=LOG, flush=True)
                ctx = None
                self.reply("407 Proxy Authentication Required", ["Proxy-Authenticate: NTLM"])
                continue
            if not ctx.complete:
                self.reply("407 Proxy Authentication Required",
                           [f"Proxy-Authenticate: NTLM {base64.b64encode(out).decode()}"])
                continue
            user = ctx.client_principal
            if method != "CONNECT":
                self.reply("501 Not Implemented")
                return
            host, port = target.rsplit(":", 1)
            try:
                up = socket.create_connection((host, int(port)), timeout=5)
            except OSError as e:
                self.reply("502 Bad Gateway")
                return
            print(f"{time.time():.3f} {self.client_address[0]} TUNNEL {target} user={user}", file=LOG, flush=True)
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n"); self.wfile.flush()
            up.settimeout(None)
            threading.Thread(target=pipe, args=(up, self.connection), daemon=True).start()
            pipe(self.connection, up)
            return

class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

if __name__ == "__main__":
    assert os.environ.get("NTLM_USER_FILE"), "set NTLM_USER_FILE"
    Server(("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 3129), Handler).serve_forever()
