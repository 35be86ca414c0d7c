"""The run directory contract (ARCHITECTURE.md §4).

``runs/<name>/``: ``config.yaml``, ``metrics.json``, ``history.csv``,
``checkpoints/``, ``tensorboard/``, ``model/``. A new run never overwrites an
existing directory unless ``resume`` or ``overwrite`` is asked for, and the
checks happen before anything is written.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kerasopt.config.loader import dump_config
from kerasopt.config.schema import ExperimentConfig
from kerasopt.errors import ConfigError
from kerasopt.io.atomic import write_text

MARKER = "config.yaml"


@dataclass(frozen=True)
class RunDir:
    """Paths of one run. Example: ``RunDir(Path("runs/digits_cnn")).checkpoints``."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    def is_run(self) -> bool:
        return self.config.is_file()


def resolve_run_dir(cfg: ExperimentConfig, run_dir: Optional[str | os.PathLike]) -> RunDir:
    return RunDir(Path(run_dir) if run_dir else Path(cfg.runs_root) / cfg.name)


def check_run_dir(rd: RunDir, *, resume: bool, overwrite: bool) -> None:
    """Refuse, before any work, to clobber a run or to resume a non-run. Writes nothing."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other; pick one")
    exists = rd.path.exists() and any(rd.path.iterdir()) if rd.path.is_dir() else rd.path.exists()
    if rd.path.exists() and not rd.path.is_dir():
        raise ConfigError(f"run directory {rd.path} exists and is not a folder")
    if resume:
        from kerasopt.callbacks.checkpoint import find_checkpoint  # TF import is fine here: resume trains

        if not rd.is_run():
            raise ConfigError(f"--resume: {rd.path} is not a kerasopt run directory (no {MARKER})")
        if find_checkpoint(rd.checkpoints) is None:
            raise ConfigError(f"--resume: no checkpoint in {rd.checkpoints} to resume from")
    elif exists and not overwrite:
        raise ConfigError(
            f"run directory {rd.path} already exists; use --resume to continue it, --overwrite to replace it, "
            "or --run-dir/--set name=... for a new one"
        )
    elif exists and overwrite:
        check_overwrite(rd)
    check_writable(rd, resume=resume)


def check_overwrite(rd: RunDir) -> None:
    """``--overwrite`` deletes the folder: only ever a kerasopt run directory, never through a link.

    ``runs_root`` and ``--run-dir`` may point anywhere, so without this a typo
    (``--run-dir ~/Documents --overwrite``) would delete a folder kerasopt never made.
    """
    if rd.path.is_symlink():
        raise ConfigError(f"--overwrite: {rd.path} is a symbolic link; kerasopt does not delete through links. "
                          "Remove the link yourself or pick another run directory")
    if not (rd.is_run() or (rd.path / "tune" / "search.yaml").is_file()):  # a run, or a run's search
        raise ConfigError(f"--overwrite: {rd.path} is not a kerasopt run directory (no {MARKER}) and is not "
                          "empty; kerasopt only replaces its own runs. Delete it yourself or pick another one")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(rd: RunDir, *, resume: bool) -> None:
    """Every folder and file the run will write must be writable; else ConfigError before any work.

    ``os.access`` answers for the real user, root included, and says no on a
    read-only file system (EROFS), so a chmod'ed folder and a read-only mount are
    both caught here, not after the data is loaded and the model is built.
    """
    targets = [_nearest_existing(rd.path.parent)]
    if rd.path.is_dir():
        targets.append(rd.path)
        if resume:  # the run appends history.csv and rewrites checkpoints, config.yaml and model/
            targets += [p for p in (rd.checkpoints, rd.tensorboard, rd.model_dir, rd.history, rd.metrics)
                        if p.exists()]
            targets += [p for p in rd.checkpoints.iterdir() if p.is_dir()] if rd.checkpoints.is_dir() else []
    for p in targets:
        if not os.access(p, os.W_OK):
            what = "read-only file system or no write permission"
            raise ConfigError(f"cannot write the run directory: {p} is not writable ({what}); nothing was changed")


def create_run_dir(rd: RunDir, cfg: ExperimentConfig, *, resume: bool, overwrite: bool) -> None:
    """Create (or on ``overwrite`` replace) the folder and write the resolved config."""
    if overwrite and rd.path.exists():
        shutil.rmtree(rd.path)
    for p in (rd.path, rd.checkpoints, rd.tensorboard, rd.model_dir):
        p.mkdir(parents=True, exist_ok=True)
    write_text(rd.config, dump_config(cfg))
