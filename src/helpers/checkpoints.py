"""Loading Hugging Face checkpoints (hub id or local folder), with errors that say what to do.

The teacher is loaded in two shapes: a sequence classifier to fine-tune
(:func:`load_teacher_classifier`, chapter 3) and a masked-language model whose token distributions
the BERT students learn from (:func:`load_teacher_mlm`, chapter 5). :func:`quiet_transformers`
keeps the library's load report and progress bars out of the notebooks' output where the prose
explains what they would say.

When the teacher cannot be loaded, :class:`TeacherUnavailableError` says which of these it is: a
folder that does not exist, a folder without config or weights, a hub that cannot be reached (found
out in seconds by :func:`hub_reachable`, not after the client's minute of retries), or a hub that
has no such model; and how to get a teacher (``hf download``, or the offline stand-in).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch import nn

from .config import DEFAULT_TEACHER
from .errors import UserError

LABELS = {0: "normal", 1: "toxic"}


class TeacherUnavailableError(UserError, RuntimeError):
    """The teacher could not be loaded; the message says why and what to do."""


# How long to wait for the hub before calling it unreachable: offline, a hub id fails in seconds
# instead of after the client's retries (about a minute).
HUB_PROBE_TIMEOUT = 5.0
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin",
                   "pytorch_model.bin.index.json")


# What a teacher folder needs, for `hf download --include`: the config, the tokenizer's files (the
# hub's rubert-tiny has vocab.txt and its configs, newer repos a tokenizer.json; a pattern that
# matches nothing is skipped) and ONE weight file. A whole repository can hold the weights twice
# (model.safetensors and pytorch_model.bin) and files the book never loads (rubert-tiny's also has
# a 259 MB T5 decoder). model.safetensors is the one transformers prefers and loads without
# pickle; a repository that has only pytorch_model.bin needs that name instead.
DOWNLOAD_FILES = ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "model.safetensors")


def download_command(hub_id: str) -> str:
    """The ``hf download`` command that fetches what the book loads of ``hub_id``, nothing else."""
    return f"hf download {hub_id} --local-dir DIR --include {' '.join(DOWNLOAD_FILES)}"


def _what_to_do(hub_id: str) -> str:
    return (
        "What to do:\n"
        "  * set BOOK_TEACHER to a local folder with the model, e.g. one downloaded on a machine "
        f"with internet access by `{download_command(hub_id)}` (for a repository that offers "
        "only pytorch_model.bin, name that instead of model.safetensors; `hf` is the command "
        "line of huggingface_hub, installed with transformers); or\n"
        "  * to run the code without the real model, make an offline stand-in with "
        "`python -m helpers.standin --tokenizer DIR --out DIR` and set "
        "BOOK_TEACHER=DIR. A stand-in has random weights: every number it gives is meaningless."
    )


def _unavailable(name_or_path: str, why: str,
                 hub_id: str = DEFAULT_TEACHER) -> TeacherUnavailableError:
    """A :class:`TeacherUnavailableError` saying ``why`` and how to get a teacher."""
    return TeacherUnavailableError(
        f"Cannot load the teacher {name_or_path!r}: {why}.\n{_what_to_do(hub_id)}")


def is_local_source(name_or_path: str) -> bool:
    """Whether ``name_or_path`` names a folder rather than a hub id (``owner/name``).

    An existing path is a folder; so is anything that starts like a path (``/``, ``.``, ``~``)
    or has more parts than a hub id, even if it does not exist (then it is a missing folder).
    """
    return (Path(name_or_path).expanduser().exists() or name_or_path.startswith(("/", ".", "~"))
            or "\\" in name_or_path or name_or_path.count("/") > 1)


def folder_problem(folder: Path) -> str | None:
    """What keeps ``folder`` from holding a model (``None``: config and weights are there)."""
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is a file, not a model folder"
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any(next(folder.glob(pattern), None) for pattern in WEIGHT_PATTERNS):
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if not missing:
        return None
    held = sorted(p.name for p in folder.iterdir())
    listing = ", ".join(held[:8]) + (", ..." if len(held) > 8 else "") if held else "nothing"
    return f"the folder {folder} has no {' and no '.join(missing)} (it holds {listing})"


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether the Hugging Face hub (``HF_ENDPOINT``) answers within ``timeout`` seconds.

    Any HTTP answer counts, and so does a TLS error (the host answered; the client library has
    its own certificates); no answer (no network, no DNS, a timeout) does not. Proxies set in the
    environment are used, as the hub client uses them.
    """
    import ssl
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    request = urllib.request.Request(constants.ENDPOINT, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except urllib.error.URLError as error:
        return isinstance(error.reason, ssl.SSLError)
    except (OSError, ValueError):
        return False


def _load(name_or_path: str, load: Callable[[bool], tuple[Any, nn.Module]]
          ) -> tuple[Any, nn.Module]:
    """Call ``load(local_files_only)`` with an error that says which of four things went wrong.

    A folder: missing, or without config or weights, or unloadable. A hub id: with the hub
    unreachable (checked first, in seconds) or ``HF_HUB_OFFLINE`` set, only the local cache is
    tried; otherwise the hub's own error is reported.
    """
    if is_local_source(name_or_path):
        folder = Path(name_or_path).expanduser()
        problem = folder_problem(folder)
        if problem:
            raise _unavailable(name_or_path, problem)
        try:
            return load(True)
        except Exception as error:  # e.g. a truncated weights file (SafetensorError)
            raise _unavailable(name_or_path, f"the folder {folder} holds no usable model "
                               f"({type(error).__name__}: {error})") from error

    from huggingface_hub import constants

    offline = constants.HF_HUB_OFFLINE
    if offline or not hub_reachable():
        try:
            return load(True)
        except (OSError, ValueError) as error:
            why = ("HF_HUB_OFFLINE is set" if offline else
                   f"the Hugging Face hub ({constants.ENDPOINT}) cannot be reached from this "
                   "machine")
            raise _unavailable(name_or_path, f"{why} and {name_or_path!r} is not in the local "
                               "Hugging Face cache", hub_id=name_or_path) from error
    try:
        return load(False)
    except (OSError, ValueError) as error:
        raise _unavailable(name_or_path, f"the Hugging Face hub answered but has no usable "
                           f"model {name_or_path!r} ({type(error).__name__}: {error})",
                           hub_id=name_or_path) from error


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bar for one call, then restore them.

    Loading a pre-training checkpoint as a classifier reports the new classification head and
    the unused pre-training heads; the notebooks say so in prose instead.
    """
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def load_teacher_classifier(name_or_path: str, num_labels: int = 2) -> tuple[Any, nn.Module]:
    """Tokenizer and sequence classifier from a hub id or folder.

    From a pre-training checkpoint (rubert-tiny, the stand-in) the classification head is new and
    randomly initialised: it is learned by :func:`finetune_teacher`. Everything else, the
    embeddings, the encoder and the pooler under the head, must come from the checkpoint:
    :class:`MissingWeightsError` if any of it would be random.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    names = ({"id2label": LABELS, "label2id": {v: k for k, v in LABELS.items()}}
             if num_labels == len(LABELS) else {})

    def load(local_files_only: bool) -> tuple[Any, nn.Module]:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(name_or_path,
                                                      local_files_only=local_files_only)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                name_or_path, num_labels=num_labels, local_files_only=local_files_only,
                output_loading_info=True, **names)
        return tokenizer, (model, info)

    tokenizer, (model, info) = _load(name_or_path, load)
    require_loaded(name_or_path, info, f"{model.base_model_prefix}.", "the BERT encoder "
                   "(embeddings, layers and pooler)")
    return tokenizer, model


class MissingWeightsError(UserError, ValueError):
    """A checkpoint lacks weights a chapter needs; loading it would leave them random."""


def require_loaded(name_or_path: str, info: dict[str, Any], prefix: str, what: str) -> None:
    """Raise :class:`MissingWeightsError` if any weight under ``prefix`` was not in the checkpoint
    (``info``: transformers' ``output_loading_info``): transformers would initialise it at random
    and only log a warning."""
    missing = sorted(k for k in info["missing_keys"] if k.startswith(prefix))
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4
                                          else "")
        raise MissingWeightsError(
            f"{name_or_path} lacks {what}: {shown} are missing from the checkpoint, and would be "
            "random. Use a checkpoint saved with them, e.g. cointegrated/rubert-tiny from the "
            "hub, or a folder that save_pretrained wrote for a BertForPreTraining model.")


class MissingHeadError(MissingWeightsError):
    """A checkpoint lacks the weights a chapter needs (its masked-language-model head)."""


def load_teacher_mlm(name_or_path: str) -> tuple[Any, nn.Module]:
    """Tokenizer and masked-language model (token distributions) from a hub id or folder.

    The checkpoint must hold the MLM head (``cls.predictions.*``): loaded without it, the head
    would be random and the student would learn noise, so :class:`MissingHeadError` stops here.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    def load(local_files_only: bool) -> tuple[Any, nn.Module]:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(name_or_path,
                                                      local_files_only=local_files_only)
            model, info = AutoModelForMaskedLM.from_pretrained(
                name_or_path, local_files_only=local_files_only, output_loading_info=True)
        return tokenizer, (model, info)

    tokenizer, (model, info) = _load(name_or_path, load)
    require_loaded(name_or_path, info, f"{model.base_model_prefix}.", "the BERT encoder")
    missing = sorted(k for k in info["missing_keys"] if k.startswith("cls.predictions"))
    if missing:
        raise MissingHeadError(
            f"{name_or_path} has no masked-language-model head: {', '.join(missing)} are missing "
            "from the checkpoint (it was saved as an encoder or a classifier). Distilling token "
            "distributions from a random head teaches noise. Use a checkpoint saved with its "
            "pre-training heads, e.g. cointegrated/rubert-tiny from the hub, or the folder that "
            "save_pretrained wrote for a BertForPreTraining or BertForMaskedLM model.")
    return tokenizer, model
