"""exact_adversary.py, the in-process Adversary: the same worst case as the DroSolver service (services/dro-solver,
see conftest.py) on random problems, its input rules, and a W-DRO objective step that runs on it without gRPC
(docs/algorithm.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import tiny_llama, tiny_tokenizer

from alignment_trainer.api.dro_client import DroSolverClient
from alignment_trainer.config import Artifact, PreferenceTask, SpaSettings, WdroSettings
from alignment_trainer.training import objectives
from alignment_trainer.training.adversary import Adversary
from alignment_trainer.training.exact_adversary import SATURATION_WARNING, ExactAdversary, InvalidProblem
from alignment_trainer.training.logprobs import build_pair_batch


def _random_problem(rng: np.random.Generator) -> dict:
    n = int(rng.integers(1, 60))
    if rng.random() < 0.3:
        # A few distinct levels: ties at the cut, taken in index order.
        log_xi = rng.choice(np.log(rng.uniform(0.02, 0.98, size=4)), size=n)
    else:
        log_xi = np.log(rng.uniform(1e-4, 1.0, size=n))  # some below δ or above 1 − δ: clipped
    problem = {"log_xi": log_xi, "delta": float(rng.choice([0.001, 0.01, 0.05, 0.2]))}
    if rng.random() < 0.5:
        problem["rho"] = float(rng.choice([0.0, rng.uniform(0, 1)]))
    else:
        problem["epsilon"] = float(rng.choice([0.0, rng.uniform(0, 0.6), 2.0]))  # 2.0 saturates
    if rng.random() < 0.4:
        weights = rng.uniform(0, 3, size=n)
        weights[rng.random(n) < 0.2] = 0.0
        weights[0] = 1.0
        problem["weights"] = weights
    return problem


def test_the_in_process_solver_gives_the_dro_solvers_exact_answer(dro_solver_address):
    rng = np.random.default_rng(20240611)
    exact = ExactAdversary()
    with DroSolverClient(dro_solver_address) as remote:
        for case in range(200):
            problem = _random_problem(rng)
            want, got = remote.solve(**problem), exact.solve(**problem)
            msg = f"case {case}: {problem}"
            for field in ("value", "erm_value", "lambda_star", "epsilon", "epsilon_sat"):
                assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-12, abs=1e-12), \
                    f"{msg}: {field}"
            assert got.saturated == want.saturated, msg
            assert got.warnings == want.warnings, msg
            for field in ("moved_fraction", "surrogate_a", "surrogate_b"):
                np.testing.assert_allclose(getattr(got, field), getattr(want, field), rtol=1e-12, atol=1e-12,
                                           err_msg=f"{msg}: {field}")


def test_it_is_an_adversary_and_splits_at_most_one_sample():
    adversary: Adversary = ExactAdversary()
    sol = adversary.solve(np.log([0.3, 0.5, 0.7, 0.9]), delta=0.1, rho=0.5)
    partial = [m for m in sol.moved_fraction if 0 < m < 1]
    assert len(partial) <= 1
    assert sol.value > sol.erm_value and sol.lambda_star > 0 and not sol.saturated
    assert sol.epsilon == pytest.approx(0.5 * sol.epsilon_sat)
    saturated = adversary.solve(np.log([0.3, 0.5]), delta=0.1, epsilon=1.0)
    assert saturated.saturated and saturated.lambda_star == 0 and saturated.warnings == (SATURATION_WARNING,)
    assert saturated.value == pytest.approx(-np.log(0.1))
    adversary.close()


@pytest.mark.parametrize(("problem", "field"), [
    ({"log_xi": [], "delta": 0.1, "rho": 0.5}, "log_xi"),
    ({"log_xi": [0.1], "delta": 0.1, "rho": 0.5}, "log_xi"),
    ({"log_xi": [float("nan")], "delta": 0.1, "rho": 0.5}, "log_xi"),
    ({"log_xi": [-1.0], "delta": 0.0, "rho": 0.5}, "delta"),
    ({"log_xi": [-1.0], "delta": 0.1, "rho": 1.0}, "rho"),
    ({"log_xi": [-1.0], "delta": 0.1, "epsilon": -1.0}, "epsilon"),
    ({"log_xi": [-1.0, -2.0], "delta": 0.1, "rho": 0.5, "weights": [0.0, 0.0]}, "weights"),
    ({"log_xi": [-1.0, -2.0], "delta": 0.1, "rho": 0.5, "weights": [1.0]}, "weights"),
])
def test_invalid_problems_name_the_field_as_the_solver_does(problem, field):
    problem = {k: np.asarray(v, dtype=np.float64) if isinstance(v, list) else v for k, v in problem.items()}
    with pytest.raises(InvalidProblem) as err:
        ExactAdversary().solve(**problem)
    assert err.value.field == field


def test_exactly_one_radius():
    with pytest.raises(ValueError, match="exactly one"):
        ExactAdversary().solve(np.zeros(2) - 1, delta=0.1)


@pytest.mark.parametrize("loss", ["wdro", "wdro-sr"])
def test_a_wdro_objective_steps_on_the_in_process_adversary(loss):
    tok = tiny_tokenizer()
    policy, ref = tiny_llama(vocab_size=len(tok), seed=0), tiny_llama(vocab_size=len(tok), seed=1)
    task = PreferenceTask(init=Artifact("."), reference=Artifact("."), pairs=Artifact("."), loss=loss, beta=0.5,
                          wdro=WdroSettings(delta=0.01, rho=0.3), spa=SpaSettings(warmup_fraction=0.0))
    obj = objectives.PreferenceObjective(policy, ref, task, total_steps=10, device=torch.device("cpu"), bf16=False,
                                         adversary=ExactAdversary())
    batch = build_pair_batch(tok, ["Say hi", "Add 1 and 1"], ["Hi there!", "2"], ["No.", "11"], max_length=64, strings="chat-template")
    result = obj.step([batch], step=5)
    assert np.isfinite(result.loss)
    assert result.metrics["dro/epsilon"] > 0
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in policy.parameters())
