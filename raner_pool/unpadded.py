"""A BERT encoder run on the real tokens of a batch only: its texts run together in one stream through every linear
layer, layer norm and GELU, and taken one by one inside attention, where each attends to itself alone.

Padded to its longest text, a batch of 4 MSRA sentences computes 24% more tokens than it has (packed into rows of
the longest text's width, as many: short texts rarely fit beside the longest), and attention over padded texts
with a mask takes twice as long as text by text. Here the linear layers, 86-94% of a pass, cost what the batch's
tokens cost, rounded up to a multiple of TOKEN_QUANTUM (which bounds the shapes oneDNN builds and keeps).

For inference only, on the encoder's own modules (fused or not: raner_pool.onednn), and only where it is the BERT
that `supports` recognises; any other encoder is padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.functional import scaled_dot_product_attention


def supports(encoder: torch.nn.Module) -> bool:
    """Whether `encoder` is a BERT (ModelScope's or transformers') this module runs as its own forward does: BERT's
    embeddings (RoBERTa's count positions differently), learned absolute positions, self-attention only (no
    decoder, no cross-attention), every layer split into attention, intermediate and output."""
    embeddings = getattr(encoder, "embeddings", None)
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if type(embeddings).__name__ != "BertEmbeddings" or not layers:
        return False
    if getattr(embeddings, "position_embedding_type", "absolute") != "absolute":
        return False
    for layer in layers:
        attention = getattr(getattr(layer, "attention", None), "self", None)
        if attention is None or not all(hasattr(layer, part) for part in ("intermediate", "output")):
            return False
        if getattr(attention, "position_embedding_type", "absolute") != "absolute":
            return False
        if getattr(layer, "is_decoder", False) or getattr(layer, "add_cross_attention", False):
            return False
        if not all(hasattr(attention, name) for name in ("query", "key", "value", "num_attention_heads")):
            return False
    return True


TOKEN_QUANTUM = 16
"""A batch's tokens are run as a multiple of this: every new token count is a new shape for each linear layer,
and oneDNN keeps what it builds for each shape (its primitive cache), so unbounded counts grow the heap."""


class UnpaddedBert:
    """Hidden states of texts run together: `token_ids` (tokens,) holds the texts one after the other, `lengths`
    their token counts; the result is (tokens, hidden), each token's state as the encoder gives it for its text."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        if not supports(encoder):
            raise ValueError(f"{type(encoder).__name__} is not a BERT encoder raner_pool.unpadded can run")
        self.encoder: Any = encoder

    def __call__(self, token_ids: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
        lengths = list(lengths)
        tokens = len(token_ids)
        filler = -tokens % TOKEN_QUANTUM
        if filler:  # a text of padding of its own, attending to itself; its states are dropped below
            token_ids = torch.cat([token_ids, token_ids.new_zeros(filler)])
            lengths.append(filler)
        positions = torch.cat([torch.arange(length, device=token_ids.device) for length in lengths])
        embeddings = self.encoder.embeddings(
            input_ids=token_ids[None], position_ids=positions[None], token_type_ids=torch.zeros_like(token_ids)[None])
        hidden: torch.Tensor = embeddings[0]
        for layer in self.encoder.encoder.layer:
            context = self._attend(layer.attention.self, hidden, lengths)
            hidden = layer.attention.output(context, hidden)
            hidden = layer.output(layer.intermediate(hidden), hidden)
        return hidden[:tokens]

    @staticmethod
    def _attend(attention: Any, hidden: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """Multi-head self-attention of each text to itself, text by text: no padding and no mask to compute (at
        MSRA lengths half the time of padded texts side by side with a mask)."""
        heads = attention.num_attention_heads

        def by_head(states: torch.Tensor) -> torch.Tensor:  # (tokens, hidden) -> (1, heads, tokens, head size)
            return states.unflatten(-1, (heads, -1)).transpose(0, 1)[None]

        projected = [projection(hidden).split(lengths) for projection in (attention.query, attention.key,
                                                                          attention.value)]
        contexts = [scaled_dot_product_attention(by_head(query), by_head(key), by_head(value))[0]
                    .transpose(0, 1).flatten(1) for query, key, value in zip(*projected, strict=True)]
        return torch.cat(contexts)
