import time, pacparser
t=time.perf_counter()
pacparser.init()
pacparser.parse_pac_file("proxy.pac")   # or parse_pac_string(text)
print("init+parse ms", round((time.perf_counter()-t)*1000,2))
for url in ["http://intranet/", "https://git.corp.test/x", "http://localhost:8080/", "https://api.example.com/v1", "https://foo.invalid/", "https://www.example.org/"]:
    t=time.perf_counter()
    r = pacparser.find_proxy(url)
    print(f"{url:32} -> {r!r}  ({(time.perf_counter()-t)*1000:.2f} ms)")
pacparser.setmyip("10.1.2.3"); print("myIpAddress override ok")
# errors
try:
    pacparser.cleanup(); pacparser.init(); pacparser.parse_pac_string("function FindProxyForURL(u,h){ throw 'boom'; }")
    print(pacparser.find_proxy("http://x/"))
except Exception as e: print("throw ->", type(e).__name__, e)
try:
    pacparser.cleanup(); pacparser.init(); pacparser.parse_pac_string("function FindProxyForURL(u,h){ return ")
except Exception as e: print("syntax ->", type(e).__name__, e)
