"""What ``kptrack synth`` renders: :class:`SynthConfig`, the BOP names it writes, and the seed streams.

Determinism: training image ``i`` draws everything from ``np.random.default_rng([seed, i])``;
what the workers share (noise bank, colourings, sequence plan, sequence frames) draws from
``np.random.default_rng([seed, STREAM, ...])`` with one of the ``S_*`` tags below, far above any
image index, so the output is byte-identical for any number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracker.errors import KptrackError

OBJ_ID = 1
TRAIN_SPLIT = "train_synth"
SEQ_SPLIT = "test_seq"

# Streams of np.random.default_rng([seed, STREAM, ...]) that are not per training image.
# Training image i uses [seed, i]; these tags are far above any image index.
S_NOISE_BANK = 2**31 + 1
S_COLOURS = 2**31 + 2
S_SEQ_PLAN = 2**31 + 3
S_SEQ_FRAME = 2**31 + 4

NOISE_BANK_SIZE = 512
NOISE_BANK_SIGMA = 32.0  # the bank holds N(0, 32^2) int8 samples, scaled down per image
N_COLOURINGS = 8  # random vertex colourings for meshes without colours


@dataclass(frozen=True)
class SynthConfig:
    """What ``kptrack synth`` renders.

    object: 'default' or an object directory. out: dataset root. num: training images.
    seed: everything derives from it. sequence: write one test sequence instead of training
    images. frames: sequence length. width/height: image size (None: 256x256 for training,
    640x480 for sequences). backgrounds: folder of background images, one image, or a video
    of the user's scene whose frames are sampled (None: procedural).
    workers: processes (None: all cores). split: split name (None: train_synth / test_seq).
    rot_range_deg: largest rotation from the canonical view (180 = the whole sphere).
    axis_views: fraction of training images seen along the object's continuous symmetry axis,
    within ``AXIS_VIEW_CONE_DEG`` of it, either end (uniformly drawn views put 13 % there; such
    views are the weakest, benchmarks/RESULTS.md "Views along the symmetry axis").
    scene_size: images per training scene. overwrite: replace an existing split folder.
    occluder_prob: chance that a training image has occluders; max_occlusion: the most of the
    object's silhouette they may cover. end_occlusion: fraction of training images whose
    occluder hides one end of the object instead (:func:`train.synth.occluders.end_occluder`);
    axis_occlusion: fraction whose occluder is a bar lying along the object over one end, hiding
    the keypoints on its axis from that end to past the middle
    (:func:`train.synth.occluders.axis_occluder`). The two shares add up to at most 1.
    fill_range: projected bounding-sphere diameter as a fraction of the image's smaller side.
    fov_range_deg: horizontal field of view range of the training cameras. fps: sequence frame
    rate. jpeg_quality: cv2 JPEG quality.
    progress: show a tqdm bar.
    """

    object: str | Path = "default"
    out: str | Path = "data/synth"
    num: int = 1000
    seed: int = 0
    sequence: bool = False
    frames: int = 300
    width: int | None = None
    height: int | None = None
    backgrounds: str | Path | None = None
    workers: int | None = None
    split: str | None = None
    rot_range_deg: float = 180.0
    axis_views: float = 0.0
    scene_size: int = 1000
    overwrite: bool = False
    occluder_prob: float = 0.5
    max_occlusion: float = 0.4
    end_occlusion: float = 0.0
    axis_occlusion: float = 0.0
    fill_range: tuple[float, float] = (0.2, 0.9)
    fov_range_deg: tuple[float, float] = (35.0, 60.0)
    fps: float = 30.0
    jpeg_quality: int = 90
    progress: bool = True

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) after defaults."""
        dw, dh = (640, 480) if self.sequence else (256, 256)
        return int(self.width or dw), int(self.height or dh)

    @property
    def split_name(self) -> str:
        return self.split or (SEQ_SPLIT if self.sequence else TRAIN_SPLIT)

    def validate(self) -> None:
        w, h = self.image_size
        if w < 32 or h < 32 or w > 8192 or h > 8192:
            raise KptrackError(f"--width/--height: {w}x{h} is out of range. Use 32 to 8192 pixels.")
        if self.sequence and self.frames < 1:
            raise KptrackError(f"--frames: must be >= 1, got {self.frames}.")
        if not self.sequence and self.num < 1:
            raise KptrackError(f"--num: must be >= 1, got {self.num}.")
        if self.workers is not None and self.workers < 1:
            raise KptrackError(f"--workers: must be >= 1, got {self.workers}.")
        if not 0.0 < self.rot_range_deg <= 180.0:
            raise KptrackError(f"--rot-range: must be in (0, 180] degrees, got {self.rot_range_deg}.")
        if not 0.0 <= self.axis_views <= 1.0:
            raise KptrackError(f"--axis-views: must be a fraction in [0, 1], got {self.axis_views}.")
        if self.sequence and self.axis_views > 0.0:
            raise KptrackError("--axis-views: draws training views; a --sequence follows its own trajectory. Leave one out.")
        if self.scene_size < 1:
            raise KptrackError(f"scene_size: must be >= 1, got {self.scene_size}.")
        lo, hi = self.fill_range
        if not 0.01 <= lo <= hi <= 2.0:
            raise KptrackError(f"fill_range: expected 0.01 <= lo <= hi <= 2, got {self.fill_range}.")
        flo, fhi = self.fov_range_deg
        if not 1.0 <= flo <= fhi < 170.0:
            raise KptrackError(f"fov_range_deg: expected 1 <= lo <= hi < 170, got {self.fov_range_deg}.")
        if not 0.0 <= self.max_occlusion <= 1.0 or not 0.0 <= self.occluder_prob <= 1.0:
            raise KptrackError("occluder_prob and max_occlusion: must be in [0, 1].")
        if not 0.0 <= self.end_occlusion <= 1.0:
            raise KptrackError(f"--end-occlusion: must be a fraction in [0, 1], got {self.end_occlusion}.")
        if not 0.0 <= self.axis_occlusion <= 1.0:
            raise KptrackError(f"--axis-occlusion: must be a fraction in [0, 1], got {self.axis_occlusion}.")
        if self.end_occlusion + self.axis_occlusion > 1.0:
            raise KptrackError(f"--end-occlusion {self.end_occlusion} and --axis-occlusion {self.axis_occlusion}: shares of "
                               "the training images, they add up to more than 1. Lower one of them.")
        if self.sequence and self.end_occlusion > 0.0:
            raise KptrackError("--end-occlusion: occludes training images; a --sequence scripts its own occluders. Leave one out.")
        if self.sequence and self.axis_occlusion > 0.0:
            raise KptrackError("--axis-occlusion: occludes training images; a --sequence scripts its own occluders. Leave one out.")
        if not self.fps > 0:
            raise KptrackError(f"fps: must be > 0, got {self.fps}.")
        split = self.split_name
        if not split or "/" in split or "\\" in split or split in (".", "..", "models"):
            raise KptrackError(f"--split: {split!r} is not a usable split folder name. Use e.g. train_synth.")
        if self.backgrounds is not None and not Path(self.backgrounds).exists():
            raise KptrackError(f"--backgrounds: {self.backgrounds} does not exist. Pass a folder of .jpg/.png images or a video of your scene.")
