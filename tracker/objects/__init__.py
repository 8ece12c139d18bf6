"""Object models: the CAD mesh, its colours or texture, its 3D keypoints and BOP model info.

=================  ===========================================================================
module             holds
=================  ===========================================================================
``model``          :class:`ObjectModel` (immutable) and :func:`mesh_diameter` (BOP diameter)
``mesh_io``        :func:`read_mesh` (PLY/OBJ/STL/GLB, colours, textures) and :func:`write_ply`
``texture``        :func:`sample_texture`, texture image reading, atlas packing
``keypoints``      automatic keypoints (PVNet FPS + centroid), the on-object check, keypoints.json
``object_dir``     :func:`load_object`, :func:`write_object_dir`, :func:`init_object`, the file format
``drill``          the built-in procedural drill, :func:`default_object`
=================  ===========================================================================

This package only re-exports their public names, so ``from tracker.objects import load_object``
works; modules inside it import each other by their own paths.
"""

from tracker.objects.drill import default_object
from tracker.objects.keypoints import (
    auto_keypoints,
    check_keypoints_on_object,
    farthest_point_sampling,
    keypoint_surface_distance,
    mesh_centroid,
    sample_surface,
)
from tracker.objects.mesh_io import MeshData, read_mesh, write_ply
from tracker.objects.model import ObjectModel, mesh_diameter
from tracker.objects.object_dir import init_object, keypoints_dict, load_object, models_info_dict, write_object_dir
from tracker.objects.texture import sample_texture

__all__ = [
    "ObjectModel", "MeshData", "load_object", "default_object", "init_object", "write_object_dir", "read_mesh", "write_ply",
    "auto_keypoints", "mesh_diameter", "keypoint_surface_distance", "check_keypoints_on_object",
    "farthest_point_sampling", "sample_surface", "sample_texture", "mesh_centroid", "models_info_dict", "keypoints_dict",
]
