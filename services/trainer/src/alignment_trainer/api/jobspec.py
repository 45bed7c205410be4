"""alignment.v1.JobSpec -> config.JobConfig: every field checked up front, defaults filled in.

A bad spec is refused before a job exists (StartJob answers INVALID_ARGUMENT with InvalidSpec's message, e.g.
``spec.preference.beta: must be > 0, got -1``), so nothing fails an hour into a run for a reason visible at
submission. Settings that the chosen loss would ignore are refused too rather than silently dropped (a W-DRO budget
on a DPO job means the caller believes something that is not happening). Dataset *contents* are checked when the
job starts reading them (data.DatasetError names file:line); here only their existence is. The single-field ranges
(beta > 0, learning_rate in (0, 1), ...) are the proto's buf.validate annotations, checked first (api/ranges.py); the
checks here relate fields, fill in defaults and look at files.
"""

from __future__ import annotations

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
from alignment_trainer.api.ranges import range_violations

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


def _check(cond: bool, field: str, reason: str) -> None:
    if not cond:
        raise InvalidSpec(field, reason)


def parse_job_spec(spec: trainer_pb2.JobSpec, *, default_output_dir: Path, default_dro_address: str) -> JobConfig:
    """Validates ``spec`` and returns the JobConfig it describes; raises InvalidSpec naming the first bad field."""
    for field, reason in range_violations(spec)[:1]:
        raise InvalidSpec(f"spec.{field}", reason)
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


_PROMPT_ENCODINGS = {
    common_pb2.PROMPT_ENCODING_UNSPECIFIED: "raw-text",
    common_pb2.PROMPT_ENCODING_RAW_TEXT: "raw-text",
    common_pb2.PROMPT_ENCODING_CHAT_TEMPLATE: "chat-template",
}


def _prompt_encoding(value: int, field: str) -> str:
    """logprobs' string-prompt encoding of a job's prompt_encoding: unset / UNSPECIFIED is raw text (TRL's)."""
    _check(value in _PROMPT_ENCODINGS, field,
           f"must be PROMPT_ENCODING_RAW_TEXT (the default) or PROMPT_ENCODING_CHAT_TEMPLATE, got {value}")
    return _PROMPT_ENCODINGS[value]


def _sft(sft: trainer_pb2.SftJob) -> SftTask:
    dataset = _artifact(sft.dataset, "spec.sft.dataset", kind="file")
    encoding = _prompt_encoding(sft.prompt_encoding, "spec.sft.prompt_encoding")
    init = sft.WhichOneof("init")
    if init is None:
        raise InvalidSpec("spec.sft.init", "one of spec.sft.architecture or spec.sft.checkpoint is required")
    eval_fraction = sft.eval_fraction if sft.HasField("eval_fraction") else DEFAULT_SFT_EVAL_FRACTION
    if init == "checkpoint":
        return SftTask(dataset=dataset, checkpoint=_checkpoint(sft.checkpoint, "spec.sft.checkpoint"),
                       eval_fraction=eval_fraction, prompt_encoding=encoding)
    a = sft.architecture
    f = "spec.sft.architecture"
    _check(a.model_type == "llama", f"{f}.model_type",
           f"must be \"llama\" (the only architecture the ONNX export and the generator support), got {a.model_type!r}")
    # Each size's range is an annotation (issue 12: a huge architecture drove the trainer past 6 GB in 15 s before
    # anything said no); so is the product of them.
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
    return SftTask(dataset=dataset, architecture=arch, eval_fraction=eval_fraction, prompt_encoding=encoding)


def _preference(p: trainer_pb2.PreferenceJob, default_dro_address: str) -> PreferenceTask:
    f = "spec.preference"
    if p.loss not in LOSS_NAMES:
        raise InvalidSpec(f"{f}.loss", "required (one of " + ", ".join(
            common_pb2.PreferenceLoss.Name(v) for v in LOSS_NAMES) + ")")
    loss = LOSS_NAMES[p.loss]
    init = _checkpoint(p.init, f"{f}.init")
    reference = _checkpoint(p.reference, f"{f}.reference") if p.HasField("reference") and p.reference.uri else init
    pairs = _artifact(p.pairs, f"{f}.pairs", kind="file")

    beta = p.beta if p.HasField("beta") else DEFAULT_BETA

    spa = SpaSettings()
    if p.HasField("spa"):
        _check(loss in SPA_LOSSES, f"{f}.spa", f"only used by the SPA and WDRO_SR losses, not {loss!r}")
        s = p.spa
        spa = SpaSettings(alpha=s.alpha if s.HasField("alpha") else DEFAULT_SPA_ALPHA,
                          k_percentile=s.k_percentile if s.HasField("k_percentile") else DEFAULT_SPA_K_PERCENTILE,
                          window=s.window or DEFAULT_SPA_WINDOW,
                          warmup_fraction=s.warmup_fraction if s.HasField("warmup_fraction")
                          else DEFAULT_SPA_WARMUP_FRACTION,
                          dnd_lambda=s.dnd_lambda)

    wdro = None
    if loss in WDRO_LOSSES:
        _check(p.HasField("wdro"), f"{f}.wdro", f"required for the {loss!r} loss (delta and epsilon or rho)")
        w = p.wdro
        radius = w.WhichOneof("radius")
        if radius is None:
            raise InvalidSpec(f"{f}.wdro.radius", "one of epsilon or rho is required")
        if radius == "epsilon":
            wdro = WdroSettings(delta=w.delta, epsilon=w.epsilon, **_adversary_schedule(p, f))
        else:
            wdro = WdroSettings(delta=w.delta, rho=w.rho, **_adversary_schedule(p, f))
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
        ls = p.label_smoothing

    bp = DEFAULT_DRDPO_BETA_PRIME
    if p.HasField("drdpo_beta_prime"):
        _check(loss == "drdpo", f"{f}.drdpo_beta_prime", f"only used by the DRDPO loss, not {loss!r}")
        bp = p.drdpo_beta_prime

    address = p.dro_solver_address or (default_dro_address if loss in WDRO_LOSSES else "")
    return PreferenceTask(init=init, reference=reference, pairs=pairs, loss=loss, beta=beta, spa=spa, wdro=wdro,
                          dro_solver_address=address, label_smoothing=ls, drdpo_beta_prime=bp,
                          prompt_encoding=_prompt_encoding(p.prompt_encoding, f"{f}.prompt_encoding"))


_SCHEDULES = {
    common_pb2.ADVERSARY_SCHEDULE_UNSPECIFIED: ADVERSARY_PER_STEP,
    common_pb2.ADVERSARY_SCHEDULE_PER_STEP: ADVERSARY_PER_STEP,
    common_pb2.ADVERSARY_SCHEDULE_PER_ROUND: ADVERSARY_PER_ROUND,
}


def _adversary_schedule(p: trainer_pb2.PreferenceJob, f: str) -> dict:
    """WdroSettings' schedule and group_size (docs/algorithm.md §7): a group size (of at least 2 pairs, an
    annotation) only with the per-round schedule."""
    _check(p.adversary_schedule in _SCHEDULES, f"{f}.adversary_schedule",
           f"must be ADVERSARY_SCHEDULE_PER_STEP or ADVERSARY_SCHEDULE_PER_ROUND, got {p.adversary_schedule}")
    schedule = _SCHEDULES[p.adversary_schedule]
    if p.HasField("adversary_group_size"):
        _check(schedule == ADVERSARY_PER_ROUND, f"{f}.adversary_group_size",
               "only used with adversary_schedule ADVERSARY_SCHEDULE_PER_ROUND")
    return {"schedule": schedule, "group_size": p.adversary_group_size or DEFAULT_ADVERSARY_GROUP_SIZE}


def _hparams(h: trainer_pb2.TrainingHyperparams, present: bool) -> Hyperparams:
    f = "spec.hparams"
    _check(present, f, "required (at least learning_rate)")
    batch = h.batch_size or DEFAULT_BATCH_SIZE
    accum = h.gradient_accumulation_steps or 1
    _check(batch % accum == 0, f"{f}.batch_size",
           f"must be a multiple of gradient_accumulation_steps ({batch} % {accum} != 0)")
    warm = h.warmup_ratio if h.HasField("warmup_ratio") else DEFAULT_WARMUP_RATIO
    # max_length >= 2 (an annotation): a prompt needs at least a token and the response at least one to train on.
    dtype = h.dtype or "auto"
    _check(dtype in DTYPES, f"{f}.dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return Hyperparams(
        learning_rate=h.learning_rate, batch_size=batch, gradient_accumulation_steps=accum, epochs=h.epochs or 1.0,
        max_steps=h.max_steps, max_length=h.max_length or DEFAULT_MAX_LENGTH, warmup_ratio=warm,
        lr_scheduler=h.lr_scheduler or "cosine", weight_decay=h.weight_decay,
        # proto3 cannot tell 0 from unset; 0 means TRL's default 1.0 (disable clipping with a huge value).
        max_grad_norm=h.max_grad_norm or DEFAULT_MAX_GRAD_NORM, seed=h.seed,
        gradient_checkpointing=h.gradient_checkpointing, bf16=h.bf16,
        checkpoint_every_steps=h.checkpoint_every_steps, dtype=dtype,
        lora=_lora(h.lora, f"{f}.lora") if h.HasField("lora") else None, full_logits=h.full_logits,
        cache_reference_logps=h.cache_reference_logps, offload_activations=h.offload_activations)


def _lora(lora: trainer_pb2.LoraParams, f: str) -> LoraSettings:
    # rank <= 1024, alpha >= 0 and dropout in [0, 1) are annotations; 0 takes the default.
    targets = tuple(lora.target_modules) or DEFAULT_LORA_TARGETS
    for i, name in enumerate(targets):
        _check(bool(name.strip()) and name == name.strip(), f"{f}.target_modules[{i}]",
               f"must be a module name, got {name!r}")
    return LoraSettings(rank=lora.rank or DEFAULT_LORA_RANK, alpha=lora.alpha or DEFAULT_LORA_ALPHA,
                        dropout=lora.dropout, target_modules=targets)


__all__ = ["InvalidSpec", "LOSS_NAMES", "local_path", "parse_job_spec"]
