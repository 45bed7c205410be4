"""The trainer service: SFT and preference-optimisation jobs (DPO, SPA, W-DRO and baselines, docs/algorithm.md §1-§5)
behind the alignment.v1.Trainer gRPC contract.

Layout (docs/architecture.md):
    api/        the gRPC boundary: contracts, the Trainer server and servicer, JobSpec parsing, the DroSolver client
    jobs/       the durable job lifecycle: job manager, job store, the one-job CLI and its accelerate launcher
    training/   the training loop and its mathematics, with no gRPC: runner, objectives, losses, log-probs,
                self-refinement, the W-DRO adversary interface (and an in-process exact solver), data, export
    config.py   job configuration (plain dataclasses) and the defaults, shared by the three
    cpu_env.py, logs.py, tracing.py   process-wide concerns every layer uses: CPU pins and threads, JSON logs, spans
training/ imports nothing from api/ or jobs/ (its W-DRO adversary is an interface; the job wiring passes the gRPC
client); api/ and jobs/ use each other's modules (the server wires the job manager, the CLI parses specs with
api/jobspec.py) but never in a cycle. tests/test_import_graph.py checks both.

Public entry points (everything else is internal and may move):
    python -m alignment_trainer.server   the gRPC server (server.py -> api/server.py)
    python -m alignment_trainer.cli      run one job, export a checkpoint, build a tokenizer (cli.py -> jobs/cli.py)
    alignment_trainer.public             the trainer's log-prob and export conventions, for tools and benches
"""

from alignment_trainer import cpu_env

__version__ = "0.1.0"

# Before anything computes with torch: the kernel level and BLAS mode that make results the same on every x86-64
# machine (cpu_env.py).
cpu_env.apply_pins()
