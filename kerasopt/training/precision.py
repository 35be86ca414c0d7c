"""Pick the precision policy and XLA setting for the device we run on.

``decide_precision`` is the static rule (ARCHITECTURE.md §1): bfloat16 only
where the hardware has it (GPUs >= 8.0, CPUs with avx512_bf16/amx_bf16),
float16 with loss scaling on GPUs 7.x, float32 otherwise — emulated bfloat16
ran a small CNN 5x slower on an AVX2 CPU. On GPUs the rule is the decision; on
a CPU ``kerasopt.training.calibrate.resolve_decision`` replaces it with a
measurement of the real model, because there the faster setting depends on the model.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from kerasopt.errors import ConfigError

_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# Model types for which `jit_compile: auto` turns XLA on without a GPU (see decide_precision).
CPU_XLA_MODELS = ("mlp", "transformer")
# Recurrent layers compile to while-loops that XLA runs slower: auto never gives them XLA.
RECURRENT_MODELS = ("lstm", "gru")


@dataclass(frozen=True)
class DeviceInfo:
    """What the precision decision depends on."""

    gpus: int
    compute_capability: Optional[tuple[int, int]]  # of the first GPU
    gpu_name: Optional[str]
    cpu_flags: frozenset[str]

    @property
    def cpu_bf16(self) -> bool:
        return any(f in self.cpu_flags for f in _BF16_CPU_FLAGS)

    def describe(self) -> str:
        if self.gpus:
            cc = ".".join(map(str, self.compute_capability or ()))
            return f"{self.gpus} GPU(s): {self.gpu_name or 'unknown'} (compute capability {cc or '?'})"
        return "CPU" + (" with bfloat16 instructions" if self.cpu_bf16 else "")


@dataclass(frozen=True)
class PrecisionDecision:
    policy: str  # float32 | mixed_float16 | mixed_bfloat16
    jit_compile: bool
    reason: str
    device: str
    measured: Optional[dict[str, float]] = None  # examples/s per calibrated candidate (CPU, auto)

    def as_dict(self) -> dict:
        return asdict(self)


def read_cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """CPU feature flags from /proc/cpuinfo (empty where it does not exist)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def read_cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's "model name" from /proc/cpuinfo, else ``platform.processor()``."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def detect_device() -> DeviceInfo:
    """Ask TensorFlow which GPUs are visible and read the CPU flags."""
    from kerasopt._keras import gpus as list_gpus
    from kerasopt._keras import tf

    gpus = list_gpus()
    cc, name = None, None
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        cc = details.get("compute_capability")
        name = details.get("device_name")
    return DeviceInfo(len(gpus), tuple(cc) if cc else None, name, read_cpu_flags())


# Tests only: lets ``precision: mixed_float16`` train without a GPU, so the loss-scaling paths GPUs
# take (accumulation, fused EMA, NaN guard, resume, export) run in CI. TensorFlow runs float16 on a
# CPU, slowly; users keep the refusal above, which names the choices.
TEST_FLOAT16_ON_CPU = "KERASOPT_TEST_FLOAT16_ON_CPU"


def decide_precision(requested: str, jit: object, device: DeviceInfo, model_type: str = "") -> PrecisionDecision:
    """Resolve ``train.precision`` and ``train.jit_compile`` for ``device``.

    Example:
        >>> cpu = DeviceInfo(0, None, None, frozenset({"avx2"}))
        >>> decide_precision("auto", "auto", cpu).policy
        'float32'
    """
    cc = device.compute_capability
    if requested == "auto":
        if device.gpus and cc and cc >= (8, 0):
            policy, reason = "mixed_bfloat16", f"GPU compute capability {cc[0]}.{cc[1]} >= 8.0 has bfloat16"
        elif device.gpus and cc and cc >= (7, 0):
            policy, reason = "mixed_float16", f"GPU compute capability {cc[0]}.{cc[1]} has float16 tensor cores"
        elif not device.gpus and device.cpu_bf16:
            # Unmeasured, float32 is the safe side: on one bfloat16 CPU, bf16 ran a digits CNN 1.3x
            # faster and a 224x224 CNN 4.7x slower. Calibration (training/calibrate.py) may pick bf16.
            policy, reason = "float32", "CPU with bfloat16: float32 unless measured faster"
        else:
            policy = "float32"
            reason = "no native bfloat16/float16 here; emulated bfloat16 is ~5x slower"
    else:
        policy, reason = requested, "set in the config"
        if requested == "mixed_float16" and not device.gpus and os.environ.get(TEST_FLOAT16_ON_CPU) != "1":
            raise ConfigError(
                "mixed_float16 needs a GPU and none is visible; use precision: auto, float32 "
                "or mixed_bfloat16. Received: precision=mixed_float16",
                key="train.precision",
            )
    # XLA, measured per device (`kerasopt bench --variant jit_compile=false,true`, benchmarks/BENCHMARKS.md).
    # GPUs: XLA fuses the element-wise work around the cuDNN/cuBLAS calls, the usual win. This 2-core
    # AVX-512 CPU (TF 2.21): XLA's convolutions took 2.1-2.2x the CPU time per step of TensorFlow's
    # oneDNN kernels (digits CNN, a wider CNN, ResNet-18), while dense and attention models gained 2-7%;
    # so on a CPU auto turns XLA on only for those. Recurrent layers compile to while-loops that XLA
    # runs slower, so auto leaves them out everywhere.
    if jit == "auto":
        if model_type in RECURRENT_MODELS:
            use_jit = False
        else:
            use_jit = bool(device.gpus) or model_type in CPU_XLA_MODELS
    else:
        use_jit = bool(jit)
    return PrecisionDecision(policy, use_jit, reason, device.describe())


def apply_policy(policy: str) -> None:
    """Set the global Keras mixed-precision policy (before the model is built)."""
    from kerasopt._keras import keras

    keras.mixed_precision.set_global_policy(policy)
