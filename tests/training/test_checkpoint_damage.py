"""A damaged checkpoint (truncated copy, flipped bytes on shared storage): --resume falls back or names it."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from kerasopt.callbacks.checkpoint import file_digests, newest_intact, verify_checkpoint
from training_runs import tabular_config

from kerasopt.cli import main

DATA = "ckpt.data-00000-of-00001"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A wine run of 3 epochs with last, best and the top-2 epoch folders."""
    root = tmp_path_factory.mktemp("damage")
    cfg = tabular_config(root, name="dmg", train={"epochs": 3},
                         callbacks={"checkpoint": {"save_top_k": 2, "monitor": "val_accuracy"}})
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(main, ["fit", str(root / "cfg.yaml")])
    assert r.exit_code == 0, r.output
    return root / "runs" / "dmg"


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "runs" / "dmg"
    shutil.copytree(run, dst)
    cfg = yaml.safe_load((dst / "config.yaml").read_text())
    cfg["runs_root"], cfg["train"]["epochs"] = str(tmp_path / "runs"), 4
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return dst


def _truncate(path: Path) -> tuple[int, int]:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    return size // 2, size


def test_meta_records_each_file_and_verify_finds_truncation_and_flipped_bytes(trained, tmp_path):
    last = trained / "checkpoints" / "last"
    meta = json.loads((last / "meta.json").read_text())
    assert meta["files"] == file_digests(last) and set(meta["files"]) == {DATA, "ckpt.index"}
    assert verify_checkpoint(last) is None
    copy = tmp_path / "last"
    shutil.copytree(last, copy)
    raw = bytearray((copy / DATA).read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, one byte changed
    (copy / DATA).write_bytes(bytes(raw))
    assert verify_checkpoint(copy).startswith(f"{DATA} is corrupt (CRC32 ")
    half, full = _truncate(copy / DATA)
    assert verify_checkpoint(copy) == f"{DATA} is truncated ({half:,} of {full:,} bytes)"
    (copy / "ckpt.index").unlink()
    assert verify_checkpoint(copy) == "ckpt.index is missing"
    # a checkpoint written before sizes were recorded is taken as it is
    shutil.rmtree(copy)
    shutil.copytree(last, copy)
    old = json.loads((copy / "meta.json").read_text())
    del old["files"]
    (copy / "meta.json").write_text(json.dumps(old))
    assert verify_checkpoint(copy) is None


def test_resume_with_a_truncated_last_falls_back_to_the_newest_intact_and_says_so(trained, tmp_path):
    run = _copy(trained, tmp_path)
    half, full = _truncate(run / "checkpoints" / "last" / DATA)
    chosen, damaged = newest_intact(run / "checkpoints")
    want = max((json.loads((p / "meta.json").read_text())["step"], p.name)
               for p in (run / "checkpoints").glob("epoch-*"))
    assert damaged == {"last": f"{DATA} is truncated ({half:,} of {full:,} bytes)"}
    assert chosen.name in ("best", want[1])
    assert json.loads((chosen / "meta.json").read_text())["step"] == want[0]
    r = CliRunner().invoke(main, ["fit", str(tmp_path / "cfg.yaml"), "--resume"])
    assert r.exit_code == 0, r.output
    assert (f"checkpoint damaged ({run / 'checkpoints' / 'last'}: {DATA} is truncated ({half:,} of {full:,} "
            f"bytes)); resuming from '{chosen.name}' instead") in r.output
    meta = json.loads((run / "metrics.json").read_text())
    assert meta["last_epoch"] == 4
    assert verify_checkpoint(run / "checkpoints" / "last") is None  # rewritten by the resumed run


def test_resume_with_every_checkpoint_damaged_names_the_files_and_exits_2(trained, tmp_path):
    run = _copy(trained, tmp_path)
    for folder in (run / "checkpoints").iterdir():
        _truncate(folder / DATA)
    before = {p: p.stat().st_size for p in run.rglob("*") if p.is_file()}
    r = CliRunner().invoke(main, ["fit", str(tmp_path / "cfg.yaml"), "--resume"])
    assert r.exit_code == 2, r.output
    err = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith("error: --resume: no intact checkpoint to resume from (")
    assert f"{run / 'checkpoints' / 'last'}: {DATA} is truncated (" in err[0]
    assert f"{run / 'checkpoints' / 'best'}: {DATA} is truncated (" in err[0]
    assert {p: p.stat().st_size for p in run.rglob("*") if p.is_file()} == before  # nothing written
