"""Helpers for the book *Distilling BERT for toxic comment classification*.

Every notebook imports its logic from here; each module owns one idea:

* ``chapters``: the book's chapters, defined once (number, notebook, title, what each records);
  ``notebook``: a chapter's one setup call, ``setup_book``; ``errors``: user errors as one line.
* ``config``: the five environment variables, paths of artifacts; ``budgets``: how long every
  model trains, in one place; ``messages``: what the package logs and
  ``set_verbosity``, how much of it a reader sees.
* ``data``: download, checks, cleaning, the split; ``evaluation``: metrics and plots;
  ``results``: the results file and its one recording function; ``provenance``: which data,
  split and code made a figure; ``uncertainty``: bootstrap intervals, per-seed t-intervals and
  the tally of intervals a chapter shows; ``parallel``: independent runs (seeds) in one-thread
  worker processes;
  ``benchmark``: size, parameters, latency, throughput; ``build_cache``: re-executes a chapter
  when its code or data changed.
* ``text``: normalisation, lemmatization, stop words; ``baselines``: the classical models.
* ``bpe``: the BiLSTM's subword tokenizer; ``word_vectors``: navec's pretrained word vectors, a
  word tokenizer and the vocabulary they start from; ``encoding``: texts to token ids for any
  tokenizer (and saving a ``tokenizers`` one) and the
  max length; ``batching``: dynamic padding, length buckets, batched prediction; ``training``: the
  shared training loop, its early stopping (``Plateau``) and optimizer step; ``losses``: every
  loss of the book.
* ``settings``: how a token model is built and trained (``NetworkSpec``, ``TrainSettings``),
  handed whole to the training function.
* ``token_models``: the networks over BPE or word ids (the article's BiLSTM, a CNN), trained, saved
  and loaded alike; ``article_bugs``: the source article's mistakes, demonstrated.
* ``checkpoints``: loading Hugging Face models with helpful errors; ``standin``: the offline
  stand-in teacher; ``teacher``: fine-tuning, cached and cross-fitted logits;
  ``soft_targets``: what a student is matched to (the teacher's confidence on seen and unseen
  texts).
* ``distill`` and ``augment``: distillation runs into the small students and Tang et al.'s
  augmentation.
* ``pruning``, ``students``, ``pretraining`` and ``pretraining_history``: BERT -> tiny BERT
  (vocabulary pruning, building students from the teacher, MLM pretraining with the teacher's
  losses, and its curves).
* ``classifiers``: every saved model as one text classifier; ``embeddings``: logistic regression on
  frozen [CLS] vectors; ``comparison``: what chapter 6 computes; ``pipeline``: the whole chain
  on your own CSV.
* ``onnx_export``: the neural models as ONNX files; ``quantization``: their int8 copies by ONNX
  Runtime; ``predict``: serving an exported folder without PyTorch (also a command,
  ``python -m helpers.predict``); ``deployment``: what chapter 6 exports, checks and measures.
* ``try_it``: the build step that puts chapter 6's int8 models into the book's "Try it" page.
* ``listing``: a package function's own source shown on the page where its idea is taught;
  ``diagrams``: the chapters' diagrams of who sees what and which loss matches what
  (``python -m helpers.diagrams`` redraws ``book/figures/``).
"""

from .messages import set_verbosity  # helpers.set_verbosity("warning"): fewer messages

__all__ = ["set_verbosity"]
__version__ = "0.1.0"
