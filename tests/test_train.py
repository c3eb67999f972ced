"""Smoke training on a small subset: it learns, it is deterministic, and resume loses nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_edge.data import Mnist
from mnist_edge.models import load_model
from mnist_edge.train import ProgressHooks, default_config, train


@pytest.fixture(scope="module")
def small(mnist):
    return Mnist(
        train=mnist.train.take(4096),
        validation=mnist.validation.take(256),
        test=mnist.test.take(256),
        source="subset of the bundled MNIST",
    )


def weights(model):
    return [w.copy() for w in model.get_weights()]


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ["flat", "conv2d"])
def test_smoke_training_learns_and_writes_a_run_record(tmp_path, small, name):
    config = default_config(name, epochs=3, batch_size=64)
    result = train(config, small, tmp_path)
    record = json.loads(result.record_path.read_text())
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3]
    # 10 classes: chance is 10%; three epochs on 4,096 images must do far better.
    assert record["test_accuracy"] > 0.8
    assert record["config"]["epochs"] == 3 and record["seed"] == 0
    assert "tensorflow" in record["versions"] and record["parameters"] == result.model.count_params()
    loaded = load_model(str(result.model_path))
    assert_same_weights(weights(loaded), weights(result.model))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, small):
    config = default_config("flat", epochs=1, batch_size=64)
    first = weights(train(config, small, tmp_path / "a").model)
    second = weights(train(config, small, tmp_path / "b").model)
    assert_same_weights(first, second)
    other = weights(
        train(default_config("flat", epochs=1, batch_size=64, seed=1), small, tmp_path / "c").model
    )
    assert not np.array_equal(first[0], other[0])


class Interrupt(ProgressHooks):
    """Simulates Ctrl-C in the middle of the second epoch."""

    def epoch_started(self, epoch, epochs, steps):
        self.epoch = epoch

    def batch_finished(self, step, loss):
        if self.epoch == 1 and step == 5:
            raise KeyboardInterrupt


def test_resume_after_an_interrupted_epoch_matches_an_uninterrupted_run(tmp_path, small):
    config = default_config("conv2d", epochs=2, batch_size=64)
    uninterrupted = weights(train(config, small, tmp_path / "straight").model)

    with pytest.raises(KeyboardInterrupt):
        train(config, small, tmp_path / "resumed", progress=Interrupt())
    state = json.loads((tmp_path / "resumed" / "conv2d" / "checkpoints" / "state.json").read_text())
    assert len(state["history"]) == 1  # only the interrupted epoch is lost
    resumed = train(config, small, tmp_path / "resumed", resume=True)
    assert [h["epoch"] for h in resumed.record["history"]] == [1, 2]
    assert_same_weights(weights(resumed.model), uninterrupted)


def test_resume_from_a_damaged_checkpoint_state_is_a_clear_error(tmp_path, small):
    from mnist_edge.errors import UserError

    config = default_config("flat", epochs=1, batch_size=64)
    train(config, small, tmp_path)
    (tmp_path / "flat" / "run.json").unlink()  # not finished, so resume reads the checkpoint state
    (tmp_path / "flat" / "checkpoints" / "state.json").write_text("not json")
    with pytest.raises(UserError, match="state.json: unreadable"):
        train(config, small, tmp_path, resume=True)
    (tmp_path / "flat" / "checkpoints" / "state.json").write_text('{"history": []}')  # parses, lacks keys
    with pytest.raises(UserError, match="state.json: damaged \\(no config, seconds\\)"):
        train(config, small, tmp_path, resume=True)


def test_a_record_from_before_long_flags_reads_as_the_run_it_was():
    """A run record written before ``long_flag_share`` and ``varied_flag_share`` existed trained
    without them: flat's still matches flat's defaults (no retraining, its checkpoint resumes),
    conv2d's does not, and fine-tuning such a conv2d keeps the recipe it was trained with."""
    from mnist_edge.train import config_record, fine_tune_config, recorded_config

    added = ("long_flag_share", "varied_flag_share")
    for model, matches in (("flat", True), ("conv2d", False)):
        old = config_record(default_config(model))
        for name in added:
            del old[name]
        assert (recorded_config(old) == config_record(default_config(model))) is matches
    old = config_record(default_config("conv2d"))
    for name in added:
        del old[name]
    tuned = fine_tune_config("conv2d", [], old)
    assert tuned.long_flag_share == tuned.varied_flag_share == 0.0
    assert default_config("conv2d").long_flag_share > 0
