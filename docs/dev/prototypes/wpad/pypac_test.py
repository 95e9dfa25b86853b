import time, socket
t=time.perf_counter()
from pypac.parser import PACFile
from pypac.wpad import proxy_urls_from_dns
print(f"import {1000*(time.perf_counter()-t):.0f} ms")
print("pypac wpad candidates for eng.emea.corp.test host:", proxy_urls_from_dns("host.eng.emea.corp.test"))
t=time.perf_counter()
pac = PACFile(open("/w/www/wpad.dat").read())
print(f"parse {1000*(time.perf_counter()-t):.1f} ms")
for u in ["http://intranet/", "https://git.corp.test/", "https://web.corp.test/", "https://api.anthropic.com/v1/messages", "https://nosuch.invalid/"]:
    t = time.perf_counter(); host = u.split("/")[2]
    print(f"{u:42} -> {pac.find_proxy_for_url(u, host)}  ({1000*(time.perf_counter()-t):.2f} ms)")
try:
    PACFile("function FindProxyForURL(u,h){ throw 'boom'; }").find_proxy_for_url("http://x/", "x")
except Exception as e: print("throw ->", type(e).__name__, str(e)[:100])
try:
    PACFile("function FindProxyForURL(u,h){ return ")
except Exception as e: print("syntax ->", type(e).__name__, str(e)[:100])
