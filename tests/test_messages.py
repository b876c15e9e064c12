"""What the package tells its reader: logging instead of print, the verbosity switch, and one
line per training run (not per epoch)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
from torch import nn
from toy import tiny_config, toy_splits

import helpers
from helpers.batching import EncodedDataset, make_loader
from helpers.bpe import train_bpe_tokenizer
from helpers.messages import PACKAGE_LOGGER, set_verbosity
from helpers.pretraining_history import PretrainHistory
from helpers.settings import NetworkSpec, TrainSettings
from helpers.token_models import train_token_model
from helpers.training import History, fit

PACKAGE = Path(helpers.__file__).parent


# Each test starts and ends with the package's logger as Python leaves it (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("restore_package_logger")


# helpers.errors.run_command is every command line's wrapper: it prints a user error's one line.
COMMAND_RUNNER = "run_command"


def entry_points(tree: ast.Module) -> set[str]:
    """Functions a module's ``if __name__ == "__main__":`` block calls, and the functions those
    hand to :func:`helpers.errors.run_command`: its command line."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            names |= {call.func.id for call in ast.walk(node)
                      if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)}
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for name in list(names):
        for call in ast.walk(functions[name]) if name in functions else ():
            if isinstance(call, ast.Call) and getattr(call.func, "id", "") == COMMAND_RUNNER \
                    and call.args and isinstance(call.args[0], ast.Name):
                names.add(call.args[0].id)
    return names | {COMMAND_RUNNER}


def prints_outside_entry_points(path: Path) -> list[str]:
    """``module:line in function`` of every ``print`` call not inside a command-line entry."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed = entry_points(tree)
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name if function == "<module>" else function
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "print" and function not in allowed):
            found.append(f"{path.stem}:{node.lineno} in {function}")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return found


def test_the_package_logs_and_prints_only_in_command_line_entry_points() -> None:
    found = [hit for path in sorted(PACKAGE.glob("*.py")) for hit in
             prints_outside_entry_points(path)]
    assert found == [], "use the module's logger (helpers.messages), not print"


def test_the_print_check_finds_a_print_in_a_library_function(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text("def main():\n    print('ok')\n\ndef fit():\n    print('epoch')\n\n"
                      "if __name__ == '__main__':\n    main()\n", encoding="utf-8")
    assert prints_outside_entry_points(module) == ["mod:5 in fit"]


def test_every_module_logger_sits_under_the_package_logger() -> None:
    from helpers import data, pipeline, pretraining, teacher, text, token_models, training

    for module in (data, pipeline, pretraining, teacher, text, token_models, training):
        assert module.logger.name == module.__name__
        assert module.logger.parent is logging.getLogger(PACKAGE_LOGGER)


class BagOfEmbeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(11, 4, padding_idx=0)
        self.out = nn.Linear(4, 2)

    def forward(self, input_ids, attention_mask):
        return self.out((self.embedding(input_ids) * attention_mask.unsqueeze(-1)).sum(1))


def toy_fit(epochs: int = 3) -> History:
    ids, labels = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10], [2, 2], [3]] * 4, [0, 1, 0, 1, 1, 0] * 4
    dataset = EncodedDataset(ids, labels)
    return fit(BagOfEmbeddings(), make_loader(dataset, 4, True, 0),
               make_loader(dataset, 4, False, 0), labels, epochs=epochs, lr=0.05,
               patience=epochs, desc="toy run")


def test_at_info_a_training_run_prints_one_line_whatever_its_epochs(capsys) -> None:
    set_verbosity("info")
    history = toy_fit(epochs=3)
    lines = capsys.readouterr().out.splitlines()
    assert len(history.epochs) == 3
    assert lines == [history.summary("toy run")]
    assert lines[0].startswith("toy run: 3 epochs of 3 (epoch cap), kept epoch ")
    assert f"valid F1 {history.best_valid_f1:.4f}" in lines[0]


def test_at_warning_a_training_run_prints_nothing(capsys) -> None:
    set_verbosity("warning")
    toy_fit(epochs=2)
    assert capsys.readouterr().out == ""
    logging.getLogger("helpers.training").warning("something may be wrong")
    assert capsys.readouterr().out == "something may be wrong\n"


def test_at_debug_each_epoch_is_a_line_too(capsys) -> None:
    set_verbosity("debug")
    history = toy_fit(epochs=3)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [f"toy run epoch {e}" for e in (1, 2, 3)]
    assert lines[-1] == history.summary("toy run")


def test_one_record_per_run_in_the_log(caplog) -> None:
    caplog.set_level(logging.INFO, logger=PACKAGE_LOGGER)
    toy_fit(epochs=3)
    toy_fit(epochs=2)
    records = [r for r in caplog.records if r.name == "helpers.training"]
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO]
    assert records[0].getMessage().startswith("toy run: 3 epochs")
    assert records[1].getMessage().startswith("toy run: 2 epochs")


def test_set_verbosity_adds_one_handler_and_refuses_unknown_levels(capsys) -> None:
    set_verbosity("info")
    logger = set_verbosity("INFO")
    assert logger is logging.getLogger(PACKAGE_LOGGER) and len(logger.handlers) == 1
    logging.getLogger("helpers.data").info("once")
    assert capsys.readouterr().out == "once\n"  # one handler: one line
    with pytest.raises(ValueError, match="level must be one of"):
        set_verbosity("loud")


def test_history_says_what_stopped_the_run() -> None:
    epochs = [{"epoch": e, "valid_f1": f} for e, f in ((1, 0.5), (2, 0.7), (3, 0.6), (4, 0.6))]
    stopped = History(epochs=epochs, best_epoch=2, seconds=12.3, epochs_cap=10)
    assert stopped.stopped_by == "plateau rule"
    assert stopped.summary("run") == ("run: 4 epochs of 10 (plateau rule), kept epoch 2 "
                                      "(valid F1 0.7000), 12 s")
    assert History(epochs=epochs, best_epoch=2, epochs_cap=4).stopped_by == "epoch cap"


def test_pretraining_history_summary_names_the_kept_step_and_its_loss() -> None:
    class Recipe:
        name = "MLM only"

    history = PretrainHistory(Recipe(), valid=[{"step": 0, "valid_mlm": 9.0},
                                               {"step": 20, "valid_mlm": 7.5},
                                               {"step": 40, "valid_mlm": 7.9}],
                              best_step=20, steps_run=40, steps_cap=100, seconds=61.0)
    assert history.summary() == ("MLM only: 40 steps of 100 (plateau rule), kept step 20 "
                                 "(valid MLM 7.5000), 61 s")


def test_a_token_model_logs_one_line_when_trained_and_one_when_reused(tmp_path, capsys) -> None:
    set_verbosity("info")
    splits = toy_splits()
    tokenizer = train_bpe_tokenizer(splits.train["text"], vocab_size=120)
    kwargs = dict(name="toy_bilstm", schedule=TrainSettings(epochs=2, max_length=24),
                  network=NetworkSpec("bilstm", {"embedding_dim": 8, "hidden_size": 8}),
                  reuse=True)
    trained = train_token_model(tiny_config(tmp_path), splits, tokenizer, **kwargs)
    assert capsys.readouterr().out.splitlines() == [trained.history.summary("toy_bilstm")]
    train_token_model(tiny_config(tmp_path), splits, tokenizer, **kwargs)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("toy_bilstm: reused the saved run")
