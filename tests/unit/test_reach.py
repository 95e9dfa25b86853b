"""The reachability stage's pure parts: diagnoses, the retry policy, reports. No sockets.

The retry loop runs against a resolver that fails (so no connection is ever
made) with a fake clock and a fake sleep: the deadline arithmetic is checked
without waiting for it.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import signal
import socket
import ssl
from dataclasses import dataclass

import pytest

from corpnet import reach
from corpnet.config import HostPort, ReachSettings
from corpnet.errors import ExitCode
from corpnet.log import Log
from corpnet.proxy import ProxyURL
from corpnet.reach import HostResult, Report, RetryPolicy, Target, _report
from corpnet.reach import _diagnose as diag
from corpnet.reach._diagnose import Context, Stage

CTX = Context("api.corp.test", 443, proxy="http://alice:***@proxy:3128", proxy_user="alice")


# --- retry policy ------------------------------------------------------------------------


def test_backoff_starts_near_a_fifth_of_a_second_and_caps_at_five() -> None:
    p = RetryPolicy()
    assert [p.backoff(n, 0.0) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert p.backoff(1, 0.999) == pytest.approx(0.2 * 1.4995)  # jitter stretches by < 50 %
    assert p.backoff(10, 0.999) == 5.0


@dataclass
class FakeTime:
    now: float = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds
        await asyncio.sleep(0)


def failing_resolver(code: int, calls: list[float], time: FakeTime):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[object]:
        calls.append(time.now)
        raise socket.gaierror(code, "lookup failed")

    return resolve


def run_fake(  # type: ignore[no-untyped-def]
    code: int, *, timeout: float, policy: RetryPolicy | None = None, time: FakeTime | None = None
):
    time = time or FakeTime()
    calls: list[float] = []
    report = asyncio.run(
        reach.probe(
            [Target("api.corp.test")],
            route=lambda h, p: None,
            ca_pem=None,
            timeout=timeout,
            policy=policy or RetryPolicy(),
            clock=time.clock,
            sleep=time.sleep,
            rand=lambda: 0.5,
            resolver=failing_resolver(code, calls, time),
        )
    )
    return report, calls, time


def test_temporary_dns_failure_is_retried_with_backoff_never_past_the_deadline() -> None:
    report, calls, time = run_fake(socket.EAI_AGAIN, timeout=20.0)
    (r,) = report.results
    assert r.status == "timeout" and r.diagnosis is not None
    assert r.diagnosis.kind == "dns-temporary"
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[:3] == pytest.approx([0.25, 0.5, 1.0])  # 0.2 * 2^n, stretched by jitter 0.5*0.5
    assert max(gaps) <= 5.0
    assert calls[-1] <= 1000.0 + 20.0 - RetryPolicy().min_attempt  # the last attempt still fit
    assert time.now <= 1000.0 + 20.0  # never slept past the deadline
    assert r.attempts == len(calls)
    assert report.exit_code == ExitCode.UNAVAILABLE


def test_attempts_are_the_second_bound() -> None:
    report, calls, _ = run_fake(socket.EAI_AGAIN, timeout=600.0, policy=RetryPolicy(max_attempts=3))
    assert len(calls) == 3
    assert report.results[0].status == "timeout"


def test_a_name_that_does_not_exist_is_not_retried() -> None:
    report, calls, time = run_fake(socket.EAI_NONAME, timeout=20.0)
    (r,) = report.results
    assert (r.status, r.attempts, len(calls), time.now) == ("failed", 1, 1, 1000.0)
    assert report.exit_code == ExitCode.CONFIG


@dataclass
class TickingTime(FakeTime):
    """A clock that moves on a microsecond per reading, as a real one does between calls."""

    def clock(self) -> float:
        self.now += 1e-6
        return self.now


def test_the_wait_uses_its_whole_deadline_with_a_last_attempt_at_the_end() -> None:
    # rand 0.5: attempts at 0, 0.25, 0.75, 1.75, 3.75, 7.75; the next backoff (5 s)
    # would overshoot, so the last attempt comes at the deadline less min_attempt.
    report, calls, _ = run_fake(socket.EAI_AGAIN, timeout=10.0, time=TickingTime())
    assert calls[-1] == pytest.approx(1000.0 + 10.0 - RetryPolicy().min_attempt, abs=1e-3)
    assert len(calls) == 7
    (r,) = report.results
    assert r.status == "timeout"
    assert report.elapsed == pytest.approx(9.9, abs=1e-3)
    error = reach.ReachError(report)
    assert str(error).startswith(
        "api.corp.test:443 not reachable after 9.9s (7 attempts, deadline 10s): "
    )


def test_a_last_attempt_cut_short_by_the_deadline_keeps_the_failure_before_it() -> None:
    """The last attempt has min_attempt (0.1 s, real time) left and hangs: the report
    still says what failed before, not "no answer within 0.1s"."""
    time = FakeTime()
    calls: list[float] = []

    async def resolve(host: str, port: int) -> list[object]:
        calls.append(time.now)
        if len(calls) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "lookup failed")
        await asyncio.sleep(5)  # silent: only the attempt's budget ends it
        raise AssertionError("not reached")

    report = asyncio.run(
        reach.probe(
            [Target("api.corp.test")],
            route=lambda h, p: None,
            ca_pem=None,
            timeout=0.3,
            clock=time.clock,
            sleep=time.sleep,
            rand=lambda: 0.5,
            resolver=resolve,
        )
    )
    (r,) = report.results
    assert len(calls) == 2
    assert r.status == "timeout"
    assert r.diagnosis is not None
    assert r.diagnosis.kind == "dns-temporary"


def test_deadline_shorter_than_one_backoff_still_makes_a_last_attempt() -> None:
    _report, calls, time = run_fake(socket.EAI_AGAIN, timeout=0.3)
    assert len(calls) == 2  # at 0, then at 0.2 (the backoff clipped to fit)
    assert time.now <= 1000.3


def test_hosts_behind_one_proxy_name_share_its_lookup() -> None:
    # Fifty hosts start at once through one proxy name: one lookup, not fifty.
    # Each retry (a jittered time of its own) looks the name up afresh.
    time = FakeTime()
    calls: list[float] = []
    jitter = itertools.cycle([0.1, 0.3, 0.5, 0.7, 0.9])
    proxy = ProxyURL("http", "proxy.corp.test", 3128)

    async def resolve(host: str, port: int) -> list[object]:
        calls.append(time.now)
        await asyncio.sleep(0)  # a real lookup waits for its thread
        raise socket.gaierror(socket.EAI_AGAIN, "lookup failed")

    report = asyncio.run(
        reach.probe(
            [Target(f"h{i}.corp.test") for i in range(50)],
            route=lambda h, p: proxy,
            ca_pem=None,
            timeout=600.0,
            policy=RetryPolicy(max_attempts=2),
            clock=time.clock,
            sleep=time.sleep,
            rand=lambda: next(jitter),
            resolver=resolve,
        )
    )
    assert calls.count(1000.0) == 1
    assert len(calls) > 1  # the second attempts looked it up again
    assert {r.attempts for r in report.results} == {2}
    assert {r.diagnosis.kind for r in report.results if r.diagnosis} == {"dns-temporary"}


def test_a_joined_lookup_outlives_a_waiter_that_gives_up() -> None:
    from corpnet.reach import _probe

    started: list[str] = []
    answer: asyncio.Future[list[_probe.Address]] | None = None

    async def slow(host: str, port: int) -> list[_probe.Address]:
        started.append(host)
        assert answer is not None
        return await answer

    async def main() -> tuple[list[_probe.Address], list[_probe.Address]]:
        nonlocal answer
        answer = asyncio.get_running_loop().create_future()
        lookup = _probe.joined(slow)
        quitter = asyncio.ensure_future(lookup("proxy.corp.test", 3128))
        stayer = asyncio.ensure_future(lookup("proxy.corp.test", 3128))
        await asyncio.sleep(0)
        quitter.cancel()  # its attempt timed out
        await asyncio.sleep(0)
        answer.set_result([(socket.AF_INET, ("192.0.2.1", 3128))])
        first = await stayer
        again = await lookup("proxy.corp.test", 3128)  # the next attempt: a new lookup
        return first, again

    first, again = asyncio.run(main())
    assert first == again == [(socket.AF_INET, ("192.0.2.1", 3128))]
    assert started == ["proxy.corp.test", "proxy.corp.test"]


# --- diagnoses ---------------------------------------------------------------------------


def test_auth_schemes() -> None:
    assert diag.auth_schemes(["Negotiate", "NTLM", 'Basic realm="corp", charset="UTF-8"']) == [
        "Negotiate",
        "NTLM",
        "Basic",
    ]
    assert diag.auth_schemes(["Negotiate, NTLM"]) == ["Negotiate", "NTLM"]


@pytest.mark.parametrize(
    ("status", "challenges", "user", "kind", "retryable", "code"),
    [
        (407, ["Basic realm=x"], None, "proxy-auth-required", False, ExitCode.CONFIG),
        (407, ["Basic realm=x", "NTLM"], "alice", "proxy-auth-rejected", False, ExitCode.CONFIG),
        (407, ["Negotiate", "NTLM"], "alice", "proxy-auth-unsupported", False, ExitCode.CONFIG),
        (403, [], None, "proxy-denied", False, ExitCode.UNAVAILABLE),
        (502, [], None, "proxy-upstream", True, ExitCode.UNAVAILABLE),
        (503, [], None, "proxy-upstream", True, ExitCode.UNAVAILABLE),
        (504, [], None, "proxy-upstream", True, ExitCode.UNAVAILABLE),
        (501, [], None, "proxy-refused", False, ExitCode.UNAVAILABLE),
    ],
)
def test_proxy_status(  # noqa: PLR0917
    status: int, challenges: list[str], user: str | None, kind: str, retryable: bool, code: int
) -> None:
    ctx = Context("api.corp.test", 443, proxy="http://proxy:3128", proxy_user=user)
    d = diag.proxy_status(ctx, status, "Reason", challenges)
    assert (d.kind, d.retryable, d.exit_code, d.stage) == (
        kind,
        retryable,
        code,
        Stage.PROXY_CONNECT,
    )
    assert f"with {status} Reason" in d.message


def test_negotiate_only_names_the_way_out() -> None:
    d = diag.proxy_status(CTX, 407, "Proxy Authentication Required", ["Negotiate"])
    assert "logs in with NTLM or Kerberos" in d.fix
    assert "CORPNET_GATEWAY=on" in d.fix


def test_squid_dns_failure_says_it_is_the_proxy_that_cannot_resolve() -> None:
    d = diag.proxy_status(CTX, 503, "Service Unavailable", squid_error="ERR_DNS_FAIL 0")
    assert d.retryable and "the proxy cannot resolve api.corp.test" in d.message


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    e = ssl.SSLCertVerificationError(1, "certificate verify failed")
    e.verify_code, e.verify_message = code, message
    return e


def alert(reason: str) -> ssl.SSLError:
    e = ssl.SSLError(1, reason)
    e.reason = reason  # type: ignore[misc]
    return e


def test_unknown_issuer_via_proxy_is_no_evidence_of_inspection() -> None:
    """A proxy on the route may only tunnel: the chains decide (test_tls_discovery.py)."""
    d = diag.tls(CTX, verify_error(20, "unable to get local issuer certificate"))
    assert (d.kind, d.exit_code, d.retryable) == ("tls-unknown-issuer", ExitCode.CONFIG, False)
    assert "inspect" not in d.line()
    assert d.fix == (
        f"`corpnet trust --discover {CTX.target} --out ca.pem` writes the CA it presented; "
        "compare its fingerprint with the one your IT department (or the server's owners) "
        "publish, then mount it under /etc/corpnet/ca.d"
    )


def test_hostname_mismatch_is_reported_as_such() -> None:
    d = diag.tls(CTX, verify_error(62, "Hostname mismatch"), peer="a certificate for x")
    assert d.kind == "tls-hostname-mismatch"
    assert "not valid for that name (Hostname mismatch) (it presented a certificate for x)" in (
        d.message
    )


@pytest.mark.parametrize(
    ("reason", "client_cert", "kind", "code"),
    [
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", None, "client-cert-required", ExitCode.CONFIG),
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", None, "client-cert-required", ExitCode.CONFIG),
        ("TLSV1_ALERT_UNKNOWN_CA", "CN=alice", "client-cert-rejected", ExitCode.DATA),
        ("SSLV3_ALERT_CERTIFICATE_EXPIRED", "CN=alice", "client-cert-rejected", ExitCode.DATA),
        ("WRONG_VERSION_NUMBER", None, "not-tls", ExitCode.CONFIG),
        ("UNEXPECTED_EOF_WHILE_READING", None, "connection-reset", ExitCode.UNAVAILABLE),
    ],
)
def test_tls_alerts(reason: str, client_cert: str | None, kind: str, code: int) -> None:
    ctx = Context("api.corp.test", 443, client_cert=client_cert)
    d = diag.tls(ctx, alert(reason))
    assert (d.kind, d.exit_code) == (kind, code)


def test_https_proxy_that_speaks_plain_http() -> None:
    d = diag.tls(CTX, alert("WRONG_VERSION_NUMBER"), of_proxy=True)
    assert (d.kind, d.stage) == ("proxy-not-tls", Stage.PROXY_TLS)
    assert "write http:// in HTTPS_PROXY" in d.fix


def test_proxy_answering_tls_to_plain_connect() -> None:
    assert diag.proxy_not_http(CTX, b"\x15\x03\x03").kind == "proxy-speaks-tls"
    assert diag.proxy_not_http(CTX, b"SSH-2.0").kind == "proxy-bad-response"


def test_refused_connect_is_retryable() -> None:
    import errno

    d = diag.connect(CTX, ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
                     endpoint="proxy:3128", of_proxy=True)  # fmt: skip
    assert (d.kind, d.retryable) == ("connection-refused", True)
    assert "the proxy http://alice:***@proxy:3128" in d.message


# --- targets ----------------------------------------------------------------------------


def test_targets_for_marks_required_optional_and_mtls() -> None:
    settings = ReachSettings(
        allowlist=(HostPort("api.corp.test"), HostPort("claude.ai", 8443)),
        optional=(HostPort("sentry.io"), HostPort("claude.ai", 8443)),
        mtls_hosts=(".corp.test",),
    )
    targets = reach.targets_for(settings, identity=True)
    assert targets == [
        Target("api.corp.test", 443, required=True, mtls=True),
        Target("claude.ai", 8443, required=True, mtls=False),
        Target("sentry.io", 443, required=False, mtls=False),
    ]
    assert not any(t.mtls for t in reach.targets_for(settings, identity=False))
    everyone = reach.targets_for(ReachSettings(mtls_hosts=None), identity=True)
    assert all(t.mtls for t in everyone)


# --- reports -----------------------------------------------------------------------------


def failure(kind: str, code: ExitCode, *, retryable: bool = False) -> diag.Diagnosis:
    return diag.Diagnosis(kind, Stage.TLS, f"{kind} happened", f"fix {kind}", retryable, code)


def result(host: str, status: str, d: diag.Diagnosis | None = None, **kw: object) -> HostResult:
    return HostResult(Target(host, **kw), "direct", status, Stage.TLS, 1, 0.5, d)  # type: ignore[arg-type]


def test_exit_code_prefers_configuration_then_identity() -> None:
    ready = result("a", "ready")
    config = result("b", "failed", failure("tls-unknown-issuer", ExitCode.CONFIG))
    data = result("c", "failed", failure("client-cert-rejected", ExitCode.DATA))
    late = result("d", "timeout", failure("timeout", ExitCode.UNAVAILABLE, retryable=True))
    optional = result("e", "failed", failure("x", ExitCode.CONFIG), required=False)
    assert Report((ready, optional), 1, 60).exit_code == ExitCode.OK
    assert Report((ready, late, data, config), 1, 60).exit_code == ExitCode.CONFIG
    assert Report((late, data), 1, 60).exit_code == ExitCode.DATA
    assert Report((late,), 1, 60).exit_code == ExitCode.UNAVAILABLE
    error = reach.ReachError(Report((late, data), 1, 60))
    assert error.exit_code == ExitCode.DATA
    assert str(error) == (
        "c:443: client-cert-rejected happened (and 1 more required host, see above): "
        "fix client-cert-rejected"
    )
    timed_out = reach.ReachError(Report((late,), 1, 60))
    assert str(timed_out) == (
        "d:443 not reachable after 1.0s (1 attempt, deadline 60s): timeout happened: fix timeout"
    )


def test_json_shape() -> None:
    data = Report((result("b", "failed", failure("proxy-denied", ExitCode.UNAVAILABLE)),), 1, 60)
    host = data.to_json()["hosts"][0]  # type: ignore[index]
    assert host["error"]["class"] == "proxy-denied"
    assert host["stage"] == "TLS" and host["route"] == "direct"


def test_line_reporter_prints_one_line_per_new_kind_of_failure() -> None:
    stream = io.StringIO()
    reporter = _report.Reporter(Log(stream=stream), now=lambda: 0.0)
    r = result("a", "probing", failure("connection-refused", ExitCode.UNAVAILABLE, retryable=True))
    reporter.started([r], 60)
    for attempt in (1, 2, 3):
        r.attempts = attempt
        reporter.retrying(r, 0.2)
    r.status, r.diagnosis = "ready", None
    reporter.finished(r)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "1970-01-01T00:00:00.000Z corpnet: waiting up to 60s for a:443"
    assert len([line for line in lines if "not ready" in line]) == 1
    assert lines[-1].endswith("corpnet: a:443 ready direct (TLS, 3 attempts, 0.50s)")


def test_tty_reporter_draws_a_live_line_then_the_table() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    reporter = _report.for_log(Log(stream=stream))
    assert isinstance(reporter, _report.TtyReporter)
    r = result("a", "probing", failure("timeout", ExitCode.UNAVAILABLE, retryable=True))
    reporter.started([r], 60)
    reporter.tick(1.5)
    assert "\r\x1b[Kcorpnet: waiting 1.5s/60s: 0/1 ready; a:443: timeout (attempt 1)" in (
        stream.getvalue()
    )
    r.status = "timeout"
    reporter.summary(Report((r,), 60, 60))
    out = stream.getvalue()
    assert "HOST   ROUTE   STAGE  RESULT   ATTEMPTS  TIME" in out
    assert "a:443: timeout happened: fix timeout" in out


def test_secrets_never_reach_the_lines() -> None:
    stream = io.StringIO()
    log = Log(stream=stream)
    log.add_secret("hunter2")
    reporter = _report.Reporter(log)
    reporter.finished(result("a", "failed", failure("leak hunter2", ExitCode.CONFIG)))
    assert "hunter2" not in stream.getvalue()


# --- signals -----------------------------------------------------------------------------


def test_exit_on_signals_turns_sigterm_into_exit_143() -> None:
    with pytest.raises(reach.Interrupted) as e, reach.exit_on_signals("running hooks"):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # let the handler run
    assert e.value.exit_code == ExitCode.TERMINATED
    assert str(e.value) == "stopped by SIGTERM while running hooks"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


def test_run_interruptible_cancels_the_wait_on_sigint() -> None:
    async def forever() -> None:
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
        await asyncio.sleep(60)

    with pytest.raises(reach.Interrupted) as e:
        reach.run_interruptible(forever(), doing="waiting")
    assert e.value.exit_code == ExitCode.INTERRUPTED


def test_squid_cannot_forward_is_retried_whatever_the_status() -> None:
    d = diag.proxy_status(CTX, 500, "Internal Server Error", squid_error="ERR_CANNOT_FORWARD 0")
    assert (d.kind, d.retryable) == ("proxy-upstream", True)
    assert "(ERR_CANNOT_FORWARD 0)" in d.message
