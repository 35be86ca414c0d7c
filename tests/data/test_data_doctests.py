"""The examples in the data package's docstrings run and give the numbers they show."""

import doctest
import importlib

import pytest

MODULES = [
    "kerasopt.data.spec", "kerasopt.data.split", "kerasopt.data.source_base", "kerasopt.data.sources",
    "kerasopt.data.sources_tabular", "kerasopt.data.sources_synthetic", "kerasopt.data.sources_remote",
    "kerasopt.data.transforms", "kerasopt.data.pipeline", "kerasopt.data.cache", "kerasopt.data.cache_store",
    "kerasopt.usercache", "kerasopt.data.manifest", "kerasopt.data.shard_manifest", "kerasopt.data.mixing",
    "kerasopt.data.checkprogress", "kerasopt.data.randaugment", "kerasopt.data.crops",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_importing_the_package_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, kerasopt.data; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
