"""Tests of the topography training script (argument checks, outputs, reproducibility), tiling and the ratio CI.

Training runs here are tiny (16² tiles, width 4, a few steps) and the post-training validation (24 tiles,
about half a minute) is replaced by a stub; :func:`workbench.topography.train.validate` is tested on its own.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

import workbench.io
import workbench.topography.train as T
from workbench.errors import InputError
from workbench.topography.model import load_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--n-proc", "2", "--n-real", "0", "--renders", "1", "--size", "16", "--batch", "1", "--width", "4",
        "--threads", "1"]


@pytest.fixture(autouse=True)
def _stub_validation(monkeypatch):
    """Replace the 24-tile validation by a stub that records its keyword arguments; clear the loader cache."""
    calls: list[dict] = []

    def fake_validate(net, *args, **kwargs):
        calls.append(kwargs)
        return {"upsample": 1.0, "raw": 1.0}

    monkeypatch.setattr(T, "validate", fake_validate)
    load_network.cache_clear()
    yield calls
    load_network.cache_clear()


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if the script gets as far as building the training data."""

    def refuse(*args, **kwargs):
        raise AssertionError("the training data were built: the bad argument was not caught first")

    monkeypatch.setattr(T, "build_dataset", refuse)


def _state(path):
    import torch

    return torch.load(path, weights_only=True)


def _record(pt: Path) -> dict:
    return json.loads(pt.with_suffix(".json").read_text())


# ------------------------------------------------------------------------------------- outputs (defects 1, 2)
def test_a_failed_record_write_keeps_the_old_pair_loadable(tmp_path, monkeypatch, capsys):
    out = tmp_path / "w.pt"
    assert T.main(TINY + ["--minutes", "0.001", "--seed", "0", "--out", str(out)]) == 0
    first = _record(out)["sha256"]
    real_write_text = Path.write_text

    def disk_full(self, *args, **kwargs):
        if ".json" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full)
    assert T.main(TINY + ["--minutes", "0.001", "--seed", "1", "--out", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    monkeypatch.undo()
    load_network.cache_clear()
    _, record = load_network(str(out))  # the first run's pair, untouched
    assert record["sha256"] == first == workbench.io.sha256_file(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json", "w.pt"]  # no temporary files left


def test_a_failed_record_rename_restores_the_old_weights(tmp_path, monkeypatch):
    out = tmp_path / "w.pt"
    assert T.main(TINY + ["--minutes", "0.001", "--seed", "0", "--out", str(out)]) == 0
    first = workbench.io.sha256_file(out)
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if str(dst).endswith(".json"):
            raise OSError(errno.EIO, "Input/output error", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    assert T.main(TINY + ["--minutes", "0.001", "--seed", "1", "--out", str(out)]) == 2
    monkeypatch.undo()
    load_network.cache_clear()
    _, record = load_network(str(out))
    assert workbench.io.sha256_file(out) == first == record["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json", "w.pt"]


def test_the_record_sits_beside_the_weights_and_the_weights_hold_their_config(tmp_path):
    out = tmp_path / "exp.pt.d" / "w.pt"  # ".pt" inside a folder name must not move the record elsewhere
    assert T.main(TINY + ["--minutes", "0.001", "--out", str(out)]) == 0
    assert out.with_suffix(".json").is_file() and not (tmp_path / "exp.json.d").exists()
    assert _state(out)["_config"] == {"width": 4, "in_channels": 9}
    net, record = load_network(str(out))
    assert net.config["width"] == 4 and record["sha256"] == workbench.io.sha256_file(out)


# ---------------------------------------------------------------------------------- reproducibility (defect 3)
def test_steps_make_training_reproducible(tmp_path):
    outs = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for out in outs:
        assert T.main(TINY + ["--steps", "2", "--seed", "3", "--out", str(out)]) == 0
    a, b = (_state(p) for p in outs)
    assert a.keys() == b.keys()
    for k in a:
        if k != "_config":
            assert a[k].equal(b[k]), k
    rec = _record(outs[0])
    assert rec["training"]["steps"] == 2 and rec["training"]["max_steps"] == 2
    assert rec["sha256"] == _record(outs[1])["sha256"]


def test_snapshots_are_saved_atomically_into_a_new_folder(tmp_path):
    from workbench.validate import load_weights

    snap = tmp_path / "new" / "folder" / "snap.pt"
    assert T.main(TINY + ["--steps", "100", "--snapshot", str(snap), "--out", str(tmp_path / "w.pt")]) == 0
    assert load_weights(snap)["_config"] == {"width": 4, "in_channels": 9}
    assert [p.name for p in snap.parent.iterdir()] == ["snap.pt"]


# ------------------------------------------------------------------------------ argument checks (defects 4, 5)
@pytest.mark.parametrize(("args", "words"), [
    (["--size", "30"], "multiple of 8"),
    (["--size", "0"], "multiple of 8"),
    (["--size", "800", "--n-real", "4"], "--size"),
    (["--north-fraction", "0", "--size", "600", "--n-real", "4"], "--size"),
    (["--north-fraction", "1.5"], "--north-fraction"),
    (["--el-min", "0"], "--el-min"),
    (["--el-min", "10", "--el-max", "5"], "--el-max"),
    (["--el-max", "95"], "--el-max"),
    (["--threads", "0"], "--threads"),
    (["--batch", "0"], "--batch"),
    (["--renders", "0"], "--renders"),
    (["--n-proc", "-1"], "--n-proc"),
    (["--n-proc", "0", "--n-real", "0"], "no training"),
    (["--minutes", "0"], "--minutes"),
    (["--lr", "nan"], "--lr"),
    (["--steps", "0"], "--steps"),
    (["--out", "weights.bin"], ".pt"),
])
def test_bad_arguments_are_refused_before_any_work(args, words, tmp_path, no_data, capsys):
    assert T.main(TINY + ["--out", str(tmp_path / "w.pt")] + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and words in err, err


def test_n_proc_beyond_the_training_seeds_is_refused(tmp_path, monkeypatch, no_data, capsys):
    monkeypatch.setattr(T, "TRAIN_SEEDS", range(0, 5))  # a scaled-down stand-in for range(0, 5000)
    assert T.main(TINY + ["--n-proc", "8", "--out", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert "--n-proc" in err and "5" in err


def test_unwritable_outputs_are_refused_before_any_work(tmp_path, no_data, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    for args in (["--out", str(afile / "w.pt")], ["--snapshot", str(afile / "s.pt"), "--out", str(tmp_path / "w.pt")]):
        assert T.main(TINY + args) == 2
        assert capsys.readouterr().err.startswith("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no folder or file was made


def test_init_weights_of_another_width_are_refused_before_any_work(tmp_path, no_data, capsys):
    import torch

    from workbench.topography.net import TopoUNet

    init = tmp_path / "w6.pt"
    net = TopoUNet(width=6)
    torch.save({"_config": net.config, **net.state_dict()}, init)
    assert T.main(TINY + ["--init", str(init), "--out", str(tmp_path / "w.pt")]) == 2  # TINY has --width 4
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--width 6" in err
    assert T.main(TINY + ["--init", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "w.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ validation (defect 9)
def test_validation_samples_the_training_sun_elevations(tmp_path, monkeypatch, _stub_validation):
    assert T.main(TINY + ["--minutes", "0.001", "--el-min", "2", "--el-max", "7", "--out", str(tmp_path / "w.pt")]) == 0
    assert _stub_validation[-1]["el_min"] == 2.0 and _stub_validation[-1]["el_max"] == 7.0
    assert _record(tmp_path / "w.pt")["metrics"]["validation_sun_elevation_deg"] == [2.0, 7.0]
    monkeypatch.undo()  # the real validate, on 3 small tiles
    import torch

    from workbench.topography.net import TopoUNet

    seen = []
    real_make_pair = T.make_pair

    def spy(z, ps, az, el, rng, *args, **kwargs):
        seen.append(el)
        return real_make_pair(z, ps, az, el, rng, *args, **kwargs)

    monkeypatch.setattr(T, "make_pair", spy)
    torch.manual_seed(0)
    res = T.validate(TopoUNet(width=4).eval(), n=3, size=16, el_min=2.0, el_max=3.0)
    assert len(seen) == 3 and all(2.0 <= e <= 3.0 for e in seen) and np.isfinite(res["raw"])


def test_validation_terrains_are_never_training_or_test_terrains(monkeypatch):
    """validate() and low_sun_validation() draw procedural seeds from VAL_SEED0 up, below TEST_SEED0."""
    import torch

    monkeypatch.undo()  # the real validate (the autouse fixture stubs it)
    seen = []
    real_tile = T.procedural_tile

    def spy(seed, size):
        seen.append(seed)
        return real_tile(seed, size)

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(T, "procedural_tile", spy)
    res = T.validate(lambda x: torch.zeros((1, 1) + tuple(x.shape[-2:])), n=3, size=16)  # a flat relief
    assert seen == [T.VAL_SEED0 + k for k in range(3)] and np.isfinite(res["raw"])
    monkeypatch.setattr(T, "real_crops", stop)  # the procedural set is drawn first: stop before LOLA and the network
    with pytest.raises(Stop):
        T.low_sun_validation(n=3, size=16)
    assert seen[3:] == [T.VAL_SEED0 + 100 + k for k in range(3)]
    assert all(T.VAL_SEED0 <= s < T.TEST_SEED0 for s in seen) and not set(seen) & set(T.TRAIN_SEEDS)


# ------------------------------------------------------------------------------------------ real crops (defect 7)
def test_north_polar_crops_never_open_the_global_dem(monkeypatch):
    import xarray as xr

    import workbench.catalog

    opened = []
    north = xr.Dataset({"elevation": (("y", "x"), np.random.default_rng(0).normal(size=(40, 40)))})

    def fake_open(dataset_id, **kwargs):
        opened.append(dataset_id)
        if dataset_id != "lola_ldem_north_1600m":
            raise AssertionError(f"{dataset_id} opened but not needed")
        return north

    monkeypatch.setattr(workbench.catalog, "open_dataset", fake_open)
    crops = T.real_crops(3, 16, np.random.default_rng(99), north_fraction=1.0)
    assert opened == ["lola_ldem_north_1600m"] and len(crops) == 3 and crops[0][1] == 1600.0


# ------------------------------------------------------------------------------------------- tiles (defect 6)
@pytest.mark.parametrize(("tile", "overlap", "words"), [
    (32, -8, "overlap must be"), (0, 0, "tile size must be"), (-5, 0, "tile size must be"),
    (32, 32, "overlap must be"), (200, 300, "overlap must be"), (32.5, 8, "tile size must be"),
])
def test_blend_tiles_refuses_bad_tiling(tile, overlap, words):
    """A negative overlap gave NaNs, tile <= 0 a message about the overlap; each now names what is wrong."""
    from workbench.topography.tiles import blend_tiles

    field = np.zeros((100, 100))
    with pytest.raises(InputError, match=words):
        blend_tiles(lambda win: field[win], field.shape, tile=tile, overlap=overlap)


# --------------------------------------------------------------------------------------- ratio CI (defect 8)
def test_ratio_ci_contains_the_shown_estimate_and_refuses_no_tiles():
    from workbench.topography.bench import ratio_ci

    lo, hi = ratio_ci([1.23456], [1.0])
    assert lo <= round(1.23456, 4) <= hi and hi - lo <= 2e-4
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(2, 9))
        a, b = rng.lognormal(0, 0.5, n), rng.lognormal(0.5, 0.5, n)
        lo, hi = ratio_ci(a, b, n_boot=200)
        assert lo <= round(a.mean() / b.mean(), 4) <= hi
    with pytest.raises(InputError, match="tile"):
        ratio_ci([], [])
    with pytest.raises(InputError, match="tile"):
        ratio_ci([1.0, 2.0], [1.0])
