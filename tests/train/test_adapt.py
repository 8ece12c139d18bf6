"""kptrack adapt: rounds stop when the held-out score stops rising, the best round wins, held-out frames never feed labels."""

import json

import pytest

from tracker.errors import KptrackError
from tracker.objects import load_object
from tracker.paths import resolve_model
from tracker.pipeline.infer import OnnxHeatmapModel
from train import adapt as adapt_mod
from train.adapt import AdaptConfig, adapt, headline
from train.synth import SynthConfig, run_synth


@pytest.fixture
def fake_rounds(tmp_path, monkeypatch):
    """Round n's model scores SCORES[n] on the held-out frames; run_round records what it was given."""
    calls = []
    scores = {0: 0.50, 1: 0.60, 2: 0.70, 3: 0.702, 4: 0.9}

    def run_round(cfg, n, model, ckpt, previous, out):
        calls.append((n, str(model), str(ckpt), previous))
        rd = out / f"round_{n}"
        (rd / "pseudo").mkdir(parents=True)
        (rd / "pseudo" / "pseudolabel.json").write_text(json.dumps({"kept": 10 * n}))
        (rd / "model.onnx").write_bytes(b"round %d" % n)
        return rd / "model.onnx", rd / "train" / "last.pt"

    def score_model(cfg, model, obj, scene):
        n = 0 if "round_" not in str(model) else int(str(model).split("round_")[1].split("/")[0])
        return {"model": str(model), "synthetic": {"frac_proj": 0.95, "frac_add": 0.9, "n_scored": 10},
                "heldout": {"pck5": scores[n], "with_pose": 1.0, "median_px": 2.0, "frames": 5}}

    monkeypatch.setattr(adapt_mod, "run_round", run_round)
    monkeypatch.setattr(adapt_mod, "score_model", score_model)
    monkeypatch.setattr(adapt_mod, "_sequence", lambda cfg, out: out / "sequence")
    monkeypatch.setattr(adapt_mod, "resolve_model", lambda m: tmp_path / "start.onnx")
    (tmp_path / "start.onnx").write_bytes(b"start")
    (tmp_path / "start.pt").write_bytes(b"ckpt")
    (tmp_path / "held.json").write_text("{}")
    return calls


def test_rounds_stop_when_the_held_out_score_stops_rising(tmp_path, fake_rounds):
    cfg = AdaptConfig(videos=("clip.mp4",), out=str(tmp_path / "ad"), checkpoint=str(tmp_path / "start.pt"),
                      heldout=str(tmp_path / "held.json"), rounds=5, min_gain=0.005)
    doc = adapt(cfg)
    # round 3 gains 0.002 <= 0.005: stop there (round 4 would have been better, but is never run)
    assert [r["round"] for r in doc["rounds"]] == [0, 1, 2, 3] and [c[0] for c in fake_rounds] == [1, 2, 3]
    assert doc["best"] == 3 and "round 3" in doc["stopped"]
    assert (tmp_path / "ad" / "best.onnx").read_bytes() == b"round 3"
    # each round starts from the last one's model and checkpoint and passes its labels on for the agreement check
    assert fake_rounds[0][1].endswith("start.onnx") and fake_rounds[0][3] is None
    assert "round_1" in fake_rounds[1][1] and fake_rounds[1][3] == tmp_path / "ad" / "round_1" / "pseudo"
    saved = json.loads((tmp_path / "ad" / "adapt.json").read_text())
    assert [r["headline"] for r in saved["rounds"]] == [0.5, 0.6, 0.7, 0.702] and saved["rounds"][2]["labels"] == 20


def test_held_out_frames_are_excluded_from_every_round(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(adapt_mod, "pseudolabel", lambda c: seen.append(c) or (_ for _ in ()).throw(KeyboardInterrupt))
    cfg = AdaptConfig(videos=("a.mp4", "b.mp4"), out=str(tmp_path / "ad"), checkpoint="x.pt", heldout="held.json")
    with pytest.raises(KeyboardInterrupt):
        adapt_mod.run_round(cfg, 1, tmp_path / "m.onnx", tmp_path / "c.pt", None, tmp_path / "ad")
    assert seen[0].exclude == ("held.json", "") and seen[0].videos == ("a.mp4", "b.mp4")


def test_headline_and_bad_input(tmp_path):
    assert headline({"heldout": {"pck5": 0.4}, "synthetic": {"frac_proj": 0.9}}) == 0.4
    assert headline({"synthetic": {"frac_proj": 0.9}}) == 0.9  # without held-out labels: the synthetic 2D rate
    with pytest.raises(KptrackError, match="--checkpoint .*not found"):
        adapt(AdaptConfig(videos=("a.mp4",), out=str(tmp_path / "o"), checkpoint=str(tmp_path / "none.pt")))
    (tmp_path / "c.pt").write_bytes(b"")
    (tmp_path / "taken").mkdir()
    with pytest.raises(KptrackError, match="not an adapt folder"):
        adapt(AdaptConfig(videos=("a.mp4",), out=str(tmp_path / "taken"), checkpoint=str(tmp_path / "c.pt")))


def test_round_scores_come_from_the_real_scorers(tmp_path):
    """heldout_score (tracker/eval/labelled) and sequence_score (the demo's headline) on a short rendered sequence."""
    scene = run_synth(SynthConfig(object="default", out=tmp_path / "s", sequence=True, frames=40, seed=1, progress=False))
    labels = json.loads((scene / "keypoints_coco.json").read_text())  # the truth, as if clicked: frames 10, 20, 30
    labels["images"] = [im for im in labels["images"] if im["id"] in (10, 20, 30)]
    labels["annotations"] = [a for a in labels["annotations"] if a["image_id"] in (10, 20, 30)]
    (tmp_path / "held.json").write_text(json.dumps(labels))
    obj, model = load_object("default"), OnnxHeatmapModel(resolve_model(None), device="cpu", threads=2)
    h = adapt_mod.heldout_score(model, obj, str(scene / "video.mp4"), None, str(tmp_path / "held.json"))
    assert h["frames"] == 3 and h["with_pose"] == 1.0 and h["pck5"] >= 0.8 and h["median_px"] < 5
    s = adapt_mod.sequence_score(model, obj, scene)
    assert s["n_scored"] > 20 and s["frac_proj"] >= 0.8
