"""alignment.v1.JobSpec -> config.JobConfig: every field checked up front, defaults filled in.

A bad spec is refused before a job exists (StartJob answers INVALID_ARGUMENT with InvalidSpec's message, e.g.
``spec.preference.beta: must be > 0, got -1``), so nothing fails an hour into a run for a reason visible at
submission. Settings that the chosen loss would ignore are refused too rather than silently dropped (a W-DRO budget
on a DPO job means the caller believes something that is not happening). Dataset *contents* are checked when the
job starts reading them (data.DatasetError names file:line); here only their existence is.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from alignment_trainer import objectstore
from alignment_trainer.config import (
    ADVERSARY_PER_ROUND,
    ADVERSARY_PER_STEP,
    DEFAULT_ADVERSARY_GROUP_SIZE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_BETA,
    DEFAULT_DRDPO_BETA_PRIME,
    DEFAULT_LORA_ALPHA,
    DEFAULT_LORA_RANK,
    DEFAULT_LORA_TARGETS,
    DEFAULT_LABEL_SMOOTHING,
    DEFAULT_MAX_GRAD_NORM,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MAX_POSITION_EMBEDDINGS,
    DEFAULT_SFT_EVAL_FRACTION,
    DEFAULT_SPA_ALPHA,
    DEFAULT_SPA_K_PERCENTILE,
    DEFAULT_SPA_WARMUP_FRACTION,
    DEFAULT_SPA_WINDOW,
    DEFAULT_WARMUP_RATIO,
    DTYPES,
    LABEL_SMOOTHING_LOSSES,
    LR_SCHEDULERS,
    SPA_LOSSES,
    WDRO_LOSSES,
    Architecture,
    Artifact,
    Hyperparams,
    JobConfig,
    LoraSettings,
    PreferenceTask,
    SftTask,
    SpaSettings,
    WdroSettings,
)
from alignment_trainer.api.contracts import common_pb2, trainer_pb2

LOSS_NAMES = {
    common_pb2.PREFERENCE_LOSS_DPO: "dpo",
    common_pb2.PREFERENCE_LOSS_SPA: "spa",
    common_pb2.PREFERENCE_LOSS_WDRO: "wdro",
    common_pb2.PREFERENCE_LOSS_WDRO_SR: "wdro-sr",
    common_pb2.PREFERENCE_LOSS_CDPO: "cdpo",
    common_pb2.PREFERENCE_LOSS_RDPO: "rdpo",
    common_pb2.PREFERENCE_LOSS_DRDPO: "drdpo",
    common_pb2.PREFERENCE_LOSS_IPO: "ipo",
}


class InvalidSpec(ValueError):
    """Raised for a JobSpec that cannot run; ``field`` is the offending field's path from ``spec``."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class PathNotAllowed(InvalidSpec):
    """A path outside the roots this trainer may read (or write): PERMISSION_DENIED, the message the same whether or
    not the path exists (issue 12: confinement)."""


def confine(path: Path, field: str, mode: str) -> Path:
    """``path`` with its symbolic links resolved if it lies under ARTIFACT_ROOTS (read and write) or, to read,
    READ_ONLY_ROOTS (colon-separated directories); PathNotAllowed otherwise. Unset ARTIFACT_ROOTS: not confined."""
    roots = [r for r in os.environ.get("ARTIFACT_ROOTS", "").split(":") if r.strip()]
    if not roots:
        return path
    if mode == "read":
        roots += [r for r in os.environ.get("READ_ONLY_ROOTS", "").split(":") if r.strip()]
    real = Path(os.path.realpath(path))
    for root in roots:
        if real.is_relative_to(Path(os.path.realpath(root.strip()))):
            return real
    where = "ARTIFACT_ROOTS" if mode == "write" else "ARTIFACT_ROOTS or READ_ONLY_ROOTS"
    raise PathNotAllowed(field, f"the path is outside the directories this trainer may {mode} ({where})")


# Linux's limits, in bytes: a whole path (with its NUL) and one name in it.
PATH_MAX = 4096
NAME_MAX = 255


def local_path(uri: str, field: str, mode: str = "read") -> Path:
    """file:///abs/path or a plain path -> Path. s3:// is handled by the callers (objectstore.py: inputs are
    downloaded into a cache, an s3:// output_uri published after the job); other schemes are refused. A path with a NUL, longer than PATH_MAX or
    with a name longer than NAME_MAX is refused here: Path.is_file() raises OSError (ENAMETOOLONG) for the long ones
    instead of answering False, which made StartJob INTERNAL (tools/fuzz), and os.path.realpath ValueError for a NUL."""
    if not uri:
        raise InvalidSpec(field, "required")
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InvalidSpec(field, f"file URI with a remote host is not supported: {uri!r}")
        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:  # a one-letter "scheme" is a Windows drive, i.e. a path
        raise InvalidSpec(field, f"only local paths or file:// URIs are supported, got {uri!r}")
    else:
        path = Path(uri)
    raw = os.fsencode(path)
    if b"\0" in raw:  # os.path.realpath (confine) raises ValueError for it
        raise InvalidSpec(field, "the path contains a NUL character")
    if len(raw) >= PATH_MAX:
        raise InvalidSpec(field, f"the path is {len(raw)} bytes long; at most {PATH_MAX - 1} are allowed")
    longest = max(len(name) for name in raw.split(b"/"))
    if longest > NAME_MAX:
        raise InvalidSpec(field, f"a name in the path is {longest} bytes long; at most {NAME_MAX} are allowed")
    return confine(path, field, mode)


def _fetched(ref: common_pb2.ArtifactRef, field: str, kind: str) -> Path:
    """The verified local copy of an s3:// input (objectstore.fetch), its problems as InvalidSpec / PathNotAllowed."""
    try:
        return objectstore.fetch(ref.uri, f"{field}.uri", kind, ref.sha256.lower())
    except objectstore.S3PermissionDenied as err:
        raise PathNotAllowed(err.field, err.reason) from err
    except objectstore.ObjectStoreError as err:
        raise InvalidSpec(f"{field}.sha256" if err.kind == "mismatch" else f"{field}.uri", str(err)) from err


def _artifact(ref: common_pb2.ArtifactRef, field: str, *, kind: str) -> Artifact:
    sha = ref.sha256.lower()
    if sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise InvalidSpec(f"{field}.sha256", f"must be 64 hex digits, got {ref.sha256!r}")
    path = _fetched(ref, field, kind) if objectstore.is_s3_uri(ref.uri) else local_path(ref.uri, f"{field}.uri")
    if kind == "file" and not path.is_file():
        raise InvalidSpec(f"{field}.uri", f"no such file: {path}")
    if kind == "dir" and not path.is_dir():
        raise InvalidSpec(f"{field}.uri", f"no such directory: {path}")
    return Artifact(path=path, sha256=sha)


def _checkpoint(ref: common_pb2.ArtifactRef, field: str) -> Artifact:
    art = _artifact(ref, field, kind="dir")
    if not (art.path / "config.json").is_file():
        raise InvalidSpec(f"{field}.uri", f"not a Hugging Face checkpoint (no config.json in {art.path})")
    return art


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise InvalidSpec(field, f"must be finite, got {value}")
    return value


def _check(cond: bool, field: str, reason: str) -> None:
    if not cond:
        raise InvalidSpec(field, reason)


def parse_job_spec(spec: trainer_pb2.JobSpec, *, default_output_dir: Path, default_dro_address: str) -> JobConfig:
    """Validates ``spec`` and returns the JobConfig it describes; raises InvalidSpec naming the first bad field."""
    kind = spec.WhichOneof("kind")
    if kind is None:
        raise InvalidSpec("spec.kind", "one of spec.sft or spec.preference is required")
    task = _sft(spec.sft) if kind == "sft" else _preference(spec.preference, default_dro_address)
    hparams = _hparams(spec.hparams, spec.HasField("hparams"))
    if objectstore.is_s3_uri(spec.output_uri):
        # Trained locally, published to S3 when the job succeeds (jobs/manager.py).
        try:
            objectstore.confine(spec.output_uri, "spec.output_uri", "write")
            objectstore.check_bucket(spec.output_uri)
        except objectstore.S3PermissionDenied as err:
            raise PathNotAllowed(err.field, err.reason) from err
        except objectstore.ObjectStoreError as err:
            raise InvalidSpec("spec.output_uri", str(err)) from err
        return JobConfig(task=task, hparams=hparams, output_dir=default_output_dir, export_onnx=spec.export_onnx,
                         publish_uri=spec.output_uri.strip().rstrip("/"))
    output_dir = local_path(spec.output_uri, "spec.output_uri", "write") if spec.output_uri else default_output_dir
    return JobConfig(task=task, hparams=hparams, output_dir=output_dir, export_onnx=spec.export_onnx)


def max_parameters() -> int:
    """The largest model an SFT job may build from an architecture: TRAINER_MAX_PARAMETERS, default 10^9 (4 GB of
    fp32 weights, and as much again for Adam's moments)."""
    raw = os.environ.get("TRAINER_MAX_PARAMETERS", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) > 0 else 1_000_000_000


def _sft(sft: trainer_pb2.SftJob) -> SftTask:
    dataset = _artifact(sft.dataset, "spec.sft.dataset", kind="file")
    init = sft.WhichOneof("init")
    if init is None:
        raise InvalidSpec("spec.sft.init", "one of spec.sft.architecture or spec.sft.checkpoint is required")
    eval_fraction = _finite(sft.eval_fraction, "spec.sft.eval_fraction") if sft.HasField("eval_fraction") \
        else DEFAULT_SFT_EVAL_FRACTION
    _check(0 <= eval_fraction <= 0.5, "spec.sft.eval_fraction", f"must be in [0, 0.5], got {eval_fraction}")
    if init == "checkpoint":
        return SftTask(dataset=dataset, checkpoint=_checkpoint(sft.checkpoint, "spec.sft.checkpoint"),
                       eval_fraction=eval_fraction)
    a = sft.architecture
    f = "spec.sft.architecture"
    _check(a.model_type == "llama", f"{f}.model_type",
           f"must be \"llama\" (the only architecture the ONNX export and the generator support), got {a.model_type!r}")
    for name in ("hidden_size", "num_layers", "num_attention_heads", "intermediate_size"):
        _check(getattr(a, name) > 0, f"{f}.{name}", "must be > 0")
    # Issue 12: a huge architecture drove the trainer past 6 GB in 15 s before anything said no.
    for name, most in (("hidden_size", 65536), ("num_layers", 1024), ("num_attention_heads", 1024),
                       ("intermediate_size", 262144), ("max_position_embeddings", 1 << 20)):
        _check(getattr(a, name) <= most, f"{f}.{name}", f"must be <= {most}, got {getattr(a, name)}")
    params = a.num_layers * (4 * a.hidden_size ** 2 + 3 * a.hidden_size * a.intermediate_size)
    limit = max_parameters()
    _check(params <= limit, f,
           f"has about {params:.3g} parameters besides its embeddings; this trainer builds at most {limit:.3g} from "
           "an architecture (TRAINER_MAX_PARAMETERS)")
    _check(a.hidden_size % a.num_attention_heads == 0, f"{f}.hidden_size",
           f"must be divisible by num_attention_heads ({a.hidden_size} % {a.num_attention_heads} != 0)")
    kv = a.num_key_value_heads or a.num_attention_heads
    _check(a.num_attention_heads % kv == 0, f"{f}.num_key_value_heads",
           f"must divide num_attention_heads ({a.num_attention_heads} % {kv} != 0)")
    tok = _artifact(a.tokenizer, f"{f}.tokenizer", kind="dir")
    _check((tok.path / "tokenizer.json").is_file() or (tok.path / "tokenizer_config.json").is_file(),
           f"{f}.tokenizer.uri", f"no tokenizer.json / tokenizer_config.json in {tok.path}")
    arch = Architecture(
        hidden_size=a.hidden_size, num_layers=a.num_layers, num_attention_heads=a.num_attention_heads,
        num_key_value_heads=kv, intermediate_size=a.intermediate_size,
        max_position_embeddings=a.max_position_embeddings or DEFAULT_MAX_POSITION_EMBEDDINGS, tokenizer=tok)
    return SftTask(dataset=dataset, architecture=arch, eval_fraction=eval_fraction)


def _preference(p: trainer_pb2.PreferenceJob, default_dro_address: str) -> PreferenceTask:
    f = "spec.preference"
    if p.loss not in LOSS_NAMES:
        raise InvalidSpec(f"{f}.loss", "required (one of " + ", ".join(
            common_pb2.PreferenceLoss.Name(v) for v in LOSS_NAMES) + ")")
    loss = LOSS_NAMES[p.loss]
    init = _checkpoint(p.init, f"{f}.init")
    reference = _checkpoint(p.reference, f"{f}.reference") if p.HasField("reference") and p.reference.uri else init
    pairs = _artifact(p.pairs, f"{f}.pairs", kind="file")

    beta = _finite(p.beta, f"{f}.beta") if p.HasField("beta") else DEFAULT_BETA
    _check(beta > 0, f"{f}.beta", f"must be > 0, got {beta:g}")

    spa = SpaSettings()
    if p.HasField("spa"):
        _check(loss in SPA_LOSSES, f"{f}.spa", f"only used by the SPA and WDRO_SR losses, not {loss!r}")
        s = p.spa
        alpha = _finite(s.alpha, f"{f}.spa.alpha") if s.HasField("alpha") else DEFAULT_SPA_ALPHA
        _check(0 <= alpha <= 1, f"{f}.spa.alpha", f"must be in [0, 1], got {alpha:g}")
        k = _finite(s.k_percentile, f"{f}.spa.k_percentile") if s.HasField("k_percentile") \
            else DEFAULT_SPA_K_PERCENTILE
        _check(0 < k < 100, f"{f}.spa.k_percentile", f"must be in (0, 100), got {k:g}")
        warm = _finite(s.warmup_fraction, f"{f}.spa.warmup_fraction") if s.HasField("warmup_fraction") \
            else DEFAULT_SPA_WARMUP_FRACTION
        _check(0 <= warm < 1, f"{f}.spa.warmup_fraction", f"must be in [0, 1), got {warm:g}")
        lam = _finite(s.dnd_lambda, f"{f}.spa.dnd_lambda")
        _check(lam >= 0, f"{f}.spa.dnd_lambda", f"must be >= 0, got {lam:g}")
        spa = SpaSettings(alpha=alpha, k_percentile=k, window=s.window or DEFAULT_SPA_WINDOW,
                          warmup_fraction=warm, dnd_lambda=lam)

    wdro = None
    if loss in WDRO_LOSSES:
        _check(p.HasField("wdro"), f"{f}.wdro", f"required for the {loss!r} loss (delta and epsilon or rho)")
        w = p.wdro
        delta = _finite(w.delta, f"{f}.wdro.delta")
        _check(0 < delta < 0.5, f"{f}.wdro.delta",
               f"must be in (0, 0.5), got {delta:g} (delta = 0 makes the worst case infinite)")
        radius = w.WhichOneof("radius")
        if radius is None:
            raise InvalidSpec(f"{f}.wdro.radius", "one of epsilon or rho is required")
        if radius == "epsilon":
            eps = _finite(w.epsilon, f"{f}.wdro.epsilon")
            _check(eps >= 0, f"{f}.wdro.epsilon", f"must be >= 0, got {eps:g}")
            wdro = WdroSettings(delta=delta, epsilon=eps, **_adversary_schedule(p, f))
        else:
            rho = _finite(w.rho, f"{f}.wdro.rho")
            _check(0 <= rho < 1, f"{f}.wdro.rho", f"must be in [0, 1), got {rho:g}")
            wdro = WdroSettings(delta=delta, rho=rho, **_adversary_schedule(p, f))
    else:
        _check(not p.HasField("wdro"), f"{f}.wdro", f"only used by the WDRO and WDRO_SR losses, not {loss!r}")
        _check(not p.dro_solver_address, f"{f}.dro_solver_address",
               f"only used by the WDRO and WDRO_SR losses, not {loss!r}")
        for name in ("adversary_schedule", "adversary_group_size"):
            _check(not p.HasField(name), f"{f}.{name}", f"only used by the WDRO and WDRO_SR losses, not {loss!r}")

    ls = DEFAULT_LABEL_SMOOTHING
    if p.HasField("label_smoothing"):
        _check(loss in LABEL_SMOOTHING_LOSSES, f"{f}.label_smoothing",
               f"only used by the CDPO and RDPO losses, not {loss!r}")
        ls = _finite(p.label_smoothing, f"{f}.label_smoothing")
        _check(0 <= ls < 0.5, f"{f}.label_smoothing", f"must be in [0, 0.5), got {ls:g}")

    bp = DEFAULT_DRDPO_BETA_PRIME
    if p.HasField("drdpo_beta_prime"):
        _check(loss == "drdpo", f"{f}.drdpo_beta_prime", f"only used by the DRDPO loss, not {loss!r}")
        bp = _finite(p.drdpo_beta_prime, f"{f}.drdpo_beta_prime")
        _check(bp > 0, f"{f}.drdpo_beta_prime", f"must be > 0, got {bp:g}")

    address = p.dro_solver_address or (default_dro_address if loss in WDRO_LOSSES else "")
    return PreferenceTask(init=init, reference=reference, pairs=pairs, loss=loss, beta=beta, spa=spa, wdro=wdro,
                          dro_solver_address=address, label_smoothing=ls, drdpo_beta_prime=bp)


_SCHEDULES = {
    common_pb2.ADVERSARY_SCHEDULE_UNSPECIFIED: ADVERSARY_PER_STEP,
    common_pb2.ADVERSARY_SCHEDULE_PER_STEP: ADVERSARY_PER_STEP,
    common_pb2.ADVERSARY_SCHEDULE_PER_ROUND: ADVERSARY_PER_ROUND,
}


def _adversary_schedule(p: trainer_pb2.PreferenceJob, f: str) -> dict:
    """WdroSettings' schedule and group_size (docs/algorithm.md §7): a group size only with the per-round
    schedule, of at least 2 pairs."""
    _check(p.adversary_schedule in _SCHEDULES, f"{f}.adversary_schedule",
           f"must be ADVERSARY_SCHEDULE_PER_STEP or ADVERSARY_SCHEDULE_PER_ROUND, got {p.adversary_schedule}")
    schedule = _SCHEDULES[p.adversary_schedule]
    if p.HasField("adversary_group_size"):
        _check(schedule == ADVERSARY_PER_ROUND, f"{f}.adversary_group_size",
               "only used with adversary_schedule ADVERSARY_SCHEDULE_PER_ROUND")
        _check(p.adversary_group_size >= 2, f"{f}.adversary_group_size",
               f"must be >= 2, got {p.adversary_group_size}")
    return {"schedule": schedule, "group_size": p.adversary_group_size or DEFAULT_ADVERSARY_GROUP_SIZE}


def _hparams(h: trainer_pb2.TrainingHyperparams, present: bool) -> Hyperparams:
    f = "spec.hparams"
    _check(present, f, "required (at least learning_rate)")
    lr = _finite(h.learning_rate, f"{f}.learning_rate")
    _check(lr > 0, f"{f}.learning_rate", f"must be > 0, got {lr:g}")
    epochs = _finite(h.epochs, f"{f}.epochs")
    _check(epochs >= 0, f"{f}.epochs", f"must be >= 0, got {epochs:g}")
    batch = h.batch_size or DEFAULT_BATCH_SIZE
    accum = h.gradient_accumulation_steps or 1
    _check(batch % accum == 0, f"{f}.batch_size",
           f"must be a multiple of gradient_accumulation_steps ({batch} % {accum} != 0)")
    warm = _finite(h.warmup_ratio, f"{f}.warmup_ratio") if h.HasField("warmup_ratio") else DEFAULT_WARMUP_RATIO
    _check(0 <= warm < 1, f"{f}.warmup_ratio", f"must be in [0, 1), got {warm:g}")
    sched = h.lr_scheduler or "cosine"
    _check(sched in LR_SCHEDULERS, f"{f}.lr_scheduler", f"must be one of {', '.join(LR_SCHEDULERS)}, got {sched!r}")
    wd = _finite(h.weight_decay, f"{f}.weight_decay")
    _check(wd >= 0, f"{f}.weight_decay", f"must be >= 0, got {wd:g}")
    mgn = _finite(h.max_grad_norm, f"{f}.max_grad_norm")
    _check(mgn >= 0, f"{f}.max_grad_norm", f"must be >= 0, got {mgn:g}")
    max_length = h.max_length or DEFAULT_MAX_LENGTH
    # A prompt needs at least a token and the response at least one to train on.
    _check(max_length >= 2, f"{f}.max_length", f"must be >= 2, got {max_length}")
    dtype = h.dtype or "auto"
    _check(dtype in DTYPES, f"{f}.dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return Hyperparams(
        learning_rate=lr, batch_size=batch, gradient_accumulation_steps=accum, epochs=epochs or 1.0,
        max_steps=h.max_steps, max_length=max_length, warmup_ratio=warm, lr_scheduler=sched, weight_decay=wd,
        # proto3 cannot tell 0 from unset; 0 means TRL's default 1.0 (disable clipping with a huge value).
        max_grad_norm=mgn or DEFAULT_MAX_GRAD_NORM, seed=h.seed,
        gradient_checkpointing=h.gradient_checkpointing, bf16=h.bf16,
        checkpoint_every_steps=h.checkpoint_every_steps, dtype=dtype,
        lora=_lora(h.lora, f"{f}.lora") if h.HasField("lora") else None, full_logits=h.full_logits,
        cache_reference_logps=h.cache_reference_logps, offload_activations=h.offload_activations)


def _lora(lora: trainer_pb2.LoraParams, f: str) -> LoraSettings:
    rank = lora.rank or DEFAULT_LORA_RANK
    _check(1 <= rank <= 1024, f"{f}.rank", f"must be in [1, 1024], got {rank}")
    alpha = _finite(lora.alpha, f"{f}.alpha") or DEFAULT_LORA_ALPHA
    _check(alpha > 0, f"{f}.alpha", f"must be > 0, got {alpha:g}")
    dropout = _finite(lora.dropout, f"{f}.dropout")
    _check(0 <= dropout < 1, f"{f}.dropout", f"must be in [0, 1), got {dropout:g}")
    targets = tuple(lora.target_modules) or DEFAULT_LORA_TARGETS
    for i, name in enumerate(targets):
        _check(bool(name.strip()) and name == name.strip(), f"{f}.target_modules[{i}]",
               f"must be a module name, got {name!r}")
    return LoraSettings(rank=rank, alpha=alpha, dropout=dropout, target_modules=targets)


__all__ = ["InvalidSpec", "LOSS_NAMES", "local_path", "parse_job_spec"]
