"""Tokenization for the engine: text to input ids with special tokens, cut to fit the backbone."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    truncated: bool
    empty: bool  # nothing but special tokens: an empty or blank text, nothing to classify


class TextTokenizer:
    """Wraps a fast HF tokenizer. Call it from one thread only: its truncation setting is state."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_text_chars: int) -> None:
        if not tokenizer.is_fast:
            raise ValueError("promptserve needs a fast (Rust) tokenizer for its backbone")
        self.tokenizer = tokenizer
        self.max_text_chars = max_text_chars
        self._specials = tokenizer.num_special_tokens_to_add(pair=False)

    def __call__(self, texts: list[str], max_tokens: int) -> list[Tokenized]:
        """Tokenize a batch; each result keeps at most `max_tokens` ids, special tokens included."""
        cut = [text[: self.max_text_chars] for text in texts]
        encoded = self.tokenizer(cut, truncation=True, max_length=max_tokens)
        return [
            Tokenized(
                list(ids),
                len(text) > self.max_text_chars or bool(encoding.overflowing),
                len(ids) <= self._specials,
            )
            for text, ids, encoding in zip(
                texts, encoded["input_ids"], encoded.encodings, strict=True
            )
        ]
