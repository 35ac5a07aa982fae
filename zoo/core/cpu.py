"""The CPU's instruction-set features that low-precision kernels depend on, read from /proc/cpuinfo (no torch).

An int8 artifact's accuracy and speed depend on the ISA it runs on (onnxruntime picks VNNI / AMX kernels where the CPU
has them, and their rounding differs from the AVX2 path's), so a build records the features it measured on and a load
elsewhere warns about the ones missing (zoo/load/loader.py)."""
from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# the x86 features onnxruntime's and OpenVINO's int8 / bf16 kernels dispatch on (and the baseline they fall back to);
# on ARM, the dot-product and int8 matrix-multiply extensions
ISA_FEATURES = ("avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16", "asimddp", "i8mm", "bf16", "sve")


def _field(*keys: str) -> str | None:
    """The value of the first CPU's first line in /proc/cpuinfo named one of ``keys``; None where there is none or no
    /proc/cpuinfo (not Linux)."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            return value.strip()
    return None


def cpu_flags() -> frozenset[str]:
    """Every feature flag of the first CPU in /proc/cpuinfo ("flags" on x86, "Features" on ARM); empty where there is
    no /proc/cpuinfo (not Linux)."""
    return frozenset((_field("flags", "Features") or "").split())


def model_name() -> str:
    """The processor's model name: floating-point kernels (and so seeded weights and eager's outputs) may differ
    between CPU types (zoo/build/reproduce.py records it in a lock)."""
    import platform
    return _field("model name") or platform.processor() or platform.machine()


def isa_features() -> list[str]:
    """The ISA_FEATURES this CPU has, in ISA_FEATURES' order (what a build records)."""
    flags = cpu_flags()
    return [f for f in ISA_FEATURES if f in flags]


def missing_features(recorded: list[str]) -> list[str]:
    """The recorded features this CPU lacks (none where the flags cannot be read: nothing is known to be missing)."""
    flags = cpu_flags()
    return [f for f in recorded if flags and f not in flags]
