"""labels: 2D keypoint labels on real frames, for ``kptrack annotate`` and ``kptrack eval --labels``.

points (the headless points file), frames (choosing and reading frames), session (the labelling
state machine and magnifier, no window), window (the OpenCV shell over it), store (the labels
folder: COCO keypoints JSON and frames), pose (a pose per labelled frame, BOP scene files, check
pictures), annotate (``run_annotate``).
"""

from tracker.labels.annotate import AnnotateConfig, AnnotateReport, run_annotate
from tracker.labels.points import LabelPoint, read_points, write_points_csv
from tracker.labels.pose import LabelFit, fit_label_pose, label_residuals
from tracker.labels.session import FrameLabels, LabelSession, Magnifier
from tracker.labels.store import LABELS_FILE, labels_path, load_labels, save_labels

__all__ = [
    "AnnotateConfig", "AnnotateReport", "run_annotate", "LabelPoint", "read_points", "write_points_csv",
    "LabelFit", "fit_label_pose", "label_residuals", "FrameLabels", "LabelSession", "Magnifier",
    "LABELS_FILE", "labels_path", "load_labels", "save_labels",
]
