"""Transparent listener prototype: recover the original destination of a redirected
connection (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST), log it, splice to it (as the gateway uid)."""
import socket, struct, sys, threading, time
SO_ORIGINAL_DST = 80          # linux/netfilter_ipv4.h, level SOL_IP
IP6T_SO_ORIGINAL_DST = 80     # linux/netfilter_ipv6/ip6_tables.h, level SOL_IPV6

def original_dst(conn):
    if conn.family == socket.AF_INET:
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)            # struct sockaddr_in
        port, = struct.unpack_from("!H", raw, 2)
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    raw = conn.getsockopt(socket.IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, 28)      # struct sockaddr_in6
    port, = struct.unpack_from("!H", raw, 2)
    return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port

def pipe(a, b):
    try:
        while d := a.recv(65536): b.sendall(d)
    except OSError: pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass

def serve(family, addr, port):
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    ls.bind((addr, port)); ls.listen(128)
    while True:
        c, peer = ls.accept()
        try:
            dst = original_dst(c)
        except OSError as e:
            print(f"{peer} no original dst: {e}", flush=True); c.close(); continue
        print(f"captured {peer[0]} -> {dst[0]}:{dst[1]} (listener {addr})", flush=True)
        try:
            up = socket.create_connection(dst, timeout=3)
        except OSError as e:
            print("  upstream failed", e, flush=True); c.close(); continue
        threading.Thread(target=pipe, args=(up, c), daemon=True).start()
        threading.Thread(target=pipe, args=(c, up), daemon=True).start()

port = int(sys.argv[1]) if len(sys.argv) > 1 else 15001
threading.Thread(target=serve, args=(socket.AF_INET, "127.0.0.1", port), daemon=True).start()
serve(socket.AF_INET6, "::1", port)
