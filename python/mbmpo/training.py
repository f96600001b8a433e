"""Training from Python: the trainer of ``mbmpo train``, its run directory and its resume."""
from __future__ import annotations

import json
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

from . import _core
from .messages import in_keyword_words

Row = dict[str, Any]


def _number(value: Any) -> Any:
    return float("nan") if value is None else value  # JSON null: NaN in the row


def _seeds_text(seeds: str | Sequence[int] | None) -> str:
    """--seeds' text of a seeds argument: "0-2", "0,3,7", or a sequence of ints."""
    if seeds is None:
        return ""
    if isinstance(seeds, str):
        if not seeds:
            raise ValueError("seeds: no seeds given (e.g. '0-2' or [0, 3, 7])")
        return seeds
    try:
        values = list(seeds)
    except TypeError:
        raise TypeError(f"seeds must be a seed list like '0-2' or a sequence of ints, got {seeds!r}") from None
    if not values:
        raise ValueError("seeds: no seeds given (e.g. '0-2' or [0, 3, 7])")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"seeds must hold integers, got {value!r}")
    return ",".join(str(int(v)) for v in values)


@in_keyword_words
def train(run_dir: str | os.PathLike[str], *, preset: str = "", resume: bool = False,
          on_iteration: Callable[[Row], object] | None = None, quiet: bool = False,
          seeds: str | Sequence[int] | None = None, **settings: Any) -> list[Row]:
    """Trains into ``run_dir`` exactly as ``mbmpo train --run-dir RUN_DIR`` does.

    ``settings`` are the training settings by key (``mbmpo.config_fields()``; e.g. ``env="hopper"``,
    ``iterations=5``, ``model_hidden=[256, 256]``), applied after ``preset`` ("smoke" or "cpu").
    ``resume=True`` continues the run in ``run_dir`` from its last checkpoint.
    ``seeds`` ("0-4", "0,3,7" or a list of ints) trains several seeds in one process, batched, as
    ``mbmpo train --seeds`` does: ``run_dir/seed-S`` each, the same files as separate runs; each
    row then has a ``"seed"``.
    ``on_iteration(row)`` is called with each progress row (a dict, as in progress.jsonl).
    Ctrl-C stops at the next meta-step with KeyboardInterrupt; the checkpoints stay intact.
    Returns the progress rows of this call.
    """
    if on_iteration is not None and not callable(on_iteration):
        raise TypeError(f"on_iteration must be callable (it is called with each progress row), got {on_iteration!r}")
    rows: list[Row] = []

    def forward(row_json: str) -> None:
        row = json.loads(row_json)
        rows.append(row)
        if not quiet and on_iteration is None:
            seed = f"seed {row['seed']}  " if "seed" in row else ""
            print(f"{seed}iter {row['iteration'] + 1}  steps {row['real_steps']}  return pre "
                  f"{_number(row['return_pre_mean']):.1f}  imagined {_number(row['imagined_return_pre']):.1f} -> "
                  f"{_number(row['imagined_return_post']):.1f}", flush=True)
        if on_iteration is not None:
            on_iteration(row)

    _core.train(os.fspath(run_dir), preset, dict(settings), bool(resume), _seeds_text(seeds), forward)
    return rows
