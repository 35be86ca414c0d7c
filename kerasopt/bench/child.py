"""One measured variant in its own process: ``python -m kerasopt.bench.child SPEC.json RESULT.json``.

Writes ``{"ok": true, ...measurements}`` or ``{"ok": false, "error": ..., "bad_input": bool}``
to RESULT.json. Exit code 0, 2 (a ConfigError: bad value for this machine) or 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    t0 = time.perf_counter()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m kerasopt.bench.child SPEC.json RESULT.json", file=sys.stderr)
        return 2
    spec_path, result_path = Path(args[0]), Path(args[1])
    spec = json.loads(spec_path.read_text())
    from kerasopt.errors import ConfigError

    try:
        from kerasopt.bench.runner import run

        import_s = time.perf_counter() - t0
        result = {"ok": True, **run(spec), "import_s": import_s}
        code = 0
    except ConfigError as e:
        result, code = {"ok": False, "error": str(e), "bad_input": True}, 2
    except Exception as e:  # noqa: BLE001 - reported to the parent, which goes on with the next variant
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        result, code = {"ok": False, "error": f"{type(e).__name__}: {first}", "bad_input": False}, 1
        if os.environ.get("KERASOPT_DEBUG"):
            traceback.print_exc()
    from kerasopt.io.atomic import write_json

    write_json(result_path, result, default=float, newline=False)
    return code


if __name__ == "__main__":
    sys.exit(main())
