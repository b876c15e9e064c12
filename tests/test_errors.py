"""The commands' user errors: one line on standard error, exit status 2, a traceback only with
``--debug`` (helpers.errors), run as a reader runs them (``python -m ...`` in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers.errors import OutputPathError, UserError, check_writable_dir, one_line, run_command

PIPELINE = "python -m helpers.pipeline"


def command(module: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"helpers.{module}", *args], input=stdin,
                          capture_output=True, text=True, timeout=300)


def error_line(done: subprocess.CompletedProcess, prog: str = PIPELINE) -> str:
    """The one stderr line of a failed command, without its ``PROG: error:`` prefix."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{prog}: error: ")
    return lines[0].removeprefix(f"{prog}: error: ")


def csv(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_missing_file_names_the_file_not_book_data(tmp_path: Path) -> None:
    line = error_line(command("pipeline", str(tmp_path / "nofile.csv"), "--out",
                              str(tmp_path / "run")))
    assert line == f"no file at {tmp_path / 'nofile.csv'}: check the path to your CSV"
    assert "BOOK_DATA" not in line
    assert not (tmp_path / "run").exists()


def test_wrong_columns_say_which_options_name_them(tmp_path: Path) -> None:
    path = csv(tmp_path / "cols.csv", "message,is_bad\nпривет,0\n")
    line = error_line(command("pipeline", path, "--out", str(tmp_path / "run")))
    assert line == (f"{path} lacks the column(s) ['comment', 'toxic']; it has ['message', "
                    "'is_bad']. Name yours with --text-column and --label-column (text_column= "
                    "and label_column= in Python).")


def test_bad_labels_are_shown(tmp_path: Path) -> None:
    path = csv(tmp_path / "labels.csv", "comment,toxic\nа,0\nб,yes\nв,2\n")
    line = error_line(command("pipeline", path, "--out", str(tmp_path / "run")))
    assert line == (f"{path}: 2 label(s) in column 'toxic' are not 0 or 1, e.g. ['yes', '2']. "
                    "The book handles binary labels only; map yours to 0/1 first.")


def test_header_only_csv_says_it_has_no_rows(tmp_path: Path) -> None:
    path = csv(tmp_path / "header.csv", "comment,toxic\n")
    line = error_line(command("pipeline", path, "--out", str(tmp_path / "run")))
    assert line == (f"{path} has a header (comment, toxic) but no rows: add one row per text "
                    "under it")


def test_a_file_as_out_is_refused_before_any_work(tmp_path: Path) -> None:
    rows = "".join(f"текст {i},{i % 2}\n" for i in range(40))
    path = csv(tmp_path / "ok.csv", "comment,toxic\n" + rows)
    taken = tmp_path / "results.txt"
    taken.write_text("mine")
    done = command("pipeline", path, "--out", str(taken), "--small")
    assert error_line(done) == (f"the output folder {taken} is a file, not a folder; name a "
                                "folder (new or existing) instead")
    assert done.stdout == ""  # refused before the CSV was even read
    assert taken.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.csv", "results.txt"]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = command("pipeline", str(tmp_path / "nofile.csv"), "--out", str(tmp_path / "r"),
                   "--debug")
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr
    assert "DatasetError: no file at" in done.stderr


def test_dropped_rows_are_counted_by_reason(tmp_path: Path) -> None:
    rows = [f"текст номер {i},{int(i % 3 == 0)}" for i in range(60)]
    rows += ["текст номер 1,0", "текст номер 2,0", "   ,1", "спорный,0", "спорный,1", "спорный,1"]
    path = csv(tmp_path / "mixed.csv", "comment,toxic\n" + "\n".join(rows) + "\n")
    done = command("pipeline", path, "--out", str(tmp_path / "run"), "--steps", "baseline")
    assert done.returncode == 0, done.stderr
    assert (f"{path}: 66 rows read, 60 kept; dropped 1 empty, 2 duplicate, "
            "3 with conflicting labels") in done.stdout.splitlines()


def test_other_commands_report_user_errors_in_one_line(tmp_path: Path) -> None:
    line = error_line(command("predict", "--model", str(tmp_path / "nowhere"), "text"),
                      "python -m helpers.predict")
    assert line.startswith(f"No model folder at {tmp_path / 'nowhere'}. Export a saved model")
    line = error_line(command("standin", "--tokenizer", str(tmp_path), "--out",
                              str(tmp_path / "s")), "python -m helpers.standin")
    assert line.startswith(f"{tmp_path} has no config.json: --tokenizer must name a folder")


def test_run_command_turns_only_user_errors_into_one_line(
    capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(error: Exception):
        def main(argv):
            raise error
        return main

    assert run_command(failing(UserError("two\nlines")), [], prog="p") == 2
    assert capsys.readouterr().err == "p: error: two lines\n"
    with pytest.raises(UserError):
        run_command(failing(UserError("x")), ["--debug"])
    with pytest.raises(KeyError):  # a bug keeps its traceback
        run_command(failing(KeyError("bug")), [])
    assert one_line(ValueError("a\n  * b")) == "a * b"


def test_check_writable_dir(tmp_path: Path) -> None:
    assert check_writable_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing is created
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        check_writable_dir(tmp_path / "file" / "sub")
