"""§7 The Auto MPG data (UCI, CC BY 4.0), bundled in its original ``auto-mpg.data`` format.

The bundled ``auto-mpg.data`` (398 cars, ``?`` for the 6 unknown horsepower values, the car
name after a tab) lets the book's own call run unchanged::

    pd.read_csv(path, names=COLUMNS, na_values="?", comment="\\t", sep=" ", skipinitialspace=True)

**How the file was made.** UCI's download is out of reach offline, so it was written by
:func:`write_uci_file` from ``cars.json`` of the ``vega_datasets`` package (0.9.0), which
holds all 406 rows of UCI's ``auto-mpg.data-original``: the 398 rows with an MPG value are
exactly ``auto-mpg.data``, in its order. Origin is mapped back to UCI's codes (1 USA,
2 Europe, 3 Japan) and the year to its two digits. One repair: ``cars.json`` has no 1981 —
it labels UCI's 29 cars of model year 81 as 1982 — so, the rows being in year order, the
first 29 rows it labels 1982 are written as year 81 (without it the train mean of Model
Year misses the book's printed value: the claim ``s7.data.year81_repair`` measures both). The tests check the result
against mlxtend's independent copy of the 392 complete rows and the book's printed numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pandas as pd
import torch

COLUMNS = ["MPG", "Cylinders", "Displacement", "Horsepower", "Weight", "Acceleration", "Model Year", "Origin"]
BUNDLED = Path(__file__).with_name("auto-mpg.data")
ORIGIN_CODES = {"USA": 1, "Europe": 2, "Japan": 3}
CARS_OF_1981 = 29  # UCI's auto-mpg.data rows of model year 81 (28 complete, 1 without horsepower)


def load_auto_mpg(path: str | Path | None = None) -> pd.DataFrame:
    """Read Auto MPG exactly as the book does: 398 rows, NaN for the 6 unknown horsepowers.

    Args:
        path: a file or URL in UCI's ``auto-mpg.data`` format; ``None`` reads the bundled copy.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not in that format (wrong number of columns, non-numbers).
    """
    source = BUNDLED if path is None else path
    if not str(source).startswith(("http://", "https://")) and not Path(source).exists():
        raise FileNotFoundError(f"no Auto MPG file at {source}")
    try:
        df = pd.read_csv(source, names=COLUMNS, na_values="?", comment="\t", sep=" ", skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{source} is not in UCI's auto-mpg.data format: {err}") from err
    bad = [c for c in COLUMNS if not pd.api.types.is_numeric_dtype(df[c])]
    if bad or df.empty or df[COLUMNS[-1]].isna().any():
        raise ValueError(
            f"{source} is not in UCI's auto-mpg.data format (8 space-separated numbers, then a tab "
            f"and the car's name): {'non-numeric columns ' + ', '.join(bad) if bad else 'missing columns'}"
        )
    return df


def write_uci_file(cars_json: str | Path, path: str | Path) -> int:
    """Write ``auto-mpg.data`` from vega_datasets' ``cars.json``; returns the number of rows written."""
    rows = [r for r in json.loads(Path(cars_json).read_text()) if r["Miles_per_Gallon"] is not None]
    years = [int(r["Year"][2:4]) for r in rows]
    if 81 not in years:  # vega_datasets' known slip: year 81 labelled 1982
        first_82 = years.index(82)
        years[first_82:first_82 + CARS_OF_1981] = [81] * CARS_OF_1981
    out = StringIO()
    for r, year in zip(rows, years, strict=True):
        hp = "?" if r["Horsepower"] is None else f"{float(r['Horsepower']):.1f}"
        out.write(
            f"{float(r['Miles_per_Gallon']):<7.1f}{r['Cylinders']:<4d}{float(r['Displacement']):<11.1f}"
            f"{hp:<11}{float(r['Weight_in_lbs']):<11.1f}{float(r['Acceleration']):<7.1f}"
            f"{year:<4d}{ORIGIN_CODES[r['Origin']]}\t\"{r['Name']}\"\n"
        )
    tmp = Path(path).with_suffix(".part")
    tmp.write_text(out.getvalue())
    tmp.replace(path)
    return len(rows)


NUMERIC = ["Cylinders", "Displacement", "Horsepower", "Weight", "Acceleration"]
YEAR_BOUNDARIES = (73, 76, 79)


@dataclass(frozen=True)
class MpgData:
    """§7's features: 9 columns (5 standardised numbers, the Model Year bucket, Origin one-hot).

    Attributes:
        x_train, x_test: float32 (313, 9) and (79, 9).
        y_train, y_test: float32 MPG.
        train_stats: ``df_train.describe().transpose()`` (the statistics used to standardise).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    train_stats: pd.DataFrame


def bucketize_year(years: torch.Tensor) -> torch.Tensor:
    """Model Year → bucket 0..3 with ``torch.bucketize(year, [73, 76, 79], right=True)``:
    ≤ 72 → 0, 73–75 → 1, 76–78 → 2, ≥ 79 → 3 (``right=True``: a boundary year opens its bucket).

    Example::

        >>> bucketize_year(torch.tensor([72, 73, 75, 76, 78, 79]))
        tensor([0, 1, 1, 2, 2, 3])
    """
    return torch.bucketize(years, torch.tensor(YEAR_BOUNDARIES, dtype=years.dtype, device=years.device), right=True)


def mpg_features(df: pd.DataFrame | None = None, train_size: float = 0.8, random_state: int = 1) -> MpgData:
    """The book's preprocessing, on pandas 2 and 3 alike.

    ``dropna`` → 392 rows; ``train_test_split(train_size=0.8, random_state=1)`` → 313 train rows;
    the 5 continuous columns standardised with the train mean and std (ddof 1, as ``describe``);
    Model Year bucketed; Origin (1 USA, 2 Europe, 3 Japan) one-hot as ``one_hot(origin % 3)``.
    The book writes the standardised values with ``df.loc[:, col] = …``, which pandas ≥ 3
    refuses for the integer Cylinders column; ``df[col] = …`` replaces the column instead.
    """
    from sklearn.model_selection import train_test_split

    df = (load_auto_mpg() if df is None else df).dropna().reset_index(drop=True)
    df_train, df_test = train_test_split(df, train_size=train_size, random_state=random_state)
    stats = df_train.describe().transpose()
    tensors = []
    for part in (df_train.copy(), df_test.copy()):
        for col in NUMERIC:
            part[col] = (part[col] - stats.loc[col, "mean"]) / stats.loc[col, "std"]
        bucket = bucketize_year(torch.tensor(part["Model Year"].values))
        numeric = torch.tensor(part[NUMERIC].values)
        origin = torch.nn.functional.one_hot(torch.tensor(part["Origin"].values) % 3, 3)
        x = torch.cat([numeric, bucket[:, None], origin], 1).float()
        tensors += [x, torch.tensor(part["MPG"].values).float()]
    return MpgData(*tensors, train_stats=stats)
