"""The dataset: find or download it, check it, clean it, split it once.

Every chapter calls :func:`load_splits`, which always returns the same deterministic split of the
same cleaned data, so no chapter ever sees another chapter's test texts during training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from .config import SEED, BookConfig, get_config
from .errors import UserError

logger = logging.getLogger(__name__)

DATA_FILENAME = "russian_toxic_comments.csv"
DATA_SHA256 = "25e75c5b98b82bff4c4f987f452c7eea9735b83744b43bbd31187c3fc792e18b"
DATA_SIZE = 4_669_913
# Byte-identical mirrors of the Kaggle file "Russian Language Toxic Comments" (published
# anonymously in 2019; its labels checked by Smetanin, Dialogue 2020), tried in order. Every
# download is checked against DATA_SHA256, so a mirror that changed is rejected rather than
# silently used.
DATA_URLS = (
    "https://raw.githubusercontent.com/nsbarsukov/toxic-comments-detector/"
    "ad0b71e731ef70735e0c8cb213f5c7da86e07146/data/toxicRUCommentsOriginalDF.csv",
    "https://huggingface.co/datasets/marriamaslova/toxic_dvach/resolve/main/labeled.csv",
)
TEXT_COLUMN = "comment"
LABEL_COLUMN = "toxic"
SMALL_SIZES = {"train": 400, "valid": 150, "test": 150}


class DatasetError(UserError, ValueError):
    """The dataset cannot be used as it is; the message says why and what to do."""


class ChecksumError(DatasetError):
    """A file's sha256 is not the one expected."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has the sha256 ``expected``."""
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(
            f"{path} has sha256 {actual}, expected {expected}: the file is corrupted or is not "
            "the pinned dataset."
        )


def download_file(url: str, dest: Path, expected_sha256: str, timeout: float = 30) -> Path:
    """Download ``url`` to ``dest`` with a progress bar; keep it only if the checksum matches.

    The download goes to a temporary file beside ``dest``, which is moved into place only once
    verified; an existing ``dest`` is never overwritten.
    """
    if dest.exists():
        raise FileExistsError(f"{dest} exists already; not overwriting it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        tmp.write(chunk)
                        bar.update(len(chunk))
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
    try:
        verify_checksum(tmp_path, expected_sha256)
    except ChecksumError:
        tmp_path.unlink(missing_ok=True)
        raise
    shutil.move(tmp_path, dest)
    return dest


def cached_dataset_path(config: BookConfig) -> Path:
    """Where the book keeps its downloaded copy of the dataset."""
    return config.data_cache_dir / DATA_FILENAME


def resolve_dataset_path(
    config: BookConfig | None = None, urls: tuple[str, ...] = DATA_URLS
) -> Path:
    """Find the dataset: ``BOOK_DATA``, else the verified cache, else download into the cache.

    A ``BOOK_DATA`` file is used as it is (readers bring their own data; :func:`is_pinned_data`
    tells whether it is the pinned file and every results row records it). A cached copy that
    fails verification is never deleted or overwritten: the error says what is wrong and how to
    fix it.
    """
    config = config or get_config()
    if config.data is not None:
        if not config.data.is_file():
            raise DatasetError(
                f"BOOK_DATA points to {config.data}, which is not a file. Fix the path, or unset "
                "BOOK_DATA to download the dataset into the book's cache."
            )
        return config.data
    cached = cached_dataset_path(config)
    if cached.is_file():
        actual = dataset_sha256(config)
        if actual != DATA_SHA256:
            raise DatasetError(
                f"{cached} is not the pinned dataset: its sha256 is {actual}, expected "
                f"{DATA_SHA256} (a truncated download, an edited copy or another file). It was "
                "left as it is. To get the pinned file, move or rename it and run again (the "
                f"book downloads a fresh copy); to use this file as your own data, set "
                f"BOOK_DATA={cached} (the figures are then marked as not from the pinned data)."
            )
        return cached
    failures = []
    for url in urls:
        try:
            return download_file(url, cached, DATA_SHA256)
        except (urllib.error.URLError, OSError, ChecksumError) as error:
            failures.append(f"  {url}: {error}")
    raise DatasetError(
        "Could not download the dataset:\n" + "\n".join(failures) + "\nDownload "
        "'Russian Language Toxic Comments' from Kaggle (blackmoon/russian-language-toxic-comments)"
        f" by hand and either save it as {cached} or set BOOK_DATA=/path/to/labeled.csv."
    )


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def dataset_sha256(config: BookConfig) -> str:
    """sha256 of the dataset file in use (``BOOK_DATA``, else the cached copy), without
    downloading; remembered per file path, size and modification time. ``FileNotFoundError``
    when there is no file yet."""
    path = config.data if config.data is not None else cached_dataset_path(config)
    if not path.is_file():
        raise FileNotFoundError(f"No dataset file at {path} yet")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def is_pinned_data(config: BookConfig) -> bool:
    """Whether the book runs on the pinned dataset (its sha256 is :data:`DATA_SHA256`)."""
    try:
        return dataset_sha256(config) == DATA_SHA256
    except FileNotFoundError:
        return False


def read_dataset(
    path: Path, text_column: str = TEXT_COLUMN, label_column: str = LABEL_COLUMN
) -> pd.DataFrame:
    """Read a CSV of texts and binary labels into columns ``text`` (str) and ``label`` (int).

    Raises :class:`DatasetError` for a missing file, a file that is not CSV, missing columns,
    missing or non-binary labels. Nothing is dropped here; :func:`clean_dataset` does that and
    reports it.
    """
    path = Path(path)
    if not path.is_file():
        # Names the file itself: the book's own BOOK_DATA is checked (and named) before this.
        raise DatasetError(f"no file at {path}: check the path to your CSV")
    try:
        frame = pd.read_csv(path, dtype={text_column: "string"}, keep_default_na=False,
                            na_values={label_column: [""]})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(
            f"{path} could not be read as a UTF-8 CSV file ({type(error).__name__}: {error}). "
            "Expected a CSV with a header row."
        ) from error
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{path} lacks the column(s) {missing}; it has {list(frame.columns)}. Name yours "
            "with --text-column and --label-column (text_column= and label_column= in Python)."
        )
    if frame.empty:
        raise DatasetError(f"{path} has a header ({', '.join(map(str, frame.columns))}) but no "
                           "rows: add one row per text under it")
    labels = pd.to_numeric(frame[label_column], errors="coerce")
    bad = labels.isna() | ~labels.isin([0, 1])
    if bad.any():
        examples = frame.loc[bad, label_column].astype(str).unique()[:5].tolist()
        raise DatasetError(
            f"{path}: {int(bad.sum())} label(s) in column '{label_column}' are not 0 or 1, "
            f"e.g. {examples}. The book handles binary labels only; map yours to 0/1 first."
        )
    return pd.DataFrame({"text": frame[text_column].astype(str), "label": labels.astype(int)})


@dataclass(frozen=True)
class CleaningReport:
    """What :func:`clean_dataset` changed, so a notebook can print it."""

    rows_in: int
    ending_in_newline: int
    empty_dropped: int
    duplicate_groups: int
    conflicting_groups: int
    conflicting_rows_dropped: int
    duplicate_rows_dropped: int
    rows_out: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def dropped(self) -> dict[str, int]:
        """Rows dropped, by reason: empty text, repeat of a kept text, conflicting labels."""
        return {"empty": self.empty_dropped, "duplicate": self.duplicate_rows_dropped,
                "conflicting": self.conflicting_rows_dropped}

    def describe(self) -> str:
        """One line: rows read and kept, and the rows dropped for each reason."""
        d = self.dropped
        return (f"{self.rows_in} rows read, {self.rows_out} kept; dropped {d['empty']} empty, "
                f"{d['duplicate']} duplicate, {d['conflicting']} with conflicting labels")


def clean_dataset(frame: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Strip whitespace, drop empty texts and resolve duplicates; report every count.

    Duplicate texts (after stripping) with conflicting labels are all dropped, since neither label
    can be trusted; of duplicates that agree, the first is kept. Without this a text could land in
    both the training and the test split and inflate the test score.
    """
    text = frame["text"].str.strip()
    ending_in_newline = int(frame["text"].str.endswith("\n").sum())
    empty = text == ""
    kept = pd.DataFrame({"text": text[~empty], "label": frame["label"][~empty]})
    sizes = kept.groupby("text")["label"].agg(["size", "nunique"])
    duplicated = sizes[sizes["size"] > 1]
    conflicting = duplicated[duplicated["nunique"] > 1]
    is_conflicting = kept["text"].isin(conflicting.index)
    kept = kept[~is_conflicting]
    is_repeat = kept["text"].duplicated(keep="first")
    kept = kept[~is_repeat].reset_index(drop=True)
    report = CleaningReport(
        rows_in=len(frame),
        ending_in_newline=ending_in_newline,
        empty_dropped=int(empty.sum()),
        duplicate_groups=len(duplicated),
        conflicting_groups=len(conflicting),
        conflicting_rows_dropped=int(is_conflicting.sum()),
        duplicate_rows_dropped=int(is_repeat.sum()),
        rows_out=len(kept),
    )
    if kept.empty:
        raise DatasetError(f"no rows are left after cleaning ({report.describe()}): every text is "
                           "empty or has conflicting labels")
    return kept, report


@dataclass(frozen=True)
class Splits:
    """The train, validation and test parts; each a frame with ``text`` and ``label``;
    ``cleaning``: what cleaning the file dropped, when the splits come from one."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    cleaning: CleaningReport | None = None

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [("train", self.train), ("valid", self.valid), ("test", self.test)]

    def summary(self) -> pd.DataFrame:
        """Rows and share of toxic texts per split."""
        return pd.DataFrame(
            [{"rows": len(f), "toxic share": round(float(f["label"].mean()), 3)}
             for _, f in self.items()], index=[name for name, _ in self.items()])


def split_dataset(
    frame: pd.DataFrame, valid_size: float = 0.15, test_size: float = 0.15, seed: int = SEED
) -> Splits:
    """One stratified train/valid/test split (70/15/15 by default), deterministic under ``seed``."""
    counts = frame["label"].value_counts()
    if len(counts) < 2 or counts.min() < 3:
        raise DatasetError(
            f"Cannot stratify a split: label counts are {counts.to_dict()}; each of 0 and 1 "
            "needs at least 3 rows."
        )
    rest, test = train_test_split(
        frame, test_size=test_size, stratify=frame["label"], random_state=seed
    )
    train, valid = train_test_split(
        rest, test_size=valid_size / (1 - test_size), stratify=rest["label"], random_state=seed
    )
    return Splits(*(part.reset_index(drop=True) for part in (train, valid, test)))


def subsample_splits(
    splits: Splits, sizes: dict[str, int] = SMALL_SIZES, seed: int = SEED
) -> Splits:
    """A stratified subset of each split, for small-data mode."""

    def take(frame: pd.DataFrame, n: int) -> pd.DataFrame:
        if n >= len(frame):
            return frame
        part, _ = train_test_split(frame, train_size=n, stratify=frame["label"], random_state=seed)
        return part.reset_index(drop=True)

    return Splits(**{name: take(frame, sizes[name]) for name, frame in splits.items()},
                  cleaning=splits.cleaning)


def load_dataset(config: BookConfig | None = None) -> tuple[pd.DataFrame, CleaningReport]:
    """The cleaned full dataset and the report of what cleaning did."""
    config = config or get_config()
    return clean_dataset(read_dataset(resolve_dataset_path(config)))


def load_splits(config: BookConfig | None = None) -> Splits:
    """The split every chapter uses (subsampled in small-data mode)."""
    config = config or get_config()
    frame, _ = load_dataset(config)
    splits = split_dataset(frame)
    return subsample_splits(splits) if config.small else splits


def load_csv_splits(csv_path: str | Path, text_column: str = TEXT_COLUMN,
                    label_column: str = LABEL_COLUMN, small: bool = False,
                    seed: int = SEED) -> Splits:
    """Read, check, clean and split a CSV exactly as :func:`load_splits` does the
    book's dataset, with your own column names (subsampled when ``small``). What cleaning
    dropped, by reason, is logged and kept in the splits' ``cleaning``."""
    frame, report = clean_dataset(read_dataset(Path(csv_path), text_column, label_column))
    logger.info("%s: %s", csv_path, report.describe())
    splits = dataclasses.replace(split_dataset(frame, seed=seed), cleaning=report)
    return subsample_splits(splits, seed=seed) if small else splits
