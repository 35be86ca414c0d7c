"""Step/epoch timing and statistics on a fake clock: warm-up exclusion, median, IQR, examples/s."""

import pytest

from kerasopt.bench.stats import EpochRecorder, StepRecorder, epoch_summary, percentile, summarize


def fake_clock(times):
    it = iter(times)
    return lambda: next(it)


@pytest.mark.parametrize("values, q, expected", [
    ([5.0], 50, 5.0),
    ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
    ([1.0, 2.0, 3.0, 4.0], 25, 1.75),   # position 0.75 between 1 and 2
    ([1.0, 2.0, 3.0, 4.0], 75, 3.25),
    ([4.0, 1.0, 3.0, 2.0], 0, 1.0),     # order does not matter
    ([4.0, 1.0, 3.0, 2.0], 100, 4.0),
    ([10.0, 20.0, 30.0, 40.0, 1000.0], 50, 30.0),  # an outlier does not move the median
])
def test_percentile_linear_interpolation(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="q=101"):
        percentile([1.0], 101)


def test_summarize_hand_computed():
    # steps of 100, 300, 200, 200 ms with 32 examples each: 128 examples in 0.8 s
    s = summarize([0.1, 0.3, 0.2, 0.2], [32, 32, 32, 32], warmup_steps=2, warmup_s=7.5)
    assert s.steps == 4 and s.examples == 128
    assert s.seconds == pytest.approx(0.8)
    assert s.examples_per_sec == pytest.approx(160.0)
    assert s.median_ms == pytest.approx(200.0)
    assert s.p25_ms == pytest.approx(175.0) and s.p75_ms == pytest.approx(225.0)
    assert s.iqr_ms == pytest.approx(50.0)
    assert s.mean_ms == pytest.approx(200.0)
    assert (s.min_ms, s.max_ms) == (pytest.approx(100.0), pytest.approx(300.0))
    assert (s.warmup_steps, s.warmup_s) == (2, 7.5)


def test_examples_per_sec_is_total_over_total_not_median():
    # a slow step costs what it costs: 3 x 10 ms + 1 x 970 ms = 1 s for 40 examples
    s = summarize([0.01, 0.01, 0.01, 0.97], [10, 10, 10, 10])
    assert s.median_ms == pytest.approx(10.0)
    assert s.examples_per_sec == pytest.approx(40.0)


def test_summarize_needs_measured_steps():
    with pytest.raises(ValueError, match="every step was warm-up"):
        summarize([], [])


def test_step_recorder_excludes_warmup_and_epoch_gaps():
    # epoch 1: begin at 0, step ends at 10 (compile), 11, 13; validation until 50;
    # epoch 2: begin at 50, step ends at 52, 53.
    r = StepRecorder(warmup=1, clock=fake_clock([0.0, 10.0, 11.0, 13.0, 50.0, 52.0, 53.0]))
    r.epoch_begin()
    for _ in range(3):
        r.batch_begin()
        r.batch_end(8)
    r.epoch_begin()
    for _ in range(2):
        r.batch_begin()
        r.batch_end(8)
    assert r.warmup_s == 10.0
    assert r.durations == [1.0, 2.0, 2.0, 1.0]  # the 13 -> 50 gap (validation) is not a step
    s = r.stats()
    assert s.steps == 4 and s.examples == 32 and s.warmup_steps == 1
    assert s.examples_per_sec == pytest.approx(32 / 6.0)
    assert s.median_ms == pytest.approx(1500.0)


def test_step_recorder_warmup_longer_than_run():
    r = StepRecorder(warmup=5, clock=fake_clock([0.0, 1.0, 2.0]))
    r.epoch_begin()
    r.batch_begin()
    r.batch_end(4)
    r.batch_begin()
    r.batch_end(4)
    assert r.durations == [] and r.warmup_s == 2.0
    with pytest.raises(ValueError, match="warm-up"):
        r.stats()


def test_step_recorder_rejects_negative_warmup():
    with pytest.raises(ValueError, match="warmup=-1"):
        StepRecorder(warmup=-1)


def test_epoch_recorder_train_and_epoch_times_and_time_to_accuracy():
    # train begin 0; epoch 1: 0 -> validation at 6 -> end 7; epoch 2: 7 -> 9 -> 10; epoch 3 (no validation): 10 -> 12
    clock = fake_clock([0.0, 0.0, 6.0, 7.0, 7.0, 9.0, 10.0, 10.0, 12.0])
    r = EpochRecorder(clock=clock)
    r.train_begin()
    r.epoch_begin(); r.test_begin(); r.epoch_end(0, {"val_accuracy": 0.9, "note": "x"})  # noqa: E702
    r.epoch_begin(); r.test_begin(); r.epoch_end(1, {"val_accuracy": 0.995})  # noqa: E702
    r.epoch_begin(); r.epoch_end(2, {"val_accuracy": 0.999})  # noqa: E702
    assert [(e.train_s, e.epoch_s, e.since_start_s) for e in r.epochs] == [(6.0, 7.0, 7.0), (2.0, 3.0, 10.0),
                                                                           (2.0, 2.0, 12.0)]
    assert r.epochs[0].logs == {"val_accuracy": 0.9}  # non-numbers dropped
    assert r.time_to("val_accuracy", 0.99) == (10.0, 2)
    assert r.time_to("val_accuracy", 0.9999) is None


def test_epoch_recorder_keeps_first_start_across_fit_calls():
    r = EpochRecorder(clock=fake_clock([1.0, 5.0, 6.0]))
    r.train_begin()
    r.train_begin()  # a second fit call (resume, NaN retry) does not restart the clock (nor read it)
    r.epoch_begin()
    r.epoch_end(0, {})
    assert r.epochs[0].since_start_s == 5.0


def test_epoch_summary_excludes_warmup_epochs():
    recs = [{"train_s": 30.0, "epoch_s": 31.0}, {"train_s": 2.0, "epoch_s": 2.5}, {"train_s": 4.0, "epoch_s": 4.5},
            {"train_s": 2.5, "epoch_s": 3.0}]
    s = epoch_summary(recs, 100)
    assert s["epochs"] == 3
    assert s["examples_per_sec"] == pytest.approx(40.0)  # median of 50, 25, 40
    assert s["train_s_median"] == pytest.approx(2.5)
    assert s["epoch_s_median"] == pytest.approx(3.0)
    assert s["first_epoch_s"] == 31.0
    with pytest.raises(ValueError, match="no epochs after"):
        epoch_summary(recs[:1], 100)
