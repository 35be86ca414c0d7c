"""Transfer learning: model.init_from, model.weights (a file), model.freeze, train.unfreeze_at_epoch."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import kerasopt
from kerasopt._keras import keras
from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.models import build_model
from kerasopt.models.pretrained import load_backbone_file, read_weights
from kerasopt.training.lr_schedules import ConstantSchedule, FactorFrom

QUIET = {"train.precision": "float32", "train.jit_compile": False, "train.verbose": 0,
         "callbacks.tensorboard.enabled": False, "report": False, "export.formats": ["keras"]}


def _quiet(*_):
    return None


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A 99%-class digits CNN: the run others start from."""
    rd = tmp_path_factory.mktemp("transfer") / "source"
    result = kerasopt.fit("configs/digits_cnn.yaml", {**QUIET, "train.epochs": 8}, run_dir=str(rd),
                          print_fn=_quiet)
    assert result.metrics["final"]["val_accuracy"] >= 0.97
    return rd


class WeightsAt(keras.callbacks.Callback):
    """Every layer's weights at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.at: dict[int, dict[str, list[np.ndarray]]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.at[epoch] = {layer.name: [w.numpy().copy() for w in layer.weights]
                          for layer in self.model.layers if layer.weights}


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_warm_start_from_a_digits_run_reaches_97_percent_in_one_epoch(source_run, tmp_path):
    lines = []
    result = kerasopt.fit("configs/digits_cnn.yaml",
                          {**QUIET, "model.init_from": str(source_run), "train.epochs": 1,
                           "train.schedule.warmup_epochs": 0, "train.optimizer.learning_rate": 1e-3},
                          run_dir=str(tmp_path / "warm"), print_fn=lines.append)
    assert result.metrics["final"]["val_accuracy"] >= 0.97
    assert any(line.startswith(f"init_from {source_run}: 15 layers (77,466 weights) loaded") for line in lines)


def test_frozen_weights_are_bit_identical_and_unfreezing_trains_them_but_not_batchnorm(source_run, tmp_path):
    source = read_weights(source_run, "model.init_from")
    seen = WeightsAt()
    lines = []
    kerasopt.fit("configs/digits_cnn.yaml",
                 {**QUIET, "model.init_from": str(source_run), "model.freeze": "backbone",
                  "train.unfreeze_at_epoch": 1, "train.epochs": 2},
                 run_dir=str(tmp_path / "ft"), print_fn=lines.append, callbacks=[seen])
    first, second = seen.at[0], seen.at[1]
    backbone = [name for name in first if name != "head"]
    assert len(backbone) == 14
    # epoch 1: only the head trained; every frozen array (BN moving statistics included) is the source's
    for name in backbone:
        assert _same(first[name], source[name]), name
    assert not _same(first["head"], source["head"])
    # epoch 2: convolutions and the dense layer train; BatchNorm (gamma, beta and statistics) stays frozen
    for name in backbone:
        changed = not _same(second[name], first[name])
        assert changed == (not name.endswith("_bn")), name
    assert "freeze: 14 layers (76,816 weights) frozen, 7 BatchNorm in inference mode; trained from epoch 2 on " \
           "at LR x0.1 (BatchNorm stays frozen)" in lines
    assert "epoch 2: unfrozen 14 layers" in lines


def test_the_lr_drops_by_the_factor_at_the_unfreeze_step():
    s = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(FactorFrom(ConstantSchedule(0.5), at_step=24, factor=0.2)))
    assert [round(float(s(t)), 6) for t in (0, 23, 24, 100)] == [0.5, 0.5, 0.1, 0.1]


class SigtermAt(keras.callbacks.Callback):
    """Send SIGTERM to this process after (epoch, batch): kerasopt checkpoints mid-epoch and stops."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            os.kill(os.getpid(), signal.SIGTERM)


def _two_phase(source_run):
    return {**QUIET, "model.init_from": str(source_run), "model.freeze": ["block*_conv", "block*_bn"],
            "train.unfreeze_at_epoch": 1, "train.unfreeze_lr_factor": 0.5, "train.epochs": 3,
            "train.grad_accum_steps": 2, "deterministic": True}  # the recipe's translation is replayed too


@pytest.fixture(scope="module")
def two_phase_straight(source_run, tmp_path_factory):
    """The uninterrupted two-phase fine-tune both resume variants compare with."""
    return kerasopt.fit("configs/digits_cnn.yaml", _two_phase(source_run),
                        run_dir=str(tmp_path_factory.mktemp("straight") / "run"), print_fn=_quiet)


@pytest.mark.parametrize("stop_epoch", [0, 2], ids=["stopped-while-frozen", "stopped-after-unfreezing"])
def test_a_resumed_two_phase_fine_tune_equals_an_uninterrupted_one(source_run, two_phase_straight, tmp_path,
                                                                    stop_epoch):
    cfg, straight = _two_phase(source_run), two_phase_straight
    stopped = kerasopt.fit("configs/digits_cnn.yaml", cfg, run_dir=str(tmp_path / "resumed"), print_fn=_quiet,
                           callbacks=[SigtermAt(stop_epoch, 4)])
    assert stopped.metrics["interrupted_by"] == "SIGTERM"
    marker = source_run / "config.yaml"
    kept = marker.read_text()
    marker.unlink()  # a resume never reads the source again (the checkpoint has it all)
    try:
        resumed = kerasopt.fit("configs/digits_cnn.yaml", cfg, run_dir=str(tmp_path / "resumed"), resume=True,
                               print_fn=_quiet)
    finally:
        marker.write_text(kept)
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(straight.model.get_weights(), resumed.model.get_weights())]
    assert max(diffs) == 0.0
    # the LR logged for each whole epoch after the resumed one: the schedule (and its x0.5 drop) continued
    assert resumed.history["lr"][1:] == straight.history["lr"][stop_epoch + 1:]


def _spec(channels=1):
    return DataSpec((32, 32, channels), "classification", 10, 100, 20)


def test_a_backbone_file_loads_every_backbone_layer_and_a_wrong_one_is_refused(tmp_path):
    cfg = ExperimentConfig(data={"source": "sklearn", "name": "digits", "resize": [32, 32]},
                           model={"type": "mobilenet_v2", "alpha": 0.35})
    donor = build_model(cfg, _spec())
    path = tmp_path / "backbone.h5"
    donor.save_weights(str(path))
    target = build_model(cfg.model.model_copy(update={"weights": str(path)}), _spec())
    done = load_backbone_file(target, str(path))
    assert done.skipped == [("head", "not in the source")] or not done.skipped
    donor_by_name = {layer.name: layer.get_weights() for layer in donor.layers}
    loaded = [layer for layer in target.layers if layer.weights and layer.name != "head"]
    assert len(loaded) == len(done.loaded) and all(_same(layer.get_weights(), donor_by_name[layer.name])
                                                   for layer in loaded)
    # the model starts with the ImageNet preprocessing of MobileNetV2: x / 127.5 - 1
    pre = target.get_layer("imagenet_preprocessing")
    assert float(pre(np.full((1, 1, 1, 1), 255.0, np.float32))[0, 0, 0, 0]) == pytest.approx(1.0)

    wider = build_model(cfg.model.model_copy(update={"alpha": 0.5}), _spec())
    wider.save_weights(str(tmp_path / "wider.h5"))
    with pytest.raises(ConfigError, match=r"does not fit this backbone: 76 of 104 layers not matched, e\.g\. "
                                          r"block_1_project \(shape \(1, 1, 48, 16\) vs \(1, 1, 48, 8\)\); "
                                          r"block_1_project_BN \(shape \(16,\) vs \(8,\) and 3 more\)") as err:
        load_backbone_file(target, str(tmp_path / "wider.h5"))
    assert err.value.key == "model.weights"


def test_a_pretrained_resnet_is_keras_applications_with_caffe_preprocessing():
    cfg = ExperimentConfig(data={"source": "sklearn", "name": "digits", "resize": [32, 32]},
                           model={"type": "resnet", "depth": 50, "weights": "backbone.h5"})
    model = build_model(cfg, _spec(3))
    assert model.get_layer("conv1_conv").kernel.shape == (7, 7, 3, 64)  # keras.applications' names
    x = np.zeros((1, 32, 32, 3), np.float32)
    x[..., 0] = 200.0  # red
    out = model.get_layer("imagenet_preprocessing")(x).numpy()[0, 0, 0]
    np.testing.assert_allclose(out, [-103.939, -116.779, 200.0 - 123.68], rtol=1e-6)  # BGR minus the means


@pytest.mark.parametrize("overrides, key, message", [
    ({"model.freeze": ["nothing_like_this*"]}, "model.freeze", "pattern 'nothing_like_this*' matches no layer"),
    ({"train.unfreeze_at_epoch": 1}, "train.unfreeze_at_epoch", "needs model.freeze"),
    ({"model.freeze": "backbone", "train.unfreeze_at_epoch": 10}, "train.unfreeze_at_epoch",
     "must be before the last epoch"),
    ({"model.weights": "imagenet"}, "model.weights", "does not apply to type 'cnn'"),
    ({"model.type": "mobilenet_v2", "model.weights": "imagenet"}, "data.normalize",
     "takes raw 0..255 pixels"),
    ({"model.type": "resnet", "model.depth": 18, "model.weights": "imagenet", "data.normalize": "none"},
     "model.depth", "exist for depth 50 and 101"),
], ids=["pattern", "unfreeze-without-freeze", "unfreeze-too-late", "weights-on-cnn", "weights-normalized",
        "resnet18"])
def test_bad_transfer_settings_name_their_key(tmp_path, overrides, key, message):
    base = {"name": "bad", "data": {"source": "sklearn", "name": "digits", "resize": [32, 32],
                                    "normalize": "minmax"},
            "model": {"type": "cnn"}, "train": {"epochs": 3}}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")) as err:
        kerasopt.fit(base, {**QUIET, **overrides}, run_dir=str(tmp_path / "bad"), print_fn=_quiet)
    assert err.value.key == key
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_init_from_a_run_that_shares_no_layer_is_refused(source_run, tmp_path):
    iris = {"name": "iris", "data": {"source": "sklearn", "name": "iris", "normalize": "standard"},
            "model": {"type": "mlp", "hidden_units": [8]}, "train": {"epochs": 1, "verbose": 0},
            "callbacks": {"tensorboard": {"enabled": False}}, "report": False}
    with pytest.raises(ConfigError, match=r"no layer of .* matches this model by name and shape") as err:
        kerasopt.fit(iris, {"model.init_from": str(source_run), "model.hidden_units": [7]},
                     run_dir=str(tmp_path / "iris"), print_fn=_quiet)
    assert err.value.key == "model.init_from"


def test_imagenet_weights_offline_fail_with_one_line_and_exit_2(tmp_path):
    config = tmp_path / "pretrained.yaml"
    config.write_text("name: pretrained\n"
                      "data: {source: synthetic, shape: [32, 32, 3], num_examples: 64}\n"
                      "model: {type: mobilenet_v2, alpha: 0.35, weights: imagenet}\n"
                      "train: {epochs: 1}\n")
    # no cached weights (an empty ~/.keras) and no route out: what a machine without network sees
    env = {**os.environ, "HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "kerasopt"), "fit", str(config),
                           "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "model.weights" in line]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert "must be downloaded once" in lines[0] and "set model.weights to its local path" in lines[0]
    assert "Traceback" not in proc.stderr
