"""Symmetry detection: finds the box's three half turns and the cylinder's axis, respects colours,
and proposes nothing for the asymmetric drill; the command prints and proposes."""

import json

import numpy as np

from tracker.cli import main
from tracker.objects.drill import default_mesh
from tracker.objects.primitives import box_mesh, cylinder_mesh
from tracker.objects.symmetry_detect import accepted_symmetries, detect_symmetries


def _axes(cands, kind):
    return [np.round(np.abs(c.axis), 3).tolist() for c in cands if c.accepted and c.kind == kind]


def test_box_three_half_turns():
    m = box_mesh((80.0, 60.0, 40.0))
    cands = detect_symmetries(m.vertices, m.faces)  # geometry only
    assert sorted(_axes(cands, "discrete")) == [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    assert all(c.order == 2 for c in cands if c.accepted) and not _axes(cands, "continuous")
    disc, cont = accepted_symmetries(cands)
    assert len(disc) == 3 and cont == []
    # with one colour per face, no turn keeps the appearance
    coloured = detect_symmetries(m.vertices, m.faces, m.vertex_colors)
    assert not any(c.accepted for c in coloured) and all(c.colour > 20 for c in coloured)


def test_cube_closes_the_rotation_group():
    m = box_mesh((50.0, 50.0, 50.0))
    disc, _ = accepted_symmetries(detect_symmetries(m.vertices, m.faces))
    assert len(disc) == 23  # the 24 rotations of a cube, identity left out


def test_cylinder_axis_and_flip_plain_colour():
    m = cylinder_mesh(30.0, 100.0)
    plain = np.full((len(m.vertices), 3), 128, np.uint8)
    cands = detect_symmetries(m.vertices, m.faces, plain)
    assert _axes(cands, "continuous") == [[0, 0, 1]]
    disc, cont = accepted_symmetries(cands)
    assert len(cont) == 1 and np.allclose(np.abs(cont[0]["axis"]), [0, 0, 1])
    assert len(disc) == 1 and np.isclose(np.trace(disc[0][:3, :3]), -1.0)  # one half turn across the axis
    # the default colours (hue ramp around the side, different caps) break both
    assert not any(c.accepted for c in detect_symmetries(m.vertices, m.faces, m.vertex_colors))


def test_no_false_symmetry_on_the_drill():
    m = default_mesh()
    for cols in (None, m.vertex_colors):
        cands = detect_symmetries(m.vertices, m.faces, cols)
        assert cands and not any(c.accepted for c in cands)
        assert min(c.geometry_mm for c in cands) > 3.0  # far beyond the 1.7 mm tolerance


def test_command_prints_candidates_and_writes_a_proposal(tmp_path, capsys):
    out = tmp_path / "box"
    assert main(["object", "init", "--box", "80x60x40", "--detect-symmetry", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "geometry residual" in text and "colour residual" in text
    prop = json.loads((out / "symmetries_proposed.json").read_text())
    assert prop == {"1": {}}  # coloured faces: nothing accepted
    assert not (out / "model.ply").exists()
    assert main(["object", "init", "--box", "80x60x40", "--symmetry", "box", "--out", str(out)]) == 0
    info = json.loads((out / "models_info.json").read_text())["1"]
    assert len(info["symmetries_discrete"]) == 3
