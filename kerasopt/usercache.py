"""The per-user cache folder: decode manifests, disk caches of decoded data, calibration results.

Everything here can be deleted at any time; kerasopt rebuilds what it needs.
The folder is ``$KERASOPT_CACHE_DIR``, else ``$XDG_CACHE_HOME/kerasopt``, else
``~/.cache/kerasopt``. Imports no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

from kerasopt.errors import ConfigError
from kerasopt.io import atomic

ENV_VAR = "KERASOPT_CACHE_DIR"


def cache_root() -> Path:
    """The cache folder (not created): with ``KERASOPT_CACHE_DIR=/scratch/ko`` it is ``/scratch/ko``."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "kerasopt"


def cache_dir(kind: str, *, create: bool = True) -> Path:
    """``cache_root()/kind``, created; an unwritable folder is a ``ConfigError`` naming it and the variable."""
    path = cache_root() / kind
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
            probe.close()
        except OSError as e:
            raise ConfigError(
                f"the kerasopt cache folder {path} is not writable ({e.strerror or e}); set {ENV_VAR} to a "
                f"writable folder", key=ENV_VAR,
            ) from None
    return path


def digest(payload: Any, length: int = 20) -> str:
    """A stable hex key for a JSON-able value (sorted keys).

    Example:
        >>> digest({"b": 1, "a": [2, 3]}) == digest({"a": [2, 3], "b": 1})
        True
    """
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def read_json(path: Path) -> Optional[Any]:
    """The JSON in ``path``, or ``None`` when it is missing or unreadable (a cache miss, never an error)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Cache JSON (indented by 1, sorted keys, anything else as ``str``), written atomically."""
    atomic.write_json(path, data, indent=1, sort_keys=True, default=str, newline=False)
