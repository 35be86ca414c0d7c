"""Process faults on real `kerasopt fit` processes: SIGKILL (also mid checkpoint write), SIGTERM, a full disk,
a read-only run directory.

One run is interrupted again and again, each time by a seeded random fault, and `--resume`d after each; it
must end with the weights of an uninterrupted run. ``KERASOPT_KILL_LOOP=N`` sets the number of SIGKILLs in
the default chain (2: one inside a checkpoint write, one just after one); the ``slow`` test
(`make reliability-long`) does 25.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import re
import resource
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

_rk_spec = importlib.util.spec_from_file_location(
    "resume_kill_helpers", Path(__file__).parents[1] / "training" / "test_resume_kill.py")
_rk = importlib.util.module_from_spec(_rk_spec)
_rk_spec.loader.exec_module(_rk)
KERASOPT, _weights, _step, _start, _wait_for_step, _assert_same = (
    _rk.KERASOPT, _rk._weights, _rk._step, _rk._start, _rk._wait_for_step, _rk._assert_same)

EPOCHS, STEPS = 12, 9  # wine: 142 training rows / batch 16 = 9 steps an epoch
CFG = {
    "name": "resume",  # _weights() reads model/resume.keras
    "seed": 7,
    "deterministic": True,
    "report": False,
    "data": {"source": "sklearn", "name": "wine", "batch_size": 16, "normalize": "standard"},
    "model": {"type": "mlp", "hidden_units": [32, 16], "dropout": 0.3},
    # XLA off: compiling would add seconds to every one of the many process starts
    "train": {"epochs": EPOCHS, "verbose": 0, "jit_compile": False,
              "optimizer": {"type": "adam", "learning_rate": 0.003},
              "schedule": {"type": "cosine", "warmup_epochs": 2}},
    # a checkpoint every 2 steps: writes are frequent, so kills often land inside one
    "callbacks": {"checkpoint": {"monitor": "val_accuracy", "every_n_steps": 2}, "tensorboard": {"enabled": False},
                  "ema": {"enabled": True, "decay": 0.99}},
    "export": {"formats": ["keras"]},
}
# ckpt.data is ~24 KB for this model (weights, Adam slots, EMA); every other file stays under 8 KB
FSIZE_LIMIT = 16 * 1024


class _Reference:
    """The uninterrupted run every interrupted one must end up equal to; it trains while the faults run."""

    def __init__(self, root: Path) -> None:
        self.cfg_path, self.run = root / "cfg.yaml", root / "run"
        self.cfg_path.write_text(yaml.safe_dump(CFG))
        self.proc = subprocess.Popen([KERASOPT, "fit", str(self.cfg_path), "--run-dir", str(self.run)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._result = None

    def get(self) -> tuple[list, dict]:
        """(weights, metrics) of the finished reference run."""
        if self._result is None:
            output, _ = self.proc.communicate(timeout=600)
            assert self.proc.returncode == 0, output[-3000:]
            self._result = _weights(self.run), json.loads((self.run / "metrics.json").read_text())
        return self._result


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    ref = _Reference(tmp_path_factory.mktemp("reference"))
    yield ref
    if ref.proc.poll() is None:
        ref.proc.kill()
        ref.proc.wait()


def _in_flight(ckpts: Path) -> list[str]:
    """Temporary or pre-swap folders: present after a kill only if it landed inside a write."""
    try:
        return sorted(p.name for p in ckpts.iterdir() if p.name.startswith((".tmp-", ".old-")))
    except FileNotFoundError:
        return []


def _checkpoint_loads(run: Path) -> dict:
    """The checkpoint --resume will pick: its meta, after reading every tensor of it."""
    from kerasopt.callbacks.checkpoint import find_checkpoint, read_meta

    from kerasopt._keras import tf

    ckpt = find_checkpoint(run / "checkpoints")
    assert ckpt is not None, f"no loadable checkpoint in {run / 'checkpoints'}: {os.listdir(run / 'checkpoints')}"
    reader = tf.train.load_checkpoint(str(ckpt / "ckpt"))
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)
    return read_meta(ckpt)


def _resume_line(run: Path, meta: dict) -> str:
    epoch, batch = meta["epoch"], meta.get("batch", 0)
    if batch >= STEPS:
        epoch, batch = epoch + 1, 0
    return f"resuming {run} at epoch {epoch + 1}" + (f", batch {batch + 1}" if batch else "")


def _error_lines(output: str) -> list[str]:
    """kerasopt's own error lines ('error: ...', '[rank N] error: ...'), not TensorFlow's log noise."""
    return [line for line in output.splitlines() if re.match(r"^(\[rank \d+\] )?error: ", line)]


def _kill_in_write(proc: subprocess.Popen, ckpts: Path, timeout: float = 60) -> None:
    """SIGKILL the moment a checkpoint's temporary folder appears (a write has begun)."""
    t0 = time.time()
    while not any(p.name.startswith(".tmp-") for p in ckpts.iterdir()):
        assert proc.poll() is None, "the run ended before a checkpoint write could be interrupted"
        assert time.time() - t0 < timeout, "no checkpoint write started in time"
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)


def _kill_after_write(proc: subprocess.Popen, run: Path, timeout: float = 60) -> None:
    """SIGKILL just after a checkpoint write finished (a new step in meta.json, no temporary folder)."""
    t0, seen = time.time(), _step(run)
    while _step(run) == seen or any(p.name.startswith(".tmp-") for p in (run / "checkpoints").iterdir()):
        assert proc.poll() is None, "the run ended before it could be killed between writes"
        assert time.time() - t0 < timeout, "no checkpoint write finished in time"
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)


def _plan(kills: int) -> list[str]:
    """Kills cycle through 'inside a write', 'just after a write' and 'at a random moment'; SIGTERM and a
    full disk join in after the second and the third kill."""
    k = [("kill-write", "kill-after-write", "kill-random")[i % 3] for i in range(kills)]
    return k[:2] + ["sigterm"] + k[2:3] + ["disk-full"] + k[3:]


def _run_chain(cfg_path: Path, run: Path, plan: list[str], seed: int) -> list[dict]:
    """Start, interrupt with each fault of ``plan`` in turn, --resume; finish. Returns what each fault left."""
    rng = random.Random(seed)
    ckpts = run / "checkpoints"
    last_usable = EPOCHS * STEPS - 6
    events: list[dict] = []
    pending_resume: tuple[subprocess.Popen, str] | None = None
    resumed_at: tuple[int, int] | None = None
    plan, planned, i = list(plan), len(plan), 0
    while i < len(plan):
        fault = plan[i]
        before = _step(run)
        proc = _start(cfg_path, run, *(["--resume"] if i else []))
        span = max(1, (last_usable - max(before, 0)) // (max(planned, i + 1) - i) - 1)
        target = max(before, 0) + rng.randint(1, span)
        if i == 0:  # early in an epoch, so the resumed run starts with a partial epoch
            while target % STEPS not in (1, 2, 3):
                target += 1
        elif i % 2 or i >= planned:  # soon after the resume: often still inside the resumed partial epoch
            target = before + 1
        _wait_for_step(proc, run, target)
        ev: dict = {"fault": fault, "target_step": target}
        if fault == "kill-write":
            _kill_in_write(proc, ckpts)
        elif fault == "kill-after-write":
            _kill_after_write(proc, run)
        elif fault == "kill-random":
            time.sleep(rng.uniform(0.0, 0.15))
            proc.send_signal(signal.SIGKILL)
        elif fault == "sigterm":
            proc.send_signal(signal.SIGTERM)
        elif fault == "disk-full":
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))
        output, _ = proc.communicate(timeout=120)
        ev["rc"], ev["output"] = proc.returncode, output
        ev["in_flight"] = _in_flight(ckpts)
        if pending_resume is not None:  # the previous fault's checkpoint is the one this process resumed from
            assert pending_resume[1] in output, f"expected '{pending_resume[1]}' in:\n{output[-2000:]}"
        if fault.startswith("kill"):
            assert ev["rc"] == -signal.SIGKILL, output[-2000:]
        elif fault == "sigterm":
            assert ev["rc"] == 0, output[-2000:]
            assert "stopped by SIGTERM" in output and "--resume" in output
            assert json.loads((run / "metrics.json").read_text())["interrupted_by"] == "SIGTERM"
        else:
            assert ev["rc"] == 1, output[-2000:]
            errors = _error_lines(output)
            assert len(errors) == 1 and "Traceback" not in output, output[-3000:]
            assert "could not write checkpoint" in errors[0] and "File too large" in errors[0], errors[0]
            assert "is intact" in errors[0] and "--resume" in errors[0], errors[0]
            assert not [n for n in ev["in_flight"] if n.startswith(".tmp-")], ev["in_flight"]  # space given back
            ev["message"] = errors[0]
        meta = _checkpoint_loads(run)  # every time, the last checkpoint loads
        assert meta["step"] >= target, (meta["step"], target)
        ev["checkpoint_step"] = meta["step"]
        # this fault hit the partial epoch a resume started with (the batch count must carry on there)
        ev["in_resumed_partial_epoch"] = bool(resumed_at and 0 < resumed_at[1] < STEPS
                                              and meta["epoch"] == resumed_at[0] and meta["step"] > before)
        resumed_at = (meta["epoch"], meta.get("batch", 0))
        pending_resume = (proc, _resume_line(run, meta))
        events.append(ev)
        i += 1
        # A fast process can outrun the poller past an epoch's end, so that no planned fault lands in the partial
        # epoch a resume began with. Then SIGTERM soon after a resume, a few more times, until one does.
        if (i == len(plan) and not any(e["in_resumed_partial_epoch"] for e in events)
                and i < planned + 4 and meta["step"] < last_usable - 2 * STEPS):
            plan.append("sigterm")
    final = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), "--resume"], capture_output=True,
                           text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    assert pending_resume[1] in final.stdout, final.stdout[-2000:]
    assert not _in_flight(ckpts), _in_flight(ckpts)  # leftovers of killed writes were cleaned up
    return events


def _kill_name(ev: dict) -> str:
    """Named by what the kill left behind, not by what was aimed at."""
    where = "during a checkpoint write" if any(n.startswith((".tmp-", ".old-")) for n in ev["in_flight"]) \
        else "between checkpoint writes"
    return f"SIGKILL {where}{_partial(ev)}, then --resume"


def _partial(ev: dict) -> str:
    return " in the partial epoch a resume began with" if ev["in_resumed_partial_epoch"] else ""


def _check_and_record(reference, run: Path, events: list[dict], fault_record) -> None:
    ref_weights, ref_metrics = reference.get()
    worst = _assert_same(ref_weights, _weights(run))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["last_epoch"] == EPOCHS
    assert metrics["final"]["val_accuracy"] == pytest.approx(ref_metrics["final"]["val_accuracy"], abs=1e-6)
    rows = (run / "history.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(EPOCHS))
    same = f"final weights = uninterrupted run (max |dw| {worst:.1g})"
    for ev in events:
        detail = {"target_step": ev["target_step"], "checkpoint_step": ev["checkpoint_step"],
                  "in_flight": ev["in_flight"], "in_resumed_partial_epoch": ev["in_resumed_partial_epoch"],
                  "max_abs_dw": worst}
        if ev["fault"].startswith("kill"):
            fault_record(_kill_name(ev), f"last checkpoint loaded on --resume; {same}", **detail)
        elif ev["fault"] == "sigterm":
            fault_record(f"SIGTERM mid-epoch{_partial(ev)}, then --resume",
                         f"checkpoint saved, exit 0 with a --resume message; {same}", **detail)
        else:
            fault_record("disk full while writing a checkpoint (RLIMIT_FSIZE: EFBIG), then --resume",
                         f"exit 1, one-line message; previous checkpoint intact; {same}",
                         message=ev["message"], **detail)
    print(f"{len(events)} faults: " + ", ".join(f"{_kill_name(e)[:30] if e['fault'].startswith('kill') else e['fault']}"
                                                f"@{e['checkpoint_step']}" for e in events) + f"; max |dw| = {worst:g}")


def test_fault_chain_ends_with_the_uninterrupted_weights(reference, tmp_path, fault_record):
    kills = int(os.environ.get("KERASOPT_KILL_LOOP", "2"))
    run = tmp_path / "chain"
    events = _run_chain(reference.cfg_path, run, _plan(kills), seed=1234 + kills)
    assert any(e["in_resumed_partial_epoch"] for e in events), [(e["fault"], e["checkpoint_step"]) for e in events]
    _check_and_record(reference, run, events, fault_record)


@pytest.mark.slow
def test_kill_loop_long(reference, tmp_path, fault_record):
    kills = int(os.environ.get("KERASOPT_KILL_LOOP_LONG", "25"))
    run = tmp_path / "long"
    events = _run_chain(reference.cfg_path, run, _plan(kills), seed=99)
    assert sum(e["fault"].startswith("kill") for e in events) == kills
    _check_and_record(reference, run, events, fault_record)


# -- a real full disk (ENOSPC) on a small tmpfs --------------------------------------------------------------

@contextlib.contextmanager
def _mounted(args: list[str], where: Path, why: str):
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"{why}: `mount {' '.join(args)}` is not allowed here ({type(e).__name__})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def _keep_full(disk: Path, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Fill ``disk`` to ENOSPC and keep it full (a checkpoint swap frees the old copy) until ``proc`` ends."""
    n, t0, i = 0, time.time(), 0
    while proc.poll() is None:
        assert time.time() - t0 < timeout, "the run did not stop on a full disk"
        i += 1
        with open(disk / f"filler-{i}", "wb", buffering=0) as f:
            for chunk in (1 << 20, 1 << 12, 1):
                try:
                    while True:
                        n += f.write(b"\0" * chunk)
                except OSError as e:
                    assert e.errno == 28, e  # ENOSPC
        time.sleep(0.01)
    return n


def test_full_tmpfs_keeps_the_previous_checkpoint(tmp_path, fault_record):
    disk = tmp_path / "disk"
    with _mounted(["-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], disk, "a size-limited tmpfs"):
        cfg_path = tmp_path / "cfg.yaml"
        cfg_path.write_text(yaml.safe_dump(CFG))
        run = disk / "run"
        proc = _start(cfg_path, run)
        _wait_for_step(proc, run, 3 * STEPS)
        before = _step(run)
        filled = _keep_full(disk, proc)
        output, _ = proc.communicate(timeout=120)
        errors = _error_lines(output)
        assert proc.returncode == 1, output[-3000:]
        assert len(errors) == 1 and "Traceback" not in output, output[-3000:]
        assert "could not write checkpoint" in errors[0] and "No space left on device" in errors[0], errors[0]
        meta = _checkpoint_loads(run)  # the previous checkpoint, whole
        assert meta["step"] >= before
        assert not [n for n in _in_flight(run / "checkpoints") if n.startswith(".tmp-")]
    print(f"ENOSPC after {filled} filler bytes; kept checkpoint at step {meta['step']}: {errors[0]}")
    fault_record("disk full while writing a checkpoint (4 MB tmpfs: ENOSPC)",
                 "exit 1, one-line message naming the kept checkpoint; it loads", checkpoint_step=meta["step"],
                 message=errors[0])


# -- read-only run directory: reported before any compute ----------------------------------------------------

@contextlib.contextmanager
def _read_only(path: Path):
    """``path`` made read-only: chmod a-w for a normal user; root ignores modes, so a read-only bind mount."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p, m in modes.items():
            p.chmod(m & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield "chmod a-w"
        finally:
            for p, m in modes.items():
                p.chmod(m)
        return
    with _mounted(["--bind", str(path), str(path)], path, "root ignores chmod and a read-only bind mount"):
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True, capture_output=True, timeout=30)
        yield "read-only bind mount"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_read_only_parent_is_reported_before_training(tmp_path, fault_record):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(CFG))
    parent = tmp_path / "ro"
    parent.mkdir()
    with _read_only(parent) as how:
        out = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(parent / "runs" / "new")],
                             capture_output=True, text=True, timeout=120)
        assert os.listdir(parent) == []
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"{parent} is not writable" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert "device:" not in out.stdout  # stopped before the device/precision/data work began
    fault_record("read-only parent of a new run directory",
                 "exit 2 before any compute, one line naming the folder; nothing created", how=how)


def test_read_only_run_dir_on_resume_is_reported_and_unchanged(reference, tmp_path, fault_record):
    reference.get()
    cfg_path, run = reference.cfg_path, tmp_path / "run"
    shutil.copytree(reference.run, run)
    before = _snapshot(run)
    with _read_only(run) as how:
        out = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), "--resume",
                              "--set", f"train.epochs={EPOCHS + 2}"], capture_output=True, text=True, timeout=300)
        assert _snapshot(run) == before
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "is not writable" in out.stderr and str(run) in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert "device:" not in out.stdout and "resuming" not in out.stdout
    fault_record("read-only run directory with --resume",
                 "exit 2 before any compute, one line naming the folder; every file unchanged", how=how)
