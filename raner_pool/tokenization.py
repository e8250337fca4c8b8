"""Character-level tokenisation with exact code-point offsets.

RaNER models label characters. ModelScope's preprocessor, with
``is_split_into_words``, encodes each code point on its own and labels its
first sub-token; a code point that encodes to nothing (whitespace, control
characters) becomes ``[UNK]``. Doing the same here means offsets are exact by
construction and no input string can make tokenisation fail.
"""

from __future__ import annotations

from typing import Any

_CACHE_LIMIT = 200_000


class CharTokenizer:
    """Maps each code point of a text to its sub-token ids, memoised per code point."""

    def __init__(self, hf_tokenizer: Any) -> None:
        self._tokenizer = hf_tokenizer
        self.cls_id: int = hf_tokenizer.cls_token_id
        self.sep_id: int = hf_tokenizer.sep_token_id
        self.pad_id: int = hf_tokenizer.pad_token_id or 0
        self.unk_id: int = hf_tokenizer.unk_token_id
        self._ids: dict[str, tuple[int, ...]] = {}

    def char_ids(self, char: str) -> tuple[int, ...]:
        """Sub-token ids of one code point; never empty."""
        ids = self._ids.get(char)
        if ids is None:
            ids = tuple(self._tokenizer.encode(char, add_special_tokens=False)) or (self.unk_id,)
            if len(self._ids) < _CACHE_LIMIT:
                self._ids[char] = ids
        return ids

    def encode(self, text: str) -> list[tuple[int, ...]]:
        """Sub-token ids for every code point of `text`, in order."""
        return [self.char_ids(char) for char in text]
