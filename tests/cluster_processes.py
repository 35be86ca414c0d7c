"""Helpers for the tests that start real cluster processes (multi-worker, parameter servers)."""

import json
import time
from pathlib import Path


def wait_for_saved_epoch(meta: Path, procs, at_least: int, timeout: float = 180) -> dict:
    """Poll the chief's ``checkpoints/last/meta.json`` until it records epoch ``at_least`` or later; fails
    when a process ends first or ``timeout`` passes (a signal sent then lands mid-run)."""
    t0 = time.time()
    while True:
        try:
            saved = json.loads(meta.read_text())
            if saved["epoch"] >= at_least:
                return saved
        except (OSError, ValueError, KeyError):
            pass
        assert all(p.poll() is None for p in procs), "a process ended before the checkpoint was saved"
        assert time.time() - t0 < timeout, f"no checkpoint of epoch {at_least} within {timeout:.0f} s"
        time.sleep(0.05)
