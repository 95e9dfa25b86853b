import spnego, sys
for proto in ("negotiate", "kerberos"):
    try:
        ctx = spnego.client(username="alice@CORP.TEST", password="wrong-pw", hostname="proxy.corp.test", service="HTTP", protocol=proto)
        tok = ctx.step()
        print(proto, "-> token", len(tok), "bytes, starts", tok[:16].hex(), "negotiated:", ctx.negotiated_protocol if hasattr(ctx,'negotiated_protocol') else '?')
    except Exception as e:
        print(proto, "->", type(e).__module__, type(e).__name__, str(e)[:300])
# NTLM fallback off:
try:
    ctx = spnego.client(username="alice@CORP.TEST", password="wrong-pw", hostname="proxy.corp.test", service="HTTP", protocol="negotiate", options=spnego.NegotiateOptions.negotiate_kerberos)
    ctx.step()
except Exception as e:
    print("negotiate+negotiate_kerberos ->", type(e).__name__, str(e)[:300])
