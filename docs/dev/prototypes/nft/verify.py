"""Run as the agent's uid: direct connections must fail fast, captured ones must reach the gateway."""
import socket, sys, time
t0 = time.perf_counter()
bad = []
for addr in ("172.30.98.2", "fd00:7072:6f74::2"):
    try:
        socket.create_connection((addr, 8080), timeout=1).close(); bad.append(f"{addr}:8080 reachable")
    except ConnectionRefusedError:
        pass
    except OSError as e:
        bad.append(f"{addr}:8080 {e}")   # a timeout would mean drop, not reject
    s = socket.create_connection((addr, 80), timeout=1)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n"); ok = s.recv(100).startswith(b"HTTP/1.0 200"); s.close()
    if not ok: bad.append(f"{addr}:80 capture failed")
print(f"verify {'OK' if not bad else bad} in {1000*(time.perf_counter()-t0):.1f} ms")
sys.exit(1 if bad else 0)
