"""Helpers for the book *Distilling BERT for toxic comment classification*.

Every notebook imports its logic from here; each module holds one part of the chain:
``config`` (the three environment variables), ``data`` (download, checks, cleaning, the split),
``evaluation`` (metrics and plots), ``results`` (the results file), ``text`` (normalisation,
lemmatization, tokenizers), ``baselines`` (classical models), ``models`` (neural networks and the
teacher), ``training`` (the shared training loop), ``teacher`` (fine-tuning and cached outputs),
``distill`` (distillation losses and procedures), ``benchmark`` (size, latency, throughput).
"""

__version__ = "0.1.0"
