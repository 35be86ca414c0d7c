"""The notebooks run top to bottom (nbclient, a timeout per cell) and are stored without outputs."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install nbformat nbclient ipykernel (the dev extra)")
nbclient = pytest.importorskip("nbclient", reason="pip install nbformat nbclient ipykernel (the dev extra)")

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 240  # one training cell on 2 busy cores; each notebook takes well under a minute alone


def test_the_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_callbacks_and_resume.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_clean(path):
    """Outputs cleared in git, and no library code: notebooks call kerasopt, they do not extend it."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{path.name}: clear its outputs"
    sources = "\n".join(c.source for c in code)
    assert "import kerasopt" in sources
    assert not any(line.lstrip().startswith(("def ", "class ")) for line in sources.splitlines())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("KERASOPT_RUNS_ROOT", str(tmp_path))  # run directories go here, not into runs/
    # conftest's MPLBACKEND=Agg would reach the kernel and swallow the figures; use Jupyter's inline backend
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError naming the cell and the traceback
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    run_dirs = [p for p in tmp_path.iterdir() if (p / "config.yaml").is_file()]
    assert run_dirs, "the notebook wrote no run directory under KERASOPT_RUNS_ROOT"
    for rd in run_dirs:
        assert (rd / "metrics.json").is_file() and (rd / "history.csv").is_file()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)  # rich -> display
    assert any("image/png" in o.get("data", {}) for o in outputs), "the history plot did not render"
    if path.stem.startswith("02"):
        assert "resuming" in text and "epoch 4/6" in text  # the second fit continued, it did not start over
    else:
        assert "ConfigError:" in text and "epochz" in text
