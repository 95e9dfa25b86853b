"""Benchmark: `corpnet trust` against the tools that do the same job, side by side.

    .venv/bin/python bench/trust.py [--runs 7] [--dir /dev/shm] [--dev]

corpnet is measured as corpnet-base ships it: Debian's own python3 running a
wheel of this checkout (a virtual environment under bench/out/, made on first
use). ``--dev`` measures the development .venv instead (an editable install,
whatever interpreter made it): slower, and not what a container runs.

Every comparison is paired: each run times the baseline and corpnet back to
back on the same certificates (alternating which goes first), so a load spike
hits both; a figure is the median of the runs, with its range, and a ratio is
the median of the runs' own ratios (bounds are on wall time; the CPU ratio is
printed beside it, steadier on a loaded machine). Each run writes into fresh directories under
the same base directory; nothing touches this host's /etc.

1. Against Debian's ``update-ca-certificates``, 20 CA files and 1,000 more
   certificates on top of the distribution's CAs (the ones
   /etc/ca-certificates.conf lists), in the two shapes users have them:

   - one certificate per file, as ``update-ca-certificates`` wants them
     (1,020 files): its cost is per file, and ``openssl rehash`` links only
     files that hold one certificate;
   - the 1,000 as one bundle file beside the 20: less work for it (one file,
     and rehash skips the bundle, so its hashed directory lacks those CAs).

   It runs with --certsconf/--certsdir pointing at the distribution's list
   (read only), --localcertsdir at the generated CAs, --etccertsdir at a fresh
   directory and an empty --hooksdir (the Java hook would call dpkg on the
   host). corpnet runs as a whole process with a clean environment, the same
   system CAs as CORPNET_SYSTEM_BUNDLE, a fresh CORPNET_RUNTIME_DIR, the system
   store off and no JVM on PATH (like the empty hooks dir). Bound: 10 % of the
   time.

2. At scale: 10,000 certificates against ``openssl rehash`` given them one per
   file, as it needs them (its symlinks are removed between runs, untimed).
   corpnet gets the same 10,000 files, and then the same certificates as one
   bundle; both again with a JVM on PATH (the PKCS#12 truststore, which rehash
   has no counterpart for: no time bound). Bounds: 25 % of the time, and a
   peak RSS of 60 MB for every corpnet run (os.wait4 on that very child).

The floor is Debian's python3 importing exactly the corpnet modules a
``corpnet trust`` run loads: what every start pays before the first certificate.
Exits 1 when a bound is missed.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

UCA = Path("/usr/sbin/update-ca-certificates")
CERTS_CONF = Path("/etc/ca-certificates.conf")
CERTS_DIR = Path("/usr/share/ca-certificates")
REPO = Path(__file__).resolve().parents[1]
SHIPPED_VENV = REPO / "bench" / "out" / "shipped-venv"
DEBIAN_PYTHON = Path("/usr/bin/python3")  # what corpnet-base runs corpnet with

MAX_UCA_RATIO = 0.10
MAX_REHASH_RATIO = 0.25
MAX_RSS_MB = 60.0
SCALE = 10_000


def shipped_venv() -> Path:
    """A venv of Debian's python3 with corpnet installed from a wheel, as in the image."""
    if not DEBIAN_PYTHON.exists():
        raise SystemExit(f"bench: {DEBIAN_PYTHON} is missing (apt-get install python3-venv)")
    subprocess.run([str(DEBIAN_PYTHON), "-m", "venv", str(SHIPPED_VENV)], check=True)
    pip = [str(SHIPPED_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    # Reinstalled every time: the figure is for this checkout's code.
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(REPO)], check=True)
    subprocess.run([*pip, str(REPO)], check=True)  # the dependencies, once
    return SHIPPED_VENV


# --- the certificates ------------------------------------------------------------------


def certificates(count: int, first_serial: int) -> list[bytes]:
    """``count`` self-signed CA certificates, PEM; one key signs all (keygen is slow).

    Shaped like real roots: basicConstraints, keyUsage and a subject key identifier.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    now = dt.datetime.now(dt.UTC)
    pems = []
    for i in range(first_serial, first_serial + count):
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
            .add_extension(usage, critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        pems.append(built.public_bytes(serialization.Encoding.PEM))
    return pems


def one_per_file(out: Path, pems: Sequence[bytes], prefix: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for i, pem in enumerate(pems):
        # .crt: the only names update-ca-certificates reads; rehash reads it too.
        (out / f"{prefix}-{i:05}.crt").write_bytes(pem)


def system_bundle(out: Path) -> int:
    """The distribution's CAs as update-ca-certificates would bundle them."""
    names = [
        line.strip()
        for line in CERTS_CONF.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    out.write_bytes(b"".join((CERTS_DIR / n).read_bytes().rstrip(b"\n") + b"\n" for n in names))
    return len(names)


# --- measuring -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One whole process."""

    wall: float  # seconds
    cpu: float  # user + system seconds, its waited-for children included
    rss_kib: int


# The child is started by a small python3 of its own, not by this process: Linux
# carries the RSS high-water mark of the process that forks across the exec, and
# this one holds thousands of certificates (every child would "peak" at its size).
_SPAWN = """
import os, sys, time
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ,
                      file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
      os.waitstatus_to_exitcode(status))
"""


def timed(argv: Sequence[str], env: Mapping[str, str] | None) -> Sample:
    """Run ``argv`` to completion and measure it (os.wait4: this very child's usage)."""
    done = subprocess.run(
        [str(DEBIAN_PYTHON), "-S", "-c", _SPAWN, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 4 or fields[3] != "0":
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()}")
    return Sample(float(fields[0]), float(fields[1]), int(fields[2]))


@dataclass
class Pair:
    """A baseline and corpnet, timed back to back run by run."""

    label: str
    baseline: str
    bound: float | None
    base: list[Sample]
    corp: list[Sample]

    def ratios(self, field: str = "wall") -> list[float]:
        return [
            getattr(c, field) / getattr(b, field) for b, c in zip(self.base, self.corp, strict=True)
        ]


def paired(
    runs: int,
    baseline: Callable[[int], Sample],
    corpnet: Callable[[int], Sample],
) -> tuple[list[Sample], list[Sample]]:
    """Time both ``runs`` times, alternating which goes first."""
    base: list[Sample] = []
    corp: list[Sample] = []
    for run in range(runs):
        if run % 2:
            corp.append(corpnet(run))
            base.append(baseline(run))
        else:
            base.append(baseline(run))
            corp.append(corpnet(run))
    return base, corp


def spread(values: Sequence[float], scale: float = 1000, unit: str = "ms") -> str:
    """``median [min-max]``."""
    return (
        f"{statistics.median(values) * scale:7.1f} {unit} "
        f"[{min(values) * scale:.1f}-{max(values) * scale:.1f}]"
    )


def ratio_spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):6.1%} [{min(values):.1%}-{max(values):.1%}]"


# --- the benchmark ---------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    corpnet: Path
    python: Path
    work: Path
    base_env: Mapping[str, str]
    java: str | None


def corpnet_run(setup: Setup, config: Path, *, jvm: bool = False) -> Callable[[int], Sample]:
    """A `corpnet trust` of ``config``/ca.d into a fresh runtime directory per run."""

    def run(index: int) -> Sample:
        runtime = setup.work / f"runtime-{config.name}-{index}"
        path = setup.base_env["PATH"]
        if jvm and setup.java:
            path += f":{Path(setup.java).parent}"
        env = {
            **setup.base_env,
            "PATH": path,
            "CORPNET_CONFIG_DIR": str(config),
            "CORPNET_RUNTIME_DIR": str(runtime),
        }
        try:
            return timed([str(setup.corpnet), "trust"], env)
        finally:
            shutil.rmtree(runtime, ignore_errors=True)

    return run


def uca_run(setup: Setup, local: Path) -> Callable[[int], Sample]:
    hooks = setup.work / "hooks"
    hooks.mkdir(exist_ok=True)

    def run(index: int) -> Sample:
        etc = setup.work / f"etc-{index}"
        etc.mkdir()
        argv = [
            str(UCA),
            "--certsconf", str(CERTS_CONF),
            "--certsdir", str(CERTS_DIR),
            "--localcertsdir", str(local),
            "--etccertsdir", str(etc),
            "--hooksdir", str(hooks),
        ]  # fmt: skip
        try:
            return timed(argv, None)
        finally:
            shutil.rmtree(etc)

    return run


def rehash_run(directory: Path) -> Callable[[int], Sample]:
    def run(_: int) -> Sample:
        try:
            return timed(["openssl", "rehash", str(directory)], None)
        finally:
            for entry in os.scandir(directory):  # its links, untimed
                if entry.is_symlink():
                    Path(entry.path).unlink()

    return run


def trust_modules(setup: Setup) -> list[str]:
    """The corpnet modules a `corpnet trust` run imports (with the stdlib they pull in)."""
    listing = setup.work / "modules.txt"
    config = setup.work / "config-modules"
    (config / "ca.d").mkdir(parents=True)
    script = (
        "import atexit, sys\n"
        "out = sys.argv[1]\n"
        "atexit.register(lambda: open(out, 'w').write(' '.join(sorted("
        "m for m in sys.modules if m.split('.')[0] == 'corpnet'))))\n"
        "sys.argv[1:] = ['trust']\n"
        "from corpnet.cli import main\n"
        "main()\n"
    )
    env = {
        **setup.base_env,
        "CORPNET_CONFIG_DIR": str(config),
        "CORPNET_RUNTIME_DIR": str(setup.work / "runtime-modules"),
    }
    subprocess.run([str(setup.python), "-c", script, str(listing)], env=env, check=True)
    return listing.read_text().split()


def main() -> int:
    """Run the benchmark; exit 1 when a bound is not met."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    shm = Path("/dev/shm")
    default_dir = shm if os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    parser.add_argument(
        "--dir", type=Path, default=default_dir, help="base for outputs (default: a tmpfs)"
    )
    parser.add_argument(
        "--dev", action="store_true", help="measure the development .venv, not the shipped form"
    )
    args = parser.parse_args()
    venv = Path(sys.executable).parent.parent if args.dev else shipped_venv()
    corpnet = venv / "bin" / "corpnet"
    print(f"corpnet: {corpnet} ({'development venv' if args.dev else 'as shipped'})")
    for tool in (UCA, CERTS_CONF, corpnet):
        if not tool.exists():
            raise SystemExit(
                f"bench: {tool} is missing (install ca-certificates; pip install -e .)"
            )
    if shutil.which("openssl") is None:
        raise SystemExit("bench: openssl is missing (apt-get install openssl)")
    work = Path(tempfile.mkdtemp(prefix="corpnet-bench-", dir=args.dir))
    try:
        return _bench(args, work, corpnet, venv / "bin" / "python")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, work: Path, corpnet: Path, python: Path) -> int:
    n_system = system_bundle(work / "system.pem")
    setup = Setup(
        corpnet=corpnet,
        python=python,
        work=work,
        base_env={
            "PATH": str(corpnet.parent),  # no JVM there, like the empty hooks dir
            "CORPNET_SYSTEM_BUNDLE": str(work / "system.pem"),
            "CORPNET_SYSTEM_STORE": "off",
            "CORPNET_QUIET": "1",
        },
        java=shutil.which("java"),
    )
    start_load = os.getloadavg()[0]
    # Shape 1: 20 CA files and 1,000 certificates, per file or bundled. Each
    # shape is a config directory whose ca.d is a real directory, as mounted.
    small, extra = certificates(20, 0), certificates(1000, 100)
    per_file, bundled = work / "per-file", work / "bundled"
    one_per_file(per_file / "ca.d", small, "corp-ca")
    one_per_file(per_file / "ca.d", extra, "corp-extra")
    one_per_file(bundled / "ca.d", small, "corp-ca")
    (bundled / "ca.d" / "corp-bundle.crt").write_bytes(b"".join(extra))
    # Shape 2: 10,000 certificates, one per file (twice: rehash writes into its
    # directory) and as one bundle.
    scale = certificates(SCALE, 10_000)
    scale_files, scale_bundle, rehash_dir = (
        work / "scale-files",
        work / "scale-bundle",
        work / "rehash",
    )
    one_per_file(scale_files / "ca.d", scale, "ca")
    one_per_file(rehash_dir, scale, "ca")
    (scale_bundle / "ca.d").mkdir(parents=True)
    (scale_bundle / "ca.d" / "bundle.crt").write_bytes(b"".join(scale))
    del scale, extra

    runs = args.runs
    pairs = [
        Pair(
            "20 CA files + 1,000 more, one per file",
            "update-ca-certificates",
            MAX_UCA_RATIO,
            *paired(runs, uca_run(setup, per_file / "ca.d"), corpnet_run(setup, per_file)),
        ),
        Pair(
            "20 CA files + a bundle of 1,000",
            "update-ca-certificates",
            MAX_UCA_RATIO,
            *paired(runs, uca_run(setup, bundled / "ca.d"), corpnet_run(setup, bundled)),
        ),
    ]
    rehash = rehash_run(rehash_dir)
    for label, config, jvm, bound in (
        (f"{SCALE:,} certificates, one per file", scale_files, False, MAX_REHASH_RATIO),
        (f"{SCALE:,} certificates as one bundle", scale_bundle, False, MAX_REHASH_RATIO),
        (f"{SCALE:,} one per file, with a JVM", scale_files, True, None),
        (f"{SCALE:,} as one bundle, with a JVM", scale_bundle, True, None),
    ):
        if jvm and not setup.java:
            print(f"skipped: {label} (no java on PATH)")
            continue
        pairs.append(
            Pair(label, "openssl rehash (one per file)", bound,
                 *paired(runs, rehash, corpnet_run(setup, config, jvm=jvm)))
        )  # fmt: skip
    # A restart with a persistent runtime directory: nothing to rewrite.
    restart_env = {
        **setup.base_env,
        "CORPNET_CONFIG_DIR": str(scale_bundle),
        "CORPNET_RUNTIME_DIR": str(work / "runtime-restart"),
    }
    timed([str(corpnet), "trust"], restart_env)
    restart = [timed([str(corpnet), "trust"], restart_env) for _ in range(runs)]
    floor_argv = [str(python), "-c", "import " + ", ".join(trust_modules(setup))]
    floor = [timed(floor_argv, setup.base_env) for _ in range(runs)]
    return _report(runs, n_system, (start_load, os.getloadavg()[0]), pairs, restart, floor)


def _report(  # noqa: PLR0917 - one call site, every figure in order
    runs: int,
    n_system: int,
    load: tuple[float, float],
    pairs: list[Pair],
    restart: list[Sample],
    floor: list[Sample],
) -> int:
    print(
        f"{runs} paired runs each, on top of {n_system} system CAs; median [min-max]; "
        f"load average {load[0]:.1f} at the start, {load[1]:.1f} at the end"
    )
    ok = True
    peak = 0.0
    for pair in pairs:
        print(f"\n{pair.label}")
        print(
            f"  {pair.baseline:30} {spread([s.wall for s in pair.base])}"
            f"   cpu {spread([s.cpu for s in pair.base])}"
        )
        rss = [s.rss_kib / 1024 for s in pair.corp]
        peak = max(peak, *rss)
        print(
            f"  {'corpnet trust':30} {spread([s.wall for s in pair.corp])}"
            f"   cpu {spread([s.cpu for s in pair.corp])}"
            f"   peak RSS {spread(rss, 1, 'MB')}"
        )
        ratios = pair.ratios()
        met = pair.bound is None or statistics.median(ratios) <= pair.bound
        bound = "no bound" if pair.bound is None else f"bound {pair.bound:.0%}"
        print(f"  ratio corpnet/{pair.baseline}: {ratio_spread(ratios)} wall   ({bound})"
              f"{'' if met else '   MISSED'};  cpu {ratio_spread(pair.ratios('cpu'))}")  # fmt: skip
        ok = ok and met
    print(
        f"\ncorpnet trust, restart (10,000, nothing rewritten) {spread([s.wall for s in restart])}"
    )
    print(
        f"floor: python3 + the modules `corpnet trust` imports {spread([s.wall for s in floor])}"
        f"   peak RSS {spread([s.rss_kib / 1024 for s in floor], 1, 'MB')}"
    )
    peak = max(peak, *(s.rss_kib / 1024 for s in restart))
    rss_ok = peak <= MAX_RSS_MB
    print(
        f"peak RSS of every corpnet run: {peak:.1f} MB   (bound {MAX_RSS_MB:.0f} MB)"
        f"{'' if rss_ok else '   MISSED'}"
    )
    ok = ok and rss_ok
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
