"""Security: YAML is data only, user code runs only when a config asks for it, output stays in the run directory.

Decisions (see docs/RELIABILITY.md):
* configs are read with ``yaml.safe_load`` only; a ``!!python/...`` tag is exit 2;
* ``model.builder: 'module:function'`` is the only reference to user code; it is
  imported by ``fit`` (when the model is built), never by ``validate`` or
  ``--print-config``; a missing module is exit 2 naming it;
* ``name`` is a plain folder name (letters, digits, ``.``, ``_``, ``-``; no ``/``,
  no ``..``, no leading dot, at most 128 characters); ``runs_root`` and
  ``--run-dir`` say where runs go (absolute or relative, ``..`` allowed: choosing
  the place is their purpose) and everything a run writes has a fixed name
  inside ``runs_root/name``; ``--overwrite`` deletes only a kerasopt run
  directory (one with ``config.yaml``), never another folder or a symlink;
* files and folders are created with the user's umask (no chmod, no mkstemp).
"""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kerasopt.cli import main

ROOT = Path(__file__).resolve().parents[2]
KERASOPT = str(Path(sys.executable).with_name("kerasopt"))
TINY = {
    "data": {"source": "sklearn", "name": "iris", "batch_size": 32},
    "model": {"type": "mlp", "hidden_units": [4]},
    "train": {"epochs": 1, "verbose": 0, "jit_compile": False},
    "callbacks": {"tensorboard": {"enabled": False}},
    "export": {"formats": ["keras"]},
    "report": False,
}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def write_cfg(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


# ----------------------------------------------------------------------------- YAML


def test_package_reads_yaml_only_with_safe_load(fault_record):
    """Static check: every PyYAML call in kerasopt/ and callbacks/ is safe_load / safe_dump."""
    calls = []
    for path in [*ROOT.joinpath("kerasopt").rglob("*.py"), *ROOT.joinpath("callbacks").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id == "yaml":
                    calls.append((path.relative_to(ROOT), node.func.attr))
                for kw in node.keywords:
                    assert kw.arg != "Loader", f"{path}: a Loader= argument"
    unsafe = [c for c in calls if c[1] not in ("safe_load", "safe_dump", "YAMLError")]
    assert calls and not unsafe, unsafe
    fault_record("static scan for yaml.load / unsafe_load / Loader= in the package",
                 f"{len(calls)} PyYAML calls, all safe_load/safe_dump")


TAGS = {
    "!!python/object/apply": "name: !!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new": "name: !!python/object/new:os.system ['touch {marker}']",
    "!!python/name": "name: !!python/name:os.system",
    "!!python/module": "name: !!python/module:os",
}


@pytest.mark.parametrize("tag", list(TAGS))
def test_python_tags_are_refused(tmp_path, tag, fault_record):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.yaml"
    p.write_text(TAGS[tag].format(marker=marker) + "\n")
    r = cli("validate", p)
    line = error_line(r.output)
    assert r.exit_code == 2 and str(p) in line and "YAML syntax error" in line and "safe_load" in line, line
    assert not marker.exists()
    fault_record(f"config with a {tag} tag (`kerasopt validate`)", f"exit 2, nothing executed: {line}")


def test_python_tag_in_a_real_fit_process_and_in_set(tmp_path, fault_record):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.yaml"
    p.write_text(TAGS["!!python/object/apply"].format(marker=marker) + "\n")
    out = subprocess.run([KERASOPT, "fit", str(p)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "could not determine a constructor" in lines[0], out.stderr
    assert not marker.exists() and not (tmp_path / "runs").exists()
    fault_record("`kerasopt fit` on a config with !!python/object/apply (real process)",
                 f"exit 2, one line, nothing executed or written: {lines[0]}")
    r = cli("validate", write_cfg(tmp_path / "ok.yaml", TINY), "--set",
            f"name=!!python/object/apply:os.system ['touch {marker}']")
    assert r.exit_code == 2 and "--set value is not valid YAML" in error_line(r.output) and not marker.exists()
    fault_record("--set name=!!python/object/apply:...", f"exit 2: {error_line(r.output)}")


# ----------------------------------------------------------------------------- user code


BUILDER = '''
from pathlib import Path
Path({marker!r}).write_text("imported")

from kerasopt._keras import keras


def build(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(inputs))
'''


def test_custom_builder_is_imported_only_by_fit(tmp_path, monkeypatch, fault_record):
    marker = tmp_path / "imported.txt"
    module = "kerasopt_sec_builder"
    (tmp_path / f"{module}.py").write_text(BUILDER.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = {**TINY, "name": "custom", "runs_root": str(tmp_path / "runs"),
           "model": {"type": "custom", "builder": f"{module}:build"}}
    p = write_cfg(tmp_path / "custom.yaml", cfg)
    assert cli("validate", p).exit_code == 0 and not marker.exists()
    assert cli("fit", p, "--print-config").exit_code == 0 and not marker.exists()
    assert module not in sys.modules
    r = cli("fit", p)
    assert r.exit_code == 0, r.output
    assert marker.read_text() == "imported" and (tmp_path / "runs" / "custom" / "model" / "custom.keras").exists()
    fault_record("config names model.builder: 'module:function'",
                 "module imported by `fit` when it builds the model; `validate` and --print-config import nothing")


@pytest.mark.parametrize(
    "builder, fragment",
    [
        ("kerasopt_no_such_module:build", "cannot import module 'kerasopt_no_such_module' (no module named "
                                          "'kerasopt_no_such_module'). Is its folder on PYTHONPATH"),
        ("kerasopt_sec_broken:build", "importing module 'kerasopt_sec_broken' failed: No module named "
                                      "'a_dependency_that_is_missing'"),
        ("kerasopt_sec_ok:nope", "module 'kerasopt_sec_ok' has no function 'nope'. It defines: build"),
        ("no_colon_here", "needs builder: 'module:function'"),
    ],
    ids=["missing module", "module with a missing dependency", "missing function", "not module:function"],
)
def test_bad_builder_references(tmp_path, monkeypatch, builder, fragment, fault_record, request):
    (tmp_path / "kerasopt_sec_broken.py").write_text("import a_dependency_that_is_missing\n")
    (tmp_path / "kerasopt_sec_ok.py").write_text("def build(input_shape, num_classes):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = {**TINY, "name": "bad", "runs_root": str(tmp_path / "runs"), "model": {"type": "custom", "builder": builder}}
    r = cli("fit", write_cfg(tmp_path / "cfg.yaml", cfg))
    line = error_line(r.output)
    assert r.exit_code == 2 and "model.builder: " in line and fragment in line, line
    assert not (tmp_path / "runs" / "bad").exists()
    fault_record(f"model.builder: {request.node.callspec.id}", f"exit 2, no run directory: {line}")


# ----------------------------------------------------------------------------- output paths


@pytest.mark.parametrize("name", ["..", "../escape", "a/../../b", "/etc/cron.d", "sub/dir", ".hidden", "-rf", "",
                                  "a" * 129, "name with space", "x\ny"])
def test_name_must_be_a_plain_folder_name(tmp_path, name, fault_record):
    p = write_cfg(tmp_path / "cfg.yaml", {**TINY, "name": name, "runs_root": str(tmp_path / "runs")})
    r = cli("fit", p)
    line = error_line(r.output)
    assert r.exit_code == 2 and line.startswith("error: name: must be"), line
    assert sorted(os.listdir(tmp_path)) == ["cfg.yaml"]  # nothing written anywhere
    fault_record(f"name: {name[:20]!r}{'...' if len(name) > 20 else ''}", f"exit 2: {line[:160]}")


def test_set_name_escape_is_refused_too(tmp_path):
    r = cli("validate", write_cfg(tmp_path / "cfg.yaml", TINY), "--set", "name=../../outside")
    assert r.exit_code == 2 and error_line(r.output).startswith("error: name: must be letters")


def test_overwrite_deletes_only_a_kerasopt_run(tmp_path, fault_record):
    precious = tmp_path / "home" / "Documents"
    precious.mkdir(parents=True)
    (precious / "thesis.tex").write_text("years of work")
    cfg = write_cfg(tmp_path / "cfg.yaml", {**TINY, "name": "Documents", "runs_root": str(tmp_path / "home")})
    r = cli("fit", cfg, "--overwrite")
    line = error_line(r.output)
    assert r.exit_code == 2 and "not a kerasopt run directory (no config.yaml)" in line, line
    assert (precious / "thesis.tex").read_text() == "years of work" and tree(precious) == {"thesis.tex"}
    fault_record("--overwrite on a folder that is not a kerasopt run (runs_root/name = ~/Documents)",
                 f"exit 2, folder untouched: {line}")

    run = tmp_path / "runs" / "real"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("name: real\n")
    link = tmp_path / "runs" / "link"
    link.symlink_to(run)
    r = cli("fit", cfg, "--run-dir", link, "--overwrite")
    line = error_line(r.output)
    assert r.exit_code == 2 and "is a symbolic link" in line and (run / "config.yaml").exists(), line
    fault_record("--overwrite on a run directory that is a symlink", f"exit 2, target untouched: {line}")


def test_real_fit_writes_only_inside_its_run_dir_with_the_users_umask(tmp_path, fault_record):
    """A real process under umask 027, runs_root with '..': every new path is runs/<name>/..., mode 0640/0750."""
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_cfg(work / "cfg.yaml", {**TINY, "name": "sec", "runs_root": "../runs",
                                        "callbacks": {"tensorboard": {"enabled": True}},
                                        "export": {"formats": ["keras", "saved_model"]}})
    before = tree(tmp_path)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    out = subprocess.run([KERASOPT, "fit", str(cfg)], cwd=work, env=env, capture_output=True, text=True,
                         timeout=300, preexec_fn=lambda: os.umask(0o027))
    assert out.returncode == 0, out.stderr[-2000:]
    run = tmp_path / "runs" / "sec"
    new = tree(tmp_path) - before
    outside = [p for p in new if not (p == "runs" or p.startswith("runs/sec"))]
    assert not outside, outside
    assert {"config.yaml", "metrics.json", "history.csv", "model/sec.keras", "model/saved_model/saved_model.pb"
            } <= tree(run) and any(p.startswith("tensorboard/") for p in tree(run))
    modes = {}
    for p in [run, *run.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        modes.setdefault(oct(mode), []).append(str(p.relative_to(run)))
        if p.is_dir():
            assert mode == 0o750, (p, oct(mode))
        else:
            assert mode == 0o640, (p, oct(mode))
    fault_record("real `kerasopt fit` under umask 027 with runs_root: ../runs",
                 f"{len(new)} new paths, all under runs/sec/; folders 0750, files 0640 "
                 f"({sum(map(len, modes.values()))} checked)")
