"""What the benchmark scripts share: the machine line, writing their section of BENCHMARKS.md, and a
process's memory."""

from __future__ import annotations

import os
import pathlib
import platform
import re


def machine() -> str:
    """`2 CPUs (<model>), 24 GB RAM, Linux <release>, Python <version>`."""
    cpu = "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} CPUs ({cpu}), {mem_gb:.0f} GB RAM, {system}, Python {platform.python_version()}"


def write_section(output: pathlib.Path, heading: str, section: str) -> None:
    """Replace (or append) the section under `heading` (e.g. `## HTTP`) of `output`, keeping every
    other section, with one blank line before the next."""
    text = output.read_text() if output.exists() else "# Benchmarks\n"
    pattern = re.compile("^" + re.escape(heading) + r"\n.*?(?=^## |\Z)", re.S | re.M)
    section = section.rstrip("\n") + "\n\n"
    text = pattern.sub(lambda _m: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    output.write_text(text.rstrip("\n") + "\n")


def rss_kib(pid: int) -> int:
    """Resident memory of process `pid` in KiB; 0 once it is gone."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
