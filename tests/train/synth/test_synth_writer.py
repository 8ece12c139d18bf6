"""train/synth/writer: existing splits, bad input, workers beside a busy OpenCV pool, and scripts
with and without a main guard."""

from __future__ import annotations


import pytest

from tracker.errors import KptrackError
from train.synth import SynthConfig, run_synth

def _cfg(out, **kw):
    kw.setdefault("progress", False)
    return SynthConfig(out=str(out), **kw)


def test_existing_split_needs_overwrite(tmp_path):
    run_synth(_cfg(tmp_path, num=2, seed=0, workers=1, width=64, height=64))
    with pytest.raises(KptrackError, match="train_synth: already holds data.*--overwrite"):
        run_synth(_cfg(tmp_path, num=2, seed=0, workers=1, width=64, height=64))
    split = run_synth(_cfg(tmp_path, num=3, seed=1, workers=1, width=64, height=64, overwrite=True))
    assert len(list((split / "000000" / "rgb").iterdir())) == 3
    # a second split beside the first shares models/
    run_synth(_cfg(tmp_path, num=2, seed=0, workers=1, width=64, height=64, split="val_synth"))
    assert (tmp_path / "val_synth" / "000000" / "scene_gt.json").is_file()


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(num=0), "--num"),
        (dict(backgrounds="/nonexistent/bgs"), "--backgrounds"),
        (dict(rot_range_deg=0.0), "--rot-range"),
        (dict(width=8), "--width"),
        (dict(object="/nonexistent/object"), "object"),
        (dict(split="a/b"), "--split"),
        (dict(axis_views=1.5), "--axis-views"),
        (dict(axis_views=0.5, sequence=True, object="bottle"), "--axis-views: draws training views"),
        (dict(axis_views=0.5), "--axis-views: the object .* has no continuous symmetry axis"),  # the drill
        (dict(end_occlusion=-0.1), "--end-occlusion: must be a fraction"),
        (dict(end_occlusion=0.5, sequence=True), "--end-occlusion: occludes training images"),
    ],
)
def test_bad_input(tmp_path, kw, msg):
    with pytest.raises(KptrackError, match=msg):
        run_synth(_cfg(tmp_path, **kw))


def test_empty_background_folder(tmp_path):
    (tmp_path / "bgs").mkdir()
    with pytest.raises(KptrackError, match="holds no images"):
        run_synth(_cfg(tmp_path / "o", num=1, backgrounds=str(tmp_path / "bgs")))


def test_workers_survive_a_busy_opencv_pool_in_the_parent(tmp_path):
    """Regression: a worker forked while OpenCV's thread pool was alive hung on its first
    cv2 threading call (workers now come from a forkserver). Run in a subprocess so a regression
    fails by timeout, not a stuck suite."""
    import subprocess
    import sys

    code = f"""
import cv2, numpy as np
from train.synth import SynthConfig, run_synth
big = np.random.rand(1200, 1200, 3).astype(np.float32)
before = cv2.getNumThreads()
for k in range(3):
    cv2.GaussianBlur(big, (0, 0), 2)
    run_synth(SynthConfig(out=r"{tmp_path}/o{{}}".format(k), num=8, seed=k, workers=2, progress=False, width=64, height=64))
assert cv2.getNumThreads() == before
print("done")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "done" in res.stdout, res.stderr[-2000:]


@pytest.mark.parametrize("guarded", [True, False])
def test_a_script_needs_a_main_guard_and_is_told_so(tmp_path, guarded):
    """A worker imports the calling script (as in any forkserver or spawn pool): with an
    ``if __name__ == "__main__":`` guard the render runs; without one the run ends in one clear
    error naming the guard."""
    import subprocess
    import sys
    import textwrap

    body = f"run_synth(SynthConfig(out=r'{tmp_path}/o', num=4, seed=0, workers=2, progress=False, width=64, height=64))"
    script = tmp_path / "make_data.py"
    script.write_text("from train.synth import SynthConfig, run_synth\n"
                      + ("if __name__ == '__main__':\n" + textwrap.indent(body, "    ") if guarded else body) + "\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    if guarded:
        assert res.returncode == 0, res.stderr[-2000:]
        assert len(list((tmp_path / "o" / "train_synth" / "000000" / "rgb").iterdir())) == 4
    else:
        assert res.returncode != 0
        assert "KptrackError" in res.stderr and '__name__ == "__main__"' in res.stderr

