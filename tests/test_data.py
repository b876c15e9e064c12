"""Tests of helpers.data: reading, checks, cleaning, splitting, checksums and finding the file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from helpers import data
from helpers.config import get_config
from helpers.data import (
    ChecksumError,
    DatasetError,
    clean_dataset,
    read_dataset,
    resolve_dataset_path,
    split_dataset,
    subsample_splits,
    verify_checksum,
)

UNREACHABLE = ("http://127.0.0.1:9/x",)


def write_csv(path: Path, rows: list[tuple[str, object]], header: str = "comment,toxic") -> Path:
    frame = pd.DataFrame(rows, columns=header.split(","))
    frame.to_csv(path, index=False)
    return path


def config_for(tmp_path: Path, data_path: Path | None = None):
    env = {"BOOK_DATA": str(data_path)} if data_path else {}
    return get_config(env, root=tmp_path)


def balanced_frame(n: int = 60) -> pd.DataFrame:
    """Distinct texts, a third of them toxic."""
    return pd.DataFrame({"text": [f"comment number {i}" for i in range(n)],
                         "label": [1 if i % 3 == 0 else 0 for i in range(n)]})


# --- cleaning ---------------------------------------------------------------------------------

def test_clean_dataset_counts_every_change() -> None:
    frame = pd.DataFrame({
        "text": ["a\n", "a", "  a  ", "b\n", "b", "c", "d\n", "   ", "", "e"],
        "label": [1, 1, 1, 0, 1, 0, 1, 0, 1, 0],
    })
    cleaned, report = clean_dataset(frame)
    assert report.rows_in == 10
    assert report.ending_in_newline == 3  # "a\n", "b\n", "d\n"
    assert report.empty_dropped == 2
    assert report.duplicate_groups == 2  # "a" x3 (agreeing), "b" x2 (conflicting)
    assert report.conflicting_groups == 1
    assert report.conflicting_rows_dropped == 2
    assert report.duplicate_rows_dropped == 2  # two extra copies of "a"
    assert report.rows_out == 4
    assert sorted(cleaned["text"]) == ["a", "c", "d", "e"]
    assert dict(zip(cleaned["text"], cleaned["label"], strict=True)) == {
        "a": 1, "c": 0, "d": 1, "e": 0}
    assert report.dropped == {"empty": 2, "duplicate": 2, "conflicting": 2}
    assert report.describe() == ("10 rows read, 4 kept; dropped 2 empty, 2 duplicate, "
                                 "2 with conflicting labels")


def test_clean_dataset_with_nothing_left_raises() -> None:
    frame = pd.DataFrame({"text": ["x", "x", "  "], "label": [0, 1, 0]})
    with pytest.raises(DatasetError, match="no rows are left"):
        clean_dataset(frame)


# --- splitting --------------------------------------------------------------------------------

def test_split_is_deterministic_disjoint_and_stratified() -> None:
    frame = balanced_frame(300)
    first, second = split_dataset(frame, seed=7), split_dataset(frame, seed=7)
    for (_, a), (_, b) in zip(first.items(), second.items(), strict=True):
        pd.testing.assert_frame_equal(a, b)
    texts = [set(part["text"]) for _, part in first.items()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert sum(len(t) for t in texts) == 300
    assert [len(part) for _, part in first.items()] == [210, 45, 45]
    for _, part in first.items():
        assert part["label"].mean() == pytest.approx(1 / 3, abs=0.02)
    other = split_dataset(frame, seed=8)
    assert set(other.test["text"]) != set(first.test["text"])
    summary = first.summary()
    assert summary["rows"].tolist() == [210, 45, 45] and summary["rows"].dtype.kind == "i"


def test_split_refuses_a_class_too_small_to_stratify() -> None:
    frame = pd.DataFrame({"text": list("abcdefgh"), "label": [0] * 6 + [1] * 2})
    with pytest.raises(DatasetError, match="stratify"):
        split_dataset(frame)


def test_subsample_sizes_and_balance() -> None:
    splits = split_dataset(balanced_frame(900))
    small = subsample_splits(splits, sizes={"train": 90, "valid": 30, "test": 200})
    assert len(small.train) == 90 and len(small.valid) == 30
    assert len(small.test) == len(splits.test)  # asking for more than there is keeps all
    assert small.train["label"].mean() == pytest.approx(1 / 3, abs=0.02)
    assert set(small.train["text"]) <= set(splits.train["text"])


# --- reading bad input ------------------------------------------------------------------------

def test_read_dataset_reads_text_and_int_labels(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ok.csv", [("привет", 0), ("дурак", 1.0), ("NA", 0)])
    frame = read_dataset(path)
    assert list(frame.columns) == ["text", "label"]
    assert frame["text"].tolist() == ["привет", "дурак", "NA"]  # "NA" is a text, not missing
    assert frame["label"].tolist() == [0, 1, 0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no file at .*absent.csv: check the path to your CSV"):
        read_dataset(tmp_path / "absent.csv")


def test_binary_garbage_is_not_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(DatasetError, match="could not be read as a UTF-8 CSV"):
        read_dataset(path)


def test_invalid_utf8_is_not_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "cp1251.csv"
    path.write_bytes("comment,toxic\nпривет,0\n".encode("cp1251"))
    with pytest.raises(DatasetError, match="UTF-8"):
        read_dataset(path)


def test_empty_file_is_not_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match="UTF-8 CSV"):
        read_dataset(path)


def test_header_only_file_says_it_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("comment,toxic\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"has a header \(comment, toxic\) but no rows"):
        read_dataset(path)


def test_missing_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cols.csv", [("привет", 0)], header="text,label")
    with pytest.raises(DatasetError, match=r"lacks the column\(s\) \['comment', 'toxic'\]"):
        read_dataset(path)


@pytest.mark.parametrize("bad", [2, "yes", -1, 0.5])
def test_labels_not_binary(tmp_path: Path, bad: object) -> None:
    path = write_csv(tmp_path / "labels.csv", [("a", 0), ("b", bad), ("c", 1)])
    with pytest.raises(DatasetError, match="not 0 or 1") as info:
        read_dataset(path)
    assert str(bad) in str(info.value)


def test_missing_labels(tmp_path: Path) -> None:
    path = tmp_path / "missing.csv"
    path.write_text("comment,toxic\na,0\nb,\nc,1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="1 label"):
        read_dataset(path)


def test_no_rows_after_cleaning_from_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "blank.csv", [("  ", 0), ("\n", 1)])
    with pytest.raises(DatasetError, match="no rows are left"):
        clean_dataset(read_dataset(path))


# --- checksums and finding the file -----------------------------------------------------------

def test_verify_checksum(tmp_path: Path) -> None:
    content = b"comment,toxic\nhello,0\n"
    path = tmp_path / "file.csv"
    path.write_bytes(content)
    known = hashlib.sha256(content).hexdigest()
    verify_checksum(path, known)
    corrupted = tmp_path / "corrupted.csv"
    corrupted.write_bytes(content[:-2] + b"1\n")
    with pytest.raises(ChecksumError, match="corrupted"):
        verify_checksum(corrupted, known)


def test_book_data_pointing_nowhere(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="BOOK_DATA points to"):
        resolve_dataset_path(config_for(tmp_path, tmp_path / "nope.csv"), urls=UNREACHABLE)


def test_book_data_file_is_used_as_is(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "mine.csv", [("a", 0)])
    assert resolve_dataset_path(config_for(tmp_path, path), urls=UNREACHABLE) == path


def test_a_cached_copy_that_fails_verification_is_kept_and_explained(
    tmp_path: Path, monkeypatch
) -> None:
    source = write_csv(tmp_path / "source.csv", [("привет", 0), ("дурак", 1)])
    monkeypatch.setattr(data, "DATA_SHA256", data.sha256_file(source))
    config = config_for(tmp_path)
    cached = config.data_cache_dir / data.DATA_FILENAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"the reader's own file")
    with pytest.raises(DatasetError, match="is not the pinned dataset") as info:
        resolve_dataset_path(config, urls=(source.as_uri(),))
    message = str(info.value)
    assert "left as it is" in message and f"BOOK_DATA={cached}" in message
    assert "move or rename it" in message
    assert cached.read_bytes() == b"the reader's own file"  # never deleted nor overwritten
    # Once the reader moves it away, the pinned copy is downloaded and then used offline.
    cached.rename(tmp_path / "mine.csv")
    assert resolve_dataset_path(config, urls=(*UNREACHABLE, source.as_uri())) == cached
    assert cached.read_bytes() == source.read_bytes()
    assert resolve_dataset_path(config, urls=UNREACHABLE) == cached
    assert data.is_pinned_data(config)


def test_book_data_is_verified_and_marked_not_rejected(tmp_path: Path, monkeypatch) -> None:
    pinned = write_csv(tmp_path / "pinned.csv", [("привет", 0), ("дурак", 1)])
    monkeypatch.setattr(data, "DATA_SHA256", data.sha256_file(pinned))
    assert data.is_pinned_data(config_for(tmp_path, pinned))
    flipped = write_csv(tmp_path / "flipped.csv", [("привет", 1), ("дурак", 1)])
    config = config_for(tmp_path, flipped)
    assert resolve_dataset_path(config, urls=UNREACHABLE) == flipped  # allowed: own data
    assert not data.is_pinned_data(config)
    assert data.dataset_sha256(config) == data.sha256_file(flipped)
    assert flipped.read_text(encoding="utf-8").count("\n") == 3  # untouched


def test_download_never_overwrites(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "source.csv", [("a", 0)])
    dest = write_csv(tmp_path / "dest.csv", [("b", 1)])
    before = dest.read_bytes()
    with pytest.raises(FileExistsError):
        data.download_file(source.as_uri(), dest, data.sha256_file(source))
    assert dest.read_bytes() == before


def test_download_with_wrong_checksum_is_not_kept(tmp_path: Path, monkeypatch) -> None:
    source = write_csv(tmp_path / "source.csv", [("a", 0)])
    monkeypatch.setattr(data, "DATA_SHA256", "0" * 64)
    config = config_for(tmp_path)
    with pytest.raises(DatasetError, match="sha256"):
        resolve_dataset_path(config, urls=(source.as_uri(),))
    assert not any(config.data_cache_dir.iterdir())  # no partial or wrong file left behind


def test_offline_without_a_copy_says_how_to_set_book_data(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="Could not download") as info:
        resolve_dataset_path(config_for(tmp_path), urls=UNREACHABLE)
    assert "BOOK_DATA=" in str(info.value)
    assert "127.0.0.1:9" in str(info.value)


# --- the real file (only when BOOK_DATA is set) -----------------------------------------------

def test_real_dataset_counts() -> None:
    if not os.environ.get("BOOK_DATA"):
        pytest.skip("BOOK_DATA is not set; the real dataset is not available")
    config = get_config()
    verify_checksum(resolve_dataset_path(config), data.DATA_SHA256)
    frame, report = data.load_dataset(config)
    assert report.rows_in == 14_412
    assert report.ending_in_newline == 13_444
    assert (report.duplicate_groups, report.conflicting_groups) == (257, 43)
    assert report.rows_out == len(frame) == 14_112
    splits = split_dataset(frame)
    assert [len(part) for _, part in splits.items()] == [9878, 2117, 2117]
