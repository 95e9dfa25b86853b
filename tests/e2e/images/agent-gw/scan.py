"""Look, as the agent, for secrets everywhere the agent can read; print what was found.

The secrets come hex-encoded in E2E_NEEDLES (comma-separated), so this
process's own environment and command line never hold them in clear. Reads
every process's environ, cmdline and memory it is allowed to, and every
regular file under the given roots. Prints one JSON object: {"found": [...],
"mem_readable": ["pid:comm (command line)", ...], "checked": n}.
"""

import contextlib
import json
import os
import sys
from pathlib import Path

NEEDLES = [bytes.fromhex(h) for h in os.environ["E2E_NEEDLES"].split(",") if h]
ROOTS = sys.argv[1:] or ["/etc", "/run", "/home", "/tmp", "/var/tmp", "/opt/e2e", "/root"]


class Scan:
    def __init__(self) -> None:
        self.found: list[str] = []
        self.mem_readable: list[str] = []
        self.checked = 0

    def check(self, label: str, data: bytes) -> None:
        self.checked += 1
        self.found += [f"{label} (secret #{i})" for i, n in enumerate(NEEDLES) if n in data]

    def process(self, proc: Path) -> None:
        for part in ("environ", "cmdline"):
            with contextlib.suppress(OSError):
                self.check(str(proc / part), (proc / part).read_bytes())
        # Memory: readable only for a dumpable process of our own uid (ptrace rules).
        try:
            maps = (proc / "maps").read_text()
            with (proc / "mem").open("rb") as mem:
                for line in maps.splitlines():
                    fields = line.split()
                    if "r" not in fields[1] or (len(fields) > 5 and fields[5].startswith("[v")):
                        continue
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    try:
                        mem.seek(start)
                        self.check(f"{proc}/mem", mem.read(min(end - start, 64 << 20)))
                    except (OSError, OverflowError, ValueError):
                        continue
            comm = (proc / "comm").read_text().strip()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            self.mem_readable.append(f"{proc.name}:{comm} ({cmdline.strip()[:120]})")
        except OSError:
            pass

    def tree(self, root: str) -> None:
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                path = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    if path.is_file() and not path.is_symlink():
                        with path.open("rb") as f:
                            self.check(str(path), f.read(16 << 20))


scan = Scan()
me = str(os.getpid())
for proc in Path("/proc").iterdir():
    if proc.name.isdigit() and proc.name != me:
        scan.process(proc)
for root in ROOTS:
    scan.tree(root)
print(json.dumps({"found": scan.found, "mem_readable": scan.mem_readable, "checked": scan.checked}))
