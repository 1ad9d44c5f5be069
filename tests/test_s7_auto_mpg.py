"""§7 Project one: fuel efficiency — the Auto MPG data, its features, and the regression net."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from tests.registry import check, check_exercise, claim_cases, exercise_cases
from torchmech.chapter.data.auto_mpg import BUNDLED, COLUMNS, load_auto_mpg
from torchmech.chapter.implementation import Implementation

pytestmark = pytest.mark.s7


@pytest.mark.parametrize("claim", claim_cases("s7"))
def test_claim(claim, spec) -> None:
    """Each claim of this section in the registry (torchmech/spec/claims.py) holds: the book's value,
    or the band, bound or law its rule names with its reason."""
    check(claim, spec)


@pytest.mark.parametrize("exercise", exercise_cases("s7"))
def test_exercise(exercise, workspace) -> None:
    """The exercise graded as `torchmech learn check s7` grades it (on the reference: its check catches
    every catalogued mistake, each named as itself)."""
    check_exercise(exercise, workspace)


# --- the data ---------------------------------------------------------------------------------
def test_the_books_read_csv_runs_on_the_bundled_file() -> None:
    """The book's read_csv(na_values="?", comment="\\t", sep=" ", skipinitialspace=True) on the bundled
    file gives what load_auto_mpg gives (its row counts are the claim s7.data.rows); only Horsepower
    has unknown values."""
    df = pd.read_csv(BUNDLED, names=COLUMNS, na_values="?", comment="\t", sep=" ", skipinitialspace=True)
    assert df.shape[1] == 8 and df.isna().sum().sum() == df["Horsepower"].isna().sum() > 0
    pd.testing.assert_frame_equal(load_auto_mpg(), df)


def test_the_392_complete_rows_equal_mlxtends_copy() -> None:
    """The bundled rows (made from vega_datasets' cars.json) equal mlxtend's independent copy."""
    data = pytest.importorskip("mlxtend.data", reason="mlxtend is the independent copy to compare with")
    x, y = data.autompg_data()
    df = load_auto_mpg().dropna().reset_index(drop=True)
    np.testing.assert_array_equal(df["MPG"].to_numpy(), y)
    np.testing.assert_array_equal(df[COLUMNS[1:]].to_numpy(), x[:, :7])


def test_load_auto_mpg_reads_a_users_file_and_names_a_bad_one(tmp_path) -> None:
    """load_auto_mpg(path) reads a user's copy; a missing or malformed file gets a clear error."""
    copy = tmp_path / "auto-mpg.data"
    copy.write_text("".join(BUNDLED.read_text().splitlines(keepends=True)[:10]))
    assert load_auto_mpg(copy).shape == (10, 8)
    with pytest.raises(FileNotFoundError, match="no Auto MPG file"):
        load_auto_mpg(tmp_path / "absent.data")
    bad = tmp_path / "bad.data"
    bad.write_text("MPG,Cylinders\nfast,8\n")
    with pytest.raises(ValueError, match=r"auto-mpg\.data format"):
        load_auto_mpg(bad)


# --- features -----------------------------------------------------------------------------------
def test_standardised_columns_have_train_mean_0_and_std_1(implementation: Implementation) -> None:
    """The 5 continuous columns are standardised with the train mean and std (ddof 1)."""
    x = implementation.mpg_features().x_train[:, :5].double()
    # standardised in float64, then stored as float32 (relative rounding 6e-8 on values of order 1):
    # the train mean is 0 and the std 1 to 1e-6, far tighter than any wrong statistic would give
    torch.testing.assert_close(x.mean(0), torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(x.std(0), torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-6)
    onehot = implementation.mpg_features().x_train[:, 6:]
    assert torch.equal(onehot.sum(1), torch.ones(len(onehot)))


def test_test_split_is_standardised_with_the_train_statistics(implementation: Implementation) -> None:
    """Both splits are scaled with the TRAIN split's mean and std (ddof 1), recomputed here by hand
    from ``load_auto_mpg().dropna()`` and the same ``train_test_split(train_size=0.8,
    random_state=1)``, independently of ``mpg_features``; the rows come in the same order (same
    MPG). A version that standardises the test split with its own statistics must fail: those
    values lie more than 0.01 away from the right ones somewhere."""
    from sklearn.model_selection import train_test_split

    cols = ["Cylinders", "Displacement", "Horsepower", "Weight", "Acceleration"]
    df_train, df_test = train_test_split(load_auto_mpg().dropna(), train_size=0.8, random_state=1)
    mean, std = df_train[cols].mean(), df_train[cols].std()  # pandas' std: ddof 1
    d = implementation.mpg_features()
    for x, y, part in ((d.x_train, d.y_train, df_train), (d.x_test, d.y_test, df_test)):
        torch.testing.assert_close(y, torch.tensor(part["MPG"].to_numpy(), dtype=torch.float32), rtol=0, atol=0)
        expected = torch.tensor(((part[cols] - mean) / std).to_numpy())
        # float64 values stored as float32 (|x| < 10: rounding < 1e-6); a wrong statistic moves them by > 0.01
        torch.testing.assert_close(x[:, :5].double(), expected, rtol=1e-6, atol=1e-6)
    own = torch.tensor(((df_test[cols] - df_test[cols].mean()) / df_test[cols].std()).to_numpy())
    assert (own - d.x_test[:, :5].double()).abs().max().item() > 0.01


def test_books_loc_standardisation_is_an_erratum_on_pandas_3() -> None:
    """Erratum: `df.loc[:, col] = (df.loc[:, col] - mean) / std` raises TypeError on pandas ≥ 3
    for the integer Cylinders column (pandas 2 only warns); torchmech assigns `df[col] = …`."""
    df = load_auto_mpg().dropna()
    expect = pytest.warns(FutureWarning) if int(pd.__version__.split(".")[0]) < 3 else pytest.raises(TypeError)
    with expect:
        df.loc[:, "Cylinders"] = (df.loc[:, "Cylinders"] - 5.4) / 1.7


@given(year=st.integers(60, 90))
def test_model_year_buckets(year: int, implementation: Implementation) -> None:
    """bucketize(year, [73, 76, 79], right=True): ≤ 72 → 0, 73–75 → 1, 76–78 → 2, ≥ 79 → 3."""
    bucket = implementation.bucketize_year(torch.tensor([year])).item()
    assert bucket == sum(year >= b for b in (73, 76, 79))


def test_embedding_is_one_hot_times_a_weight_matrix() -> None:
    """The text's alternative to one-hot Origin: nn.Embedding(3, k)(i) = one_hot(i) @ E."""
    torch.manual_seed(0)
    emb = nn.Embedding(3, 4)
    origin = torch.tensor(load_auto_mpg()["Origin"].values) % 3
    onehot = nn.functional.one_hot(origin, 3).float()
    torch.testing.assert_close(emb(origin), onehot @ emb.weight)
