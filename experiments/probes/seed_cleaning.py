"""Probe: can the noisy seed be cleaned enough for issue 11's noise bar? (experiments/probes/README.md)

For finished 15K campaign runs with flipped seed labels, this re-trains round 0 (the same JobSpec the coordinator gave
the trainer: DPO, the run's seed, β, learning rate and epochs) on three seed sets and measures each judge's accuracy on
the run's own round-1 pairs, with the gold annotator's labels the campaign recorded (round-1/evaluate/
self_label_judgements.jsonl):

  clean        the round-0 model of the same seed's run without flipped labels: what the noise bar compares with
  noisy        the run's round-0 model as it is (trained on every noisy pair): the baseline
  cross-fit    confident-learning style cleaning: K models, each trained on the other folds, keep the seed pairs
               whose held-out implicit reward agrees with their label, train on those (Northcutt et al., JAIR 2021)
  oracle       the pairs that were not flipped (label_noise.json): the best any cleaning could do

Usage (the trainer's venv; reads the campaign's data directory, writes only under --out):

    python experiments/probes/seed_cleaning.py --data-dir /work/campaign-data/main-15k --world arithmetic \
        --noise 0.4 --seeds 1 2 3 --out /tmp/probe
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import torch
from google.protobuf import json_format
from transformers import AutoModelForCausalLM, AutoTokenizer

from alignment_trainer.api.contracts import trainer_pb2
from alignment_trainer.training import logprobs

ROOT = Path(__file__).resolve().parents[2]


def job_spec(data_dir: Path, run_id: str) -> trainer_pb2.JobSpec:
    db = sqlite3.connect(f"file:{data_dir / 'trainer' / 'jobs.sqlite3'}?mode=ro", uri=True)
    row = db.execute("select spec from jobs where job_id like ? order by seq", (f"{run_id}-%-r0-learn-a1",)).fetchone()
    if row is None:
        raise SystemExit(f"no round-0 LEARN job of {run_id} in the trainer's database")
    spec = trainer_pb2.JobSpec()
    spec.ParseFromString(row[0])
    return spec


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_pairs(path: Path, pairs: list[dict]) -> None:
    path.write_text("".join(json.dumps({k: p[k] for k in ("prompt", "chosen", "rejected")}) + "\n" for p in pairs))


def train(spec: trainer_pb2.JobSpec, pairs_file: Path, output: Path) -> Path:
    """Round 0 again on another pairs file, through the trainer's own command line."""
    job = trainer_pb2.JobSpec()
    job.CopyFrom(spec)
    data = pairs_file.read_bytes()
    job.preference.pairs.uri = pairs_file.resolve().as_uri()
    job.preference.pairs.sha256 = hashlib.sha256(data).hexdigest()
    job.preference.pairs.size_bytes = len(data)
    job.export_onnx = False
    job.output_uri = ""
    spec_file = output.with_suffix(".spec.json")
    spec_file.write_text(json_format.MessageToJson(job))
    if not (output / "checkpoint").is_dir():
        subprocess.run([sys.executable, "-m", "alignment_trainer.cli", "run", "--spec", str(spec_file), "--output", str(output)],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return output / "checkpoint"


class Scorer:
    """Implicit reward margins β·[(logπ(c) − logπ_ref(c)) − (logπ(r) − logπ_ref(r))]; the sign is all that is used."""

    def __init__(self, reference: Path, max_length: int):
        self.tokenizer = AutoTokenizer.from_pretrained(reference)
        self.reference = self._load(reference)
        self.max_length = max_length
        self._ref_cache: dict[int, torch.Tensor] = {}

    @staticmethod
    def _load(path: Path):
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    @torch.no_grad()
    def _logps(self, model, pairs: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        out_c, out_r = [], []
        for start in range(0, len(pairs), 64):
            chunk = pairs[start:start + 64]
            batch = logprobs.build_pair_batch(self.tokenizer, [p["prompt"] for p in chunk], [p["chosen"] for p in chunk],
                                              [p["rejected"] for p in chunk], max_length=self.max_length)
            c, r = logprobs.split_pairs(logprobs.reference_pass(model, batch, keep_logits=False).logps)
            out_c.append(c)
            out_r.append(r)
        return torch.cat(out_c), torch.cat(out_r)

    def margins(self, checkpoint: Path, pairs: list[dict]) -> torch.Tensor:
        key = id(pairs)
        if key not in self._ref_cache:
            rc, rr = self._logps(self.reference, pairs)
            self._ref_cache[key] = rc - rr
        pc, pr = self._logps(self._load(checkpoint), pairs)
        return (pc - pr) - self._ref_cache[key]


def accuracy(margins: torch.Tensor) -> float:
    """Share of gold-labelled pairs (chosen = gold's choice) the judge orders as gold does; a tie counts half."""
    return float(((margins > 0).float() + 0.5 * (margins == 0).float()).mean())


def probe(data_dir: Path, world: str, noise: float, seed: int, folds: int, out: Path) -> dict:
    runs = sorted((data_dir / "runs").glob(f"{world}-15000-wdro-s{seed}-n{noise:g}-*"))
    if not runs:
        raise SystemExit(f"no finished run {world}-15000-wdro-s{seed}-n{noise:g}-* under {data_dir / 'runs'}")
    run = runs[0]
    spec = job_spec(data_dir, run.name)
    seed_pairs = read_jsonl(run / "round-0/learn/seed_pairs.noisy.jsonl")
    flipped = set(json.loads((run / "round-0/learn/label_noise.json").read_text())["flipped"])
    test = [p for p in read_jsonl(run / "round-1/evaluate/self_label_judgements.jsonl") if p["margin"] != 0]
    work = out / run.name
    work.mkdir(parents=True, exist_ok=True)
    scorer = Scorer(Path(spec.preference.reference.uri.removeprefix("file://")), spec.hparams.max_length)

    result = {"run": run.name, "seed": seed, "noise": noise, "seed_pairs": len(seed_pairs), "flipped": len(flipped),
              "test_pairs": len(test)}
    result["noisy_accuracy"] = accuracy(scorer.margins(run / "round-0/learn/attempt-1/checkpoint", test))
    clean_runs = sorted((data_dir / "runs").glob(f"{world}-15000-wdro-s{seed}-n0-*"))
    if clean_runs:
        # The same seed's run without flipped labels: its round-0 judge on these pairs is what the bar compares with.
        result["clean_accuracy"] = accuracy(scorer.margins(clean_runs[0] / "round-0/learn/attempt-1/checkpoint", test))

    order = list(range(len(seed_pairs)))
    random.Random(seed).shuffle(order)
    keep: list[int] = []
    for k in range(folds):
        held = sorted(order[k::folds])
        held_set = set(held)
        train_file = work / f"fold-{k}.jsonl"
        write_pairs(train_file, [p for i, p in enumerate(seed_pairs) if i not in held_set])
        model = train(spec, train_file, work / f"fold-{k}")
        agree = scorer.margins(model, [seed_pairs[i] for i in held]) > 0
        keep += [i for i, a in zip(held, agree.tolist()) if a]
    keep.sort()
    kept_file = work / "cross-fit.jsonl"
    write_pairs(kept_file, [seed_pairs[i] for i in keep])
    result["cross_fit_kept"] = len(keep)
    result["cross_fit_kept_flipped"] = len(flipped.intersection(keep))
    result["cross_fit_accuracy"] = accuracy(scorer.margins(train(spec, kept_file, work / "cross-fit"), test))

    clean_file = work / "oracle.jsonl"
    write_pairs(clean_file, [p for i, p in enumerate(seed_pairs) if i not in flipped])
    result["oracle_accuracy"] = accuracy(scorer.margins(train(spec, clean_file, work / "oracle"), test))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the campaign's --data-dir")
    parser.add_argument("--world", required=True)
    parser.add_argument("--noise", type=float, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="work directory (models, pairs) and results.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "results.jsonl").open("a") as sink:
        for noise in args.noise:
            for seed in args.seeds:
                row = probe(args.data_dir, args.world, noise, seed, args.folds, args.out)
                print(json.dumps(row), flush=True)
                sink.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
