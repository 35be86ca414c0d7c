"""Settings shared by the tune tests (a uniquely named module: ``from conftest import`` would resolve to
whichever test folder's conftest was imported first)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "configs" / "digits_tune.yaml"

# 480 training / 120 validation images at 16x16, batch 32: 15 steps an epoch, ~0.3 s an epoch on 2 cores
# without XLA (XLA compiles for ~13 s per trial, longer than these trials train). 5 epochs, not 3: the
# same config retrained spread 0.875-0.908 in val_accuracy after 3 epochs (CPU kernels are not
# bit-deterministic and the curve is steep there), 0.967-0.983 after 5.
FAST = {
    "data.max_examples": 600, "data.resize": [16, 16], "data.batch_size": 32, "train.epochs": 5,
    "train.jit_compile": False, "callbacks.tensorboard.enabled": False, "train.verbose": 0,
    "export.formats": ["keras"], "tune.isolate": False,
}
LR = {"type": "float", "min": 1.0e-3, "max": 2.0e-2, "sampling": "log"}


def fast(tmp_path: Path, **more) -> dict:
    """Overrides for RECIPE: small and quick, runs under ``tmp_path``."""
    return {**FAST, "runs_root": str(tmp_path / "runs"), **more}
