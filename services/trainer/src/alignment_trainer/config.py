"""The trainer's job configuration as plain dataclasses: what training/runner.py consumes, with no protobuf in sight.

api/jobspec.py builds these from an alignment.v1.JobSpec (validating it and filling the documented defaults); tests
and the benchmark build them directly. Defaults are named once, here, and follow docs/algorithm.md and SPA's released
configuration unless a comment says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# --- defaults (each documented where trainer.proto / common.proto promise it) ---------------------------------

DEFAULT_BETA = 0.1                 # PreferenceJob.beta; docs/algorithm.md §2 (paper hyper-parameters)
DEFAULT_LABEL_SMOOTHING = 0.1      # PreferenceJob.label_smoothing, CDPO and RDPO (§5)
DEFAULT_DRDPO_BETA_PRIME = 1.0     # PreferenceJob.drdpo_beta_prime (§5)
DEFAULT_SPA_ALPHA = 0.1            # SpaParams.alpha (§3)
DEFAULT_SPA_K_PERCENTILE = 10.0    # SpaParams.k_percentile (§3)
DEFAULT_SPA_WINDOW = 50            # SpaParams.window (§3)
DEFAULT_SPA_WARMUP_FRACTION = 0.2  # SpaParams.warmup_fraction (§3)
DEFAULT_BATCH_SIZE = 8
DEFAULT_MAX_LENGTH = 1024          # TRL DPOConfig.max_length
DEFAULT_WARMUP_RATIO = 0.1         # TrainingHyperparams.warmup_ratio (§2: 10% warm-up)
DEFAULT_MAX_GRAD_NORM = 1.0        # TRL / transformers TrainingArguments.max_grad_norm
DEFAULT_MAX_POSITION_EMBEDDINGS = 2048
DEFAULT_SFT_EVAL_FRACTION = 0.05   # SftJob.eval_fraction: examples held out for eval/loss
DEFAULT_ADVERSARY_GROUP_SIZE = 100  # PreferenceJob.adversary_group_size: SSAPO's G (docs/algorithm.md §7)
# The DroSolver W-DRO jobs use when neither the spec nor $DRO_SOLVER_ADDRESS names one (the server and the CLI).
DEFAULT_DRO_SOLVER_ADDRESS = "localhost:50054"

# TrainingHyperparams.dtype: the weights' dtype ("auto" = bf16 on a CUDA device that supports it, else fp32).
DTYPES = ("auto", "fp32", "bf16")
DEFAULT_LORA_RANK = 16             # LoraParams.rank
DEFAULT_LORA_ALPHA = 32.0          # LoraParams.alpha (the update is scaled by alpha / rank)
DEFAULT_LORA_TARGETS = ("all-linear",)  # LoraParams.target_modules: peft's every Linear but the LM head

# PreferenceLoss names as docs/algorithm.md §6 spells the configurations.
LOSSES = ("dpo", "spa", "wdro", "wdro-sr", "cdpo", "rdpo", "drdpo", "ipo")
SPA_LOSSES = frozenset({"spa", "wdro-sr"})
WDRO_LOSSES = frozenset({"wdro", "wdro-sr"})
LABEL_SMOOTHING_LOSSES = frozenset({"cdpo", "rdpo"})
# When the W-DRO adversary is solved (common.proto AdversarySchedule; docs/algorithm.md §4 and §7).
ADVERSARY_PER_STEP = "per-step"
ADVERSARY_PER_ROUND = "per-round"


@dataclass(frozen=True)
class Artifact:
    """A local file or directory; ``sha256`` (of the file, or of a directory's manifest.json) is checked before
    use when given."""

    path: Path
    sha256: str = ""


@dataclass(frozen=True)
class Architecture:
    """A Llama to train from scratch (trainer.proto ArchitectureConfig); the tokenizer sets vocab_size."""

    hidden_size: int
    num_layers: int
    num_attention_heads: int
    intermediate_size: int
    tokenizer: Artifact
    num_key_value_heads: int = 0   # 0 = num_attention_heads (plain multi-head attention)
    max_position_embeddings: int = DEFAULT_MAX_POSITION_EMBEDDINGS


@dataclass(frozen=True)
class SftTask:
    """Supervised fine-tuning on {"prompt", "response"} JSONL; exactly one of architecture / checkpoint."""

    dataset: Artifact
    architecture: Architecture | None = None
    checkpoint: Artifact | None = None
    # Share of the examples held out of training for eval/loss (sft_eval.py).
    eval_fraction: float = DEFAULT_SFT_EVAL_FRACTION
    # How string prompts are encoded (SftJob.prompt_encoding): logprobs.RAW_TEXT (the default) or CHAT_TEMPLATE.
    prompt_encoding: str = "raw-text"


@dataclass(frozen=True)
class SpaSettings:
    """Self-refinement with de-coupled noise detection, docs/algorithm.md §3."""

    alpha: float = DEFAULT_SPA_ALPHA
    k_percentile: float = DEFAULT_SPA_K_PERCENTILE
    window: int = DEFAULT_SPA_WINDOW
    warmup_fraction: float = DEFAULT_SPA_WARMUP_FRACTION
    dnd_lambda: float = 0.0


@dataclass(frozen=True)
class WdroSettings:
    """The Wasserstein ball on ξ, docs/algorithm.md §4: exactly one of epsilon / rho, and the support margin delta;
    and when the adversary is solved: every optimizer step, or once per round on groups of ``group_size`` judged
    pairs (docs/algorithm.md §7, per-round adversary)."""

    delta: float
    epsilon: float | None = None
    rho: float | None = None
    schedule: str = ADVERSARY_PER_STEP
    group_size: int = DEFAULT_ADVERSARY_GROUP_SIZE


@dataclass(frozen=True)
class PreferenceTask:
    """Preference optimisation on {"prompt", "chosen", "rejected"} JSONL (docs/algorithm.md §1, §3-§5)."""

    init: Artifact
    reference: Artifact
    pairs: Artifact
    loss: str
    beta: float = DEFAULT_BETA
    spa: SpaSettings = field(default_factory=SpaSettings)
    wdro: WdroSettings | None = None
    dro_solver_address: str = ""
    label_smoothing: float = DEFAULT_LABEL_SMOOTHING
    drdpo_beta_prime: float = DEFAULT_DRDPO_BETA_PRIME
    # How string prompts are encoded (PreferenceJob.prompt_encoding): logprobs.RAW_TEXT (the default) or
    # CHAT_TEMPLATE; conversational prompts always use the chat template.
    prompt_encoding: str = "raw-text"


@dataclass(frozen=True)
class LoraSettings:
    """Low-rank adapters through peft (trainer.proto LoraParams): only the adapters train; the reference is the
    base with the adapter disabled when it is the init checkpoint; the adapter is merged into the outputs."""

    rank: int = DEFAULT_LORA_RANK
    alpha: float = DEFAULT_LORA_ALPHA
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_LORA_TARGETS


@dataclass(frozen=True)
class Hyperparams:
    """Optimisation settings (trainer.proto TrainingHyperparams) with its defaults filled in."""

    learning_rate: float
    batch_size: int = DEFAULT_BATCH_SIZE
    gradient_accumulation_steps: int = 1
    epochs: float = 1.0
    max_steps: int = 0
    max_length: int = DEFAULT_MAX_LENGTH
    warmup_ratio: float = DEFAULT_WARMUP_RATIO
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = DEFAULT_MAX_GRAD_NORM
    seed: int = 0
    gradient_checkpointing: bool = False
    bf16: bool = False
    checkpoint_every_steps: int = 0
    dtype: str = "auto"                 # the weights' dtype, one of DTYPES (scaling.resolve_dtype)
    lora: LoraSettings | None = None    # None = full fine-tuning
    full_logits: bool = False           # True = the LM head over every position, not only the response span
    cache_reference_logps: bool = False  # reference log-probs once per dataset (reference_cache.py)
    offload_activations: bool = False   # activations saved for backward live in CPU memory

    @property
    def micro_batch_size(self) -> int:
        return self.batch_size // self.gradient_accumulation_steps


@dataclass(frozen=True)
class JobConfig:
    task: SftTask | PreferenceTask
    hparams: Hyperparams
    output_dir: Path
    export_onnx: bool = False
    # An s3:// spec.output_uri: the job trains into output_dir (local) and its outputs are published there after.
    publish_uri: str = ""

    @property
    def kind(self) -> str:
        return "sft" if isinstance(self.task, SftTask) else "preference"
