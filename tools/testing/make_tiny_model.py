"""Builds the tiny models the TypeScript LM runtime, generator and judge are tested against, exported by PyTorch
exactly as the trainer exports its checkpoints, plus the reference values PyTorch computes for them.

    python tools/testing/make_tiny_model.py OUTDIR                 # the test set (below)
    python tools/testing/make_tiny_model.py --causal-lm OUTDIR --vocab 32000 --hidden 256 --layers 4
                                                                   # one causal LM of a given size (benchmarks)

The test set, written to a temporary sibling and renamed to OUTDIR when complete (an existing OUTDIR is left alone,
and concurrent callers wait for the first one's build):

    policy/checkpoint, policy/onnx        tiny Llama (seed 0): services/trainer/tests/tiny.py, exported with the
                                          trainer's own export (alignment_trainer.public: save_hf_checkpoint,
                                          export_onnx)
    reference/checkpoint, reference/onnx  another tiny Llama (seed 1); its ONNX weights are re-saved as external
                                          data (model.onnx_data), the layout big models have
    reward/onnx                           a tiny LlamaForSequenceClassification (one label), the reward model
    reference.json                        what PyTorch / transformers compute for them (see `reference_values`)

Nothing is downloaded; the tokenizer is the trainer's tiny byte-level BPE with its chat template.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "services/trainer/src"))
sys.path.insert(0, str(REPO / "services/trainer/tests"))

import torch  # noqa: E402
from alignment_trainer.public import (  # noqa: E402
    build_pair_batch,
    export_onnx,
    save_hf_checkpoint,
    token_logps,
    write_manifest,
)
from tiny import tiny_llama, tiny_tokenizer  # noqa: E402

torch.set_num_threads(2)

# Chat templates in the styles of popular model families, rendered by transformers' own renderer so the TypeScript
# renderer can be checked against it: whitespace control ({%- -%}, trim_blocks/lstrip_blocks), loops, filters,
# raise_exception and special-token variables.
TEMPLATES = {
    "llama3": (
        "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
        " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    ),
    "chatml": (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
        "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    "zephyr": (
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
        "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
        "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
        "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
    ),
    "mistral": (
        "{{ bos_token }}{%- for message in messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
        "        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\n"
        "    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {{- '[INST] ' + message['content'] + ' [/INST]' }}\n"
        "    {%- elif message['role'] == 'assistant' %}\n        {{- message['content'] + eos_token }}\n    {%- endif %}\n"
        "{%- endfor %}"
    ),
}
TEMPLATE_SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
CONVERSATIONS = [
    [{"role": "user", "content": "What colour is the sky?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  Two plus two?\n"}],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! 日本語 ✓"},
        {"role": "user", "content": "Say it again."},
    ],
]

# Prompt/response pairs scored in PyTorch for the parity test: short and long, unicode, an empty response (only
# EOS is scored), and text containing a special token's string (the tokenizer matches it as that token).
SCORE_ITEMS = [
    ("What colour is the sky?", "The sky is blue."),
    ("What colour is the sky?", "Green, mostly."),
    ("Two plus two?", "Two plus two is four; three plus four is seven."),
    ("Answer briefly: 日本 ✓", "Ça va — très bien!"),
    ("Say nothing.", ""),
    ("Repeat <|eos|> twice", "<|eos|> and <|eos|>"),
    ("A long one.", " ".join(["A preference pair has a prompt, a chosen and a rejected response."] * 6)),
]
ENCODE_TEXTS = ["The sky is blue.", "  leading spaces\tand tabs\n", "日本語 ✓ émigré", "x<|eos|>y", ""]
GREEDY_PROMPTS = ["What colour is the sky?", "Two plus two?", "Answer the question briefly and politely."]
GREEDY_NEW_TOKENS = 12


def _special_tokens(tokenizer) -> dict[str, str]:
    return {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}


def build_causal_lm(dest: Path, *, vocab_size: int, hidden: int, layers: int, seed: int, external_data: bool = False,
                    max_positions: int | None = None):
    """Writes dest/checkpoint (HF) and dest/onnx (Optimum layout) of a random tiny Llama; returns (model, tokenizer).

    max_positions overrides the context length the config declares (Llama's default RoPE does not depend on it, so
    the weights are the same; benchmarks use it to score sequences longer than tiny.py's 256)."""
    tokenizer = tiny_tokenizer()
    model = tiny_llama(vocab_size=vocab_size, hidden=hidden, layers=layers, seed=seed).eval()
    if max_positions is not None:
        model.config.max_position_embeddings = max_positions
    save_hf_checkpoint(model, tokenizer, dest / "checkpoint")
    export_onnx(dest / "checkpoint", dest / "onnx")
    if external_data:
        import onnx

        path = dest / "onnx" / "model.onnx"
        proto = onnx.load(path)
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx_data", size_threshold=1024)
        write_manifest(dest / "onnx")
    return model, tokenizer


class _RewardWrapper(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def build_reward_model(dest: Path, *, seed: int):
    """Writes dest/onnx: a random LlamaForSequenceClassification (num_labels 1) with inputs input_ids and
    attention_mask and output logits [batch, 1], plus config and tokenizer files."""
    from torch.export import Dim
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = tiny_tokenizer()
    base = tiny_llama(seed=seed).config
    fields = {k: v for k, v in base.to_dict().items() if k not in ("id2label", "label2id")}
    config = LlamaConfig(**{**fields, "num_labels": 1, "architectures": ["LlamaForSequenceClassification"]})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForSequenceClassification(config).eval()
    out = dest / "onnx"
    out.mkdir(parents=True)
    ids = torch.full((2, 5), 7, dtype=torch.long)
    mask = torch.ones((2, 5), dtype=torch.long)
    b, s = Dim("batch_size"), Dim("sequence_length")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_RewardWrapper(model), (ids, mask), None, input_names=["input_ids", "attention_mask"],
                                    output_names=["logits"], dynamic_shapes=({0: b, 1: s}, {0: b, 1: s}),
                                    dynamo=True, opset_version=18, verbose=False)
    program.save(out / "model.onnx", external_data=False)
    model.config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_manifest(out)
    return model, tokenizer


def _reward_text(tokenizer, prompt: str, response: str) -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False)


@torch.no_grad()
def reference_values(policy, reference, reward, tokenizer) -> dict:
    """What the TypeScript side must reproduce, computed the way the trainer computes it."""
    from transformers.utils.chat_template_utils import render_jinja_template

    chat = []
    for messages in CONVERSATIONS:
        if messages[-1]["role"] != "user":
            continue
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        direct = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        chat.append({"messages": messages, "text": text, "ids": tokenizer(text, add_special_tokens=False)["input_ids"],
                     "ids_direct": list(direct)})
    templates = []
    for name, template in TEMPLATES.items():
        for messages in CONVERSATIONS:
            for add_generation_prompt in (True, False):
                try:
                    rendered, _ = render_jinja_template([messages], chat_template=template,
                                                        add_generation_prompt=add_generation_prompt,
                                                        **TEMPLATE_SPECIAL_TOKENS)
                    entry = {"text": rendered[0]}
                except Exception as error:  # the template raised (raise_exception): the TS side must raise too
                    entry = {"error": str(error)}
                templates.append({"name": name, "template": template, "messages": messages,
                                  "add_generation_prompt": add_generation_prompt, **entry})

    def scores(model, finished: bool = True, items=SCORE_ITEMS, strings: str = "chat-template") -> list[dict]:
        out = []
        for prompt, response in items:
            # One sequence per batch (chosen = rejected): no padding, the trainer's exact code path. Unfinished: a
            # response cut at max_new_tokens, scored without EOS.
            batch = build_pair_batch(tokenizer, [prompt], [response], [response], max_length=4096, strings=strings,
                                     chosen_finished=[finished], rejected_finished=[finished])
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
            per_token = token_logps(logits.float(), batch.input_ids)[0]
            mask = batch.response_mask[0, 1:]
            token_values = per_token[mask].double()
            n_prompt = int((~batch.response_mask[0]).sum())
            out.append({"prompt": prompt, "response": response,
                        "prompt_ids": batch.input_ids[0, :n_prompt].tolist(),
                        "response_ids": batch.input_ids[0, n_prompt:].tolist(),
                        "logp": float(token_values.sum()), "token_logps": token_values.tolist()})
        return out

    greedy = []
    for prompt in GREEDY_PROMPTS:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             tokenize=False)
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        out = policy.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                              max_new_tokens=GREEDY_NEW_TOKENS, eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id)
        new = out[0, ids.shape[1]:].tolist()
        greedy.append({"prompt": prompt, "ids": new, "max_new_tokens": GREEDY_NEW_TOKENS})

    rewards = []
    for prompt, response in SCORE_ITEMS:
        ids = torch.tensor([tokenizer(_reward_text(tokenizer, prompt, response), add_special_tokens=False)["input_ids"]])
        rewards.append({"prompt": prompt, "response": response, "ids": ids[0].tolist(),
                        "score": float(reward(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, 0])})

    return {
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "vocab_size": policy.config.vocab_size,
        "max_position_embeddings": policy.config.max_position_embeddings,
        "special_tokens": _special_tokens(tokenizer),
        "template_special_tokens": TEMPLATE_SPECIAL_TOKENS,
        "chat": chat,
        "templates": templates,
        "encode": [{"text": t, "ids": tokenizer(t, add_special_tokens=False)["input_ids"]} for t in ENCODE_TEXTS],
        "scores": {"policy": scores(policy), "reference": scores(reference)},
        "scores_unfinished": {"policy": scores(policy, finished=False, items=SCORE_ITEMS[:3])},
        # String prompts encoded as raw text (RunSpec.prompt_encoding's default): no template token in prompt_ids.
        "scores_raw": {"policy": scores(policy, items=SCORE_ITEMS[:3], strings="raw-text")},
        "greedy": greedy,
        "rewards": rewards,
    }


def build_test_set(out: Path) -> None:
    if (out / "reference.json").is_file():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    # Test runners start several of these at once (one per jest worker); the first builds, the others wait on the
    # lock and find the result. The OS drops a flock when its holder dies, so a killed build blocks nobody.
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "reference.json").is_file():
            _build_test_set(out)


def _build_test_set(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        policy, tokenizer = build_causal_lm(tmp / "policy", vocab_size=320, hidden=32, layers=2, seed=0)
        reference, _ = build_causal_lm(tmp / "reference", vocab_size=320, hidden=32, layers=2, seed=1,
                                       external_data=True)
        reward, _ = build_reward_model(tmp / "reward", seed=2)
        values = reference_values(policy, reference, reward, tokenizer)
        (tmp / "reference.json").write_text(json.dumps(values, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--causal-lm", action="store_true", help="write one causal LM (checkpoint + onnx) only")
    parser.add_argument("--vocab", type=int, default=320)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-positions", type=int, default=None)
    args = parser.parse_args()
    if args.causal_lm:
        if not (args.outdir / "onnx" / "manifest.json").is_file():
            build_causal_lm(args.outdir, vocab_size=args.vocab, hidden=args.hidden, layers=args.layers, seed=args.seed,
                            max_positions=args.max_positions)
    else:
        build_test_set(args.outdir)
    print(args.outdir)


if __name__ == "__main__":
    main()
