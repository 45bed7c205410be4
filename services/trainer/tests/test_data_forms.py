"""Every TRL dataset form the trainer reads (examples/data/README.md), through the real loaders (data.load_pairs,
data.load_sft): each example file of examples/data, JSONL and its committed Parquet twin; malformed records whose
errors name file:line (or file:row N) and the field; and the chat-template rules: a conversational prompt renders
through the template, {"text"} is raw text, and a tokenizer without a template is refused naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignment_trainer.training import data
from alignment_trainer.training.logprobs import tokenize_pair
from tiny import tiny_tokenizer

DATA = Path(__file__).resolve().parents[3] / "examples" / "data"
EXTS = ("jsonl", "parquet")


def user(content):
    return {"role": "user", "content": content}


def system(content):
    return {"role": "system", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


LONG_ADD = "Let me think. It is 5, I believe."
LONG_COLOUR = "Colours are complicated; one of them is red."
CONVERSATIONAL_PAIRS = [
    data.PreferencePair([user("What is 2 + 3? Answer briefly.")], "5.", LONG_ADD),
    data.PreferencePair([system("You answer in one word."), user("Name a primary colour.")], "Red.", LONG_COLOUR),
]


@pytest.mark.parametrize("ext", EXTS)
def test_preference_standard_explicit(ext):
    assert data.load_pairs(DATA / f"preference-standard.{ext}") == [
        data.PreferencePair("What is 2 + 3? Answer briefly.", "5.", LONG_ADD),
        data.PreferencePair("Name a primary colour.", "Red.", LONG_COLOUR),
    ]


@pytest.mark.parametrize("ext", EXTS)
def test_preference_conversational_explicit(ext):
    assert data.load_pairs(DATA / f"preference-conversational.{ext}") == CONVERSATIONAL_PAIRS


@pytest.mark.parametrize("ext", EXTS)
def test_preference_standard_implicit_prompt_is_the_common_prefix(ext):
    assert data.load_pairs(DATA / f"preference-implicit-standard.{ext}") == [
        data.PreferencePair("The sky is", " blue.", " green."),
        data.PreferencePair("2 + 3 =", " 5", " 6"),
    ]


@pytest.mark.parametrize("ext", EXTS)
def test_preference_conversational_implicit_prompt_is_the_shared_messages(ext):
    assert data.load_pairs(DATA / f"preference-implicit-conversational.{ext}") == CONVERSATIONAL_PAIRS


@pytest.mark.parametrize("ext", EXTS)
def test_sft_language_modelling_text_has_no_prompt(ext):
    assert data.load_sft(DATA / f"sft-text.{ext}") == [
        data.SftExample(None, "The capital of France is Paris."),
        data.SftExample(None, "Seven times six is forty-two."),
    ]


@pytest.mark.parametrize("ext", EXTS)
def test_sft_conversational_messages_last_turn_is_the_response(ext):
    assert data.load_sft(DATA / f"sft-messages.{ext}") == [
        data.SftExample([user("What is the capital of France?")], "Paris."),
        data.SftExample([system("You answer in one word."), user("What is 7 * 6?")], "42."),
    ]


@pytest.mark.parametrize("ext", EXTS)
def test_sft_prompt_completion_standard(ext):
    assert data.load_sft(DATA / f"sft-prompt-completion.{ext}") == [
        data.SftExample("What is the capital of France?", "Paris."),
        data.SftExample("What is 7 * 6?", "42."),
    ]


@pytest.mark.parametrize("ext", EXTS)
def test_sft_prompt_completion_conversational(ext):
    assert data.load_sft(DATA / f"sft-prompt-completion-conversational.{ext}") == [
        data.SftExample([user("What is the capital of France?")], "Paris."),
        data.SftExample([system("You answer in one word."), user("What is 7 * 6?")], "42."),
    ]


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


GOOD = '{"prompt": "p", "chosen": "a", "rejected": "b"}'


@pytest.mark.parametrize(("line", "expected"), [
    ('{"prompt": "p", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"}',
     'chosen: is a message list but "prompt" is a string'),
    ('{"prompt": [{"content": "hi"}], "chosen": [{"role": "assistant", "content": "a"}], '
     '"rejected": [{"role": "assistant", "content": "b"}]}', "prompt[0].role: must be a non-empty string"),
    ('{"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "user", "content": "a"}], '
     '"rejected": [{"role": "assistant", "content": "b"}]}', "chosen[0].role: must be \"assistant\" (the completion)"),
    ('{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, '
     '{"role": "user", "content": "more"}], "rejected": [{"role": "user", "content": "q"}, '
     '{"role": "assistant", "content": "b"}]}', "chosen: must hold exactly one assistant message after the prompt, got 2"),
    ('{"chosen": "yes", "rejected": "no"}', 'prompt: is missing and "chosen" and "rejected" share no prefix'),
    ('{"chosen": "The sky is blue", "rejected": "The sky is blue today"}', "chosen: has no completion after the prompt"),
])
def test_malformed_pairs_name_file_line_and_field(tmp_path, line, expected):
    p = _write(tmp_path, [GOOD, "", line])
    with pytest.raises(data.DatasetError) as err:
        data.load_pairs(p)
    assert str(err.value).startswith(f"{p}:3: {expected}"), str(err.value)


@pytest.mark.parametrize(("line", "expected"), [
    ('{"messages": [{"role": "user", "content": "only a question"}]}', "messages: needs the prompt's turns and then"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "a"}]}',
     'messages[1].role: must be "assistant"'),
    ('{"prompt": [{"role": "user", "content": "q"}], "completion": "a"}', "completion: must be a message list like"),
    ('{"text": 7}', "text: must be a string, got int"),
])
def test_malformed_sft_records_name_file_line_and_field(tmp_path, line, expected):
    p = _write(tmp_path, ['{"text": "fine"}', line])
    with pytest.raises(data.DatasetError) as err:
        data.load_sft(p)
    assert str(err.value).startswith(f"{p}:2: {expected}"), str(err.value)


def test_a_parquet_row_is_named_by_its_number_and_a_foreign_file_by_its_name(tmp_path):
    # preference-standard rows read as SFT data: {"prompt", "chosen", "rejected"} is in no SFT form.
    with pytest.raises(data.DatasetError, match=r"preference-standard\.parquet:row 1: \(record\): is in no SFT form"):
        data.load_sft(DATA / "preference-standard.parquet")
    fake = tmp_path / "fake.parquet"
    fake.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(data.DatasetError, match=r"fake\.parquet:0: \(file\): not a readable Parquet file .* use JSONL"):
        data.load_pairs(fake)


def test_conversational_prompt_renders_through_the_chat_template_and_text_is_raw():
    tok = tiny_tokenizer()
    pair = data.load_pairs(DATA / "preference-conversational.parquet")[1]
    t = tokenize_pair(tok, pair.prompt, pair.chosen, pair.rejected, strings="chat-template")
    assert tok.decode(t.prompt_ids) == "<|system|>You answer in one word.<|eos|><|user|>Name a primary colour.<|eos|><|assistant|>"
    assert tok.decode(t.chosen_ids) == "Red.<|eos|>"
    prompt_ids, response_ids = data.text_example_ids(tok, "The sky is blue.")
    assert prompt_ids == ()  # the tiny tokenizer has no BOS
    assert tok.decode(response_ids) == "The sky is blue.<|eos|>"


def test_a_tokenizer_without_a_chat_template_takes_raw_text_and_refuses_the_template_naming_the_field():
    tok = tiny_tokenizer()
    conversational = [p.prompt for p in CONVERSATIONAL_PAIRS]
    data.require_chat_template(tok, "pairs.parquet", conversational, encoding="chat-template",
                               encoding_field="spec.preference.prompt_encoding")  # has one: no error
    tok.chat_template = None
    data.require_chat_template(tok, "pairs.parquet", ["What is 2 + 3?"], encoding="raw-text",
                               encoding_field="spec.preference.prompt_encoding")  # raw text: no template needed
    with pytest.raises(data.DatasetError, match=r"^pairs\.parquet:0: spec\.preference\.prompt_encoding: "
                                                r"PROMPT_ENCODING_CHAT_TEMPLATE needs a chat template"):
        data.require_chat_template(tok, "pairs.parquet", ["What is 2 + 3?"], encoding="chat-template",
                                   encoding_field="spec.preference.prompt_encoding")
    with pytest.raises(data.DatasetError, match=r"^pairs\.parquet:0: prompt: record 2 is a conversation"):
        data.require_chat_template(tok, "pairs.parquet", ["What is 2 + 3?", conversational[1]], encoding="raw-text",
                                   encoding_field="spec.preference.prompt_encoding")


def test_the_services_labelled_pairs_with_a_multi_turn_prompt_and_text_responses_load(tmp_path):
    """The judge writes a conversational prompt set's pairs as {"prompt": [messages], "chosen": text, ...}
    (formats.proto LabelledPair); the multi-turn prompt is rendered through the template with the generation prompt."""
    turns = [system("Be brief."), user("Name a colour."), assistant("Red."), user("Another one?")]
    f = tmp_path / "pairs.jsonl"
    f.write_text(json.dumps({"prompt": turns, "chosen": "Blue.", "rejected": "I cannot say.",
                             "method": "rule"}) + "\n")
    [pair] = data.load_pairs(f)
    assert (pair.prompt, pair.chosen, pair.rejected) == (turns, "Blue.", "I cannot say.")
    tok = tiny_tokenizer()
    t = tokenize_pair(tok, pair.prompt, pair.chosen, pair.rejected, strings="raw-text")
    assert tok.decode(t.prompt_ids) == ("<|system|>Be brief.<|eos|><|user|>Name a colour.<|eos|><|assistant|>Red.<|eos|>"
                                        "<|user|>Another one?<|eos|><|assistant|>")


# Real trainer jobs (runner.run_job on the tiny Llama) on the example files: the forms reach the training loop.

def _tokenizer_dir(tmp_path: Path, *, chat_template: bool) -> Path:
    tok = tiny_tokenizer()
    if not chat_template:
        tok.chat_template = None
    tok.save_pretrained(tmp_path / "tokenizer")
    return tmp_path / "tokenizer"


def _sft_job(tmp_path: Path, dataset: Path, tokenizer: Path, prompt_encoding: str = "raw-text"):
    from alignment_trainer.config import Architecture, Artifact, Hyperparams, JobConfig, SftTask
    from alignment_trainer.training import runner

    arch = Architecture(hidden_size=32, num_layers=1, num_attention_heads=4, intermediate_size=64,
                        tokenizer=Artifact(tokenizer))
    task = SftTask(dataset=Artifact(dataset), architecture=arch, prompt_encoding=prompt_encoding)
    config = JobConfig(task=task, output_dir=tmp_path / "out",
                       hparams=Hyperparams(learning_rate=1e-3, batch_size=2, epochs=1, max_length=64))
    return runner.run_job(config, tmp_path / "work")


@pytest.mark.parametrize("name", ["sft-text.parquet", "sft-messages.jsonl", "sft-prompt-completion-conversational.parquet"])
def test_an_sft_job_trains_on_the_example(tmp_path, name):
    out = _sft_job(tmp_path, DATA / name, _tokenizer_dir(tmp_path, chat_template=True))
    assert out.total_steps == 1
    assert out.final_metrics["data/dropped"] == 0


def test_without_a_chat_template_raw_text_trains_and_the_template_is_refused_naming_the_field(tmp_path):
    tokenizer = _tokenizer_dir(tmp_path, chat_template=False)
    assert _sft_job(tmp_path / "text", DATA / "sft-text.jsonl", tokenizer).total_steps == 1
    # String prompts encoded as raw text (the default) need no template.
    assert _sft_job(tmp_path / "raw", DATA / "sft-prompt-completion.jsonl", tokenizer).total_steps == 1
    with pytest.raises(data.DatasetError, match=r"sft-prompt-completion\.jsonl:0: spec\.sft\.prompt_encoding: "
                                                r"PROMPT_ENCODING_CHAT_TEMPLATE needs a chat template"):
        _sft_job(tmp_path / "templated", DATA / "sft-prompt-completion.jsonl", tokenizer, "chat-template")
    with pytest.raises(data.DatasetError, match=r"sft-messages\.parquet:0: prompt: record 1 is a conversation"):
        _sft_job(tmp_path / "messages", DATA / "sft-messages.parquet", tokenizer)


def test_a_preference_job_trains_on_conversational_parquet_pairs(tmp_path):
    from alignment_trainer.config import Artifact, Hyperparams, JobConfig, PreferenceTask
    from alignment_trainer.training import runner
    from tiny import tiny_llama

    tok = tiny_tokenizer()
    tiny_llama(vocab_size=len(tok)).save_pretrained(tmp_path / "init")
    tok.save_pretrained(tmp_path / "init")
    task = PreferenceTask(init=Artifact(tmp_path / "init"), reference=Artifact(tmp_path / "init"),
                          pairs=Artifact(DATA / "preference-implicit-conversational.parquet"), loss="dpo")
    out = runner.run_job(JobConfig(task=task, output_dir=tmp_path / "out", hparams=Hyperparams(
        learning_rate=1e-3, batch_size=2, epochs=1, max_length=64)), tmp_path / "work")
    assert out.total_steps == 1
    assert out.final_metrics["data/dropped"] == 0
