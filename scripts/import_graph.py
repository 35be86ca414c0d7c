"""kerasopt's import graph, read with callbacks/ in its installed place, ``kerasopt.callbacks``.

grimp and import-linter read a package from one folder, but ``callbacks/`` is installed as
``kerasopt.callbacks`` (``package_dir`` in setup.cfg) and is not importable as itself. So this copies
the ``.py`` files of ``kerasopt/`` and ``callbacks/`` into one temporary ``kerasopt/`` tree and reads
that one, in a child process whose first path entry is the tree (never the installed package).

    python scripts/import_graph.py lint-imports   # the contracts in .importlinter (``make lint``)
    python scripts/import_graph.py edges          # JSON [[importer, imported, line, text], ...]

``edges`` counts function-local imports too; ``tests/test_import_graph.py`` reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def merged_tree(dest: Path) -> Path:
    """Copy kerasopt/ and callbacks/ (as kerasopt/callbacks/) into ``dest``; returns ``dest``."""
    for src, rel in ((ROOT / "kerasopt", Path("kerasopt")), (ROOT / "callbacks", Path("kerasopt/callbacks"))):
        for f in src.rglob("*.py"):
            target = dest / rel / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
    return dest


def _edges() -> list[list]:
    import grimp

    graph = grimp.build_graph("kerasopt", cache_dir=None)
    out = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            for d in graph.get_import_details(importer=importer, imported=imported):
                out.append([importer, imported, d["line_number"], d["line_contents"]])
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["_edges"]:  # inside the child, the tree first on sys.path
        json.dump(_edges(), sys.stdout)
        return 0
    if argv[:1] not in (["lint-imports"], ["edges"]):
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kerasopt-imports-") as tmp:
        tree = merged_tree(Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(tree)}
        if argv[0] == "edges":
            cmd = [sys.executable, str(Path(__file__).resolve()), "_edges"]
        else:
            lint = Path(sys.executable).with_name("lint-imports")
            cmd = [str(lint), "--config", str(ROOT / ".importlinter"), "--no-cache", *argv[1:]]
        return subprocess.run(cmd, cwd=tree, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
