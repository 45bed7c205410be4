"""The training loop of one job: SFT (ALGORITHM.md §2, the π_init of the rounds) or preference optimisation with
one of the losses of §1 and §3-§5, from a config.JobConfig. No gRPC here: service.py drives ``run_job`` in a
worker thread through RunHooks, and tests call it directly.

What a run does:
  1. Loads (and sha256-checks) its inputs; tokenises the data (chat template on the prompt, EOS after the
     response); drops examples whose prompt alone fills max_length (counted) and truncates over-long responses
     from the end (counted, ``data/truncated``).
  2. Builds the policy (a Llama from an ArchitectureConfig, seeded; or a checkpoint) and, for preference jobs, the
     frozen reference (log-probs under no_grad once per micro-batch, objectives.py).
  3. Runs ``total_steps`` optimizer steps: length-grouped batches (data.py) split into micro-batches for gradient
     accumulation, AdamW (no weight decay on norms, as transformers' Trainer), gradient clipping, a
     cosine/linear/constant schedule with linear warm-up, bf16 autocast on CUDA only. After every step: one line in
     ``metrics.jsonl`` (TRL's names: loss, grad_norm, learning_rate, epoch, num_tokens, rewards/*, logps/*,
     logits/*; spa/flagged_frac, spa/tau; dro/value, dro/lambda_star, dro/moved_frac, …) and a StepReport to the
     hooks; cancellation is checked before every step.
  4. Every ``checkpoint_every_steps`` steps writes a resumable checkpoint (model, optimizer, scheduler, RNG, step,
     self-refinement window, counters, metrics.jsonl length) to ``<work_dir>/resume/step-N`` through a temp dir and
     a rename, keeping only the newest. ``run_job`` resumes from it when one exists: the batch order depends only on
     (seed, epoch), so the resumed run replays exactly the steps it had not done.
  5. Writes the outputs (export.py): Hugging Face checkpoint, optional ONNX export, manifest; then removes the
     resume checkpoints (they hold the optimizer state, several times the model's size).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from alignment_trainer import data, export, tracing
from alignment_trainer.config import WDRO_LOSSES, JobConfig, PreferenceTask, SftTask
from alignment_trainer.dro_client import DroSolverClient
from alignment_trainer.logprobs import TokenizedPair, collate_pairs, tokenize_pair
from alignment_trainer.objectives import COUPLED_LOSSES, PreferenceObjective, SftObjective, collate_sft

log = logging.getLogger("alignment_trainer.runner")

RESUME_DIR = "resume"
STATE_FILE = "state.pt"
MODEL_DIR = "model"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoint"
ONNX_DIR = "onnx"

# transformers' scheduler names for TrainingHyperparams.lr_scheduler; each has the linear warm-up in front.
_SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


class JobCancelled(Exception):
    """Raised by run_job when RunHooks.should_stop() turned true; the run stopped between two steps."""


class JobSuspended(Exception):
    """Raised by run_job when RunHooks.should_suspend() turned true (the trainer is shutting down): the steps done
    so far are in a resumable checkpoint of step ``step`` (0 = none was needed: no step had been done)."""

    def __init__(self, step: int) -> None:
        self.step = step
        super().__init__(f"suspended at step {step}")


class TrainingDiverged(RuntimeError):
    """Raised when a step's loss or gradient norm is not finite (usually: the learning rate is too high)."""


@dataclass(frozen=True)
class StepReport:
    """What a watcher sees after each optimizer step (trainer.proto TrainingStep)."""

    step: int  # 1-based number of optimizer steps done
    total_steps: int
    loss: float
    metrics: dict[str, float]
    tokens_per_second: float  # non-padding tokens through the policy per second, since this process started the run
    eta_seconds: float


@dataclass
class RunHooks:
    """How the caller follows and steers a run; every hook runs on the training thread."""

    on_step: Callable[[StepReport], None] = lambda report: None
    # Called after a resumable checkpoint of that step is completely on disk.
    on_checkpoint: Callable[[int], None] = lambda step: None
    should_stop: Callable[[], bool] = lambda: False
    # Checked before every step too: true means "checkpoint what is done and stop" (graceful shutdown).
    should_suspend: Callable[[], bool] = lambda: False
    # Called once the run knows its length (after loading data), before the first step.
    on_start: Callable[[int, int], None] = lambda start_step, total_steps: None


@dataclass(frozen=True)
class RunOutputs:
    hf_checkpoint: export.ArtifactInfo
    manifest: export.ArtifactInfo
    metrics: export.ArtifactInfo
    onnx: export.ArtifactInfo | None = None
    final_metrics: dict[str, float] = field(default_factory=dict)
    total_steps: int = 0
    resumed_from_step: int = 0


def latest_checkpoint(work_dir: Path) -> tuple[int, Path] | None:
    """(step, directory) of the newest complete resumable checkpoint under work_dir, if any. Temp dirs of an
    interrupted save are never named step-N (they are renamed only when complete), so they are not candidates."""
    root = Path(work_dir) / RESUME_DIR
    if not root.is_dir():
        return None
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).is_file():
            try:
                found.append((int(p.name[len("step-"):]), p))
            except ValueError:
                continue
    return max(found) if found else None


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def run_job(config: JobConfig, work_dir: Path, hooks: RunHooks | None = None, *,
            device: torch.device | None = None, accelerator=None) -> RunOutputs | None:
    """Runs (or resumes) the job to completion and returns its outputs. Raises JobCancelled, TrainingDiverged,
    data.DatasetError, export.ArtifactMismatch, dro_client.DroSolverUnavailable, or whatever else went wrong.

    ``accelerator`` (an accelerate.Accelerator, from cli.py under ``accelerate launch``) runs the job data-parallel
    over its processes (DDP or FSDP, as its config says): the model, optimizer and scheduler go through
    ``accelerator.prepare``, the reference model through ``prepare_model(evaluation_mode=True)``; each process takes
    a disjoint shard (rank::world_size) of every optimizer step's batch; gradients flow through
    ``accelerator.backward``; step metrics are gathered from every process; only the main process writes
    metrics.jsonl and the outputs (a full Hugging Face checkpoint from ``accelerator.get_state_dict``). The other
    processes return None. Without one (the gRPC service's worker thread) the job runs in this process on
    ``device``."""
    if accelerator is not None and accelerator.num_processes == 1:
        device, accelerator = accelerator.device, None  # one process: the plain path, resumable checkpoints included
    run = _Run(config, Path(work_dir), hooks or RunHooks(), device or default_device(), accelerator)
    try:
        return run.train()
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------------ internals


class _Run:
    def __init__(self, config: JobConfig, work_dir: Path, hooks: RunHooks, device: torch.device,
                 accelerator=None) -> None:
        self.config = config
        self.h = config.hparams
        self.work_dir = work_dir
        self.hooks = hooks
        self.acc = accelerator
        self.device = accelerator.device if accelerator is not None else device
        self.rank = accelerator.process_index if accelerator is not None else 0
        self.world = accelerator.num_processes if accelerator is not None else 1
        self.is_main = accelerator is None or accelerator.is_main_process
        self.samples_seen = 0  # examples this process trained on (dist/samples/rank<r>)
        self.trace_step_every = max(0, int(os.environ.get("TRAINER_TRACE_STEP_EVERY") or 0))
        self.out = config.output_dir
        self.dro: DroSolverClient | None = None
        self._metrics_fh = None
        self._cached_epoch: int | None = None
        self._cached_batches: list[list[int]] = []

    def close(self) -> None:
        if self._metrics_fh is not None:
            self._metrics_fh.close()
        if self.dro is not None:
            self.dro.close()

    # -- setup --------------------------------------------------------------------------------------------------

    def _verify_inputs(self) -> None:
        task = self.config.task
        if isinstance(task, SftTask):
            refs = [("spec.sft.dataset", task.dataset)]
            if task.checkpoint:
                refs.append(("spec.sft.checkpoint", task.checkpoint))
            else:
                refs.append(("spec.sft.architecture.tokenizer", task.architecture.tokenizer))
        else:
            refs = [("spec.preference.init", task.init), ("spec.preference.reference", task.reference),
                    ("spec.preference.pairs", task.pairs)]
        for name, art in refs:
            export.verify_artifact(art.path, art.sha256, name)

    def _load_policy(self, resume_dir: Path | None):
        from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

        task = self.config.task
        if isinstance(task, SftTask) and task.architecture is not None:
            tokenizer = AutoTokenizer.from_pretrained(task.architecture.tokenizer.path)
        else:
            tokenizer = AutoTokenizer.from_pretrained(task.checkpoint.path if isinstance(task, SftTask)
                                                      else task.init.path)
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos_token: responses must end with EOS")
        if resume_dir is not None:
            model = AutoModelForCausalLM.from_pretrained(resume_dir / MODEL_DIR, dtype=torch.float32)
        elif isinstance(task, SftTask) and task.architecture is not None:
            a = task.architecture
            cfg = LlamaConfig(
                vocab_size=len(tokenizer), hidden_size=a.hidden_size, intermediate_size=a.intermediate_size,
                num_hidden_layers=a.num_layers, num_attention_heads=a.num_attention_heads,
                num_key_value_heads=a.num_key_value_heads or a.num_attention_heads,
                max_position_embeddings=a.max_position_embeddings,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
            # Seeded here, right before the weights are drawn: the same spec gives the same initial model.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.h.seed)
                model = LlamaForCausalLM(cfg)
        else:
            path = task.checkpoint.path if isinstance(task, SftTask) else task.init.path
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        if model.config.vocab_size < len(tokenizer):
            raise ValueError(f"model vocab_size {model.config.vocab_size} < tokenizer size {len(tokenizer)}")
        return model, tokenizer

    def _load_reference(self, task: PreferenceTask, policy, resumed: bool):
        from transformers import AutoModelForCausalLM

        if task.reference.path == task.init.path and not resumed:
            ref = copy.deepcopy(policy)  # the same weights without reading them twice
        else:
            ref = AutoModelForCausalLM.from_pretrained(task.reference.path, dtype=torch.float32)
        if ref.config.vocab_size != policy.config.vocab_size:
            raise ValueError(f"reference vocab_size {ref.config.vocab_size} != policy's {policy.config.vocab_size}")
        ref.to(self.device).eval()
        ref.requires_grad_(False)
        return ref

    def _tokenize(self, tokenizer) -> None:
        """Tokenises the dataset once; sets self.examples, self.lengths, self.n_dropped."""
        task = self.config.task
        max_length = self.h.max_length
        examples, lengths, dropped = [], [], 0
        if isinstance(task, SftTask):
            path = task.dataset.path
            for ex in data.load_sft(path):
                # tokenize_pair renders the prompt exactly as preference batches and the generator do; the
                # response is passed as both sides of the pair and read back once.
                t = tokenize_pair(tokenizer, ex.prompt, ex.response, ex.response)
                if len(t.prompt_ids) >= max_length:
                    dropped += 1
                    continue
                examples.append((t.prompt_ids, t.chosen_ids))
                lengths.append(min(max_length, len(t.prompt_ids) + len(t.chosen_ids)))
        else:
            path = task.pairs.path
            for pair in data.load_pairs(path):
                t = tokenize_pair(tokenizer, pair.prompt, pair.chosen, pair.rejected)
                if len(t.prompt_ids) >= max_length:
                    dropped += 1
                    continue
                examples.append(t)
                lengths.append(min(max_length, len(t.prompt_ids) + max(len(t.chosen_ids), len(t.rejected_ids))))
        if not examples:
            raise data.DatasetError(path, 0, f"every example's prompt fills max_length ({max_length} tokens) "
                                             "after the chat template; raise spec.hparams.max_length")
        if dropped:
            log.warning("dropped examples whose prompt fills max_length",
                        extra={"fields": {"dropped": dropped, "max_length": max_length}})
        self.examples, self.lengths, self.n_dropped = examples, lengths, dropped

    def _check_distributed(self) -> None:
        task = self.config.task
        if isinstance(task, PreferenceTask) and task.loss in COUPLED_LOSSES:
            # The coupled losses need every pair of the step in one place (one DroSolver call per step, §4).
            raise ValueError(f"the {task.loss!r} loss is not supported with more than one process yet "
                             "(its batch loss couples the step's pairs across processes); run it in one process")
        if self.h.checkpoint_every_steps:
            raise ValueError("spec.hparams.checkpoint_every_steps: resumable checkpoints are not supported with more "
                             "than one process yet; set it to 0 (the final checkpoint is still written)")
        if self.h.batch_size < self.world:
            raise ValueError(f"spec.hparams.batch_size: {self.h.batch_size} is smaller than the {self.world} "
                             "processes it is split across")

    def _setup(self) -> int:
        self._verify_inputs()
        if self.acc is not None:
            self._check_distributed()
            latest = None
        else:
            latest = latest_checkpoint(self.work_dir)
        resume_step, resume_dir = latest if latest else (0, None)
        model, tokenizer = self._load_policy(resume_dir)
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._tokenize(tokenizer)

        self.steps_per_epoch = data.steps_per_epoch(len(self.examples), self.h.batch_size)
        total = math.ceil(self.h.epochs * self.steps_per_epoch)
        if self.h.max_steps:
            total = min(total, self.h.max_steps)
        self.total_steps = max(1, total)

        model.to(self.device)
        if self.h.gradient_checkpointing:
            # Non-reentrant checkpointing: works with inputs that need no grad and is the one PyTorch recommends.
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
        model.train()
        self.unwrapped = model
        task = self.config.task
        ref = None
        if isinstance(task, PreferenceTask):
            ref = self._load_reference(task, model, resumed=resume_dir is not None)
        backward = None
        if self.acc is not None:
            # The model first (FSDP shards it; the optimizer is then built over the prepared parameters); the
            # reference only runs forward passes under no_grad, so it is prepared for inference (no DDP wrapper).
            model = self.acc.prepare_model(model)
            if ref is not None:
                ref = self.acc.prepare_model(ref, evaluation_mode=True)
            backward = self.acc.backward
        self.model = model

        if isinstance(task, SftTask):
            self.objective = SftObjective(model, device=self.device, bf16=self.h.bf16, backward=backward)
        else:
            if task.loss in WDRO_LOSSES:
                self.dro = DroSolverClient(task.dro_solver_address)
            self.objective = PreferenceObjective(model, ref, task, total_steps=self.total_steps, device=self.device,
                                                 bf16=self.h.bf16, dro_client=self.dro, backward=backward)

        decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.h.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.h.learning_rate, fused=self.device.type == "cuda")
        from transformers import get_scheduler

        self.scheduler = get_scheduler(_SCHEDULERS[self.h.lr_scheduler], self.optimizer,
                                       num_warmup_steps=math.ceil(self.h.warmup_ratio * self.total_steps),
                                       num_training_steps=self.total_steps)
        if self.acc is not None:
            # The schedule counts optimizer steps, which every process takes together: the Accelerator is built
            # with step_scheduler_with_optimizer=False (cli.py), so a prepared scheduler steps once per step.
            self.optimizer, self.scheduler = self.acc.prepare(self.optimizer, self.scheduler)
        self.num_tokens = 0
        self.n_truncated = 0
        random.seed(self.h.seed)
        torch.manual_seed(self.h.seed)

        if not self.is_main:
            return resume_step
        self.out.mkdir(parents=True, exist_ok=True)
        metrics_path = self.out / METRICS_FILE
        if resume_dir is not None:
            offset = self._restore(resume_dir)
            # Steps after the checkpoint are done again; their old lines go so each step appears once.
            with open(metrics_path, "a+b") as fh:
                fh.truncate(offset)
            log.info("resuming from checkpoint", extra={"fields": {"step": resume_step, "dir": str(resume_dir)}})
        else:
            metrics_path.write_bytes(b"")
        self._metrics_fh = open(metrics_path, "a", encoding="utf-8")
        return resume_step

    # -- checkpoints --------------------------------------------------------------------------------------------

    def _save_checkpoint(self, step: int) -> None:
        self._metrics_fh.flush()
        os.fsync(self._metrics_fh.fileno())
        root = self.work_dir / RESUME_DIR
        state = {
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "objective": self.objective.state_dict() if isinstance(self.objective, PreferenceObjective) else None,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "counters": {"num_tokens": self.num_tokens, "n_truncated": self.n_truncated},
            "metrics_offset": self._metrics_fh.tell(),
        }
        with export.atomic_directory(root / f"step-{step:08d}") as tmp:
            self.model.save_pretrained(tmp / MODEL_DIR, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp / MODEL_DIR)
            torch.save(state, tmp / STATE_FILE)
        for old in root.iterdir():
            if old.name != f"step-{step:08d}":
                shutil.rmtree(old, ignore_errors=True)
        self.hooks.on_checkpoint(step)
        log.info("checkpoint saved", extra={"fields": {"step": step}})

    def _restore(self, resume_dir: Path) -> int:
        # weights_only=True: the state holds tensors, numbers and the python RNG tuple; nothing executable.
        state = torch.load(resume_dir / STATE_FILE, map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if isinstance(self.objective, PreferenceObjective):
            self.objective.load_state_dict(state["objective"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.num_tokens = state["counters"]["num_tokens"]
        self.n_truncated = state["counters"]["n_truncated"]
        return state["metrics_offset"]

    # -- the loop -----------------------------------------------------------------------------------------------

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        if self._cached_epoch != epoch:
            self._cached_batches = data.length_grouped_batches(self.lengths, self.h.batch_size, seed=self.h.seed,
                                                               epoch=epoch)
            self._cached_epoch = epoch
        return self._cached_batches

    def _micro_batches(self, step: int):
        epoch, index = divmod(step, self.steps_per_epoch)
        indices = self._epoch_batches(epoch)[index]
        size = self.h.micro_batch_size
        if self.world > 1:
            # This process's disjoint shard of the step's batch. A final short batch with fewer examples than
            # processes repeats some (every process must take part in every step); dist/shard_overlap counts them.
            shard = indices[self.rank::self.world] or [indices[self.rank % len(indices)]]
            indices = shard
            size = max(1, math.ceil(len(shard) / self.h.gradient_accumulation_steps))
        self.step_indices = list(indices)
        self.samples_seen += len(indices)
        chunks = [indices[i:i + size] for i in range(0, len(indices), size)]
        if isinstance(self.config.task, SftTask):
            batches = [collate_sft([self.examples[i] for i in c], pad_token_id=self.pad_id,
                                   max_length=self.h.max_length) for c in chunks]
        else:
            pairs: list[TokenizedPair] = self.examples
            batches = [collate_pairs([pairs[i] for i in c], pad_token_id=self.pad_id, max_length=self.h.max_length)
                       for c in chunks]
        self.n_truncated += sum(b.n_truncated for b in batches)
        return batches

    def train(self) -> RunOutputs:
        start_step = self._setup()
        self.hooks.on_start(start_step, self.total_steps)
        session_start = time.monotonic()
        session_tokens = 0
        final_metrics: dict[str, float] = {}
        params = [p for p in self.model.parameters() if p.requires_grad]
        for step in range(start_step, self.total_steps):
            if self.hooks.should_stop():
                raise JobCancelled(f"cancelled before step {step + 1} of {self.total_steps}")
            if self.hooks.should_suspend():
                if step > start_step:
                    self._save_checkpoint(step)
                # The newest checkpoint is now at `step` (just written, or the one this run resumed from); 0 = none.
                raise JobSuspended(step if (step > start_step or start_step > 0) else 0)
            lr = self.scheduler.get_last_lr()[0]
            every = self.trace_step_every
            traced = every and (step + 1) % every == 0
            with (tracing.tracer().start_as_current_span("trainer.step", attributes={"trainer.step": step + 1})
                  if traced else nullcontext()):
                result = self.objective.step(self._micro_batches(step), step)
            if self.acc is not None:
                grad_norm = float(self.acc.clip_grad_norm_(self.model.parameters(), self.h.max_grad_norm))
                result = self._gather(result)
            else:
                grad_norm = torch.nn.utils.clip_grad_norm_(params, self.h.max_grad_norm).item()
            if not (math.isfinite(result.loss) and math.isfinite(grad_norm)):
                raise TrainingDiverged(
                    f"step {step + 1}: loss {result.loss}, grad_norm {grad_norm} - not finite; "
                    f"lower spec.hparams.learning_rate (now {self.h.learning_rate:g})")
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)

            self.num_tokens += result.tokens
            session_tokens += result.tokens
            done = step + 1
            metrics = {"loss": result.loss, "grad_norm": grad_norm, "learning_rate": lr,
                       "epoch": done / self.steps_per_epoch, "num_tokens": float(self.num_tokens),
                       **result.metrics,
                       "data/truncated": float(self.n_truncated), "data/dropped": float(self.n_dropped)}
            if self._metrics_fh is not None:  # the main process only
                self._metrics_fh.write(json.dumps({"step": done, **metrics}) + "\n")
                self._metrics_fh.flush()
            final_metrics = metrics
            elapsed = time.monotonic() - session_start
            steps_here = done - start_step
            self.hooks.on_step(StepReport(
                step=done, total_steps=self.total_steps, loss=result.loss, metrics=metrics,
                tokens_per_second=session_tokens / elapsed if elapsed > 0 else 0.0,
                eta_seconds=elapsed / steps_here * (self.total_steps - done)))
            every = self.h.checkpoint_every_steps
            if every and done % every == 0 and done < self.total_steps:
                self._save_checkpoint(done)
        return self._finish(final_metrics, start_step)

    def _gather(self, result):
        """The step's result over every process (collective: every process calls it): loss and metrics averaged
        (shards are equal up to one example), tokens summed, and dist/* metrics (per-process sample counts,
        examples seen by more than one process in this step)."""
        from accelerate.utils import gather_object

        gathered = gather_object([(result.loss, result.metrics, result.tokens, self.samples_seen,
                                  self.step_indices)])
        losses_ = [g[0] for g in gathered]
        keys = sorted({k for g in gathered for k in g[1]})
        metrics = {k: sum(g[1][k] for g in gathered if k in g[1]) / sum(1 for g in gathered if k in g[1])
                   for k in keys}
        seen: dict[int, int] = {}
        for g in gathered:
            for i in g[4]:
                seen[i] = seen.get(i, 0) + 1
        metrics["dist/world_size"] = float(len(gathered))
        metrics["dist/shard_overlap"] = float(sum(c - 1 for c in seen.values()))
        for rank, g in enumerate(gathered):
            metrics[f"dist/samples/rank{rank}"] = float(g[3])
        return type(result)(loss=sum(losses_) / len(losses_), metrics=metrics, tokens=sum(g[2] for g in gathered))

    def _finish(self, final_metrics: dict[str, float], start_step: int) -> RunOutputs | None:
        if self._metrics_fh is not None:
            self._metrics_fh.close()
            self._metrics_fh = None
        self.model.eval()
        # Training ran without a KV cache; whoever loads the checkpoint to generate wants it back on.
        self.unwrapped.config.use_cache = True
        if self.acc is not None:
            # Collective under FSDP (gathers the full state dict to the main process): every process calls it.
            self.acc.wait_for_everyone()
            state_dict = self.acc.get_state_dict(self.model)
            if not self.is_main:
                self.acc.wait_for_everyone()
                return None
            model = self.acc.unwrap_model(self.model)
            ckpt = export.save_hf_checkpoint(model, self.tokenizer, self.out / CHECKPOINT_DIR, state_dict=state_dict)
        else:
            ckpt = export.save_hf_checkpoint(self.model, self.tokenizer, self.out / CHECKPOINT_DIR)
        onnx = export.export_onnx(self.out / CHECKPOINT_DIR, self.out / ONNX_DIR) if self.config.export_onnx else None
        metrics = export.file_info(self.out / METRICS_FILE)
        manifest_dir = export.write_manifest(self.out)
        shutil.rmtree(self.work_dir / RESUME_DIR, ignore_errors=True)
        outputs = RunOutputs(
            hf_checkpoint=ckpt, onnx=onnx, metrics=metrics,
            manifest=export.ArtifactInfo(path=self.out / export.MANIFEST, sha256=manifest_dir.sha256,
                                         size_bytes=(self.out / export.MANIFEST).stat().st_size),
            final_metrics=final_metrics, total_steps=self.total_steps, resumed_from_step=start_step)
        if self.acc is not None:
            self.acc.wait_for_everyone()
        return outputs


__all__ = [
    "JobCancelled",
    "JobSuspended",
    "RunHooks",
    "RunOutputs",
    "StepReport",
    "TrainingDiverged",
    "default_device",
    "latest_checkpoint",
    "run_job",
]
