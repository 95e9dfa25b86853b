"""WPAD by DNS + PAC evaluation with pacparser (prototype)."""
import socket, sys, time, urllib.request
import pacparser

def search_domains(path="/etc/resolv.conf"):
    out = []
    for line in open(path):
        parts = line.split()
        if parts and parts[0] in ("search", "domain"):
            out += parts[1:]
    return out

def wpad_candidates(domain):
    labels = domain.strip(".").split(".")
    # walk up, but never to wpad.<tld> (the classic WPAD hijack)
    return ["wpad." + ".".join(labels[i:]) for i in range(len(labels) - 1)]

t0 = time.perf_counter()
for d in search_domains():
    for name in wpad_candidates(d):
        try:
            addr = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)[0][4][0]
        except socket.gaierror as e:
            print(f"{name}: {e}"); continue
        url = f"http://{name}/wpad.dat"
        pac = urllib.request.urlopen(url, timeout=3).read().decode()
        print(f"found {url} ({addr}), {len(pac)} bytes in {1000*(time.perf_counter()-t0):.1f} ms")
        break
    else:
        continue
    break
else:
    sys.exit("no WPAD")
pacparser.init()
pacparser.parse_pac_string(pac)
for u in ["http://intranet/", "https://git.corp.test/", "https://web.corp.test/", "https://api.anthropic.com/v1/messages", "https://nosuch.invalid/"]:
    t = time.perf_counter()
    print(f"{u:42} -> {pacparser.find_proxy(u)}  ({1000*(time.perf_counter()-t):.2f} ms)")
