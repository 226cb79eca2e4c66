"""The machine a run measured on: recorded in report.json, since latency, capacity and cost per
token belong to the hardware as much as to the model.

Found on the demo pipeline: two capacity searches made in one session agree within their
intervals (F test p 0.22 in one session, 0.83 in another), while the four runs of the two sessions
together do not (p 0.0095), and the reports did not say which hardware each ran on, so the
difference read as noise in the statistics. An int8 kernel's speed-up over fp32 depends on the
CPU's instructions (AVX-512 VNNI, AMX) and a GPU's generation, so the record names those, and a
``fingerprint`` groups runs made on the same kind of machine (benchmarks/capacity.py --replay
compares gains within one).

Light: the standard library only, nothing imported from the engines or torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

# the instructions low-precision kernels choose between (x86 and Arm), as /proc/cpuinfo names them
ISA = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
)


def cpu_from_cpuinfo(text: str) -> tuple[str | None, list[str]]:
    """(the CPU's model name, the :data:`ISA` flags it has) from the text of /proc/cpuinfo (the first
    processor's: every core of one machine reports the same)."""
    model: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if model is not None and flags:
                break  # the end of the first processor's block
            continue
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and model is None:
            model = " ".join(value.split()) or None
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, [f for f in ISA if f in flags]


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _usable_cpus() -> int:
    """The CPUs this process may run on (a container's or a runner's limit), not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _gpus() -> list[str] | None:
    """NVIDIA GPUs by name as nvidia-smi lists them ([]: no nvidia-smi; None: it failed)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def fingerprint(cpu: str | None, logical_cpus: int, isa: list[str], gpus: list[str] | None) -> str:
    """Twelve hex digits naming the kind of machine (not the host): the same CPU model, usable CPU
    count, instructions and GPUs give the same fingerprint."""
    key = json.dumps({"cpu": cpu, "cpus": logical_cpus, "isa": sorted(isa), "gpus": gpus}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def machine_info() -> dict[str, Any]:
    """report.json's ``machine``: where this run measured (the arms' server where it is local)."""
    try:
        cpu, isa = cpu_from_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        cpu, isa = None, []
    cpu = cpu or platform.processor() or None
    cpus, gpus = _usable_cpus(), _gpus()
    return {
        "cpu": cpu,
        "logical_cpus": cpus,
        "isa": isa,
        "memory_bytes": _memory_bytes(),
        "gpus": gpus,
        "system": f"{platform.system()} {platform.release()} {platform.machine()}".strip(),
        "fingerprint": fingerprint(cpu, cpus, isa, gpus),
    }


def describe(m: dict[str, Any] | None) -> str:
    """One line for a person: "Intel(R) Xeon(R) Processor, 2 CPUs (avx512_vnni amx_int8), 24 GiB, no GPU"."""
    if not m:
        return "not recorded"
    parts = [m.get("cpu") or "unknown CPU", f"{m.get('logical_cpus')} CPUs"]
    if m.get("isa"):
        parts[-1] += f" ({' '.join(m['isa'])})"
    if m.get("memory_bytes"):
        parts.append(f"{m['memory_bytes'] / 2**30:.0f} GiB")
    gpus = m.get("gpus")
    parts.append("GPUs not known" if gpus is None else ", ".join(gpus) if gpus else "no GPU")
    return ", ".join(parts)
