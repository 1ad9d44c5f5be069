"""§7 Auto MPG: the catalogue's wrong pieces of this section's exercises, and their rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from torchmech.learn.mistakes.core import Mistake, ref


def _buckets_left() -> Callable:
    return lambda years: torch.bucketize(years, torch.tensor([73, 76, 79], dtype=years.dtype), right=False)


def _features_own_statistics() -> Callable:
    def mpg_features(df=None, train_size=0.8, random_state=1):
        from sklearn.model_selection import train_test_split

        from torchmech.chapter.data.auto_mpg import NUMERIC, MpgData, bucketize_year, load_auto_mpg

        df = (load_auto_mpg() if df is None else df).dropna().reset_index(drop=True)
        df_train, df_test = train_test_split(df, train_size=train_size, random_state=random_state)
        tensors = []
        for part in (df_train.copy(), df_test.copy()):
            stats = part.describe().transpose()  # each split with its own statistics
            for col in NUMERIC:
                part[col] = (part[col] - stats.loc[col, "mean"]) / stats.loc[col, "std"]
            bucket = bucketize_year(torch.tensor(part["Model Year"].values))
            origin = nn.functional.one_hot(torch.tensor(part["Origin"].values) % 3, 3)
            x = torch.cat([torch.tensor(part[NUMERIC].values), bucket[:, None], origin], 1).float()
            tensors += [x, torch.tensor(part["MPG"].values).float()]
        return MpgData(*tensors, train_stats=df_train.describe().transpose())
    return mpg_features


def _origin_minus_one() -> Callable:
    def mpg_features(df=None, train_size=0.8, random_state=1):
        d = ref("mpg_features")(df, train_size, random_state)
        shifted = [torch.cat([x[:, :6], x[:, 6:].roll(-1, dims=1)], 1) for x in (d.x_train, d.x_test)]
        return type(d)(shifted[0], d.y_train, shifted[1], d.y_test, d.train_stats)  # one_hot(origin − 1)
    return mpg_features


def _sigmoid_regressor() -> Callable:
    return lambda: nn.Sequential(nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid())


def _year_raw() -> Callable:
    def mpg_features(df=None, train_size=0.8, random_state=1):
        from sklearn.model_selection import train_test_split

        from torchmech.chapter.data.auto_mpg import load_auto_mpg

        base = (load_auto_mpg() if df is None else df).dropna().reset_index(drop=True)
        d = ref("mpg_features")(df, train_size, random_state)
        tr, te = train_test_split(base, train_size=train_size, random_state=random_state)
        fix = lambda x, part: torch.cat([x[:, :5], torch.tensor(part["Model Year"].values,  # noqa: E731
                                                                dtype=torch.float32)[:, None], x[:, 6:]], 1)
        return type(d)(fix(d.x_train, tr), d.y_train, fix(d.x_test, te), d.y_test, d.train_stats)
    return mpg_features


def _buckets_shifted() -> Callable:
    return lambda years: torch.bucketize(years, torch.tensor([72, 75, 78], dtype=years.dtype), right=True)


def _features_variant(kind: str) -> Callable:
    def mpg_features(df=None, train_size=0.8, random_state=1):
        from sklearn.model_selection import train_test_split

        from torchmech.chapter.data.auto_mpg import NUMERIC, MpgData, bucketize_year, load_auto_mpg

        df = load_auto_mpg() if df is None else df
        if kind == "split_before_dropna":  # the split first, then dropna on each part
            df_train, df_test = train_test_split(df, train_size=train_size, random_state=random_state)
            df_train, df_test = df_train.dropna(), df_test.dropna()
        else:
            df = df.dropna().reset_index(drop=True)
            df_train, df_test = train_test_split(df, train_size=train_size, random_state=random_state)
        stats = df_train.describe().transpose()
        columns = ["MPG", *NUMERIC] if kind == "mpg_too" else NUMERIC  # the target standardised with the features
        tensors = []
        for part in (df_train.copy(), df_test.copy()):
            for col in columns:
                std = np.std(df_train[col]) if kind == "ddof0" else stats.loc[col, "std"]  # np.std: ddof 0
                part[col] = (part[col] - stats.loc[col, "mean"]) / std
            bucket = bucketize_year(torch.tensor(part["Model Year"].values))
            origin = nn.functional.one_hot(torch.tensor(part["Origin"].values) % 3, 3)
            x = torch.cat([torch.tensor(part[NUMERIC].values), bucket[:, None], origin], 1)
            tensors += [x if kind == "float64" else x.float(), torch.tensor(part["MPG"].values).float()]
        return MpgData(*tensors, train_stats=stats)
    return mpg_features


def _relu_regressor() -> Callable:
    return lambda: nn.Sequential(nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1), nn.ReLU())


MISTAKES: tuple[Mistake, ...] = (
    Mistake("buckets_off_by_one", "bucketize_year", "right=False: the boundary years fall in the lower bucket",
            _buckets_left),
    Mistake("test_split_own_statistics", "mpg_features", "the test split standardised with its own statistics",
            _features_own_statistics),
    Mistake("origin_minus_one", "mpg_features", "one_hot(origin − 1) instead of one_hot(origin % 3)",
            _origin_minus_one),
    Mistake("sigmoid_regression", "mpg_regressor", "a Sigmoid after the regression output", _sigmoid_regressor),
    Mistake("model_year_raw", "mpg_features", "Model Year left raw (70–82) in the bucket column", _year_raw),
    Mistake("buckets_shifted", "bucketize_year", "the boundaries [72, 75, 78]: every bucket a year early",
            _buckets_shifted),
    Mistake("std_ddof_0", "mpg_features", "np.std (ddof 0) instead of describe()'s std (ddof 1)",
            lambda: _features_variant("ddof0")),
    Mistake("split_before_dropna", "mpg_features", "train_test_split before dropna: other rows in each split",
            lambda: _features_variant("split_before_dropna")),
    Mistake("mpg_standardised_too", "mpg_features", "MPG, the target, standardised with the features",
            lambda: _features_variant("mpg_too")),
    Mistake("features_float64", "mpg_features", "x left float64 (.float() forgotten)",
            lambda: _features_variant("float64")),
    Mistake("relu_regression", "mpg_regressor", "a ReLU after the regression output", _relu_regressor),
)
