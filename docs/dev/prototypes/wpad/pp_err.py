import pacparser, time
t=time.perf_counter(); pacparser.init(); print(f"init {1000*(time.perf_counter()-t):.1f} ms")
for src in ["function FindProxyForURL(u,h){ throw 'boom'; }", "function FindProxyForURL(u,h){ return ", "function FindProxyForURL(u,h){ while(true){} }"][:2]:
    pacparser.cleanup(); pacparser.init()
    try:
        pacparser.parse_pac_string(src); print(pacparser.find_proxy("http://x/"))
    except Exception as e: print(type(e).__module__, type(e).__name__, e)
print("thread-safety: module-level global context; pacparser.version() =", pacparser.version())
