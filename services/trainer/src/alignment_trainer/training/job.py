"""TrainingJob: one training job from setup to outputs (runner.py says what a job does, step by step). Its inputs
come from job_inputs.py, its resumable checkpoints go through checkpoints.py, and each optimizer step's passes are
the objective's (objectives.py); the job owns the optimizer, the schedule, the batches, metrics.jsonl and the
outputs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from alignment_trainer import tracing
from alignment_trainer.config import WDRO_LOSSES, JobConfig, PreferenceTask, SftTask
from alignment_trainer.training import (checkpoints, data, engine_adapter, export, job_inputs, reference_cache, scaling,
                                        sft_eval)
from alignment_trainer.training.adversary import Adversary, ConnectAdversary
from alignment_trainer.training.collective import REPEAT, Collective, StepLayout, shard
from alignment_trainer.training.distributed_objective import DistributedPreferenceObjective
from alignment_trainer.training.distributed_setup import check_distributed, gather_step
from alignment_trainer.training.experiment_log import ExperimentLog
from alignment_trainer.training.lifecycle import (
    CHECKPOINT_DIR,
    METRICS_FILE,
    ONNX_DIR,
    JobCancelled,
    JobSuspended,
    RunHooks,
    RunOutputs,
    StepReport,
    TrainingDiverged,
)
from alignment_trainer.training.logprobs import TokenizedPair, collate_pairs
from alignment_trainer.training.objectives import PreferenceObjective, SftObjective, collate_sft

log = logging.getLogger("alignment_trainer.runner")

# transformers' scheduler names for TrainingHyperparams.lr_scheduler; each has the linear warm-up in front.
_SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


class TrainingJob:
    """One training job in this process (or in one process of an ``accelerate launch``), from setup to outputs."""

    def __init__(self, config: JobConfig, work_dir: Path, hooks: RunHooks, device: torch.device,
                 accelerator=None, connect_adversary: ConnectAdversary | None = None) -> None:
        self.config = config
        self.h = config.hparams
        self.work_dir = work_dir
        self.hooks = hooks
        self.acc = accelerator
        self.device = accelerator.device if accelerator is not None else device
        self.rank = accelerator.process_index if accelerator is not None else 0
        self.world = accelerator.num_processes if accelerator is not None else 1
        self.is_main = accelerator is None or accelerator.is_main_process
        # Gathers the coupled losses' per-pair values and broadcasts the main process's solution (collective.py).
        self.collective = Collective(self.rank, self.world) if accelerator is not None else None
        self.layout: StepLayout | None = None
        self.samples_seen = 0  # examples this process trained on (dist/samples/rank<r>)
        self.trace_step_every = max(0, int(os.environ.get("TRAINER_TRACE_STEP_EVERY") or 0))
        self.out = config.output_dir
        self.connect_adversary = connect_adversary
        self.adversary: Adversary | None = None
        self._metrics_fh = None
        self._experiment_log: ExperimentLog | None = None
        self._cached_epoch: int | None = None
        self._cached_batches: list[list[int]] = []

    def close(self) -> None:
        if self._metrics_fh is not None:
            self._metrics_fh.close()
        if self._experiment_log is not None:
            self._experiment_log.close()
        if self.adversary is not None:
            self.adversary.close()

    # -- setup --------------------------------------------------------------------------------------------------

    def _setup(self) -> int:
        job_inputs.verify_inputs(self.config)
        latest = checkpoints.latest_checkpoint(self.work_dir)
        if self.acc is not None:
            check_distributed(self.h, self.acc)
            latest = self.collective.broadcast(latest)  # the main process's choice, should the listings differ
        resume_step, resume_dir = latest if latest else (0, None)
        lora = self.h.lora
        self.dtype = scaling.resolve_dtype(self.h.dtype, self.device)
        # Several processes: the policy starts from its initial weights; accelerate's load_state restores them.
        # A LoRA job's checkpoint holds the adapter only: the base comes from the init, the adapter below.
        model, tokenizer = job_inputs.load_policy(self.config, resume_dir if self.acc is None and not lora else None,
                                                  dtype=self.dtype)
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.examples, self.lengths, self.n_dropped, judge_margins = job_inputs.tokenize_examples(self.config,
                                                                                                tokenizer)
        # SFT: a held-out slice (spec.sft.eval_fraction) for eval/loss; it is not trained on.
        self.held_out, self.examples, self.lengths = sft_eval.split_held_out(self.config, self.examples, self.lengths)

        self.steps_per_epoch = data.steps_per_epoch(len(self.examples), self.h.batch_size)
        total = math.ceil(self.h.epochs * self.steps_per_epoch)
        if self.h.max_steps:
            total = min(total, self.h.max_steps)
        self.total_steps = max(1, total)

        model.to(self.device)
        if self.h.gradient_checkpointing:
            # Non-reentrant checkpointing: works with inputs that need no grad and is the one PyTorch recommends.
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora:
            # The adapter's initial A matrices are random: seeded, so any number of processes starts from the same
            # adapter (DDP also broadcasts the main process's). Several processes: load_state restores it on resume.
            torch.manual_seed(self.h.seed)
            model = scaling.apply_lora(model, lora, resume_dir if self.acc is None else None, checkpoints.MODEL_DIR)
        model.config.use_cache = False
        model.train()
        self.unwrapped = model
        task = self.config.task
        ref = None
        if isinstance(task, PreferenceTask):
            ref = scaling.reference_for(task, model, self.h, resumed=resume_dir is not None and self.acc is None,
                                        device=self.device, dtype=self.dtype)
        backward = None
        if self.acc is not None:
            # The model first (FSDP shards it; the optimizer is then built over the prepared parameters); the
            # reference only runs forward passes under no_grad, so it is prepared for inference (no DDP wrapper).
            model = self.acc.prepare_model(model)
            if ref is not None and not isinstance(ref, scaling.AdapterDisabled):  # that one is the policy's base
                ref = self.acc.prepare_model(ref, evaluation_mode=True)
            backward = self.acc.backward
        self.model = model

        if isinstance(task, SftTask):
            self.objective = SftObjective(model, device=self.device, bf16=self.h.bf16, backward=backward)
        else:
            if task.loss in WDRO_LOSSES and self.is_main:  # several processes: the main one solves for all
                if self.connect_adversary is None:
                    raise ValueError(f"the {task.loss!r} loss needs an adversary: run_job(..., connect_adversary=...)")
                self.adversary = self.connect_adversary(task.dro_solver_address)
            kwargs = dict(total_steps=self.total_steps, device=self.device, bf16=self.h.bf16,
                          adversary=self.adversary, backward=backward)
            self.objective = (PreferenceObjective(model, ref, task, **kwargs) if self.collective is None else
                              DistributedPreferenceObjective(model, ref, task, collective=self.collective, **kwargs))
            if self.objective.per_round_schedule:
                # docs/algorithm.md §7: the round's worst case, once, from the judge's margins in the pairs file
                # (so a resumed job recomputes the same weights).
                self.objective.solve_per_round(judge_margins)
                if not self.objective.per_round.groups:
                    log.warning("per-round adversary: no pair has a SPA-judge margin, every pair trains as DPO",
                                extra={"fields": {"pairs": len(self.examples)}})

        self.ref_cache = reference_cache.for_job(self, ref)
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
            # with step_scheduler_with_optimizer=False (jobs/cli.py), so a prepared scheduler steps once per step.
            self.optimizer, self.scheduler = self.acc.prepare(self.optimizer, self.scheduler)
        self.num_tokens = 0
        self.n_truncated = 0
        random.seed(self.h.seed)
        torch.manual_seed(self.h.seed)

        offset = self._restore(resume_dir) if resume_dir is not None else None
        if not self.is_main:
            return resume_step
        self.out.mkdir(parents=True, exist_ok=True)
        metrics_path = self.out / METRICS_FILE
        if resume_dir is not None:
            # Steps after the checkpoint are done again; their old lines go so each step appears once.
            with open(metrics_path, "a+b") as fh:
                fh.truncate(offset)
            log.info("resuming from checkpoint", extra={"fields": {"step": resume_step, "dir": str(resume_dir)}})
        else:
            metrics_path.write_bytes(b"")
        kept = [json.loads(line) for line in metrics_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        self._metrics_fh = open(metrics_path, "a", encoding="utf-8")
        self._experiment_log = ExperimentLog(self.config, self.out, kept)
        return resume_step

    # -- checkpoints --------------------------------------------------------------------------------------------

    def _save_checkpoint(self, step: int) -> None:
        """Collective with several processes: every process calls it at the same step."""
        if self._metrics_fh is not None:  # the main process only
            self._metrics_fh.flush()
            os.fsync(self._metrics_fh.fileno())
        state = {
            "step": step,
            "objective": self.objective.state_dict() if isinstance(self.objective, PreferenceObjective) else None,
            "counters": {"num_tokens": self.num_tokens, "n_truncated": self.n_truncated},
            "metrics_offset": self._metrics_fh.tell() if self._metrics_fh is not None else 0,
        }
        if self.acc is not None:
            # Model, optimizer, scheduler and every process's RNG through accelerate (FSDP gathers or shards them).
            checkpoints.save_distributed_checkpoint(self.acc, self.work_dir, step, state)
        else:
            state.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                         rng=checkpoints.rng_state())
            checkpoints.save_checkpoint(self.work_dir, step, self.model, self.tokenizer, state)
        self.hooks.on_checkpoint(step)
        log.info("checkpoint saved", extra={"fields": {"step": step}})

    def _restore(self, resume_dir: Path) -> int:
        state = checkpoints.load_state(resume_dir)
        if self.acc is not None:
            checkpoints.load_distributed_checkpoint(self.acc, resume_dir)
        else:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            checkpoints.restore_rng_state(state["rng"])
        if isinstance(self.objective, PreferenceObjective):
            self.objective.load_state_dict(state["objective"])
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
        # With several processes a micro-batch has at least one pair per process (fewer would leave some idle).
        size = max(self.h.micro_batch_size, self.world)
        chunks = [indices[i:i + size] for i in range(0, len(indices), size)]
        if self.world > 1:
            # This process's disjoint share of each micro-batch of the step (collective.shard). A micro-batch with
            # fewer examples than processes has some repeated (every process must take part in every micro-batch);
            # dist/shard_overlap counts them, and they add nothing to the gradient.
            parts = shard(len(indices), self.rank, self.world, size)
            self.layout = StepLayout(batch=list(indices), positions=[p for part in parts for p in part])
            chunks = [[indices[p] for p in part] if part != [REPEAT] else [chunk[self.rank % len(chunk)]]
                      for part, chunk in zip(parts, chunks)]
        self.step_indices = [i for c in chunks for i in c]
        self.samples_seen += len(self.step_indices)
        if isinstance(self.config.task, SftTask):
            batches = [collate_sft([self.examples[i] for i in c], pad_token_id=self.pad_id,
                                   max_length=self.h.max_length) for c in chunks]
        else:
            pairs: list[TokenizedPair] = self.examples
            batches = [collate_pairs([pairs[i] for i in c], pad_token_id=self.pad_id, max_length=self.h.max_length,
                                     response_logits_only=not self.h.full_logits) for c in chunks]
            if self.ref_cache is not None:
                batches = [self.ref_cache.attach(b, c) for b, c in zip(batches, chunks)]
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
                micro_batches = self._micro_batches(step)
                with scaling.activation_offload(self.h.offload_activations, self.device):
                    result = self._objective_step(micro_batches, step)
            if self.acc is not None:
                grad_norm = float(self.acc.clip_grad_norm_(self.model.parameters(), self.h.max_grad_norm))
                result = gather_step(result, self.samples_seen, self.step_indices)
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
            if self.held_out and (done % self.steps_per_epoch == 0 or done == self.total_steps):
                metrics["eval/loss"] = sft_eval.eval_loss(self.model, self.held_out, self.pad_id, self.h, self.device)
            if self._metrics_fh is not None:  # the main process only
                self._metrics_fh.write(json.dumps({"step": done, **metrics}) + "\n")
                self._metrics_fh.flush()
                self._experiment_log.log(done, metrics)
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

    def _objective_step(self, micro_batches, step: int):
        if isinstance(self.objective, DistributedPreferenceObjective):
            return self.objective.step(micro_batches, step, layout=self.layout)
        if isinstance(self.objective, PreferenceObjective):
            return self.objective.step(micro_batches, step, pair_indices=self.step_indices)
        return self.objective.step(micro_batches, step)

    def _finish(self, final_metrics: dict[str, float], start_step: int) -> RunOutputs | None:
        if self._metrics_fh is not None:
            self._metrics_fh.close()
            self._metrics_fh = None
            self._experiment_log.close()
            self._experiment_log = None
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
            if scaling.is_lora(model):  # DDP: every process holds the whole model; the main one merges and saves
                model, state_dict = scaling.merged(model), None
            ckpt = export.save_hf_checkpoint(model, self.tokenizer, self.out / CHECKPOINT_DIR, state_dict=state_dict)
        else:
            # A LoRA job also keeps its adapter unmerged, on pi_init (for an inference engine: engine_adapter.py).
            adapter = engine_adapter.cumulative_adapter(self.model, self.config.task) if scaling.is_lora(self.model) else None
            ckpt = export.save_hf_checkpoint(scaling.merged(self.model), self.tokenizer, self.out / CHECKPOINT_DIR, extra=adapter)
        onnx = export.export_onnx(self.out / CHECKPOINT_DIR, self.out / ONNX_DIR) if self.config.export_onnx else None
        metrics = export.file_info(self.out / METRICS_FILE)
        manifest_dir = export.write_manifest(self.out)
        checkpoints.remove_checkpoints(self.work_dir)
        outputs = RunOutputs(
            hf_checkpoint=ckpt, onnx=onnx, metrics=metrics,
            manifest=export.ArtifactInfo(path=self.out / export.MANIFEST, sha256=manifest_dir.sha256,
                                         size_bytes=(self.out / export.MANIFEST).stat().st_size),
            final_metrics=final_metrics, total_steps=self.total_steps, resumed_from_step=start_step)
        if self.acc is not None:
            self.acc.wait_for_everyone()
        return outputs


__all__ = ["TrainingJob"]
