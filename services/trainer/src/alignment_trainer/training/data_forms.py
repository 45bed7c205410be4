"""TRL's dataset forms mapped to the trainer's records (examples/data/README.md has the table; libs/artifacts/src/
data-forms.ts applies the same rules in TypeScript). Files are JSONL, or Parquet when the name ends in ``.parquet``
(read with pyarrow; list<struct<role, content>> columns come back as lists of dicts).

    preference, explicit prompt   {prompt, chosen, rejected}: strings (standard) or message lists (conversational)
    preference, implicit prompt   {chosen, rejected}: the prompt is their common prefix (of characters, or of messages)
    SFT, prompt-completion        {prompt, completion}: strings, or message lists (one assistant message completes)
    SFT, conversational LM        {messages}: the last message is the assistant's response, the rest the prompt
    SFT, language modelling       {text}: raw text, no prompt and no chat template
    SFT, this project's own       {prompt, response}

A prompt stays a string or a message list (logprobs.Prompt); a completion is text. A string prompt is encoded as
RAW_TEXT (TRL's standard form; the default) or through the chat template (CHAT_TEMPLATE), as the job's
prompt_encoding says; a message list always goes through the chat template (logprobs.encode_prompt). Every problem
is a ``FormError(field, reason)``; data.py adds ``path:line`` (or ``path:row N``).
"""

from __future__ import annotations

from pathlib import Path

Message = dict[str, str]

# How a string prompt is encoded (proto alignment.v1.PromptEncoding; the TypeScript StringPromptEncoding).
RAW_TEXT = "raw-text"
CHAT_TEMPLATE = "chat-template"
STRING_PROMPT_ENCODINGS = (RAW_TEXT, CHAT_TEMPLATE)


class FormError(ValueError):
    """A record that is in none of the accepted forms; ``field`` is the offending key (``chosen[1].role``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def is_parquet(path: str | Path) -> bool:
    return str(path).lower().endswith(".parquet")


def parquet_rows(path: Path) -> list[dict]:
    """A Parquet file's rows as dicts (pyarrow); a file pyarrow cannot read is FormError on ``(file)``."""
    import pyarrow.parquet as pq  # imported when a Parquet file is read

    try:
        return pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a corrupt or foreign file
        raise FormError("(file)", f"not a readable Parquet file ({str(err)[:200]}); write it with pyarrow or pandas, "
                                  "or use JSONL") from None


def _text(record: dict, field: str, *, allow_empty: bool = False) -> str:
    if field not in record or record[field] is None:
        raise FormError(field, "missing")
    value = record[field]
    if not isinstance(value, str):
        raise FormError(field, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise FormError(field, "must not be empty")
    return value


def _messages(value: object, field: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise FormError(field, 'must be a non-empty list of {"role", "content"} messages')
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise FormError(f"{field}[{i}]", 'must be a {"role", "content"} message')
        role, content = m.get("role"), m.get("content")
        if not isinstance(role, str) or not role:
            raise FormError(f"{field}[{i}].role", 'must be a non-empty string ("system", "user" or "assistant")')
        if not isinstance(content, str):
            raise FormError(f"{field}[{i}].content", "must be a string")
        out.append({"role": role, "content": content})
    return out


def _completion(messages: list[Message], field: str, offset: int = 0) -> str:
    """A conversational completion: exactly one assistant message, whose content is the response text."""
    if len(messages) != 1:
        raise FormError(field, f"must hold exactly one assistant message after the prompt, got {len(messages)} "
                               "(put earlier turns in the prompt)")
    if messages[0]["role"] != "assistant":
        raise FormError(f"{field}[{offset}].role", f'must be "assistant" (the completion), got {messages[0]["role"]!r}')
    if not messages[0]["content"].strip():
        raise FormError(f"{field}[{offset}].content", "must not be empty")
    return messages[0]["content"]


def _explicit_pair(record: dict) -> tuple[object, str, str]:
    prompt = record["prompt"]
    if isinstance(prompt, str):
        for field in ("chosen", "rejected"):
            if isinstance(record.get(field), list):
                raise FormError(field, 'is a message list but "prompt" is a string: use one form (all strings, or '
                                       "all message lists)")
        return prompt, _text(record, "chosen"), _text(record, "rejected")
    if not isinstance(prompt, list):
        raise FormError("prompt", f'must be a string or a list of {{"role", "content"}} messages, got '
                                  f"{type(prompt).__name__}")
    if isinstance(record.get("chosen"), str) and isinstance(record.get("rejected"), str):
        # The services' own labelled pairs (formats.proto LabelledPair): a conversational prompt, responses as text.
        return _messages(prompt, "prompt"), _text(record, "chosen"), _text(record, "rejected")
    for field in ("chosen", "rejected"):
        if not isinstance(record.get(field), list):
            raise FormError(field, 'must be a list of messages (one assistant message) when "prompt" is a message list')
    return (_messages(prompt, "prompt"), _completion(_messages(record["chosen"], "chosen"), "chosen"),
            _completion(_messages(record["rejected"], "rejected"), "rejected"))


def _implicit_text_pair(chosen: str, rejected: str) -> tuple[str, str, str]:
    """The common prefix of the two texts is the prompt, less a space it ends in (that space starts both completions)."""
    end = 0
    while end < min(len(chosen), len(rejected)) and chosen[end] == rejected[end]:
        end += 1
    if end > 0 and chosen[end - 1] == " ":
        end -= 1
    if not chosen[:end].strip():
        raise FormError("prompt", 'is missing and "chosen" and "rejected" share no prefix to take it from: add a '
                                  '"prompt" field')
    pair = chosen[:end], chosen[end:], rejected[end:]
    for field, value in (("chosen", pair[1]), ("rejected", pair[2])):
        if not value.strip():
            raise FormError(field, "has no completion after the prompt the two share (one is a prefix of the other): "
                                   'add a "prompt" field')
    return pair


def _implicit_conversation_pair(record: dict) -> tuple[object, str, str]:
    chosen, rejected = _messages(record.get("chosen"), "chosen"), _messages(record.get("rejected"), "rejected")
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise FormError("prompt", 'is missing and "chosen" and "rejected" share no leading messages to take it from: '
                                  'add a "prompt" field')
    return (chosen[:shared], _completion(chosen[shared:], "chosen", shared),
            _completion(rejected[shared:], "rejected", shared))


def pair_fields(record: object) -> tuple[object, str, str]:
    """(prompt, chosen, rejected) of a preference record in any of TRL's preference forms."""
    if not isinstance(record, dict):
        raise FormError("(record)", f"must be a JSON object, got {type(record).__name__}")
    if record.get("prompt") is not None:
        return _explicit_pair(record)
    if isinstance(record.get("chosen"), list) or isinstance(record.get("rejected"), list):
        return _implicit_conversation_pair(record)
    return _implicit_text_pair(_text(record, "chosen"), _text(record, "rejected"))


def sft_fields(record: object) -> tuple[object | None, str]:
    """(prompt, response) of an SFT record; the prompt is None for {"text"} (raw text: no prompt, no chat template)."""
    if not isinstance(record, dict):
        raise FormError("(record)", f"must be a JSON object, got {type(record).__name__}")
    if record.get("messages") is not None:
        messages = _messages(record["messages"], "messages")
        if len(messages) < 2:
            raise FormError("messages", "needs the prompt's turns and then one assistant message (the response)")
        return messages[:-1], _completion(messages[-1:], "messages", len(messages) - 1)
    if record.get("text") is not None:
        return None, _text(record, "text")
    if record.get("completion") is not None:
        completion = record["completion"]
        prompt = record.get("prompt")
        if isinstance(prompt, list) or isinstance(completion, list):
            if not isinstance(prompt, list) or not isinstance(completion, list):
                raise FormError("completion" if isinstance(prompt, list) else "prompt",
                                "must be a message list like the other field: use one form (strings, or message lists)")
            return _messages(prompt, "prompt"), _completion(_messages(completion, "completion"), "completion")
        return _text(record, "prompt", allow_empty=True), _text(record, "completion")
    if record.get("response") is not None:
        return _text(record, "prompt", allow_empty=True), _text(record, "response")
    raise FormError("(record)", 'is in no SFT form: give {"messages"}, {"text"}, {"prompt", "completion"} or '
                                '{"prompt", "response"}')


__all__ = ["CHAT_TEMPLATE", "RAW_TEXT", "STRING_PROMPT_ENCODINGS", "FormError", "is_parquet", "pair_fields",
           "parquet_rows", "sft_fields"]
