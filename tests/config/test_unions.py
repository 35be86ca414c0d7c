"""The union sections (data.source, model.type, train.optimizer.type, train.schedule.type): each type has
only its own keys, in dumps, in errors, through extends: and in tune.space."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kerasopt.config import dump_config, load_config
from kerasopt.config.data_schema import CSVData, DataConfig, SklearnData
from kerasopt.config.model_schema import CNNModel, CustomModel, ModelConfig, ResNetModel
from kerasopt.config.train_schema import CosineSchedule, OptimizerConfig, SGDOptimizer
from kerasopt.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
BASE = {"data": {"source": "sklearn", "name": "digits"}}
# Keys of other types that the flat schema used to print for the CNN demo.
OTHER_MODEL_KEYS = {"depth", "variant", "num_heads", "hidden_units", "units", "alpha", "builder", "kwargs", "weights",
                    "small_image_stem", "width", "embedding_dim", "ff_dim", "vocab_size", "bidirectional", "num_layers"}
CNN_KEYS = {"type", "filters", "kernel_size", "dense_units", "head", "num_classes", "input_shape", "dropout", "l1",
            "l2", "batch_norm", "bn_momentum", "activation", "init_from", "freeze"}
COSINE_KEYS = {"type", "alpha", "restart_epochs", "t_mul", "m_mul", "warmup_epochs", "warmup_steps",
               "scale_by_world_size"}


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def _err(cfg) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    return exc.value


def test_dump_of_the_cnn_demo_has_only_the_chosen_types_keys():
    dumped = yaml.safe_load(dump_config(load_config(CONFIGS / "digits_cnn.yaml")))
    assert set(dumped["model"]) == CNN_KEYS
    assert not OTHER_MODEL_KEYS & set(dumped["model"])
    assert set(dumped["train"]["schedule"]) == COSINE_KEYS
    assert set(dumped["train"]["optimizer"]) == {"type", "learning_rate", "weight_decay", "epsilon", "clipnorm",
                                                 "clipvalue", "global_clipnorm", "beta_1", "beta_2", "amsgrad"}
    assert "path" not in dumped["data"] and "label_column" not in dumped["data"] and dumped["data"]["name"] == "digits"
    # the selector first, then the type's own keys, then the shared ones
    assert list(dumped["model"])[:4] == ["type", "filters", "kernel_size", "dense_units"]
    assert list(dumped["data"])[:2] == ["source", "name"]


def test_print_config_of_the_cnn_demo_via_the_cli():
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "kerasopt"), "fit", str(CONFIGS / "digits_cnn.yaml"),
                          "--print-config"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    printed = yaml.safe_load(out.stdout)
    assert set(printed["model"]) == CNN_KEYS
    assert set(printed["train"]["schedule"]) == COSINE_KEYS
    for key in ("depth: 50", "variant: b0", "num_heads: 4", "final_div_factor", "min_lr", "milestones"):
        assert key not in out.stdout, key


def test_dump_reloads_to_the_same_config_for_every_shipped_recipe():
    for f in sorted(CONFIGS.glob("*.yaml")):
        cfg = load_config(f)
        assert load_config(yaml.safe_load(dump_config(cfg))) == cfg, f.name
        assert load_config(cfg) == cfg, f.name  # the Python API's round trip (exclude_unset keeps each type)


def test_shipped_recipes_keep_their_effective_values():
    cnn = load_config(CONFIGS / "digits_cnn.yaml")
    assert isinstance(cnn.model, CNNModel) and (cnn.model.filters, cnn.model.dense_units, cnn.model.kernel_size) == (
        [16, 32, 64], 64, 3)
    assert isinstance(cnn.train.schedule, CosineSchedule) and cnn.train.schedule.alpha == 0.0
    assert cnn.train.schedule.warmup_epochs == 1.0 and cnn.train.optimizer.type == "adamw"
    assert cnn.train.optimizer.beta_2 == 0.999 and cnn.train.optimizer.learning_rate == pytest.approx(3e-3)
    assert isinstance(cnn.data, SklearnData) and cnn.data.batch_size == 128 and cnn.data.resize == [32, 32]


def test_defaults_pick_the_default_type_of_each_section():
    cfg = load_config({**BASE, "model": {"filters": [8]}, "train": {"optimizer": {"beta_1": 0.8}}})
    assert isinstance(cfg.model, CNNModel) and cfg.model.filters == [8]
    assert cfg.train.optimizer.type == "adam" and cfg.train.optimizer.beta_1 == 0.8
    assert cfg.train.schedule.type == "constant" and set(cfg.train.schedule.model_dump()) == {
        "type", "warmup_epochs", "warmup_steps", "scale_by_world_size"}


def test_family_base_builds_the_chosen_option():
    resnet = ModelConfig(type="resnet", depth=18)
    assert type(resnet) is ResNetModel and resnet.depth == 18
    assert type(ModelConfig()) is CNNModel
    assert type(DataConfig(source="csv", path="a.csv", label_column="y")) is CSVData
    assert type(OptimizerConfig(type="sgd", momentum=0.9)) is SGDOptimizer
    assert type(OptimizerConfig.model_validate({"type": "sgd"})) is SGDOptimizer
    assert isinstance(ModelConfig(type="mlp"), ModelConfig)
    with pytest.raises(ValueError, match="does not match any of the expected tags"):
        ModelConfig(type="nope")


@pytest.mark.parametrize(
    "cfg, key, fragment",
    [
        ({**BASE, "model": {"type": "cnn", "depth": 50}}, "model.depth", "does not apply to type 'cnn' (it is used by: "
         "resnet)"),
        ({**BASE, "model": {"type": "mlp", "filters": [8]}}, "model.filters", "does not apply to type 'mlp'"),
        ({**BASE, "train": {"schedule": {"type": "cosine", "min_lr": 0.1}}}, "train.schedule.min_lr",
         "does not apply to type 'cosine' (it is used by: reduce_on_plateau)"),
        ({**BASE, "train": {"optimizer": {"type": "sgd", "beta_1": 0.9}}}, "train.optimizer.beta_1",
         "used by: adam, adamw, nadam"),
        ({"data": {"source": "sklearn", "name": "digits", "path": "x.csv"}}, "data.path",
         "does not apply to source 'sklearn'"),
        ({**BASE, "model": {"type": "cnn", "fliters": [8]}}, "model.fliters", "unknown key. Did you mean 'filters'?"),
        ({**BASE, "model": {"type": "transformr"}}, "model.type", "Did you mean 'transformer'?"),
        ({**BASE, "model": {"type": 5}}, "model.type", "Received: 5"),
        ({"data": {"source": "cvs", "path": "a"}}, "data.source", "Did you mean 'csv'?"),
        ({**BASE, "train": {"schedule": {"type": "cosin"}}}, "train.schedule.type", "'reduce_on_plateau'"),
        ({**BASE, "model": {"type": "custom"}}, "model.builder", "module:function"),
        ({**BASE, "model": {"type": "transformer", "embedding_dim": 10, "num_heads": 4}}, "model.embedding_dim",
         "divisible by num_heads"),
        ({**BASE, "model": {"type": "resnet", "depth": 18, "weights": "imagenet"}}, "model.depth", "50 and 101"),
        ({**BASE, "train": {"schedule": {"type": "step"}}}, "train.schedule.step_epochs", "needs 'step_epochs'"),
        ({**BASE, "model": 5}, "model", "valid dictionary"),
    ],
)
def test_union_errors_are_one_line_naming_the_key(cfg, key, fragment):
    e = _err(cfg)
    assert e.key == key, str(e)
    assert fragment in str(e), str(e)
    assert "\n" not in str(e) and str(e).startswith(f"{key}: ")


def test_unknown_type_lists_the_allowed_values():
    e = _err({**BASE, "model": {"type": "vit"}})
    assert e.key == "model.type"
    for name in ("'mlp'", "'cnn'", "'resnet'", "'transformer'", "'custom'"):
        assert name in str(e)
    assert "Received: 'vit'" in str(e)


def test_unknown_key_for_the_chosen_type_exits_2_with_one_line(tmp_path):
    p = _write(tmp_path / "c.yaml", "data: {source: sklearn, name: digits}\nmodel: {type: cnn, depth: 50}\n")
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "kerasopt"), "validate", str(p)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "model.depth: does not apply to type 'cnn' (it is used by: resnet)" in lines[0], lines
    assert "Traceback" not in out.stderr


def test_extends_switching_the_type_drops_the_parents_old_keys_once(tmp_path, caplog):
    (tmp_path / "digits_cnn.yaml").write_text((CONFIGS / "digits_cnn.yaml").read_text())
    child = _write(tmp_path / "custom.yaml", "extends: digits_cnn.yaml\nname: custom\n"
                   "model: {type: custom, builder: 'mypkg.builders:build'}\n"
                   "train: {schedule: {type: constant}}\n")
    with caplog.at_level(logging.WARNING, logger="kerasopt.config"):
        cfg = load_config(child)
    assert isinstance(cfg.model, CustomModel) and cfg.model.builder == "mypkg.builders:build"
    # the cnn's own keys went, and so did the shared knobs a custom builder ignores (CustomModel.UNUSED)
    assert not {"dropout", "batch_norm", "bn_momentum"} & cfg.model.model_fields_set
    assert "filters" not in cfg.model.model_dump() and cfg.model.dropout == 0.0
    assert cfg.model.model_fields_set == {"type", "builder"} and cfg.name == "custom"
    assert cfg.data.name == "digits" and cfg.data.resize == [32, 32]  # other sections are inherited as they were
    assert cfg.train.schedule.type == "constant" and cfg.train.schedule.warmup_epochs == 1.0  # shared: kept
    records = [r for r in caplog.records if r.name == "kerasopt.config"]
    assert len(records) == 1, [r.getMessage() for r in records]
    line = records[0].getMessage()
    assert "\n" not in line and str(child) in line
    for key in ("model.filters", "model.dense_units", "model.dropout", "model.batch_norm", "model.bn_momentum"):
        assert f"{key} (type cnn -> custom)" in line, line
    # cosine's only key the parent set is warmup_epochs (shared): no schedule key to drop
    assert "train.schedule" not in line and "model.type" not in line


def test_model_types_declare_the_shared_keys_they_ignore():
    assert set(CustomModel.UNUSED) == {"dropout", "l1", "l2", "batch_norm", "bn_momentum", "activation"}
    assert set(ModelConfig.OPTIONS["lstm"].UNUSED) == {"activation", "batch_norm", "bn_momentum"}
    assert CNNModel.UNUSED == {} and set(CNNModel.UNUSED) <= set(CNNModel.model_fields)


def test_extends_switch_keeps_shared_keys_and_reports_nothing_without_a_switch(tmp_path, caplog):
    _write(tmp_path / "lstm.yaml", "data: {source: sklearn, name: digits, reshape: [8, 8]}\n"
           "model: {type: lstm, units: 16, bidirectional: true}\n")
    gru = _write(tmp_path / "gru.yaml", "extends: lstm.yaml\nmodel: {type: gru}\n")
    same = _write(tmp_path / "same.yaml", "extends: lstm.yaml\nmodel: {units: 8}\n")
    with caplog.at_level(logging.WARNING, logger="kerasopt.config"):
        cfg = load_config(gru)
        assert (cfg.model.type, cfg.model.units, cfg.model.bidirectional) == ("gru", 16, True)
        assert not [r for r in caplog.records if r.name == "kerasopt.config"]
        assert load_config(same).model.units == 8
        assert not [r for r in caplog.records if r.name == "kerasopt.config"]


def test_extends_switch_still_rejects_the_childs_own_keys_of_another_type(tmp_path):
    (tmp_path / "digits_cnn.yaml").write_text((CONFIGS / "digits_cnn.yaml").read_text())
    child = _write(tmp_path / "mlp.yaml", "extends: digits_cnn.yaml\nmodel: {type: mlp, kernel_size: 5}\n")
    e = _err(child)
    assert e.key == "model.kernel_size" and "does not apply to type 'mlp'" in str(e) and str(child) in str(e)


def test_extends_switch_of_the_data_source_through_a_parent_without_source(tmp_path):
    _write(tmp_path / "base.yaml", "data: {name: digits, batch_size: 16}\n")  # source left out: sklearn
    child = _write(tmp_path / "syn.yaml", "extends: base.yaml\ndata: {source: synthetic, shape: [8, 8, 1]}\n")
    cfg = load_config(child)
    assert cfg.data.source == "synthetic" and cfg.data.batch_size == 16 and cfg.data.shape == [8, 8, 1]
    assert "name" not in cfg.data.model_dump()


def test_a_pre_union_run_config_still_loads(tmp_path):
    """A run directory's config.yaml written by the flat schema holds every key of every type."""
    flat_model = {**CNNModel().model_dump(), **{k: v for cls in ModelConfig.OPTIONS.values()
                                                for k, v in cls.model_construct().model_dump().items()
                                                if k not in CNNModel.model_fields}}
    flat_model.update(type="cnn", filters=[8])
    cfg = load_config({**BASE, "model": flat_model})
    assert isinstance(cfg.model, CNNModel) and cfg.model.filters == [8]
    # a hand-written config with one foreign key is still an error
    assert _err({**BASE, "model": {"type": "cnn", "builder": None}}).key == "model.builder"


def test_json_schema_has_a_discriminator_per_union_and_validates_the_recipes():
    jsonschema = pytest.importorskip("jsonschema")
    from kerasopt.config.loader import _resolve_extends
    from kerasopt.config.schema import ExperimentConfig

    schema = ExperimentConfig.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    defs = schema["$defs"]
    props = {"data": schema["properties"]["data"], "model": schema["properties"]["model"],
             "optimizer": defs["TrainConfig"]["properties"]["optimizer"],
             "schedule": defs["TrainConfig"]["properties"]["schedule"]}
    assert {k: v["discriminator"]["propertyName"] for k, v in props.items()} == {
        "data": "source", "model": "type", "optimizer": "type", "schedule": "type"}
    assert set(props["model"]["discriminator"]["mapping"]) == set(ModelConfig.OPTIONS)
    cnn, resnet = defs["CNNModel"], defs["ResNetModel"]
    assert "depth" not in cnn["properties"] and "depth" in resnet["properties"]
    assert "type" not in cnn.get("required", []) and "type" in resnet["required"]  # only the default may omit it
    validator = jsonschema.Draft202012Validator(schema)
    for f in sorted(CONFIGS.glob("*.yaml")):
        raw = _resolve_extends(f)
        assert not list(validator.iter_errors(raw)), f.name  # exactly one option matches each section
        assert not list(validator.iter_errors(json.loads(json.dumps(load_config(f).model_dump(mode="json")))))
    bad = {**BASE, "model": {"type": "cnn", "depth": 50}}
    assert list(validator.iter_errors(bad))
    assert not list(validator.iter_errors({**BASE, "model": {"dropout": 0.1}}))  # type left out: cnn


def _tune(space, model=None):
    cfg = {**BASE, "train": {"epochs": 3}, "tune": {"space": space}}
    if model is not None:
        cfg["model"] = model
    return cfg


def test_tune_space_keys_walk_the_chosen_type():
    ok = load_config(_tune({"model.depth": {"type": "choice", "values": [18, 34]}}, {"type": "resnet"}))
    assert list(ok.tune.space) == ["model.depth"]
    e = _err(_tune({"model.depth": {"type": "choice", "values": [18, 34]}}))  # the default cnn has no depth
    assert e.key == "tune.space.model.depth"
    assert "does not apply to model.type 'cnn' (it is used by: resnet)" in str(e)
    e = _err(_tune({"train.schedule.min_lr": {"type": "float", "min": 0.0, "max": 0.1}}))
    assert e.key == "tune.space.train.schedule.min_lr" and "train.schedule.type 'constant'" in str(e)
    e = _err(_tune({"model.fliters": {"type": "choice", "values": [[8]]}}))
    assert e.key == "tune.space.model.fliters" and "Did you mean 'model.filters'?" in str(e)
    e = _err(_tune({"data.batchsize": {"type": "choice", "values": [8]}}))
    assert "Did you mean 'data.batch_size'?" in str(e)


def test_tune_space_keys_follow_a_searched_type_and_its_when():
    space = {"model.type": {"type": "choice", "values": ["cnn", "mlp"]},
             "model.hidden_units": {"type": "choice", "values": [[8], [16]], "when": {"model.type": "mlp"}},
             "model.filters": {"type": "choice", "values": [[8]], "when": {"model.type": ["cnn"]}}}
    cfg = load_config(_tune(space))
    assert set(cfg.tune.space) == set(space)
    space["model.depth"] = {"type": "choice", "values": [18], "when": {"model.type": "mlp"}}
    e = _err(_tune(space))
    assert e.key == "tune.space.model.depth" and "model.type 'mlp'" in str(e)
    del space["model.depth"]
    space["model.width"] = {"type": "int", "min": 8, "max": 16}  # no searched type has it
    e = _err(_tune(space))
    assert e.key == "tune.space.model.width" and "unknown config key 'model.width'" in str(e)


def test_trial_configs_drop_the_base_keys_of_a_switched_type():
    from kerasopt.tune.space import trial_config

    base = load_config(_tune({"model.type": {"type": "choice", "values": ["cnn", "mlp"]}},
                             {"type": "cnn", "filters": [8], "dropout": 0.1}))
    trial = trial_config(base, {"model.type": "mlp"})
    assert trial.model.type == "mlp" and trial.model.dropout == 0.1 and "filters" not in trial.model.model_dump()
    assert trial_config(base, {"model.type": "cnn"}).model.filters == [8]


def test_no_import_cycle_between_schema_and_tune_schema():
    """tune_schema imports nothing that imports it back (function-local imports count)."""
    import ast

    cfg_dir = ROOT / "kerasopt" / "config"
    graph = {}
    for f in cfg_dir.glob("*.py"):
        mod = f"kerasopt.config.{f.stem}" if f.stem != "__init__" else "kerasopt.config"
        names = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kerasopt.config"):
                # like grimp: ``from pkg import submodule`` imports the submodule, anything else the module
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    names.add(sub if (cfg_dir / f"{a.name}.py").exists() and node.module == "kerasopt.config"
                              else node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("kerasopt.config"))
        graph[mod] = {n for n in names if n != mod}

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in graph.get(start, ()))

    modules = [m for m in graph if m != "kerasopt.config"]
    cycles = [m for m in modules if reaches(m, m)]
    assert not cycles, cycles
    assert "kerasopt.config.schema" not in graph["kerasopt.config.tune_schema"]


def test_unions_import_no_tensorflow():
    code = "import kerasopt.config.base, kerasopt.config.keys, kerasopt.config.loader, sys; " \
           "print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
