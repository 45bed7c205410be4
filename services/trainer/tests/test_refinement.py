"""refinement.py: the rolling-window threshold, warm-up and flags of SPA self-refinement (docs/algorithm.md §3)."""

from __future__ import annotations

import pytest
import torch

from alignment_trainer.training.refinement import RefinementConfig, SelfRefinement, detection_margin


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_threshold_is_the_linear_percentile_of_the_most_recent_window():
    # window 5, K = 25: position p = 0.25 * (5 - 1) = 1, i.e. the 2nd smallest of the last 5 samples.
    sr = SelfRefinement(RefinementConfig(k_percentile=25, window=5, warmup_fraction=0.0), total_steps=10)
    assert sr.threshold() is None
    sr.flag(t([10.0, 20.0, 30.0]), step=0)
    # [10, 20, 30]: p = 0.5 -> 10 + 0.5 * (20 - 10)
    assert sr.threshold() == pytest.approx(15.0)
    sr.flag(t([40.0, 50.0, 60.0]), step=1)
    # Window keeps the last 5: [20, 30, 40, 50, 60] (10 fell out) -> 2nd smallest = 30.
    assert sr.threshold() == pytest.approx(30.0)
    sr.flag(t([-100.0]), step=2)
    # [30, 40, 50, 60, -100] -> sorted [-100, 30, 40, 50, 60] -> 30.
    assert sr.threshold() == pytest.approx(30.0)
    sr.flag(t([0.0, 1.0]), step=3)
    # [50, 60, -100, 0, 1] -> sorted [-100, 0, 1, 50, 60] -> 0.
    assert sr.threshold() == pytest.approx(0.0)


def test_k10_over_50_samples_and_the_released_codes_rule():
    """Margins 1..50: linear percentile gives 0.1·5 + 0.9·6 = 5.9; the released code's mean of the 6th and 7th
    smallest would give 6.5. This implementation uses the former (documented in refinement.py)."""
    sr = SelfRefinement(RefinementConfig(), total_steps=100)
    sr.flag(t(list(range(50, 0, -1))), step=0)  # order of arrival does not matter
    assert sr.threshold() == pytest.approx(5.9)
    flags = sr.flag(t([5.8, 5.9, 6.0, 6.5]), step=50)
    assert flags.tau == pytest.approx(5.9)
    assert flags.z.tolist() == [True, True, False, False]  # z = 1 iff m <= tau


def test_batch_is_judged_against_earlier_samples_only():
    sr = SelfRefinement(RefinementConfig(k_percentile=50, window=4, warmup_fraction=0.0), total_steps=10)
    first = sr.flag(t([1.0, 2.0, 3.0, 4.0]), step=0)
    assert first.tau is None and not first.z.any()  # nothing to compare with yet: no flags
    second = sr.flag(t([2.4, 2.6, -50.0, 100.0]), step=1)
    assert second.tau == pytest.approx(2.5)  # median of [1, 2, 3, 4]; the batch's own -50 and 100 do not count
    assert second.z.tolist() == [True, False, True, False]
    # After the call the window holds the second batch: median of [-50, 2.4, 2.6, 100].
    assert sr.threshold() == pytest.approx(2.5)


def test_warmup_turns_refinement_off_for_the_first_fifth_of_the_steps_but_fills_the_window():
    sr = SelfRefinement(RefinementConfig(alpha=0.1, k_percentile=50, window=50), total_steps=10)
    low = t([-5.0, 5.0])
    sr.flag(t([0.0, 1.0, 2.0]), step=0)
    for step in (0, 1):  # 0.2 * 10 = 2: steps 0 and 1 are warm-up
        flags = sr.flag(low, step=step)
        assert sr.in_warmup(step) and flags.alpha == 0.0 and not flags.z.any()
        assert flags.tau is not None  # the threshold is computed, just not applied
        assert flags.metrics()["spa/flagged_frac"] == 0.0
    flags = sr.flag(low, step=2)
    assert not sr.in_warmup(2) and flags.alpha == 0.1
    assert flags.z.tolist() == [True, False]
    assert flags.metrics() == {"spa/flagged_frac": 0.5, "spa/tau": pytest.approx(flags.tau)}
    assert flags.tau == pytest.approx(torch.quantile(t([0, 1, 2, -5, 5, -5, 5]), 0.5).item())


def test_metrics_omit_tau_while_undefined():
    sr = SelfRefinement(RefinementConfig(), total_steps=5)
    assert sr.flag(t([1.0]), step=0).metrics() == {"spa/flagged_frac": 0.0}


def test_state_dict_round_trip_keeps_the_window():
    cfg = RefinementConfig(k_percentile=30, window=6, warmup_fraction=0.0)
    a = SelfRefinement(cfg, total_steps=10)
    a.flag(t([3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0]), step=0)
    b = SelfRefinement(cfg, total_steps=10)
    b.load_state_dict(a.state_dict())
    m = t([0.0, 1.5, -2.0])
    assert a.flag(m, step=3).z.tolist() == b.flag(m, step=3).z.tolist()
    assert a.threshold() == b.threshold()


def test_detection_margin():
    m = detection_margin(0.5, t([-10.0]), t([-14.0]), t([-11.0]), t([-12.0]))
    assert m.dtype == torch.float64 and m.item() == pytest.approx(0.5 * ((-10 + 11) - (-14 + 12)))


@pytest.mark.parametrize(
    ("field", "value"), [("alpha", 1.5), ("k_percentile", 0.0), ("window", 0), ("warmup_fraction", -0.1)]
)
def test_config_rejects_out_of_range_values(field, value):
    with pytest.raises(ValueError, match=field):
        RefinementConfig(**{field: value})
