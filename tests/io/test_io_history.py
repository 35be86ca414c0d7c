"""The one history.csv reader: the last row for an epoch wins, in epoch order, and every reader agrees."""

import math

import pytest

from kerasopt.errors import ConfigError
from kerasopt.io.history import read_history, read_metrics, trim_history

# Written by hand as a resumed run leaves it: epoch 1 ran, the run was killed before its checkpoint,
# and the resumed run ran epoch 1 again (appending a second row); epoch 2's val_accuracy is blank.
RESUMED = ("epoch,loss,val_accuracy\n"
           "0,2.0,0.50\n"
           "1,1.5,0.60\n"
           "1,1.2,0.70\n"
           "2,1.0,\n")


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(RESUMED)
    return path


def test_a_duplicated_epoch_keeps_its_last_row(csv_path):
    h = read_history(csv_path)
    assert h["epoch"] == [0, 1, 2]
    assert h["loss"] == [2.0, 1.2, 1.0]
    assert h["val_accuracy"][:2] == [0.5, 0.7] and math.isnan(h["val_accuracy"][2])


def test_rows_come_out_in_epoch_order(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n2,0.3\n0,0.9\n1,0.5\n0,0.8\n")
    assert read_history(path) == {"epoch": [0, 1, 2], "loss": [0.8, 0.5, 0.3]}


def test_every_reader_agrees_on_the_duplicated_epoch(csv_path):
    from kerasopt.config.tune_schema import ObjectiveConfig
    from kerasopt.reporting.rundata import read_history as report_history
    from kerasopt.tune.runner import objective_value

    assert read_metrics(csv_path) == {k: v for k, v in read_history(csv_path).items() if k != "epoch"}
    assert report_history(csv_path)["loss"] == [2.0, 1.2, 1.0]
    assert objective_value(csv_path.parent, ObjectiveConfig(metric="loss")) == 1.0
    assert objective_value(csv_path.parent, ObjectiveConfig(metric="val_accuracy", reduce="best")) == 0.7


@pytest.mark.parametrize("text, expected", [
    (None, {}),                               # no file yet
    ("", {}),                                 # created, no epoch finished
    ("loss,acc\n0.5,0.9\n", {}),              # not a CSVLogger file
    ("epoch,loss\n", {"epoch": [], "loss": []}),
    ("epoch,loss\n0,NA\n", {"epoch": [0.0], "loss": [math.nan]}),  # CSVLogger's "NA" for a missing key
])
def test_missing_empty_and_odd_files(tmp_path, text, expected):
    path = tmp_path / "history.csv"
    if text is not None:
        path.write_text(text)
    got = read_history(path)
    assert list(got) == list(expected)
    for k in expected:
        assert [(-1 if math.isnan(v) else v) for v in got[k]] == [(-1 if math.isnan(v) else v) for v in expected[k]]


def test_an_epoch_that_is_not_a_number_names_the_line(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.0\nfirst,0.5\n")
    with pytest.raises(ConfigError, match=r"line 3: epoch is not a number. Received: 'first'"):
        read_history(path)


def test_trim_keeps_earlier_epochs_and_the_header(csv_path):
    trim_history(csv_path, 1)
    assert csv_path.read_text().splitlines() == ["epoch,loss,val_accuracy", "0,2.0,0.50"]
    trim_history(csv_path.parent / "absent.csv", 1)  # nothing to trim: no error
    assert not (csv_path.parent / "absent.csv").exists()
    assert [p.name for p in csv_path.parent.iterdir()] == ["history.csv"]  # no temporary left behind


def test_trim_finds_the_epoch_column_anywhere(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("loss,epoch\n0.9,0\n0.5,1\n")
    trim_history(path, 1)
    assert read_history(path) == {"loss": [0.9], "epoch": [0.0]}
