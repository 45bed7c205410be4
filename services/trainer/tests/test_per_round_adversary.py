"""per_round_adversary.py, the per-round (SSAPO-style) schedule of the W-DRO adversary (docs/algorithm.md §7): its
fixed weights are the exact solver's on a hand case, a whole job calls the adversary once per group before its first
step and never during the steps, and the judge's margins come from the pairs file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from tiny import tiny_llama, tiny_tokenizer
from world import build_world, pair_rows, read_metrics, write_jsonl

from alignment_trainer.config import (
    ADVERSARY_PER_ROUND,
    Artifact,
    Hyperparams,
    JobConfig,
    PreferenceTask,
    SpaSettings,
    WdroSettings,
)
from alignment_trainer.training import data, objectives, runner
from alignment_trainer.training.exact_adversary import ExactAdversary
from alignment_trainer.training.logprobs import build_pair_batch
from alignment_trainer.training.per_round_adversary import group_indices, solve_per_round

DELTA = 0.01


class CountingAdversary:
    """An ExactAdversary that counts its solves."""

    def __init__(self) -> None:
        self.exact = ExactAdversary()
        self.calls = 0
        self.sizes: list[int] = []
        self.closed = False

    def solve(self, log_xi, **kwargs):
        self.calls += 1
        self.sizes.append(len(log_xi))
        return self.exact.solve(log_xi, **kwargs)

    def close(self) -> None:
        self.closed = True


def test_groups_are_consecutive_judged_pairs_and_the_last_may_be_smaller():
    margins = [1.0, None, 2.0, 0.5, None, 3.0, 0.1]
    assert group_indices(margins, 2) == [[0, 2], [3, 5], [6]]
    assert group_indices(margins, 100) == [[0, 2, 3, 5, 6]]
    assert group_indices([None, None], 2) == []
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        group_indices(margins, 1)


def test_fixed_weights_are_the_exact_solvers_on_a_hand_case():
    """Three judged pairs in one group and one pair without a judge margin. With β = 1, δ = 0.01 and ε = 0.1 the
    adversary can move part of the lowest-ξ pair only: moving it whole costs (ξ_0 − δ)/3 ≈ 0.180 > ε, so
    m_0 = 3ε/(ξ_0 − δ) and λ* = r_0 = log(ξ_0/δ)/(ξ_0 − δ) (docs/dro.md §2.2(c)); A = 1 − m, B = m·λ*."""
    margins = [0.2, None, 1.5, 3.0]
    wdro = WdroSettings(delta=DELTA, epsilon=0.1, schedule=ADVERSARY_PER_ROUND, group_size=100)
    weights = solve_per_round(margins, ExactAdversary(), beta=1.0, wdro=wdro)

    judged = torch.tensor([0.2, 1.5, 3.0], dtype=torch.float64)
    solution = ExactAdversary().solve(torch.nn.functional.logsigmoid(judged), delta=DELTA, epsilon=0.1)
    np.testing.assert_allclose(weights.surrogate_a[[0, 2, 3]], 3 * solution.surrogate_a, rtol=0, atol=1e-15)
    np.testing.assert_allclose(weights.surrogate_b[[0, 2, 3]], 3 * solution.surrogate_b, rtol=0, atol=1e-15)

    xi0 = 1 / (1 + math.exp(-0.2))
    m0 = 3 * 0.1 / (xi0 - DELTA)
    lam = math.log(xi0 / DELTA) / (xi0 - DELTA)
    np.testing.assert_allclose(weights.surrogate_a, [1 - m0, 1.0, 1.0, 1.0], rtol=1e-12)
    np.testing.assert_allclose(weights.surrogate_b, [m0 * lam, 0.0, 0.0, 0.0], rtol=1e-12)
    assert weights.grouped.tolist() == [True, False, True, True]
    np.testing.assert_allclose(weights.judge_weight[0], 1 - m0 + m0 * lam * xi0, rtol=1e-12)
    m = weights.metrics()
    assert (m["dro/per_round_groups"], m["dro/per_round_solver_calls"], m["dro/per_round_pairs"]) == (1, 1, 3)
    assert m["dro/per_round_moved_frac"] == pytest.approx(1 / 3)
    assert m["dro/per_round_weight_max"] == pytest.approx(1 - m0 + m0 * lam * xi0)
    # The coefficients of a loss evaluation are those of its pairs, divided by their number (a mean).
    a, b = weights.coefficients([3, 0], torch.zeros(2))
    torch.testing.assert_close(a, torch.tensor([1.0, 1 - m0]) / 2)
    torch.testing.assert_close(b, torch.tensor([0.0, m0 * lam]) / 2)


def test_each_group_is_solved_on_its_own_pairs_with_weights_scaled_by_its_size():
    margins = [0.3, 2.0, 0.1, 1.0, 0.05]
    wdro = WdroSettings(delta=DELTA, rho=0.4, schedule=ADVERSARY_PER_ROUND, group_size=3)
    counting = CountingAdversary()
    weights = solve_per_round(margins, counting, beta=0.5, wdro=wdro)
    assert (counting.calls, counting.sizes, weights.groups) == (2, [3, 2], 2)
    for members in ([0, 1, 2], [3, 4]):
        h = torch.tensor([margins[i] for i in members], dtype=torch.float64)
        solution = ExactAdversary().solve(torch.nn.functional.logsigmoid(0.5 * h), delta=DELTA, rho=0.4)
        np.testing.assert_allclose(weights.surrogate_a[members], len(members) * solution.surrogate_a, atol=1e-15)
        np.testing.assert_allclose(weights.surrogate_b[members], len(members) * solution.surrogate_b, atol=1e-15)


def _step_gradient(loss: str, wdro: WdroSettings | None, margins, adversary=None):
    tok = tiny_tokenizer()
    policy, ref = tiny_llama(vocab_size=len(tok), seed=0), tiny_llama(vocab_size=len(tok), seed=1)
    task = PreferenceTask(init=Artifact("."), reference=Artifact("."), pairs=Artifact("."), loss=loss, beta=0.5,
                          wdro=wdro, spa=SpaSettings(warmup_fraction=0.0))
    obj = objectives.PreferenceObjective(policy, ref, task, total_steps=10, device=torch.device("cpu"), bf16=False,
                                         adversary=adversary)
    if obj.per_round_schedule:
        obj.solve_per_round(margins)
    prompts = ["What is 2 plus 3?", "Say hi", "Colour of the sky?", "Add 1 and 1"]
    chosen = ["5.", "Hi there!", "Blue.", "2"]
    rejected = ["6, I think.", "No.", "Green, surely", "11"]
    batches = [build_pair_batch(tok, prompts[i:i + 2], chosen[i:i + 2], rejected[i:i + 2], max_length=64, strings="chat-template")
               for i in (0, 2)]
    result = obj.step(batches, step=5, pair_indices=[3, 2, 1, 0] if obj.per_round_schedule else None)
    return torch.cat([p.grad.flatten() for p in policy.parameters()]), result


def test_a_round_with_nothing_moved_trains_as_dpo_and_calls_no_adversary_in_its_step():
    """ρ = 0: the adversary moves nothing, every weight is (1, 0), and the per-round W-DRO step is DPO's."""
    counting = CountingAdversary()
    wdro = WdroSettings(delta=DELTA, rho=0.0, schedule=ADVERSARY_PER_ROUND, group_size=2)
    g_round, r_round = _step_gradient("wdro", wdro, [0.4, 0.1, 2.0, 1.0], counting)
    assert counting.calls == 2  # both groups, before the step; none in it
    g_dpo, r_dpo = _step_gradient("dpo", None, None)
    torch.testing.assert_close(g_round, g_dpo, rtol=1e-5, atol=1e-7)
    assert r_round.loss == pytest.approx(r_dpo.loss, rel=1e-6)
    assert "dro/value" not in r_round.metrics and r_round.metrics["dro/per_round_groups"] == 2


def test_the_step_refuses_to_run_without_its_weights():
    wdro = WdroSettings(delta=DELTA, rho=0.3, schedule=ADVERSARY_PER_ROUND)
    tok = tiny_tokenizer()
    task = PreferenceTask(init=Artifact("."), reference=Artifact("."), pairs=Artifact("."), loss="wdro", wdro=wdro)
    obj = objectives.PreferenceObjective(tiny_llama(vocab_size=len(tok)), tiny_llama(vocab_size=len(tok)), task,
                                         total_steps=1, device=torch.device("cpu"), bf16=False,
                                         adversary=ExactAdversary())
    batch = build_pair_batch(tok, ["p"], ["a"], ["b"], max_length=32, strings="chat-template")
    with pytest.raises(ValueError, match="needs solve_per_round"):
        obj.step([batch], step=0, pair_indices=[0])


def test_load_pairs_reads_the_spa_judges_margin_only(tmp_path):
    pair = {"prompt": "p", "chosen": "a", "rejected": "b"}
    path = write_jsonl(tmp_path / "pairs.jsonl", [
        {**pair, "margin": 1.25, "method": "spa_implicit"},
        {**pair, "margin": 3, "method": "rule"},
        {**pair, "source": "seed"},
    ])
    assert [p.judge_margin for p in data.load_pairs(path)] == [1.25, None, None]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{**pair, "margin": "x", "method": "spa_implicit"}])
    with pytest.raises(data.DatasetError, match=r":1: margin: must be a finite number"):
        data.load_pairs(bad)


@pytest.mark.parametrize("loss", ["wdro", "wdro-sr"])
def test_a_job_calls_the_adversary_once_per_group_before_its_first_step(loss, tmp_path):
    """16 pairs, 14 judged by the SPA judge and 2 replayed seed pairs, G = 3: ceil(14/3) = 5 solves, all before
    step 1, and none in the 4 steps (two micro-batches each, so the two-pass path takes the weights too)."""
    world = build_world(tmp_path / "world", n_sft=2, n_pairs=2)
    rows = pair_rows(16)
    for i, row in enumerate(rows):
        row.pop("score")
        if i in (5, 11):
            row["source"] = "seed"
        else:
            row.update(margin=0.05 * (i + 1), method="spa_implicit", chosen_score=0.0, rejected_score=-0.05 * (i + 1))
    pairs = write_jsonl(tmp_path / "judged.jsonl", rows)
    wdro = WdroSettings(delta=DELTA, rho=0.3, schedule=ADVERSARY_PER_ROUND, group_size=3)
    task = PreferenceTask(init=Artifact(world.checkpoint), reference=Artifact(world.checkpoint), pairs=Artifact(pairs),
                          loss=loss, wdro=wdro, spa=SpaSettings(warmup_fraction=0.0, window=4))
    config = JobConfig(task=task, output_dir=tmp_path / "out", hparams=Hyperparams(
        learning_rate=5e-3, batch_size=4, gradient_accumulation_steps=2, epochs=1, max_length=64))
    counting = CountingAdversary()
    at_step: list[int] = []
    at_start: list[int] = []
    hooks = runner.RunHooks(on_start=lambda *_: at_start.append(counting.calls),
                            on_step=lambda report: at_step.append(counting.calls))
    outputs = runner.run_job(config, tmp_path / "work", hooks, device=torch.device("cpu"),
                             connect_adversary=lambda address: counting)
    assert outputs.total_steps == 4
    assert at_start == [5] and at_step == [5, 5, 5, 5] and counting.sizes == [3, 3, 3, 3, 2]
    assert counting.closed
    metrics = read_metrics(outputs.metrics.path)
    assert len(metrics) == 4
    for line in metrics:
        assert line["dro/per_round_groups"] == 5 and line["dro/per_round_solver_calls"] == 5
        assert line["dro/per_round_pairs"] == 14
        assert line["dro/per_round_weight_max"] >= line["dro/per_round_weight_mean"] > 0
        assert math.isfinite(line["loss"]) and "dro/value" not in line
    assert json.loads(pairs.read_text().splitlines()[5])["source"] == "seed"
