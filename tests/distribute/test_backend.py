"""The backend object: what one process answers, how the mode is chosen, and that the training code asks
it instead of testing the mode itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kerasopt.config import load_config
from kerasopt.distribute.backend import Backend
from kerasopt.distribute.strategy import choose_backend
from kerasopt.errors import ConfigError

ROOT = Path(__file__).parents[2]
MODES = {"none", "mirrored", "multi_worker", "horovod", "parameter_server"}
# the modules that must not branch on the distribution mode (issue 15: the backend answers for it)
NO_BRANCHES = ["kerasopt/training/fit.py", "kerasopt/training/assembly.py", "kerasopt/training/callbacks_factory.py",
               "kerasopt/workflow.py", "kerasopt/bench/runner.py"]


def _cfg(**distribute):
    return load_config({"name": "b", "data": {"source": "sklearn", "name": "iris", "batch_size": 16},
                        "model": {"type": "mlp", "hidden_units": [8]}, "distribute": distribute,
                        "train": {"epochs": 1}})


def test_one_process_answers_every_question_as_a_single_process():
    b = choose_backend(_cfg(backend="none"))
    assert type(b) is Backend and b.name == "none" and b.reason == "set in the config"
    assert (b.is_chief, b.replicas, b.workers, b.distributed) == (True, 1, 1, False)
    assert b.shard() is None and b.stop_sync() is None and b.nan_sync() is None and b.checkpoint_agree() is None
    assert b.from_chief((4, 7)) == (4, 7) and b.fuses_ema and b.saves_checkpoints and b.runs_after_fit
    assert b.xla_unsupported(has_gpu=False) is None and b.first_callbacks() == {} == b.after_metric_callbacks()
    assert b.worker_tensorboard(histogram_freq=0) is None
    sentinel = object()
    assert b.exportable(sentinel, rebuild=lambda: None) is sentinel
    assert b.wrap_optimizer(sentinel, None) is sentinel
    assert b.dataset(sentinel) is sentinel and b.fit_validation(sentinel) is sentinel and b.epoch_keys() is None
    named = {"a": sentinel}
    assert b.adapt_callbacks(named, assembly=None) is named and b.last_callbacks() == {}
    save = lambda: "saved"  # noqa: E731
    assert b.settled(save) is save

    class Loop:
        def run(self, epoch, batch):
            return {"from": [epoch, batch]}

    assert b.run(Loop(), 3, 5, assembly=None, rebuild_callbacks=lambda: ([], {})) == {"from": [3, 5]}

    class Stopper:
        received = "SIGTERM"

    assert b.stop_decided(Stopper())() == "SIGTERM"
    assert b.as_dict() == {"name": "none", "replicas": 1, "workers": 1, "reason": "set in the config"}


def test_auto_on_a_cpu_without_a_launcher_is_one_process(monkeypatch):
    for var in ("TF_CONFIG", "HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        monkeypatch.delenv(var, raising=False)
    b = choose_backend(_cfg(backend="auto"))
    assert b.name == "none" and b.reason == "auto: 0 GPU(s) visible"


def test_mirrored_on_a_cpu_is_one_replica_and_refuses_gradient_accumulation():
    b = choose_backend(_cfg(backend="mirrored"))
    assert b.name == "mirrored" and b.replicas == 1 and b.accumulation_steps(_cfg()) == 1
    raw = _cfg(backend="mirrored").model_dump(mode="json")
    cfg = load_config({**raw, "train": {"epochs": 1, "grad_accum_steps": 2}})
    with pytest.raises(ConfigError, match="gradient accumulation") as e:
        choose_backend(cfg)
    assert e.value.key == "train.grad_accum_steps"


def _mode_mentions(path: Path) -> list[str]:
    """Places where ``path`` names a distribution mode or reaches into one backend's own objects."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MODES:
            found.append(f"{path.name}:{node.lineno} the string {node.value!r}")
        if isinstance(node, ast.Attribute) and node.attr in ("hvd", "sync") and isinstance(node.ctx, ast.Load):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [getattr(node, "module", None) or ""] + [a.name for a in node.names]
            hits = [n for n in names if n.split(".")[-1] in ("horovod", "multi_worker", "mirrored", "parameter_server",
                                                           "horovod_elastic")]
            found += [f"{path.name}:{node.lineno} imports {n}" for n in hits]
    return found


@pytest.mark.parametrize("module", NO_BRANCHES)
def test_training_code_does_not_branch_on_the_distribution_mode(module):
    assert _mode_mentions(ROOT / module) == []


def test_the_branch_check_finds_a_branch(tmp_path):
    """The check above is not vacuous: it flags the kind of line the restructure removed."""
    sample = tmp_path / "branchy_sample.py"
    sample.write_text("def f(choice):\n    if choice.name == 'horovod':\n        return choice.hvd\n"
                      "    from kerasopt.distribute.multi_worker import local_copy\n")
    assert len(_mode_mentions(sample)) == 3
