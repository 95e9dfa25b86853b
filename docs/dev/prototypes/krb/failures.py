import spnego, sys, time, os
def attempt(label, **kw):
    t=time.perf_counter()
    try:
        ctx = spnego.client(hostname="proxy.corp.test", service="HTTP", **kw)
        tok = ctx.step()
        print(f"{label}: token {len(tok)} B, negotiated {ctx.negotiated_protocol} ({(time.perf_counter()-t)*1000:.0f} ms)")
    except Exception as e:
        print(f"{label}: {type(e).__module__}.{type(e).__name__}: {str(e)[:160]} ({(time.perf_counter()-t)*1000:.0f} ms)")
which = sys.argv[1]
if which == "wrongpw":
    attempt("negotiate, negotiate_kerberos option", username="alice@CORP.TEST", password="wrong-pw", protocol="negotiate", options=spnego.NegotiateOptions.negotiate_kerberos)
    attempt("kerberos", username="alice@CORP.TEST", password="wrong-pw", protocol="kerberos")
    attempt("unknown user", username="nobody@CORP.TEST", password="x", protocol="kerberos")
    attempt("unknown service", username="alice@CORP.TEST", password="alice-pw", protocol="kerberos") if False else None
else:
    attempt(which, username="alice@CORP.TEST", password="alice-pw", protocol="kerberos")
