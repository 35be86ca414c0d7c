"""CSV source: numeric and one-hot categorical columns, label rules, row/column errors."""

import numpy as np
import pytest

from kerasopt.data import build_datasets
from kerasopt.data.sources import load_source
from kerasopt.errors import ConfigError

PETS = """length,color,weight,species
1.0,red,10,cat
2.0,blue,20,dog
3.0,red,30,cat
4.0,green,40,dog
5.0,blue,50,cat
6.0,red,60,dog
7.0,blue,70,cat
8.0,red,80,dog
9.0,blue,90,cat
10.0,red,100,dog
"""


def write(tmp_path, text, name="pets.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_numeric_and_one_hot_columns(tmp_path, make_cfg):
    path = write(tmp_path, PETS)
    src = load_source(make_cfg(source="csv", path=path, label_column="species", categorical_columns=["color"]))
    assert src.class_names == ["cat", "dog"] and src.y.tolist() == [0, 1] * 5
    # The training split here holds rows 0, 2 and 3: categories red and green only.
    x, extras = src.encode(np.array([0, 2, 3]))
    assert extras["categories"] == {"color": ["green", "red"]}
    assert extras["feature_names"] == ["length", "color=green", "color=red", "weight"]
    assert x.dtype == np.float32 and x.shape == (10, 4)
    assert x[0].tolist() == [1.0, 0.0, 1.0, 10.0]
    assert x[1].tolist() == [2.0, 0.0, 0.0, 20.0]  # 'blue' was never seen in training: all zeros
    assert x[3].tolist() == [4.0, 1.0, 0.0, 40.0]


def test_pipeline_vocabulary_comes_from_training_rows(tmp_path, make_cfg, collect):
    # 'purple' appears only in the last row; a split that holds it out must not encode it.
    text = PETS + "11.0,purple,110,cat\n"
    path = write(tmp_path, text)
    cfg = make_cfg(source="csv", path=path, label_column="species", categorical_columns=["color"],
                   validation_split=0.3, shuffle_buffer=0, seed=0)
    bundle = build_datasets(cfg)
    cats = bundle.spec.extras["categories"]["color"]
    from kerasopt.data.split import split_indices

    y = np.array([0, 1] * 5 + [0])
    train, _, _ = split_indices(y, 0.3, seed=0, stratify=True)
    colors = np.array(["red", "blue", "red", "green", "blue", "red", "blue", "red", "blue", "red", "purple"])
    assert cats == sorted(set(colors[train]))
    assert bundle.spec.input_shape == (2 + len(cats),)


def test_feature_columns_select_and_order(tmp_path, make_cfg):
    path = write(tmp_path, PETS)
    src = load_source(make_cfg(source="csv", path=path, label_column="species", feature_columns=["weight", "length"]))
    x, extras = src.encode(np.arange(10))
    assert extras["feature_names"] == ["weight", "length"] and x[2].tolist() == [30.0, 3.0]


def test_integer_labels_classify_and_float_labels_regress(tmp_path, make_cfg):
    ints = write(tmp_path, "a,b\n1.5,0\n2.5,2\n", "ints.csv")
    floats = write(tmp_path, "a,b\n1.5,0.25\n2.5,2\n", "floats.csv")
    src = load_source(make_cfg(source="csv", path=ints, label_column="b"))
    assert src.task == "classification" and src.y.tolist() == [0, 2] and src.class_names is None
    src = load_source(make_cfg(source="csv", path=floats, label_column="b"))
    assert src.task == "regression" and src.y.dtype == np.float32 and src.y.tolist() == [0.25, 2.0]


def test_missing_label_column_names_file_and_columns(tmp_path, make_cfg):
    path = write(tmp_path, PETS)
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="csv", path=path, label_column="specie"))
    msg = str(e.value)
    assert e.value.key == "data.label_column"
    assert "'specie'" in msg and "pets.csv" in msg and "length, color, weight, species" in msg
    assert "Did you mean 'species'" in msg


def test_non_numeric_cell_names_row_and_column(tmp_path, make_cfg):
    path = write(tmp_path, "x,y,label\n1,2,a\n3,oops,b\n")
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="csv", path=path, label_column="label"))
    msg = str(e.value)
    assert "pets.csv, row 2 (line 3), column 'y'" in msg and msg.endswith("Received: 'oops'")


def test_nan_cell_is_a_data_error_naming_the_file(tmp_path, make_cfg):
    path = write(tmp_path, "x,label\n1,0\nnan,1\n3,0\n4,1\n5,0\n")
    with pytest.raises(ConfigError) as e:
        build_datasets(make_cfg(source="csv", path=path, label_column="label"))
    assert e.value.key == "data" and "pets.csv" in str(e.value) and "example 1" in str(e.value)


@pytest.mark.parametrize(
    "text, kwargs, key, fragment",
    [
        ("", {}, "data.path", "is empty"),
        ("a,label\n1,0\n2\n", {}, "data.path", "line 3: 1 cells but the header has 2"),
        ("a,a,label\n1,2,0\n", {}, "data.path", "repeats column name(s): a"),
        ("a,label\n1,\n", {}, "data.label_column", "line 2: label column 'label' is empty"),
        ("a,label\n1,0\n", {"feature_columns": ["b"]}, "data.feature_columns", "feature column 'b' is not in"),
        ("a,label\n1,0\n", {"categorical_columns": ["label"]}, "data.categorical_columns", "is the label column"),
    ],
)
def test_bad_csv_files(tmp_path, make_cfg, text, kwargs, key, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="csv", path=path, label_column="label", **kwargs))
    assert e.value.key == key and fragment in str(e.value)


def test_missing_csv_file(tmp_path, make_cfg):
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="csv", path=str(tmp_path / "gone.csv"), label_column="y"))
    assert e.value.key == "data.path" and "gone.csv" in str(e.value)
