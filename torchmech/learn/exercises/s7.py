"""§7 Project one: fuel efficiency (Auto MPG): its exercises, their sample inputs and observers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from torchmech.learn.exercises.core import (
    Exercise,
    Sample,
    _builder_samples,
    _fresh,
    _gen,
    _mpg,
    builder,
)
from torchmech.learn.grader import call


def mpg_regressor_samples() -> tuple[Sample, ...]:
    return _builder_samples((1, 9), (8, 9), (79, 9))


def bucket_samples() -> tuple[Sample, ...]:
    g = _gen(0)
    cases = [torch.arange(60, 91), torch.tensor([72, 73, 75, 76, 78, 79, 82], dtype=torch.int32),
             torch.randint(70, 83, (3, 4), generator=g), torch.tensor([73]), torch.randint(70, 83, (101,), generator=g),
             torch.tensor(76), torch.randint(70, 83, (2, 3, 2), generator=g, dtype=torch.int32),
             torch.zeros(0, dtype=torch.int64)]
    return tuple(Sample(_fresh(c), ("years",), seed=i) for i, c in enumerate(cases))


@functools.cache
def _mpg_frame() -> Any:
    from torchmech.chapter.data.auto_mpg import load_auto_mpg  # pandas and scikit-learn: imported when needed

    return load_auto_mpg()


def mpg_samples() -> tuple[Sample, ...]:
    def make(rows: int | None, train_size: float, state: int) -> Callable[[], tuple]:
        def build() -> tuple:
            if rows == 0:
                return ()  # mpg_features() with its defaults: load_auto_mpg(), 0.8, 1
            df = _mpg_frame().copy()
            if rows is not None:
                df = df.sample(n=rows, random_state=rows).reset_index(drop=True)
            return df, train_size, state
        return build
    cases = [(0, 0.8, 1), (None, 0.8, 7), (120, 0.5, 3), (None, 0.75, 11)]
    return tuple(Sample(make(*c), ("df", "train_size", "random_state"), seed=i) for i, c in enumerate(cases))


EXERCISES: tuple[Exercise, ...] = (
    Exercise("bucketize_year", "s7", "def bucketize_year(years):",
             "Model Year → bucket 0..3 (int64, the input's shape) with torch.bucketize over the boundaries "
             "[73, 76, 79], right=True, for an integer tensor of any shape (0-d and empty ones too).", (),
             bucket_samples, call,
             ("§7: a numeric column becomes a categorical one by bucketing.",
              "four buckets: before 73, 73–75, 76–78, 79 and later.",
              "torch.bucketize(years, torch.tensor([73, 76, 79]), right=True)"),
             spans=("0-d", "rank ≥ 3", "empty", "several dtypes")),
    Exercise("mpg_features", "s7", "def mpg_features(df=None, train_size=0.8, random_state=1):",
             "The book's features as torchmech.data.auto_mpg.MpgData(x_train, y_train, x_test, y_test, "
             "train_stats): df None → load_auto_mpg(); dropna, reset_index(drop=True); "
             "train_test_split(train_size, random_state); the 5 continuous columns (torchmech.data.auto_mpg."
             "NUMERIC) standardised with the TRAIN split's mean and std (ddof 1: describe()); Model Year "
             "bucketed (column 5); Origin one-hot as one_hot(origin % 3) (columns 6–8); x float32 (N, 9), y "
             "float32 MPG; train_stats = df_train.describe().transpose(); df left unchanged.",
             ("s7.data.train_rows", "s7.data.train_mean.mpg", "s7.data.train_mean.model_year", "s7.data.origin"),
             mpg_samples, call,
             ("§7: standardise with the training split's statistics only: the test split is unseen data.",
              "x' = (x − mean_train) / std_train for both splits; 9 features = 5 numbers, 1 bucket, 3 one-hot.",
              "part[col] = (part[col] - stats.loc[col, 'mean']) / stats.loc[col, 'std']"),
             runs=lambda: (_mpg(2),), spans=("several seeds", "defaults and other values")),
    Exercise("mpg_regressor", "s7", "def mpg_regressor():",
             "§7's regression net: Linear(9, 8), ReLU, Linear(8, 4), ReLU, Linear(4, 1) — no output activation "
             "(built in that order, as one nn.Sequential).",
             (), mpg_regressor_samples, builder,
             ("§7: a regression net ends in a plain Linear.", "9 → 8 → 4 → 1 with ReLUs between.",
              "return nn.Sequential(nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1))"),
             runs=lambda: (_mpg(2),), spans=("a single row", "several seeds")),
)
