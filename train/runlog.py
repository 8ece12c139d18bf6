"""What rank 0 records in a run folder while training: ``config.json``, ``log.csv``, TensorBoard
events (when ``torch.utils.tensorboard`` is importable) and a progress bar on stderr.

``log.csv`` has one row every ``log_every`` iterations (iter, loss, lr, images/s) and one per
validation (val_loss, pck2, pck5, mean_px, pck5_labelled); both carry the count of unreadable
images met so far and the seconds since the start. With several ``--data`` sources
(:mod:`train.sources`), ``val_sources.jsonl`` gets one row per source and validation. A resumed run rewrites it without the rows
past its checkpoint, so the log continues with no repeats.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tracker.errors import KptrackError
from train.config import TrainConfig

log = logging.getLogger(__name__)

CSV_FIELDS = ("iter", "loss", "lr", "images_per_s", "val_loss", "pck2", "pck5", "mean_px", "pck5_labelled", "bad_images", "time_s")
VAL_KEYS = ("val_loss", "pck2", "pck5", "mean_px", "pck5_labelled")


def _open_csv(path: Path, start: int) -> tuple[Any, Any]:
    """Append to log.csv, dropping rows past ``start`` (written after the checkpoint we resume from)."""
    rows = []
    if start > 0 and path.is_file():
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("iter") and int(r["iter"]) <= start]
    f = open(path, "w", newline="", encoding="utf-8")
    w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in CSV_FIELDS})
    f.flush()
    return f, w


def _trim_jsonl(path: Path, start: int) -> None:
    """Drop rows past ``start`` from a per-iteration JSON-lines log (all of them for a new run)."""
    if not path.is_file():
        return
    rows = [r for r in path.read_text(encoding="utf-8").splitlines() if r.strip() and start > 0 and json.loads(r).get("iter", 0) <= start]
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def _tensorboard(run: Path, start: int):
    """A SummaryWriter into RUN/tb (purging events past ``start`` on resume), or None without tensorboard."""
    try:
        # lazily: tensorboard is optional, and importing it is slow
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(run / "tb"), purge_step=start if start > 0 else None)
    except ImportError:
        log.debug("tensorboard not installed; logging to log.csv only")
        return None


class RunLog:
    """Rank 0's record of a run (see the module docstring), from iteration ``start`` of ``cfg.iters``.

    Training throughput is measured over the window since the last training row; ``world``
    processes each take a batch per iteration."""

    def __init__(self, run: Path, cfg: TrainConfig, start: int, world: int) -> None:
        try:
            run.mkdir(parents=True, exist_ok=True)
            (run / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True) + "\n")
            self._csv_file, self._csv = _open_csv(run / "log.csv", start)
            _trim_jsonl(run / "val_sources.jsonl", start)
        except OSError as e:
            raise KptrackError(f"--out {run}: cannot write the run folder ({e.strerror or e}). Choose a writable folder.") from None
        self._tb = _tensorboard(run, start)
        self._bar = tqdm(total=cfg.iters, initial=start, desc=f"train {cfg.preset}", unit="it", dynamic_ncols=True,
                         mininterval=1.0, file=sys.stderr)
        self._world, self._run = world, run
        self._t0 = time.perf_counter()
        self._win_t, self._win_n, self._win_loss = time.perf_counter(), 0, 0.0

    def iteration(self, it: int, loss: float, batch_size: int, lr: float, bad_images: int, write_row: bool) -> None:
        """Count iteration ``it`` (its loss, this process's batch size); with ``write_row``, the
        window's mean loss, images/s and ``lr`` go to the bar, log.csv and TensorBoard."""
        self._win_n += batch_size
        self._win_loss += loss
        self._bar.update(1)
        if not write_row:
            return
        dt = time.perf_counter() - self._win_t
        ips = self._win_n * self._world / max(dt, 1e-9)
        avg = self._win_loss / max(1, self._win_n / batch_size)
        self._bar.set_postfix(loss=f"{avg:.4f}", lr=f"{lr:.2e}", img_s=f"{ips:.1f}")
        self._csv.writerow({"iter": it, "loss": _fmt(avg), "lr": _fmt(lr), "images_per_s": _fmt(ips),
                            "bad_images": bad_images, "time_s": _fmt(time.perf_counter() - self._t0)})
        self._csv_file.flush()
        if self._tb is not None:
            self._tb.add_scalar("train/loss", avg, it)
            self._tb.add_scalar("train/lr", lr, it)
            self._tb.add_scalar("train/images_per_s", ips, it)
        self._win_t, self._win_n, self._win_loss = time.perf_counter(), 0, 0.0

    def validation(self, it: int, scores: dict, lr: float, bad_images: int) -> None:
        """A validation row (scores from :func:`train.validation.evaluate`) in log.csv and TensorBoard."""
        row = {"iter": it, "lr": _fmt(lr), "bad_images": bad_images, "time_s": _fmt(time.perf_counter() - self._t0)}
        row.update({k: _fmt(scores.get(k)) for k in VAL_KEYS})
        self._csv.writerow(row)
        self._csv_file.flush()
        if self._tb is not None:
            for k in VAL_KEYS:
                self._tb.add_scalar(f"val/{k}", scores[k], it)
        self._sources(it, scores.get("sources") or {})

    def _sources(self, it: int, per_source: dict) -> None:
        """Validation per data source (several --data): a line above the bar, val_sources.jsonl, TensorBoard."""
        if not per_source:
            return
        self.message(f"iter {it} per source: " + "  ".join(
            f"{name} PCK@5px {s['pck5']:.3f} mean {s['mean_px']:.2f} px ({s['n_images']} images)" for name, s in per_source.items()))
        with open(self._run / "val_sources.jsonl", "a", encoding="utf-8") as f:
            for name, s in per_source.items():
                f.write(json.dumps({"iter": it, "source": name, **s}) + "\n")
        if self._tb is not None:
            for name, s in per_source.items():
                for k in ("pck2", "pck5", "mean_px"):
                    self._tb.add_scalar(f"val_{name}/{k}", s[k], it)

    def message(self, msg: str) -> None:
        """A line above the progress bar."""
        self._bar.write(msg)

    def close(self) -> None:
        self._bar.close()
        self._csv_file.close()
        if self._tb is not None:
            self._tb.close()
