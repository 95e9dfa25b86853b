"""Benchmark: `corpnet trust` against Debian's `update-ca-certificates`, side by side.

    .venv/bin/python bench/trust.py [--runs 9] [--dir /dev/shm] [--dev]

corpnet is measured as corpnet-base ships it: Debian's own python3 running a
wheel of this checkout (a virtual environment under bench/out/, made on first
use). ``--dev`` measures the development .venv instead (an editable install,
whatever interpreter made it): slower, and not what a container runs.

Input (issue 2, section 3): 20 CA files plus one bundle of 1,000 certificates,
on top of the distribution's own CAs (the ones /etc/ca-certificates.conf lists).
Both tools get the same certificates and write into fresh directories under the
same base directory on every run; neither touches this host's /etc:

- update-ca-certificates runs with --certsconf/--certsdir pointing at the
  distribution's list (read only), --localcertsdir at the generated CAs,
  --etccertsdir at a fresh temporary directory and an empty --hooksdir (the
  Java hook would call dpkg on the host);
- corpnet runs as a whole process with a clean environment, the same system
  CAs as CORPNET_SYSTEM_BUNDLE, a fresh CORPNET_RUNTIME_DIR, the system store
  off and no JVM on PATH (like the empty hooks dir). A second corpnet figure,
  with a JVM on PATH, includes writing the PKCS#12 truststore.

Prints both medians, the ratio, and corpnet's peak RSS (os.wait4 on that very
child). Exits 1 when corpnet takes more than 10% of the time or 60 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

UCA = Path("/usr/sbin/update-ca-certificates")
CERTS_CONF = Path("/etc/ca-certificates.conf")
CERTS_DIR = Path("/usr/share/ca-certificates")
CORPNET = Path(sys.executable).parent / "corpnet"
REPO = Path(__file__).resolve().parents[1]
SHIPPED_VENV = REPO / "bench" / "out" / "shipped-venv"
DEBIAN_PYTHON = Path("/usr/bin/python3")  # what corpnet-base runs corpnet with


def shipped_corpnet() -> Path:
    """corpnet installed from a wheel into a venv of Debian's python3, as in the image."""
    corpnet = SHIPPED_VENV / "bin" / "corpnet"
    if not DEBIAN_PYTHON.exists():
        raise SystemExit(f"bench: {DEBIAN_PYTHON} is missing (apt-get install python3-venv)")
    subprocess.run([str(DEBIAN_PYTHON), "-m", "venv", str(SHIPPED_VENV)], check=True)
    pip = [str(SHIPPED_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    # Reinstalled every time: the figure is for this checkout's code.
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(REPO)], check=True)
    subprocess.run([*pip, str(REPO)], check=True)  # the dependencies, once
    return corpnet


MAX_RATIO = 0.10
MAX_RSS_MB = 60.0


def generate(out: Path) -> None:
    """20 CA files and one 1,000-certificate bundle; one key signs all (keygen is slow)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)

    def cert(i: int) -> bytes:
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench Corp"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Bench Root CA {i}"),
            ]
        )
        built = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(i + 1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return built.public_bytes(serialization.Encoding.PEM)

    out.mkdir(parents=True)
    for i in range(20):
        # .crt: the only names update-ca-certificates reads.
        (out / f"corp-ca-{i:02}.crt").write_bytes(cert(i))
    (out / "corp-bundle.crt").write_bytes(b"".join(cert(100 + i) for i in range(1000)))


def system_bundle(out: Path) -> int:
    """The distribution's CAs as update-ca-certificates would bundle them."""
    names = [
        line.strip()
        for line in CERTS_CONF.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    out.write_bytes(b"".join((CERTS_DIR / n).read_bytes().rstrip(b"\n") + b"\n" for n in names))
    return len(names)


@dataclass(frozen=True)
class Sample:
    """One whole process."""

    wall: float  # seconds
    cpu: float  # user + system seconds, its waited-for children included
    rss_kib: int


def timed(argv: Sequence[str], env: Mapping[str, str] | None) -> Sample:
    """Run ``argv`` to completion and measure it (os.wait4: this very child's usage)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, close_fds=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {stderr}")
    return Sample(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def main() -> int:
    """Run the benchmark; exit 1 when the bound is not met."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    shm = Path("/dev/shm")
    default_dir = shm if os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    parser.add_argument(
        "--dir", type=Path, default=default_dir, help="base for outputs (default: a tmpfs)"
    )
    parser.add_argument(
        "--dev", action="store_true", help="measure the development .venv, not the shipped form"
    )
    args = parser.parse_args()
    global CORPNET  # noqa: PLW0603 - one choice for the whole run
    if not args.dev:
        CORPNET = shipped_corpnet()
    print(f"corpnet: {CORPNET} ({'development venv' if args.dev else 'as shipped'})")
    for tool in (UCA, CERTS_CONF, CORPNET):
        if not tool.exists():
            raise SystemExit(
                f"bench: {tool} is missing (install ca-certificates; pip install -e .)"
            )
    java = shutil.which("java")
    work = Path(tempfile.mkdtemp(prefix="corpnet-bench-", dir=args.dir))
    try:
        config = work / "config"
        generate(config / "ca.d")
        n_system = system_bundle(work / "system.pem")
        hooks = work / "hooks"
        hooks.mkdir()
        clean_path = str(CORPNET.parent)  # no JVM there: no truststore, like the empty hooks dir
        base_env = {
            "PATH": clean_path,
            "CORPNET_CONFIG_DIR": str(config),
            "CORPNET_SYSTEM_BUNDLE": str(work / "system.pem"),
            "CORPNET_SYSTEM_STORE": "off",
            "CORPNET_QUIET": "1",
        }
        samples = _runs(args.runs, work, base_env, java)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _report(args, n_system, samples)


def _runs(
    runs: int, work: Path, base_env: Mapping[str, str], java: str | None
) -> dict[str, list[Sample]]:
    """Alternate the tools run by run, so a load spike hits both alike."""
    config = work / "config"
    hooks = work / "hooks"
    samples: dict[str, list[Sample]] = {
        "uca": [],
        "corpnet": [],
        "restart": [],
        "jvm": [],
        "floor": [],
    }
    for run in range(runs):
        out = work / f"run{run}"
        out.mkdir()
        (out / "etc").mkdir()
        uca_argv = [
            str(UCA),
            "--certsconf", str(CERTS_CONF),
            "--certsdir", str(CERTS_DIR),
            "--localcertsdir", str(config / "ca.d"),
            "--etccertsdir", str(out / "etc"),
            "--hooksdir", str(hooks),
        ]  # fmt: skip
        samples["uca"].append(timed(uca_argv, None))
        # Python plus the CLI's imports: what every corpnet command pays before working.
        samples["floor"].append(timed([str(CORPNET), "--version"], base_env))
        env = {**base_env, "CORPNET_RUNTIME_DIR": str(out / "corpnet")}
        samples["corpnet"].append(timed([str(CORPNET), "trust"], env))
        # A container restart with a persistent runtime dir: nothing to rewrite.
        samples["restart"].append(timed([str(CORPNET), "trust"], env))
        if java:
            env = {
                **base_env,
                "PATH": f"{base_env['PATH']}:{Path(java).parent}",
                "CORPNET_RUNTIME_DIR": str(out / "corpnet-java"),
            }
            samples["jvm"].append(timed([str(CORPNET), "trust"], env))
        shutil.rmtree(out)
    return samples


def _median(samples: list[Sample], field: str) -> float:
    return statistics.median(getattr(s, field) for s in samples)


def _report(args: argparse.Namespace, n_system: int, samples: dict[str, list[Sample]]) -> int:
    uca, corp = _median(samples["uca"], "wall"), _median(samples["corpnet"], "wall")
    uca_cpu, corp_cpu = _median(samples["uca"], "cpu"), _median(samples["corpnet"], "cpu")
    peak_mb = max(s.rss_kib for s in samples["corpnet"] + samples["restart"]) / 1024
    ratio = corp / uca
    print(
        f"input: 20 CA files + a bundle of 1000 certificates + {n_system} system CAs; "
        f"{args.runs} runs each, outputs under {args.dir}; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"update-ca-certificates      median {uca * 1000:7.1f} ms   cpu {uca_cpu * 1000:7.1f} ms")
    print(
        f"corpnet trust               median {corp * 1000:7.1f} ms   cpu {corp_cpu * 1000:7.1f} ms"
        f"   peak RSS {peak_mb:.1f} MB"
    )
    floor = _median(samples["floor"], "wall")
    print(
        f"corpnet --version           median {floor * 1000:7.1f} ms   (interpreter + CLI imports)"
    )
    restart = _median(samples["restart"], "wall")
    print(f"corpnet trust, restart      median {restart * 1000:7.1f} ms   (nothing rewritten)")
    if samples["jvm"]:
        jvm = _median(samples["jvm"], "wall")
        print(
            f"corpnet trust with a JVM    median {jvm * 1000:7.1f} ms   "
            f"(+ PKCS#12 truststore; {jvm / uca:.1%} of update-ca-certificates without its hook)"
        )
    print(
        f"ratio corpnet/update-ca-certificates: {ratio:.1%} wall, {corp_cpu / uca_cpu:.1%} cpu "
        f"(bound {MAX_RATIO:.0%} wall; peak RSS bound {MAX_RSS_MB:.0f} MB)"
    )
    ok = ratio <= MAX_RATIO and peak_mb < MAX_RSS_MB
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
