"""BOP results CSV: round trip, streaming, and the rows it rejects (malformed, or claiming a
pose that is not one)."""

from __future__ import annotations

import numpy as np
import pytest
from kp_bopfiles import random_rot

from tracker.errors import KptrackError
from tracker.formats import bop_results


def test_results_csv_round_trip_and_streaming(tmp_path):
    rng = np.random.default_rng(1)
    rows = [bop_results.BopResult(48, i, 1, 0.5 + i / 10, random_rot(rng), rng.normal(size=3) * 300, 0.0123) for i in range(4)]
    p = tmp_path / "res.csv"
    w = bop_results.ResultsCsvWriter(p)
    w.write(rows[0])
    # flushed per row: another reader sees the row before close
    assert p.read_text().splitlines()[0] == "scene_id,im_id,obj_id,score,R,t,time"
    assert len(bop_results.read_results_csv(p)) == 1
    for r in rows[1:]:
        w.write(r)
    w.close()
    back = bop_results.read_results_csv(p)
    assert len(back) == 4
    for a, b in zip(back, rows):
        assert (a.scene_id, a.im_id, a.obj_id, a.score, a.time) == (b.scene_id, b.im_id, b.obj_id, b.score, b.time)
        assert np.array_equal(a.R_m2c, b.R_m2c) and np.array_equal(a.t_m2c, b.t_m2c)
    line = p.read_text().splitlines()[1].split(",")
    assert len(line[4].split()) == 9 and len(line[5].split()) == 3


def test_results_csv_bad_input(tmp_path):
    with pytest.raises(KptrackError, match="not found"):
        bop_results.read_results_csv(tmp_path / "none.csv")
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(KptrackError, match="bad.csv.*header"):
        bop_results.read_results_csv(p)
    p.write_text("scene_id,im_id,obj_id,score,R,t,time\n1,2,1,0.9,1 0 0 0 1 0 0 0,0 0 1,0.1\n")
    with pytest.raises(KptrackError, match=r"bad.csv:2"):
        bop_results.read_results_csv(p)


HEADER = "scene_id,im_id,obj_id,score,R,t,time\n"
GOOD = "1,0,1,0.9,1 0 0 0 1 0 0 0 1,0 0 500,0.1\n"


@pytest.mark.parametrize("R,t,expect", [
    ("1 0 0 0 1 0 0 0 1", "0 nan 500", "NaN or infinity"),
    ("1 0 0 0 1 0 0 0 1", "0 0 inf", "NaN or infinity"),
    ("nan 0 0 0 1 0 0 0 1", "0 0 500", "NaN or infinity"),
    ("5 0 0 0 5 0 0 0 5", "0 0 500", "not a rotation"),  # 5 I: scaled
    ("1 0 0 0 1 0 0 0 -1", "0 0 500", "not a rotation"),  # a reflection, det -1
    ("1 0.1 0 0 1 0 0 0 1", "0 0 500", "not a rotation"),  # sheared
    ("0 0 0 0 0 0 0 0 0", "0 0 0", "not a rotation"),
])
def test_results_csv_rejects_a_claimed_pose_that_is_not_one(tmp_path, R, t, expect):
    p = tmp_path / "poses.csv"
    p.write_text(HEADER + GOOD + GOOD.replace(",0,", ",1,", 1) + f"1,2,1,0.7,{R},{t},0.1\n")
    with pytest.raises(KptrackError, match=expect) as e:
        bop_results.read_results_csv(p)
    msg = str(e.value)
    assert f"{p}:4:" in msg and "score <= 0" in msg  # the file, the line, the fix


def test_results_csv_keeps_rows_without_a_pose_and_rounded_rotations(tmp_path):
    p = tmp_path / "poses.csv"
    rows = [
        "1,0,1,0,0 0 0 0 0 0 0 0 0,0 0 0,0.1",  # score 0: no estimate, whatever R and t hold
        "1,1,1,0.0,nan nan nan nan nan nan nan nan nan,nan nan nan,-1",
        "1,2,1,-1,5 0 0 0 5 0 0 0 5,0 0 500,-1",
        "1,3,1,nan,5 0 0 0 5 0 0 0 5,0 0 500,-1",  # NaN score: not > 0, no estimate
        # a rotation printed with 6 decimals (other methods' CSVs) is still a rotation
        "1,4,1,0.8,0.707107 -0.707107 0 0.707107 0.707107 0 0 0 1,10 -20 600,0.02",
    ]
    p.write_text(HEADER + "\n".join(rows) + "\n")
    back = bop_results.read_results_csv(p)
    assert [r.im_id for r in back] == [0, 1, 2, 3, 4]
    assert np.isnan(back[1].t_m2c).all() and back[4].score == 0.8
