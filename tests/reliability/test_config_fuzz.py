"""Config fuzzing: random mutations of the shipped configs (configs/*.yaml) never give a traceback.

Each mutated config goes through ``kerasopt validate`` (click's CliRunner, in
process; the config package imports no TensorFlow): the exit code is 0 or 2, and
2 comes with exactly one ``error:`` line that names the key (or the file).
Mutations: wrong types, unknown keys, deleted keys and sections, sections
replaced by scalars, out-of-range and huge numbers, NaN/Inf, long strings,
YAML-level damage, and non-UTF-8 bytes. Valid mutations (in-range values of
independent knobs) must pass and round-trip.

``KERASOPT_FUZZ_EXAMPLES=N`` runs N examples per property with a random seed;
by default each property runs a fixed, derandomized set (reproducible in CI).
"""

from __future__ import annotations

import copy
import os
import typing
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from kerasopt.cli import main
from kerasopt.config import ExperimentConfig, load_config
from kerasopt.config.loader import _resolve_extends
from kerasopt.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))
_N = os.environ.get("KERASOPT_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_N) if _N else 60, derandomize=_N is None, database=None, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# The configs as written (extends resolved) and fully resolved (every default present: mutations reach every key).
BASES = {f"{p.name}": _resolve_extends(p) for p in SHIPPED}
BASES.update({f"{p.name} (resolved)": load_config(p).model_dump(mode="json") for p in SHIPPED})
BASE_NAMES = sorted(BASES)


def paths(node, prefix=()):
    """Every (path, value) in a nested dict/list, sections included."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for k, v in items:
        out.append(((*prefix, k), v))
        out += paths(v, (*prefix, k))
    return out


def dotted(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


def get(node, path):
    for p in path:
        node = node[p]
    return node


def _unwrap(ann):
    if typing.get_origin(ann) is typing.Union or type(ann).__name__ == "UnionType":
        inner = [a for a in typing.get_args(ann) if a is not type(None)]
        return inner[0] if len(inner) == 1 else ann
    return ann


def field_annotation(path):
    """The schema annotation of a key path, walking model sections only (None inside dicts/lists/Any)."""
    cls = ExperimentConfig
    ann = None
    for p in path:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or p not in cls.model_fields:
            return None
        ann = _unwrap(cls.model_fields[p].annotation)
        cls = ann
    return ann


def is_scalar_field(ann) -> bool:
    """int, float, str, bool or a Literal of them: a dict can never be valid there."""
    return ann in (int, float, str, bool) or typing.get_origin(ann) is typing.Literal


def is_section(ann) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**40), 10**40), st.floats(allow_nan=True, allow_infinity=True),
    _text, st.binary(max_size=8),
    st.sampled_from(["", "auto", "none", "inf", "-1", "1e-3", "0x10", "../../etc/passwd", "/tmp/x", "x" * 100_000,
                     "2020-01-01", "yes", "~"]),
)
JUNK = st.recursive(_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3), max_leaves=6)


@st.composite
def mutated(draw):
    """A shipped config with 1-3 random mutations; returns (base name, config, [(kind, path), ...])."""
    name = draw(st.sampled_from(BASE_NAMES))
    cfg = copy.deepcopy(BASES[name])
    done = []
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(cfg)
        kind = draw(st.sampled_from(["set", "delete", "add", "section"]))
        if not candidates:
            break
        path, value = draw(st.sampled_from(candidates))
        parent = get(cfg, path[:-1])
        if kind == "set":
            parent[path[-1]] = draw(JUNK)
        elif kind == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif kind == "add" and isinstance(value, dict):
            value[draw(_text.filter(lambda k, taken=set(value): k not in taken))] = draw(JUNK)
            path = (*path, "*")
        elif kind == "section":
            parent[path[-1]] = draw(st.one_of(st.integers(), _text, st.lists(st.integers(), max_size=2)))
        else:
            continue
        done.append((kind, path))
    return name, cfg, done


def validate_file(path: Path):
    return CliRunner().invoke(main, ["validate", str(path)], catch_exceptions=True)


def check_outcome(result, path: Path) -> str:
    """Exit 0, or exit 2 with exactly one error line naming a key or the file; never a traceback.

    Returns "valid" or the error line (without "error: ").
    """
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        return "valid"
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    line = lines[0][len("error: "):]
    assert len(line) < 1200, len(line)
    try:  # the same config in process: the ConfigError carries the key (or names the file)
        load_config(path)
    except ConfigError as e:
        assert str(e) == line, (str(e), line)
        assert (e.key and line.startswith(f"{e.key}: ")) or str(path) in line, line
    return line


def write(tmp_path: Path, cfg) -> Path:
    p = tmp_path / "fuzz.yaml"
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    return p


def test_every_shipped_config_is_valid_as_written_and_resolved():
    for name, cfg in BASES.items():
        assert isinstance(load_config(cfg), ExperimentConfig), name


def test_random_mutations_exit_0_or_2_with_one_line(tmp_path, fault_record):
    stats: Counter = Counter()

    @FUZZ
    @given(mutated())
    def prop(case):
        _name, cfg, done = case
        p = write(tmp_path, cfg)
        outcome = check_outcome(validate_file(p), p)
        stats["valid" if outcome == "valid" else "exit 2"] += 1
        if outcome == "valid":
            return
        # A key replaced by a dict where the schema has a scalar, or a section replaced by a
        # scalar, is the only schema error left: the message must name that key.
        if len(done) == 1:
            kind, path = done[0]
            ann = field_annotation(path)
            value = get(cfg, path) if kind in ("set", "section") else None
            breaks = (kind == "set" and isinstance(value, dict) and is_scalar_field(ann)) or (
                kind == "section" and is_section(ann) and ann is not ExperimentConfig)
            if breaks:
                stats["named the mutated key"] += 1
                key = outcome.split(": ", 1)[0]
                assert key == dotted(path) or key.startswith((dotted(path) + ".", dotted(path) + "[")), (outcome, path)

    prop()
    n = stats["valid"] + stats["exit 2"]
    assert n >= 20 and stats["exit 2"] > 0
    fault_record("config fuzz: 1-3 random mutations (wrong types, unknown keys, deleted keys/sections, "
                 "sections as scalars, huge/NaN/Inf numbers, long strings) of configs/*.yaml",
                 f"{n} examples: {stats['valid']} still valid (exit 0), {stats['exit 2']} exit 2 with one line "
                 f"naming the key ({stats['named the mutated key']} checked to name exactly the mutated key); "
                 "0 tracebacks", examples=n)


@st.composite
def byte_damage(draw):
    name = draw(st.sampled_from([p.name for p in SHIPPED]))
    data = bytearray((ROOT / "configs" / name).read_bytes())
    pos = draw(st.integers(0, len(data)))
    bad = draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80abc", b"\xf8\x88\x80\x80"]))
    return data[:pos] + bad + data[pos:]


@st.composite
def text_damage(draw):
    name = draw(st.sampled_from([p.name for p in SHIPPED]))
    text = (ROOT / "configs" / name).read_text()
    for _ in range(draw(st.integers(1, 3))):
        a = draw(st.integers(0, len(text)))
        b = draw(st.integers(a, min(len(text), a + 40)))
        piece = draw(st.sampled_from(["", ":", "- ", "{", "[", "&a ", "*a", "!!python/object:os.system ", "\t",
                                      "\n  x: 1\n", "'", '"', "%YAML 1.1\n", "? ", "|", ">", "---\n", "..."]))
        text = text[:a] + piece + text[b:]
    return text


def test_non_utf8_bytes_name_the_file(tmp_path, fault_record):
    count = 0

    @FUZZ
    @given(byte_damage())
    def prop(raw):
        nonlocal count
        p = tmp_path / "cfg.yaml"
        p.write_bytes(bytes(raw))
        line = check_outcome(validate_file(p), p)
        assert str(p) in line and "not UTF-8 text (byte " in line, line
        count += 1

    prop()
    fault_record("config fuzz: non-UTF-8 bytes inserted at a random place", f"{count} examples: all exit 2 "
                 f"'<file>: not UTF-8 text (byte N)'", examples=count)


def test_yaml_text_damage_never_tracebacks(tmp_path, fault_record):
    stats: Counter = Counter()

    @FUZZ
    @given(text_damage())
    def prop(text):
        # extends: must resolve next to the shipped configs
        p = tmp_path / "configs" / "cfg.yaml"
        p.parent.mkdir(exist_ok=True)
        for f in SHIPPED:
            (p.parent / f.name).write_bytes(f.read_bytes())
        p.write_text(text)
        stats["valid" if check_outcome(validate_file(p), p) == "valid" else "exit 2"] += 1

    prop()
    n = sum(stats.values())
    fault_record("config fuzz: YAML text damage (cut/inserted ':', '[', '{', tabs, anchors, aliases, "
                 "!!python tags, documents)", f"{n} examples: {stats['valid']} valid, {stats['exit 2']} exit 2 "
                 "with one line; 0 tracebacks", examples=n)


# Independent knobs and values the schema accepts (every shipped config warms up for 1 epoch: epochs >= 2).
VALID = {
    ("seed",): st.integers(0, 2**31 - 1),
    ("name",): st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}", fullmatch=True),
    ("description",): st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200),
    ("deterministic",): st.booleans(),
    ("report",): st.booleans(),
    ("data", "batch_size"): st.integers(1, 4096),
    ("data", "validation_split"): st.floats(0.0, 0.95),
    ("data", "shuffle_buffer"): st.integers(0, 10**6),
    ("data", "cache"): st.booleans(),
    ("model", "dropout"): st.floats(0.0, 0.99),
    ("model", "bn_momentum"): st.floats(0.01, 0.999),
    ("model", "dense_units"): st.integers(0, 1024),
    ("train", "epochs"): st.integers(2, 1000),
    ("train", "optimizer", "learning_rate"): st.floats(1e-8, 10.0),
    ("train", "optimizer", "weight_decay"): st.floats(0.0, 1.0),
    ("callbacks", "early_stopping", "patience"): st.integers(0, 100),
    ("callbacks", "checkpoint", "save_top_k"): st.integers(1, 10),
    ("callbacks", "ema", "decay"): st.floats(0.5, 0.9999, exclude_max=True),
}


@st.composite
def valid_mutation(draw):
    name = draw(st.sampled_from(BASE_NAMES))
    cfg = copy.deepcopy(BASES[name])
    changes = {}
    for path in draw(st.lists(st.sampled_from(sorted(VALID)), min_size=1, max_size=4, unique=True)):
        node = cfg
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = changes[path] = draw(VALID[path])
    return cfg, changes


def test_valid_mutations_pass_and_round_trip(tmp_path, fault_record):
    count = 0

    @FUZZ
    @given(valid_mutation())
    def prop(case):
        nonlocal count
        cfg, changes = case
        p = write(tmp_path, cfg)
        assert check_outcome(validate_file(p), p) == "valid"
        loaded = load_config(p)
        for path, value in changes.items():
            got = loaded
            for part in path:
                got = getattr(got, part)
            assert got == value, (path, got, value)
        count += 1

    prop()
    fault_record("config fuzz: valid mutations (in-range seed, name, batch size, split, LR, dropout, epochs, ...)",
                 f"{count} examples: all valid, values round-trip", examples=count)


@pytest.mark.parametrize("section", ["data", "model", "train", "callbacks", "tune"])
def test_missing_section(tmp_path, section, fault_record):
    cfg = copy.deepcopy(BASES["digits_tune.yaml"])
    cfg.pop(section)
    p = write(tmp_path, cfg)
    result = validate_file(p)
    outcome = check_outcome(result, p)
    if section == "data":  # the defaults (source sklearn) need data.name
        assert outcome.startswith("data.name: source 'sklearn' needs 'name' (the config has no 'data:' section)")
    else:
        assert outcome == "valid", outcome
    fault_record(f"config: '{section}:' section missing", "exit 2: " + outcome if result.exit_code else
                 "valid (the section's defaults apply)")


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        ("train: {optimizer: {learning_rate: .inf}}", "train.optimizer.learning_rate", "must be a finite number"),
        ("train: {optimizer: {learning_rate: 'inf'}}", "train.optimizer.learning_rate", "must be a finite number"),
        ("train: {epochs: 100000000000000000000000}", "train.epochs", "must fit in 64 bits"),
        ("data: &a {x: *a}", "data.x", "refers to itself"),
        ("model: {hidden_units: &l [1, *l]}", "model.hidden_units[1]", "refers to itself"),
        ("name: " + "a" * 300, "name", "at most 128 characters"),
        ("description: " + "x" * 50_000 + "\nseed: abc", "seed", "Input should be a valid integer"),
        ("model: {kwargs: {z: " + "[" * 60 + "]" * 60 + "}}", "model.kwargs.z" + "[0]" * 48, "nested too deeply"),
        ("name: 2020-01-01", "name", "a date (YAML reads 2020-01-01 as one; quote it for text)"),
    ],
    ids=["inf", "quoted inf", "int beyond 64 bits", "self-referencing anchor (dict)", "self-referencing anchor (list)",
         "300-character name", "huge description + bad seed", "60 nested lists", "a date for a string"],
)
def test_hand_picked_bad_values(tmp_path, text, key, fragment, fault_record, request):
    p = tmp_path / "cfg.yaml"
    p.write_text(text + "\n" + ("" if text.startswith("data") else "data: {source: sklearn, name: iris}\n"))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.key == key and fragment in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert len(str(e.value)) < 600
    result = validate_file(p)
    assert result.exit_code == 2 and check_outcome(result, p).startswith(key)
    fault_record(f"config: {request.node.callspec.id}", f"exit 2: {str(e.value)[:200]}")
