"""The examples in the models package's docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "kerasopt.models", "kerasopt.models.heads", "kerasopt.models.checks", "kerasopt.models.layers",
    "kerasopt.models.mlp", "kerasopt.models.cnn", "kerasopt.models.resnet", "kerasopt.models.applications",
    "kerasopt.models.recurrent", "kerasopt.models.transformer", "kerasopt.models.custom",
    "kerasopt.models.pretrained",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
