"""Synthetic BOP-format datasets of one object: training images and test sequences.

``kptrack synth`` renders the object with :class:`tracker.render.Renderer` and writes exact
labels in the formats other tools read (BOP; Hodaň et al., ECCV 2018) plus COCO keypoints
(layout in :mod:`train.synth.writer`). Two modes:

* **Training images** (split ``train_synth``, 256x256 by default, scenes of ``scene_size``
  images; :mod:`train.synth.images`). Domain randomisation in the spirit of Tobin et al.,
  "Domain Randomization for Transferring Deep Neural Networks from Simulation to the Real World"
  (IROS 2017) and the cut-and-paste occlusion of Dwibedi et al. (ICCV 2017): uniform random
  rotations (Shoemake 1992) or rotations within ``rot_range_deg`` of a canonical view; a random
  horizontal field of view (35-60 deg); a distance chosen from the object's diameter and the
  focal length so the bounding sphere spans 20-90 % of the image; random in-plane offsets;
  random light direction, ambient and specular; procedural backgrounds (gradients, value noise,
  shapes, stripes) or a folder of user images; blob, bar and hand-like occluders covering at
  most 40 % of the object (or, with ``--end-occlusion``, one over an end of it; with
  ``--axis-occlusion``, a bar lying along it over an end); motion blur; colour jitter; sensor
  noise; JPEG compression. Meshes without colours get random procedural
  vertex colourings.
* **Test sequences** (``--sequence``, split ``test_seq``, 640x480, one scene;
  :mod:`train.synth.sequences`): a smooth 6-DoF trajectory at 30 fps with fast segments, a
  partial occlusion, a full occlusion lasting >= 30 frames, and an exit and re-entry through
  the image border. ``scene_gt`` holds the true pose for every frame, even when occluded or
  out of view.

Labels are exact (:mod:`train.synth.labels`): keypoints are stored from the float64
projection of the stored pose, written with shortest round-trip floats.

Determinism: image ``i`` draws everything from ``np.random.default_rng([seed, i])``; what
workers share (noise bank, colourings, sequence plan) derives from the seed alone, so the
output is byte-identical for any number of workers (:mod:`train.synth.config`).

Modules: config (SynthConfig, seed streams), sampling (rotations, cameras, poses, lights),
backgrounds, occluders, effects (compositing, blur, jitter, noise), job (the worker context),
labels, images (the training-image worker), sequences (plan and per-frame worker), writer
(folders, files, the pool: run_synth).
"""

from train.synth.backgrounds import list_background_images, procedural_background
from train.synth.config import OBJ_ID, SEQ_SPLIT, TRAIN_SPLIT, SynthConfig
from train.synth.job import random_vertex_colors
from train.synth.occluders import occluder_sprite
from train.synth.sampling import canonical_rotation, sample_camera, sample_pose, sample_rotation
from train.synth.sequences import Episode, SequencePlan, plan_episodes, plan_sequence
from train.synth.writer import run_synth

__all__ = [
    "OBJ_ID",
    "SEQ_SPLIT",
    "TRAIN_SPLIT",
    "Episode",
    "SequencePlan",
    "SynthConfig",
    "canonical_rotation",
    "list_background_images",
    "occluder_sprite",
    "plan_episodes",
    "plan_sequence",
    "procedural_background",
    "random_vertex_colors",
    "run_synth",
    "sample_camera",
    "sample_pose",
    "sample_rotation",
]
