"""The network's side of the lockdown tests: plain HTTP on 80 and 8080, TLS on 443, both families.

    python leak_server.py CERT KEY

Every answer names the port it came in on, so a test knows which connection
got through. Runs inside a network namespace of the test's own.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading


def serve(port: int, family: socket.AddressFamily, tls: ssl.SSLContext | None) -> None:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    sock.listen(64)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=answer, args=(conn, port, tls), daemon=True).start()


def answer(conn: socket.socket, port: int, tls: ssl.SSLContext | None) -> None:
    try:
        if tls is not None:
            conn = tls.wrap_socket(conn, server_side=True)
        conn.settimeout(5)
        conn.recv(65536)
        body = f"served-{port}\n".encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + body)
    except OSError:
        pass
    finally:
        conn.close()


def main() -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(sys.argv[1], sys.argv[2])
    for port, context in ((80, None), (8080, None), (443, tls)):
        for family in (socket.AF_INET, socket.AF_INET6):
            threading.Thread(target=serve, args=(port, family, context), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
