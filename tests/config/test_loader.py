"""YAML loading, extends: composition, --set overrides and file errors."""

import pytest

from kerasopt.config import load_config
from kerasopt.config.loader import deep_merge, parse_override
from kerasopt.errors import ConfigError


def _write(p, text):
    p.write_text(text)
    return p


def test_extends_merges_deeply_and_child_wins(tmp_path):
    _write(tmp_path / "base.yaml", "data: {source: sklearn, name: digits, batch_size: 32}\ntrain: {epochs: 4}\n")
    child = _write(tmp_path / "child.yaml", "extends: base.yaml\ndata: {batch_size: 16}\nname: child\n")
    cfg = load_config(child)
    assert (cfg.name, cfg.data.name, cfg.data.batch_size, cfg.train.epochs) == ("child", "digits", 16, 4)


def test_extends_chain_and_list(tmp_path):
    _write(tmp_path / "a.yaml", "data: {source: sklearn, name: wine}\ntrain: {epochs: 2}\n")
    _write(tmp_path / "b.yaml", "extends: a.yaml\ntrain: {epochs: 3}\n")
    _write(tmp_path / "c.yaml", "model: {type: mlp}\n")
    cfg = load_config(_write(tmp_path / "d.yaml", "extends: [b.yaml, c.yaml]\n"))
    assert (cfg.data.name, cfg.train.epochs, cfg.model.type) == ("wine", 3, "mlp")


def test_extends_cycle_and_missing_parent(tmp_path):
    _write(tmp_path / "a.yaml", "extends: b.yaml\n")
    _write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(_write(tmp_path / "c.yaml", "extends: nope.yaml\n"))


@pytest.mark.parametrize(
    "item, parts, value",
    [
        ("train.epochs=3", ["train", "epochs"], 3),
        ("train.optimizer.learning_rate=3e-3", ["train", "optimizer", "learning_rate"], 0.003),
        ("data.resize=[16, 16]", ["data", "resize"], [16, 16]),
        ("model.batch_norm=false", ["model", "batch_norm"], False),
        ("model.num_classes=null", ["model", "num_classes"], None),
        ("name=my-run", ["name"], "my-run"),
    ],
)
def test_parse_override_yaml_scalars(item, parts, value):
    assert parse_override(item) == (parts, value)


def test_overrides_apply_and_unknown_override_is_named(tmp_path):
    p = _write(tmp_path / "c.yaml", "data: {source: sklearn, name: digits}\n")
    cfg = load_config(p, ["train.epochs=2", "train.optimizer.type=sgd", "data.batch_size=8"])
    assert (cfg.train.epochs, cfg.train.optimizer.type, cfg.data.batch_size) == (2, "sgd", 8)
    with pytest.raises(ConfigError) as e:
        load_config(p, ["train.optimiser.type=sgd"])
    assert e.value.key == "train.optimiser" and "Did you mean 'optimizer'?" in str(e.value)
    with pytest.raises(ConfigError, match="key=value"):
        load_config(p, ["train.epochs"])
    with pytest.raises(ConfigError, match="is a value"):
        load_config(p, ["data.source.x=1"])
    cfg = load_config(p, {"train.epochs": 5})
    assert cfg.train.epochs == 5


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found: .*missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    bad = _write(tmp_path / "bad.yaml", "data:\n  source: sklearn\n   name: digits\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line 3.*YAML syntax error"):
        load_config(bad)
    lst = _write(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(lst)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


def test_yaml_tags_are_not_executed(tmp_path):
    evil = _write(tmp_path / "e.yaml", "name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_config(evil)


def test_deep_merge_replaces_lists():
    assert deep_merge({"a": [1, 2], "b": {"c": 1}}, {"a": [3], "b": {"d": 2}}) == {"a": [3], "b": {"c": 1, "d": 2}}


def test_every_shipped_config_validates():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    files = sorted(root.glob("*.yaml"))
    assert files, "configs/ has no recipes"
    for f in files:
        load_config(f)
