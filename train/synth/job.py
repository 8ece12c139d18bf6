"""The worker context of a synth run: what every image needs, plus per-process caches.

:func:`train.synth.writer.run_synth` installs one :class:`Job`; the pool's workers get a copy
(:func:`job_for_workers`, :func:`install_in_worker`). Each reads it with :func:`current_job` and
builds its own caches (renderers, noise bank, decoded background images) on first use, so nothing
mutable is shared between processes. Meshes
without colours are rendered with one of ``N_COLOURINGS`` seeded random vertex colourings
(:func:`random_vertex_colors`), the same in every process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from tracker.errors import KptrackError
from tracker.objects import ObjectModel
from tracker.render import Renderer
from train.synth.backgrounds import BackgroundImages
from train.synth.config import S_COLOURS, SynthConfig
from train.synth.effects import NoiseBank
from train.synth.sampling import random_unit

# An 8-bit 0/255 PNG as BOP writes it. Masks compress well without row filters, and libpng's
# adaptive filter choice is most of the encode time (5x slower), so pick "none" where OpenCV
# lets us (>= 4.11).
_PNG_MASK_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
if hasattr(cv2, "IMWRITE_PNG_FILTER") and hasattr(cv2, "IMWRITE_PNG_FILTER_NONE"):
    _PNG_MASK_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def random_vertex_colors(obj: ObjectModel, rng: np.random.Generator) -> np.ndarray:
    """A procedural colouring for meshes without colours: a mix of 2-3 random colours driven by a
    smooth 3D sine-noise field over the vertex positions. Returns (N, 3) uint8 BGR."""
    p = (np.asarray(obj.vertices) - obj.bbox_min) / max(obj.diameter, 1e-9)
    field_ = np.zeros(len(p))
    for _ in range(4):
        k = random_unit(rng) * rng.uniform(2.0, 12.0) * math.pi
        field_ += np.sin(p @ k + rng.uniform(0, 2 * math.pi)) * rng.uniform(0.3, 1.0)
    f = (field_ - field_.min()) / max(np.ptp(field_), 1e-9)
    cols = rng.uniform(20, 235, size=(3, 3))
    if rng.random() < 0.5:  # banded: hard edges give the network more to look at
        f = np.floor(f * rng.integers(2, 6)) / 5.0
    c = np.where(f[:, None] < 0.5, cols[0] + (cols[1] - cols[0]) * (2 * f[:, None]), cols[1] + (cols[2] - cols[1]) * (2 * f[:, None] - 1))
    return np.clip(c, 0, 255).astype(np.uint8)


@dataclass
class Job:
    """Everything a worker needs, set in the parent and copied to each pool worker."""

    cfg: SynthConfig
    obj: ObjectModel
    scene_dirs: dict[int, Path]
    bg_files: list[Path]
    plan: Any = None  # train.synth.sequences.SequencePlan for sequences
    # per-process caches (built lazily in each worker)
    pid: int = -1
    renderers: dict = dataclasses.field(default_factory=dict)
    noise: NoiseBank | None = None
    background: BackgroundImages | None = None

    def ensure_process(self) -> None:
        """Start fresh caches when running in a new process (a pool worker)."""
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.renderers = {}
            self.noise = NoiseBank(self.cfg.seed)
            self.background = BackgroundImages(self.bg_files)

    def renderer(self, variant: int) -> Renderer:
        """variant -1: the object as it is; >= 0: one of the seeded random colourings."""
        r = self.renderers.get(variant)
        if r is None:
            obj = self.obj
            if variant >= 0:
                cols = random_vertex_colors(obj, np.random.default_rng([self.cfg.seed, S_COLOURS, variant]))
                obj = dataclasses.replace(obj, vertex_colors=cols)
            r = Renderer(obj)
            self.renderers[variant] = r
        return r

    def write_images(self, scene_id: int, im_id: int, image: np.ndarray, vis_mask: np.ndarray) -> None:
        """rgb/<im_id>.jpg (image (H, W, 3) uint8 BGR) and mask_visib/<im_id>_000000.png
        (vis_mask (H, W) bool) in the scene's folder."""
        sd = self.scene_dirs[scene_id]
        p = sd / "rgb" / f"{im_id:06d}.jpg"
        if not cv2.imwrite(str(p), image, [cv2.IMWRITE_JPEG_QUALITY, int(self.cfg.jpeg_quality)]):
            raise KptrackError(f"{p}: could not write the image. Check free space and permissions of --out.")
        cv2.imwrite(str(sd / "mask_visib" / f"{im_id:06d}_000000.png"), vis_mask.view(np.uint8) * np.uint8(255), _PNG_MASK_PARAMS)


_JOB: Job | None = None


@contextlib.contextmanager
def installed(job: Job) -> Iterator[Job]:
    """Make ``job`` the one :func:`current_job` returns in this process for the duration (the pool's
    workers get a copy: :func:`job_for_workers`)."""
    global _JOB
    _JOB = job
    try:
        yield job
    finally:
        _JOB = None


def current_job() -> Job:
    """The installed Job, with this process's caches."""
    assert _JOB is not None, "synth worker used outside run_synth"
    _JOB.ensure_process()
    return _JOB


def job_for_workers() -> Job:
    """The installed Job without this process's caches, to hand to pool workers (pickled)."""
    assert _JOB is not None, "synth pool used outside run_synth"
    return dataclasses.replace(_JOB, pid=-1, renderers={}, noise=None, background=None)


def install_in_worker(job: Job) -> None:
    """A pool worker's initializer: make ``job`` the one :func:`current_job` returns in it."""
    global _JOB
    _JOB = job
