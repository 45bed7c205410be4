"""jobspec.py: a minimal valid spec gets the documented defaults (trainer.proto, docs/algorithm.md); the gRPC tests cover
the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignment_trainer import config
from alignment_trainer.api.contracts import common_pb2, trainer_pb2
from alignment_trainer.api.jobspec import InvalidSpec, local_path, parse_job_spec
from world import build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"), n_sft=2, n_pairs=2)


def test_minimal_preference_spec_gets_the_paper_defaults(world, tmp_path):
    spec = trainer_pb2.JobSpec(
        preference=trainer_pb2.PreferenceJob(
            init=common_pb2.ArtifactRef(uri=world.checkpoint.as_uri()),
            pairs=common_pb2.ArtifactRef(uri=str(world.pairs)),
            loss=common_pb2.PREFERENCE_LOSS_WDRO_SR,
            wdro=common_pb2.WdroBudget(rho=0.25, delta=0.01),
            spa=common_pb2.SpaParams(),
        ),
        hparams=trainer_pb2.TrainingHyperparams(learning_rate=5e-7))
    cfg = parse_job_spec(spec, default_output_dir=tmp_path / "out", default_dro_address="solver:50054")
    task = cfg.task
    assert task.loss == "wdro-sr" and task.beta == 0.1
    assert task.reference == task.init and task.init.path == world.checkpoint
    assert task.spa == config.SpaSettings(alpha=0.1, k_percentile=10.0, window=50, warmup_fraction=0.2,
                                          dnd_lambda=0.0)
    assert task.wdro == config.WdroSettings(delta=0.01, rho=0.25)
    assert task.dro_solver_address == "solver:50054"
    h = cfg.hparams
    assert (h.batch_size, h.gradient_accumulation_steps, h.epochs, h.warmup_ratio, h.lr_scheduler,
            h.max_grad_norm, h.max_length) == (8, 1, 1.0, 0.1, "cosine", 1.0, 1024)
    assert cfg.output_dir == tmp_path / "out" and not cfg.export_onnx


def test_explicit_zero_is_not_the_default(world, tmp_path):
    """proto3 optional fields: an explicit 0 for alpha or warm-up means 0, not the paper's value."""
    spec = trainer_pb2.JobSpec(
        preference=trainer_pb2.PreferenceJob(
            init=common_pb2.ArtifactRef(uri=str(world.checkpoint)), pairs=common_pb2.ArtifactRef(uri=str(world.pairs)),
            loss=common_pb2.PREFERENCE_LOSS_SPA, spa=common_pb2.SpaParams(alpha=0.0, warmup_fraction=0.0)),
        hparams=trainer_pb2.TrainingHyperparams(learning_rate=1e-6, warmup_ratio=0.0))
    cfg = parse_job_spec(spec, default_output_dir=tmp_path, default_dro_address="x:1")
    assert cfg.task.spa.alpha == 0.0 and cfg.task.spa.warmup_fraction == 0.0 and cfg.hparams.warmup_ratio == 0.0
    assert cfg.task.dro_solver_address == ""  # not a W-DRO loss: no solver


def test_uris():
    assert local_path("file:///data/pairs%20v2.jsonl", "f") == Path("/data/pairs v2.jsonl")
    assert local_path("relative/dir", "f") == Path("relative/dir")
    with pytest.raises(InvalidSpec, match="f: only local paths or file:// URIs are supported, got 's3://b/k'"):
        local_path("s3://b/k", "f")
    with pytest.raises(InvalidSpec, match="f: required"):
        local_path("", "f")


def test_overlong_paths_and_nul_are_refused_naming_the_field(monkeypatch):
    # tools/fuzz: Path.is_file() raises ENAMETOOLONG for these instead of answering False, and confine()'s
    # os.path.realpath ValueError for a NUL: StartJob was INTERNAL.
    monkeypatch.setenv("ARTIFACT_ROOTS", "/tmp")
    with pytest.raises(InvalidSpec, match="^f: a name in the path is 300 bytes long; at most 255 are allowed$"):
        local_path("/tmp/" + "n" * 300, "f")
    with pytest.raises(InvalidSpec, match="^f: the path is 6002 bytes long; at most 4095 are allowed$"):
        local_path("file://" + "/d" * 3000 + "/x", "f")
    with pytest.raises(InvalidSpec, match="^f: the path contains a NUL character$"):
        local_path("/tmp/a\0b", "f")
    assert local_path("/tmp/" + "n" * 255, "f") == Path("/tmp/" + "n" * 255)


def test_every_proto_loss_has_a_name_and_an_implementation():
    from alignment_trainer.api.jobspec import LOSS_NAMES

    declared = {v for v in common_pb2.PreferenceLoss.values() if v != common_pb2.PREFERENCE_LOSS_UNSPECIFIED}
    assert set(LOSS_NAMES) == declared
    assert sorted(LOSS_NAMES.values()) == sorted(config.LOSSES)


def _wdro_spec(world, loss=common_pb2.PREFERENCE_LOSS_WDRO, **fields):
    wdro = common_pb2.WdroBudget(rho=0.3, delta=0.01) if loss == common_pb2.PREFERENCE_LOSS_WDRO else None
    return trainer_pb2.JobSpec(
        preference=trainer_pb2.PreferenceJob(
            init=common_pb2.ArtifactRef(uri=str(world.checkpoint)), pairs=common_pb2.ArtifactRef(uri=str(world.pairs)),
            loss=loss, wdro=wdro, **fields),
        hparams=trainer_pb2.TrainingHyperparams(learning_rate=1e-6))


def test_adversary_schedule_defaults_to_per_step_and_per_round_to_groups_of_100(world, tmp_path):
    """docs/algorithm.md §7 (per-round adversary): unset = per step; PER_ROUND without a size = SSAPO's G = 100."""
    def parse(spec):
        return parse_job_spec(spec, default_output_dir=tmp_path, default_dro_address="x:1").task.wdro

    assert parse(_wdro_spec(world)).schedule == config.ADVERSARY_PER_STEP
    assert parse(_wdro_spec(world, adversary_schedule=common_pb2.ADVERSARY_SCHEDULE_PER_STEP)).schedule == "per-step"
    per_round = parse(_wdro_spec(world, adversary_schedule=common_pb2.ADVERSARY_SCHEDULE_PER_ROUND))
    assert (per_round.schedule, per_round.group_size) == (config.ADVERSARY_PER_ROUND, 100)
    sized = parse(_wdro_spec(world, adversary_schedule=common_pb2.ADVERSARY_SCHEDULE_PER_ROUND, adversary_group_size=2))
    assert (sized.schedule, sized.group_size, sized.rho, sized.delta) == ("per-round", 2, 0.3, 0.01)


@pytest.mark.parametrize("loss, fields, field", [
    (common_pb2.PREFERENCE_LOSS_WDRO, {"adversary_schedule": common_pb2.ADVERSARY_SCHEDULE_PER_ROUND,
                                       "adversary_group_size": 1}, "spec.preference.adversary_group_size"),
    (common_pb2.PREFERENCE_LOSS_WDRO, {"adversary_group_size": 50}, "spec.preference.adversary_group_size"),
    (common_pb2.PREFERENCE_LOSS_WDRO, {"adversary_schedule": 9}, "spec.preference.adversary_schedule"),
    (common_pb2.PREFERENCE_LOSS_DPO, {"adversary_schedule": common_pb2.ADVERSARY_SCHEDULE_PER_ROUND},
     "spec.preference.adversary_schedule"),
    (common_pb2.PREFERENCE_LOSS_SPA, {"adversary_group_size": 100}, "spec.preference.adversary_group_size"),
])
def test_adversary_schedule_refusals_name_the_field(world, tmp_path, loss, fields, field):
    with pytest.raises(InvalidSpec) as err:
        parse_job_spec(_wdro_spec(world, loss, **fields), default_output_dir=tmp_path, default_dro_address="x:1")
    assert err.value.field == field


def test_prompt_encoding_defaults_to_raw_text_and_an_unknown_value_is_refused_naming_the_field(world, tmp_path):
    """RunSpec.prompt_encoding reaches the trainer as PreferenceJob / SftJob.prompt_encoding: unset or UNSPECIFIED is
    raw text (TRL's standard prompt), CHAT_TEMPLATE the chat template."""
    def spec(**fields):
        return trainer_pb2.JobSpec(
            preference=trainer_pb2.PreferenceJob(
                init=common_pb2.ArtifactRef(uri=str(world.checkpoint)), pairs=common_pb2.ArtifactRef(uri=str(world.pairs)),
                loss=common_pb2.PREFERENCE_LOSS_DPO, **fields),
            hparams=trainer_pb2.TrainingHyperparams(learning_rate=1e-6))

    def parse(s):
        return parse_job_spec(s, default_output_dir=tmp_path, default_dro_address="x:1").task.prompt_encoding

    assert parse(spec()) == "raw-text"
    assert parse(spec(prompt_encoding=common_pb2.PROMPT_ENCODING_RAW_TEXT)) == "raw-text"
    assert parse(spec(prompt_encoding=common_pb2.PROMPT_ENCODING_CHAT_TEMPLATE)) == "chat-template"
    with pytest.raises(InvalidSpec) as err:
        parse(spec(prompt_encoding=7))
    assert err.value.field == "spec.preference.prompt_encoding"
    sft = trainer_pb2.JobSpec(sft=trainer_pb2.SftJob(checkpoint=common_pb2.ArtifactRef(uri=str(world.checkpoint)),
                                                     dataset=common_pb2.ArtifactRef(uri=str(world.pairs)),
                                                     prompt_encoding=common_pb2.PROMPT_ENCODING_CHAT_TEMPLATE),
                              hparams=trainer_pb2.TrainingHyperparams(learning_rate=1e-6))
    assert parse(sft) == "chat-template"


# Issue 12: StartJob's output_uri wrote wherever the caller said (a checkpoint landed outside the data dir), and its
# inputs could name any file. Under ARTIFACT_ROOTS every path field resolves inside the roots.
def test_every_path_field_is_confined_under_artifact_roots(world, tmp_path, monkeypatch):
    from alignment_trainer.api.jobspec import PathNotAllowed
    data = tmp_path / "data"
    data.mkdir()
    (data / "escape").symlink_to("/etc")
    monkeypatch.setenv("ARTIFACT_ROOTS", str(data))
    monkeypatch.setenv("READ_ONLY_ROOTS", str(world.checkpoint.parent))

    def spec(**over):
        pref = dict(init=common_pb2.ArtifactRef(uri=str(world.checkpoint)),
                    pairs=common_pb2.ArtifactRef(uri=str(world.pairs)), loss=common_pb2.PREFERENCE_LOSS_DPO)
        pref.update(over.pop("pref", {}))
        return trainer_pb2.JobSpec(preference=trainer_pb2.PreferenceJob(**pref),
                                   hparams=trainer_pb2.TrainingHyperparams(learning_rate=1e-6), **over)

    parse_job_spec(spec(output_uri=str(data / "out")), default_output_dir=data / "d", default_dro_address="x:1")
    cases = [
        ("spec.output_uri", spec(output_uri="/tmp/../etc/trainer-out")),
        ("spec.output_uri", spec(output_uri=str(data / "escape" / "out"))),
        ("spec.output_uri", spec(output_uri=str(world.checkpoint.parent / "read-only-root"))),
        ("spec.preference.init.uri", spec(pref=dict(init=common_pb2.ArtifactRef(uri="/etc")))),
        ("spec.preference.pairs.uri", spec(pref=dict(pairs=common_pb2.ArtifactRef(uri="file://localhost/etc/passwd")))),
    ]
    for field, bad in cases:
        with pytest.raises(PathNotAllowed) as err:
            parse_job_spec(bad, default_output_dir=data / "d", default_dro_address="x:1")
        assert err.value.field == field and "the path is outside the directories this trainer may" in err.value.reason


def _hparams_spec(world, **hp):
    return trainer_pb2.JobSpec(
        preference=trainer_pb2.PreferenceJob(
            init=common_pb2.ArtifactRef(uri=str(world.checkpoint)), pairs=common_pb2.ArtifactRef(uri=str(world.pairs)),
            loss=common_pb2.PREFERENCE_LOSS_DPO),
        hparams=trainer_pb2.TrainingHyperparams(learning_rate=1e-6, **hp))


def test_scale_options_default_to_auto_dtype_full_fine_tuning_and_response_logits(world, tmp_path):
    h = parse_job_spec(_hparams_spec(world), default_output_dir=tmp_path, default_dro_address="x:1").hparams
    assert (h.dtype, h.lora, h.full_logits, h.cache_reference_logps, h.offload_activations) == (
        "auto", None, False, False, False)
    h = parse_job_spec(_hparams_spec(world, dtype="bf16", lora=trainer_pb2.LoraParams(), full_logits=True,
                                     cache_reference_logps=True, offload_activations=True),
                       default_output_dir=tmp_path, default_dro_address="x:1").hparams
    assert h.dtype == "bf16" and h.full_logits and h.cache_reference_logps and h.offload_activations
    assert h.lora == config.LoraSettings(rank=16, alpha=32.0, dropout=0.0, target_modules=("all-linear",))
    lora = trainer_pb2.LoraParams(rank=4, alpha=8, dropout=0.1, target_modules=["q_proj", "v_proj"])
    h = parse_job_spec(_hparams_spec(world, lora=lora), default_output_dir=tmp_path, default_dro_address="x:1").hparams
    assert h.lora == config.LoraSettings(rank=4, alpha=8.0, dropout=0.1, target_modules=("q_proj", "v_proj"))


@pytest.mark.parametrize("hp, field", [
    ({"dtype": "fp16"}, "spec.hparams.dtype"),
    ({"lora": trainer_pb2.LoraParams(rank=2000)}, "spec.hparams.lora.rank"),
    ({"lora": trainer_pb2.LoraParams(alpha=-1)}, "spec.hparams.lora.alpha"),
    ({"lora": trainer_pb2.LoraParams(alpha=float("nan"))}, "spec.hparams.lora.alpha"),
    ({"lora": trainer_pb2.LoraParams(dropout=1.0)}, "spec.hparams.lora.dropout"),
    ({"lora": trainer_pb2.LoraParams(target_modules=["q_proj", " "])}, "spec.hparams.lora.target_modules[1]"),
])
def test_scale_option_refusals_name_the_field(world, tmp_path, hp, field):
    with pytest.raises(InvalidSpec) as err:
        parse_job_spec(_hparams_spec(world, **hp), default_output_dir=tmp_path, default_dro_address="x:1")
    assert err.value.field == field
