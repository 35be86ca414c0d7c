"""precision: auto picks per device, as measured (ARCHITECTURE.md §1)."""

import pytest

from kerasopt.errors import ConfigError
from kerasopt.training.precision import DeviceInfo, decide_precision, read_cpu_flags

CPU = DeviceInfo(0, None, None, frozenset({"avx2", "fma"}))
CPU_BF16 = DeviceInfo(0, None, None, frozenset({"avx512f", "avx512_bf16"}))
CPU_AMX = DeviceInfo(0, None, None, frozenset({"amx_bf16"}))
V100 = DeviceInfo(1, (7, 0), "Tesla V100", frozenset())
T4 = DeviceInfo(1, (7, 5), "Tesla T4", frozenset())
A100 = DeviceInfo(1, (8, 0), "A100", frozenset())
H100 = DeviceInfo(8, (9, 0), "H100", frozenset())
P100 = DeviceInfo(1, (6, 0), "P100", frozenset())


@pytest.mark.parametrize(
    "device, expected",
    [(CPU, "float32"), (CPU_BF16, "float32"), (CPU_AMX, "float32"), (V100, "mixed_float16"),
     (T4, "mixed_float16"), (A100, "mixed_bfloat16"), (H100, "mixed_bfloat16"), (P100, "float32")],
)
def test_auto_policy_table(device, expected):
    assert decide_precision("auto", "auto", device).policy == expected


def test_explicit_policy_is_kept_and_fp16_without_gpu_is_rejected():
    assert decide_precision("mixed_bfloat16", "auto", CPU).policy == "mixed_bfloat16"
    assert decide_precision("float32", "auto", A100).policy == "float32"
    with pytest.raises(ConfigError) as e:
        decide_precision("mixed_float16", "auto", CPU)
    assert e.value.key == "train.precision" and "needs a GPU" in str(e.value)


@pytest.mark.parametrize("device, jit, model, expected", [
    # measured on the 2-core AVX-512 CPU: XLA convolutions ~2x slower than oneDNN, dense/attention 2-7% faster
    (CPU, "auto", "cnn", False), (CPU, "auto", "resnet", False), (CPU, "auto", "custom", False),
    (CPU, "auto", "mlp", True), (CPU, "auto", "transformer", True),
    (CPU, "auto", "lstm", False), (CPU, "auto", "gru", False),
    (A100, "auto", "cnn", True), (T4, "auto", "resnet", True), (A100, "auto", "lstm", False),
    (CPU, False, "mlp", False), (A100, False, "cnn", False), (CPU, True, "cnn", True), (CPU, True, "lstm", True),
])
def test_jit_decision(device, jit, model, expected):
    assert decide_precision("float32", jit, device, model).jit_compile is expected


def test_read_cpu_flags(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n")
    assert read_cpu_flags(f) == {"fpu", "avx2", "amx_bf16"}
    assert read_cpu_flags(tmp_path / "nope") == frozenset()
