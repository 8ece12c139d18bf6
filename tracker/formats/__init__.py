"""Data on disk in the formats people already use.

=================  ===========================================================================
module             holds
=================  ===========================================================================
``bop_scene``      BOP scene folders: scene_camera/scene_gt/scene_gt_info JSON, ``load_scene_gt``
``bop_results``    BOP results CSV (``scene_id,im_id,obj_id,score,R,t,time``), checked on reading
``bop_dataset``    ``BopDataset``: every instance of one object in a BOP split
``coco``           COCO keypoints JSON (2D labels)
``modelmeta``      the metadata an exported ONNX model carries
=================  ===========================================================================

This package only re-exports their public names; modules inside it import each other by their
own paths.
"""

from tracker.formats.bop_dataset import BopDataset, BopSample
from tracker.formats.bop_results import (
    RESULTS_HEADER,
    BopResult,
    ResultsCsvWriter,
    read_results_csv,
    write_results_csv,
)
from tracker.formats.bop_scene import (
    EMPTY_BOX,
    IMAGE_EXTS,
    BopCamera,
    BopGt,
    BopGtInfo,
    BopScene,
    SceneGt,
    find_scene_dirs,
    gt_info_from_masks,
    is_scene_dir,
    load_scene_gt,
    mask_bbox,
    read_scene,
    read_scene_camera,
    read_scene_gt,
    read_scene_gt_info,
    write_scene_camera,
    write_scene_gt,
    write_scene_gt_info,
)
from tracker.formats.coco import CocoAnnotation, CocoImage, CocoKeypoints, CocoSample, keypoints_flat, read_coco, write_coco
from tracker.formats.modelmeta import ModelMeta

__all__ = [
    "BopCamera", "BopGt", "BopGtInfo", "BopScene", "SceneGt", "EMPTY_BOX", "IMAGE_EXTS",
    "read_scene_camera", "write_scene_camera", "read_scene_gt", "write_scene_gt", "read_scene_gt_info",
    "write_scene_gt_info", "mask_bbox", "gt_info_from_masks", "is_scene_dir", "find_scene_dirs", "read_scene",
    "load_scene_gt",
    "BopResult", "ResultsCsvWriter", "RESULTS_HEADER", "read_results_csv", "write_results_csv",
    "BopSample", "BopDataset",
    "CocoImage", "CocoAnnotation", "CocoSample", "CocoKeypoints", "keypoints_flat", "read_coco", "write_coco",
    "ModelMeta",
]
