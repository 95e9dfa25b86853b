# leak target: answers on 80 and 443 (plain HTTP on both: only reachability matters), IPv4+IPv6
import http.server, socket, threading
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"leak-target port {self.server.server_address[1]} saw {self.client_address[0]}\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
for p in (80, 443, 8080):
    threading.Thread(target=S(("::", p), H).serve_forever, daemon=True).start()
threading.Event().wait()
