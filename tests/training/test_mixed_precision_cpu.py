"""mixed_float16 (loss scaling) and mixed_bfloat16 trained end to end on the CPU: the paths GPUs take.

``conftest.py`` hides GPUs, and users get a refusal for ``mixed_float16`` without one, so until these
tests the loss-scaled paths never ran. ``precision.TEST_FLOAT16_ON_CPU`` (tests only) lets float16
train on the CPU, slowly; every model here is a small MLP, so each run takes seconds.
"""

import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from training_runs import checkpoint_step, fit_cli, tabular_config

from kerasopt.training.precision import TEST_FLOAT16_ON_CPU

POLICIES = ["mixed_float16", "mixed_bfloat16"]
COMPUTE = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
INITIAL_LOSS_SCALE = 2.0**15  # tf_keras' dynamic loss scale starts here


@pytest.fixture(autouse=True)
def _float16_on_cpu(monkeypatch):
    monkeypatch.setenv(TEST_FLOAT16_ON_CPU, "1")


def _checkpoint_values(ckpt_dir: Path, part: str) -> dict[str, np.ndarray]:
    """The variables of a kerasopt checkpoint whose name contains ``part``."""
    from kerasopt._keras import tf

    reader = tf.train.load_checkpoint(str(ckpt_dir / "ckpt"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map() if part in name}


def _loss_scale(ckpt_dir: Path) -> float:
    found = _checkpoint_values(ckpt_dir, "current_loss_scale")
    assert len(found) == 1, f"expected one loss-scale variable in {ckpt_dir}, found {sorted(found)}"
    return float(next(iter(found.values())))


@pytest.mark.parametrize("policy", POLICIES)
def test_accumulation_fused_ema_and_export(policy, tmp_path):
    import kerasopt
    from kerasopt._keras import keras, tf

    cfg = tabular_config(
        tmp_path,
        data={"batch_size": 16},
        train={"epochs": 6, "precision": policy, "jit_compile": False, "grad_accum_steps": 2,
               "optimizer": {"type": "adam", "learning_rate": 0.01}},
        callbacks={"ema": {"enabled": True, "decay": 0.9}, "tensorboard": {"enabled": False}},
        export={"formats": ["keras", "saved_model"]},
    )
    result = kerasopt.fit(cfg)
    model, rd = result.model, result.run_dir.path
    assert result.metrics["precision"]["policy"] == policy
    hidden = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense) and layer.name != "head"]
    assert hidden and {layer.compute_dtype for layer in hidden} == {COMPUTE[policy]}  # the matmuls ran in it
    assert model.get_layer("head").compute_dtype == "float32" and model.output.dtype == tf.float32
    assert all(w.dtype == tf.float32 for w in model.weights)  # variables stay float32
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert result.metrics["final"]["val_accuracy"] >= 0.9

    # Accumulation: one optimizer step per 2 batches (9 batches an epoch: 142 examples / 16).
    last = rd / "checkpoints" / "last"
    meta = json.loads((last / "meta.json").read_text())
    assert (meta["epoch"], meta["step"]) == (6, 6 * 9 // 2)  # 54 batches, 27 optimizer steps

    # The fused EMA keeps float32 shadows, and the exported model holds them, not the raw weights.
    shadows = _checkpoint_values(last, "ema/shadows/")
    assert shadows and all(v.dtype == np.float32 for v in shadows.values())
    raw = _checkpoint_values(last, "model/")
    assert raw, "no model variables found in the checkpoint"
    exported = keras.models.load_model(rd / "model" / "e2e.keras")
    assert all(np.isfinite(w).all() for w in exported.get_weights())
    assert not all(any(np.array_equal(w, r) for r in raw.values()) for w in exported.get_weights() if w.size > 1)

    # Export: the .keras file and the SavedModel predict what the trained model predicts.
    x = np.random.default_rng(0).standard_normal((20, 13)).astype(np.float32)
    want = model.predict(x, verbose=0)
    tol = 2e-2 if policy == "mixed_bfloat16" else 2e-3
    np.testing.assert_allclose(exported.predict(x, verbose=0), want, atol=tol)
    served = tf.saved_model.load(str(rd / "model" / "saved_model")).signatures["serving_default"]
    (out,) = served(tf.constant(x)).values()
    np.testing.assert_allclose(out.numpy(), want, atol=tol)


def _diabetes(tmp_path: Path, policy: str, epochs: int) -> dict:
    """Diabetes regression on raw targets (25-346): the first float16 gradients overflow at the initial
    loss scale, so the dynamic loss scale falls during the first steps."""
    return {
        "name": "overflow", "seed": 3, "deterministic": True, "runs_root": str(tmp_path / "runs"),
        "data": {"source": "sklearn", "name": "diabetes", "batch_size": 16, "normalize": "standard"},
        "model": {"type": "mlp", "hidden_units": [32]},
        "train": {"epochs": epochs, "verbose": 0, "precision": policy, "jit_compile": False,
                  "optimizer": {"type": "adam", "learning_rate": 0.05}},
        "callbacks": {"tensorboard": {"enabled": False}, "checkpoint": {"every_n_steps": 5},
                      "ema": {"enabled": True, "decay": 0.9}},
        "export": {"formats": ["keras"]},
    }


def test_loss_scale_overflow_is_not_divergence(tmp_path):
    import kerasopt

    result = kerasopt.fit(_diabetes(tmp_path, "mixed_float16", epochs=3))
    scale = _loss_scale(result.run_dir.path / "checkpoints" / "last")
    assert scale < INITIAL_LOSS_SCALE, "no float16 overflow happened: the test would prove nothing"
    assert result.metrics["nan_guard"]["recoveries"] == 0  # skipped steps are the optimizer's business
    assert all(math.isfinite(v) for v in result.history["loss"])
    assert result.history["loss"][-1] < result.history["loss"][0]
    print(f"loss scale fell from {INITIAL_LOSS_SCALE:g} to {scale:g}; no NaN-guard recovery")


def _weights(run_dir: Path) -> list[np.ndarray]:
    from kerasopt._keras import keras

    return keras.models.load_model(run_dir / "model" / "overflow.keras").get_weights()


def _fit(cfg_path: Path, run_dir: Path, *extra: str, wait: bool = True):
    return fit_cli(cfg_path, run_dir, *extra, env={**os.environ, TEST_FLOAT16_ON_CPU: "1"}, wait=wait)


# mixed_bfloat16 keeps no state float32 lacks (no loss scale): `make test-all` runs it, make test runs float16
@pytest.mark.parametrize("policy", [POLICIES[0], pytest.param(POLICIES[1], marks=pytest.mark.slow)])
def test_sigkill_resume_is_exact(policy, tmp_path):
    # 353 training examples / 16 = 23 batches an epoch, 8 epochs. Killed after step 60: under float16
    # the loss scale has fallen by then, so a resume that restarted it at 2^15 would overflow, skip
    # a step and end with other weights.
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(_diabetes(tmp_path, policy, epochs=8)))
    _fit(cfg_path, tmp_path / "reference")
    run = tmp_path / "killed"
    proc = _fit(cfg_path, run, wait=False)
    t0 = time.time()
    while checkpoint_step(run) < 60:
        assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.stdout.read()[-2000:]
        assert time.time() - t0 < 300, "no checkpoint appeared in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["step"]
    assert killed_at < 8 * 23, "the run finished before the kill"
    if policy == "mixed_float16":
        scale = _loss_scale(run / "checkpoints" / "last")
        assert scale < INITIAL_LOSS_SCALE
    out = _fit(cfg_path, run, "--resume")
    assert "resuming" in out.stdout
    ref, got = _weights(tmp_path / "reference"), _weights(run)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, got))
    assert worst == 0.0, f"max abs weight difference {worst:g} after a SIGKILL at step {killed_at}"
    if policy == "mixed_float16":
        assert _loss_scale(run / "checkpoints" / "last") == _loss_scale(tmp_path / "reference" / "checkpoints" / "last")
