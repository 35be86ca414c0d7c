"""One isolated trial: ``python -m kerasopt.tune.worker CONFIG RUN_DIR RESULT [--resume] [--t0 T]``.

Trains ``CONFIG`` into ``RUN_DIR`` with :func:`kerasopt.workflow.fit` and
writes ``RESULT`` (JSON): ``{"ok": true, "metrics": ..., "startup_s": ...}`` or
``{"ok": false, "error": "TrainingDiverged: ..."}``. ``startup_s`` is the time from
``--t0`` (the parent's clock when it started this process) until TensorFlow and
kerasopt were imported and training could begin.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kerasopt.tune.worker", description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("result", type=Path)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--t0", type=float, default=None, help="parent's time.time() when it launched this process")
    args = ap.parse_args(argv)
    t0 = args.t0 if args.t0 is not None else time.time()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    out: dict = {"ok": False}
    try:
        import kerasopt._keras  # noqa: F401 - TensorFlow itself, so startup_s covers the whole import
        from kerasopt.workflow import fit

        out["startup_s"] = round(time.time() - t0, 3)
        res = fit(args.config, run_dir=str(args.run_dir), resume=args.resume, overwrite=not args.resume)
        out.update(ok=True, metrics=res.metrics)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which records the failed trial
        from kerasopt.tune.runner import reason

        traceback.print_exc()
        out["error"] = reason(e)
    from kerasopt.io.atomic import write_json

    write_json(args.result, out, indent=None, default=_jsonable)
    return 0 if out["ok"] else 1


def _jsonable(o):
    try:
        return o.item()  # NumPy scalars
    except AttributeError:
        return str(o)


if __name__ == "__main__":
    sys.exit(main())
