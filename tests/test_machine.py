"""The machine a run measured on (gates/machine.py): read from /proc/cpuinfo, named in report.json."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gates.machine import ISA, cpu_from_cpuinfo, describe, fingerprint, machine_info

X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R)   Platinum 8480+
flags\t\t: fpu vme sse2 avx2 fma avx512f avx512bw avx512_vnni amx_tile amx_int8 amx_bf16 hypervisor

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse2 avx2 fma avx512f avx512bw avx512_vnni amx_tile amx_int8 amx_bf16 hypervisor
"""

ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp sve i8mm bf16
CPU implementer\t: 0x41

"""


def test_the_cpu_and_its_low_precision_instructions_are_read_from_cpuinfo() -> None:
    model, isa = cpu_from_cpuinfo(X86)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"  # whitespace folded
    assert isa == ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16"]
    model, isa = cpu_from_cpuinfo(ARM)
    assert model is None and isa == ["asimd", "asimddp", "i8mm", "bf16", "sve"]


@given(st.text(max_size=400))
def test_any_cpuinfo_text_reads_without_error(text: str) -> None:
    model, isa = cpu_from_cpuinfo(text)
    assert model is None or model.strip() == model
    assert set(isa) <= set(ISA)


def test_the_fingerprint_names_the_kind_of_machine_not_the_host() -> None:
    a = fingerprint("Xeon 8480+", 2, ["avx2", "amx_int8"], [])
    assert a == fingerprint("Xeon 8480+", 2, ["amx_int8", "avx2"], [])  # order does not matter
    # what changes a kernel's speed changes it: CPU count, instructions, GPUs
    others = [
        fingerprint("Xeon 8480+", 4, ["avx2", "amx_int8"], []),
        fingerprint("Xeon 8480+", 2, ["avx2"], []),
        fingerprint("Xeon 8480+", 2, ["avx2", "amx_int8"], ["NVIDIA H100 80GB HBM3"]),
        fingerprint("EPYC 9654", 2, ["avx2", "amx_int8"], []),
    ]
    assert a not in others and len(set(others)) == len(others) and len(a) == 12


def test_this_machine_is_described() -> None:
    m = machine_info()
    assert m["logical_cpus"] >= 1 and m["fingerprint"] == fingerprint(m["cpu"], m["logical_cpus"], m["isa"], m["gpus"])
    line = describe(m)
    assert f"{m['logical_cpus']} CPUs" in line and ("no GPU" in line or "GPU" in line)
    assert describe(None) == "not recorded"
    assert describe({**m, "gpus": None}).endswith("GPUs not known")
