"""Runs one job from a JSON JobSpec without the gRPC server: what ``accelerate launch`` runs on a multi-GPU node.

    python -m alignment_trainer.cli run --spec job.json --output DIR [--work-dir DIR] [--publish-uri s3://B/K]
    python -m alignment_trainer.cli export --checkpoint DIR --output DIR         (bring your own model)
    python -m alignment_trainer.cli tokenizer --corpus X.jsonl --output DIR      (for a model trained from scratch)

    accelerate launch --config_file services/trainer/accelerate/fsdp.yaml --num_processes 8 \
        -m alignment_trainer.cli run --spec job.json --output /data/jobs/x

``--spec`` is an alignment.v1.JobSpec in proto JSON form (json_format: camelCase or the proto field names, enums by
name, e.g. ``"loss": "PREFERENCE_LOSS_DPO"``); it is validated as StartJob validates it. The outputs are the
service's: ``DIR/checkpoint`` (Hugging Face), ``DIR/onnx`` when ``exportOnnx``, ``DIR/metrics.jsonl`` and
``DIR/manifest.json`` (``--output`` overrides the spec's output_uri). With ``--publish-uri s3://bucket/key`` the job
still trains into DIR, and when it succeeds the main process publishes DIR there as the trainer service publishes an
s3:// output_uri (objectstore.publish: every file, the manifest last; other content already published there is never
replaced); result.json then names each output's s3:// ``uri`` beside its local path. A run that starts (no
progress.json in the work dir yet) refuses a URI already published, as StartJob does; a resumed one publishes again,
and the same content there is a retry. Beside them, in ``--work-dir`` (default
``DIR.work``, outside DIR: the manifest lists every file of DIR), the main process writes ``progress.json`` after
every step ({"step", "total_steps", "loss", "tokens_per_second", "eta_seconds", "time"}) and, at the end,
``result.json`` (the outputs, or the error) for whoever launched it; resumable checkpoints go there too (with
several processes through accelerate's save_state), and a run started again with the same work dir (and as many
processes) resumes, also after one of its processes was killed.

Under ``accelerate launch`` with more than one process the job runs data-parallel through accelerate.Accelerator
(runner.run_job). TRACEPARENT in the environment (W3C) parents the job's span, as a service-launched job continues
its StartJob caller's trace; OTEL_TRACES_EXPORTER / OTEL_TRACES_FILE are honoured as by the server (tracing.py).
Exit status: 0 on success, 1 when the job failed, 2 for a bad command line or spec.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from google.protobuf import json_format

from alignment_trainer import cpu_env, logs, objectstore, tracing
from alignment_trainer.api import jobspec
from alignment_trainer.api.contracts import trainer_pb2
from alignment_trainer.api.dro_client import DroSolverClient
from alignment_trainer.config import DEFAULT_DRO_SOLVER_ADDRESS
from alignment_trainer.jobs.layout import PROGRESS_FILE, RESULT_FILE
from alignment_trainer.training import export, runner

log = logs.get_logger("alignment_trainer.cli")


def load_spec(path: Path) -> trainer_pb2.JobSpec:
    try:
        return json_format.Parse(Path(path).read_text(), trainer_pb2.JobSpec())
    except (OSError, json_format.ParseError) as err:
        raise jobspec.InvalidSpec("spec", f"{path}: {err}") from err


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m alignment_trainer.cli", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one job from a JSON JobSpec")
    run.add_argument("--spec", required=True, type=Path, help="alignment.v1.JobSpec in proto JSON form")
    run.add_argument("--output", required=True, type=Path, help="output directory (overrides spec.output_uri)")
    run.add_argument("--work-dir", type=Path, default=None,
                     help="progress.json, result.json, resumable checkpoints (default OUTPUT.work)")
    run.add_argument("--publish-uri", default=None,
                     help="s3://bucket/key: publish the outputs there when the job succeeds (manifest last)")
    run.add_argument("--dro-solver-address", default=None,
                     help="DroSolver for W-DRO specs that name none (default $DRO_SOLVER_ADDRESS or "
                          f"{DEFAULT_DRO_SOLVER_ADDRESS})")
    exp = sub.add_parser("export", help="export a Hugging Face Llama checkpoint for the generator and the judge")
    exp.add_argument("--checkpoint", required=True, type=Path,
                     help="checkpoint directory (config.json, safetensors, tokenizer with a chat template)")
    exp.add_argument("--output", required=True, type=Path,
                     help="new directory for model.onnx with KV cache (Optimum layout), tokenizer and manifest.json")
    tok = sub.add_parser("tokenizer", help="train a byte-level BPE tokenizer (with chat template) on a JSONL corpus")
    tok.add_argument("--corpus", required=True, type=Path, help="JSONL; every string field of every line is text")
    tok.add_argument("--output", required=True, type=Path, help="new directory for tokenizer.json and its config")
    tok.add_argument("--vocab-size", type=int, default=1024, help="bytes + special tokens + merges (default 1024)")
    return parser


def build_tokenizer(args: argparse.Namespace) -> int:
    """Tokenizer for a base model trained from scratch (SFT from an ArchitectureConfig)."""
    from alignment_trainer.training import corpus_tokenizer

    if args.output.exists():
        log.error("output exists", extra={"fields": {"output": str(args.output), "reason": "give a new directory"}})
        return 2
    try:
        tokenizer = corpus_tokenizer.build_corpus_tokenizer(args.corpus, args.output.resolve(), args.vocab_size)
    except (OSError, ValueError) as err:
        log.error("cannot build the tokenizer", extra={"fields": {"corpus": str(args.corpus), "reason": str(err)}})
        return 2
    print(json.dumps({"tokenizer": str(args.output.resolve()), "vocab_size": len(tokenizer)}))
    return 0


def export_checkpoint(args: argparse.Namespace) -> int:
    """Bring-your-own-model path: the same export the trainer runs after every job."""
    checkpoint = args.checkpoint.resolve()
    if not (checkpoint / "config.json").is_file():
        log.error("not a Hugging Face checkpoint", extra={"fields": {"checkpoint": str(checkpoint),
                                                                    "reason": "config.json is missing"}})
        return 2
    if args.output.exists():
        log.error("output exists", extra={"fields": {"output": str(args.output), "reason": "give a new directory"}})
        return 2
    try:
        info = export.export_onnx(checkpoint, args.output.resolve())
    except ValueError as err:
        log.error("cannot export", extra={"fields": {"checkpoint": str(checkpoint), "reason": str(err)}})
        return 2
    print(json.dumps({"onnx": _info(info)}))
    return 0


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def _info(info: export.ArtifactInfo | None, publish_uri: str | None = None, output: Path | None = None) -> dict | None:
    """An output for result.json; with ``publish_uri``, also its s3:// location (as the service's JobOutputs)."""
    if info is None:
        return None
    out = {"path": str(info.path), "sha256": info.sha256, "size_bytes": info.size_bytes}
    if publish_uri and output is not None:
        out["uri"] = f"{publish_uri}/{Path(info.path).relative_to(output).as_posix()}"
    return out


def run(args: argparse.Namespace) -> int:
    from accelerate import Accelerator

    accelerator = Accelerator(step_scheduler_with_optimizer=False)
    main_process = accelerator.is_main_process
    launched = int(os.environ.get("WORLD_SIZE") or 1)
    if launched != accelerator.num_processes:
        # E.g. `accelerate launch --multi_gpu` on a machine without GPUs: accelerate falls back to one process per
        # launched process, and they would all write the same outputs.
        log.error("launched as one of several processes, but accelerate set up a single-process run",
                  extra={"fields": {"world_size": launched, "num_processes": accelerator.num_processes,
                                    "hint": "on a CPU-only machine set ACCELERATE_USE_CPU=1 (DDP over gloo)"}})
        return 2
    try:
        cpu = cpu_env.configure_torch(serving=False, processes=accelerator.num_processes)
    except cpu_env.CpuEnvError as err:
        log.error("invalid environment", extra={"fields": {"error": str(err)}})
        return 2
    log.info("cpu environment", extra={"fields": cpu})
    output = args.output.resolve()
    dro = args.dro_solver_address or os.environ.get("DRO_SOLVER_ADDRESS") or DEFAULT_DRO_SOLVER_ADDRESS
    work_dir = (args.work_dir or output.with_name(output.name + ".work")).resolve()
    try:
        spec = load_spec(args.spec)
        # An s3:// output_uri trains into the default output dir (here --output) and is published after (jobspec.py).
        spec.output_uri = args.publish_uri.strip() if args.publish_uri else output.as_uri()
        if args.publish_uri and not objectstore.is_s3_uri(spec.output_uri):
            raise jobspec.InvalidSpec("--publish-uri", f"must be an s3://bucket/key URI, got {args.publish_uri!r}")
        config = jobspec.parse_job_spec(spec, default_output_dir=output, default_dro_address=dro)
        if config.publish_uri and not (work_dir / PROGRESS_FILE).exists():
            objectstore.check_unpublished(config.publish_uri, "--publish-uri")
    except (jobspec.InvalidSpec, jobspec.PathNotAllowed, objectstore.ObjectStoreError) as err:
        log.error("invalid spec", extra={"fields": {"error": str(err)}})
        return 2
    if main_process:
        output.mkdir(parents=True, exist_ok=True)
        work_dir.mkdir(parents=True, exist_ok=True)

    def on_step(report: runner.StepReport) -> None:
        if main_process:
            _write_json(work_dir / PROGRESS_FILE, {"step": report.step, "total_steps": report.total_steps,
                                                 "loss": report.loss, "tokens_per_second": report.tokens_per_second,
                                                 "eta_seconds": report.eta_seconds, "time": time.time()})

    # The run's length goes to the progress file before the first step: a step's metrics.jsonl row is written before
    # its on_step, and the launching server reads the total from here when it streams that row.
    def on_start(start_step: int, total_steps: int) -> None:
        if main_process:
            _write_json(work_dir / PROGRESS_FILE, {"step": start_step, "total_steps": total_steps, "time": time.time()})

    parent = tracing.context_from({k: v for k, v in (("traceparent", os.environ.get("TRACEPARENT", "")),
                                                     ("tracestate", os.environ.get("TRACESTATE", ""))) if v})
    attributes = {"trainer.job_kind": config.kind, "trainer.process_index": accelerator.process_index,
                  "trainer.num_processes": accelerator.num_processes}
    with tracing.tracer().start_as_current_span(f"trainer.job {config.kind}", context=parent,
                                                attributes=attributes):
        try:
            hooks = runner.RunHooks(on_step=on_step, on_start=on_start)
            outputs = runner.run_job(config, work_dir, hooks, accelerator=accelerator,
                                     connect_adversary=DroSolverClient)
            if main_process and outputs is not None and config.publish_uri:
                objectstore.publish(config.output_dir, config.publish_uri, "--publish-uri")
        except Exception as err:
            log.error("job failed", exc_info=True, extra={"fields": {"error": f"{type(err).__name__}: {err}"}})
            if main_process:
                _write_json(work_dir / RESULT_FILE, {"state": "FAILED", "error": f"{type(err).__name__}: {err}"})
            return 1
    if main_process and outputs is not None:
        _write_json(work_dir / RESULT_FILE, {
            "state": "SUCCEEDED", "total_steps": outputs.total_steps, "final_metrics": outputs.final_metrics,
            "outputs": {role: _info(info, config.publish_uri, config.output_dir) for role, info in (
                ("hf_checkpoint", outputs.hf_checkpoint), ("onnx", outputs.onnx), ("manifest", outputs.manifest),
                ("metrics", outputs.metrics))}})
        log.info("job succeeded", extra={"fields": {"steps": outputs.total_steps, "output": str(output)}})
    return 0


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    args = _parser().parse_args(argv)
    tracing.init_tracing()
    try:
        commands = {"export": export_checkpoint, "tokenizer": build_tokenizer, "run": run}
        return commands[args.command](args)
    finally:
        tracing.shutdown_tracing()


if __name__ == "__main__":
    sys.exit(main())
