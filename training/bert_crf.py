"""A BERT encoder + CRF in plain PyTorch, with the state-dict keys of ModelScope's `transformer-crf` model.

Training runs on it, so it needs neither ModelScope nor transformers (a GPU machine with PyTorch alone will do);
`save_weights` + `raner_pool.modeldir.write_model_dir` make a dir that ModelScope and every raner_pool backend
load as if ModelScope had trained it (tests/test_training.py checks the emissions and the CRF agree).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from raner_pool.modeldir import EncoderShape


class Embeddings(nn.Module):
    def __init__(self, vocab_size: int, shape: EncoderShape) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, shape.hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(shape.max_positions, shape.hidden)
        self.token_type_embeddings = nn.Embedding(2, shape.hidden)
        self.LayerNorm = nn.LayerNorm(shape.hidden, eps=1e-12)
        self.dropout = nn.Dropout(shape.dropout)
        self.register_buffer("position_ids", torch.arange(shape.max_positions).unsqueeze(0))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = self.position_ids[:, : input_ids.shape[1]]
        summed = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        summed = summed + self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(summed))


class Dense(nn.Module):
    """A projection, dropout, and the residual's layer norm: BERT's `*.output` blocks."""

    def __init__(self, size_in: int, size_out: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(size_in, size_out)
        self.LayerNorm = nn.LayerNorm(size_out, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class SelfAttention(nn.Module):
    def __init__(self, shape: EncoderShape) -> None:
        super().__init__()
        self.heads, self.dropout = shape.heads, shape.dropout
        self.query = nn.Linear(shape.hidden, shape.hidden)
        self.key = nn.Linear(shape.hidden, shape.hidden)
        self.value = nn.Linear(shape.hidden, shape.hidden)

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        batch, length, size = hidden.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, length, self.heads, size // self.heads).transpose(1, 2)

        context = F.scaled_dot_product_attention(
            split(self.query(hidden)),
            split(self.key(hidden)),
            split(self.value(hidden)),
            attn_mask=additive_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return context.transpose(1, 2).reshape(batch, length, size)


class Attention(nn.Module):
    def __init__(self, shape: EncoderShape) -> None:
        super().__init__()
        self.self = SelfAttention(shape)
        self.output = Dense(shape.hidden, shape.hidden, shape.dropout)

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(hidden, additive_mask), hidden)


class Intermediate(nn.Module):
    def __init__(self, shape: EncoderShape) -> None:
        super().__init__()
        self.dense = nn.Linear(shape.hidden, shape.intermediate)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(hidden))


class Layer(nn.Module):
    def __init__(self, shape: EncoderShape) -> None:
        super().__init__()
        self.attention = Attention(shape)
        self.intermediate = Intermediate(shape)
        self.output = Dense(shape.intermediate, shape.hidden, shape.dropout)

    def forward(self, hidden: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        attended = self.attention(hidden, additive_mask)
        return self.output(self.intermediate(attended), attended)


class Layers(nn.Module):
    def __init__(self, shape: EncoderShape) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(shape) for _ in range(shape.layers))


class Pooler(nn.Module):
    """Unused by NER; kept so the state dict has every key a BERT checkpoint has."""

    def __init__(self, shape: EncoderShape) -> None:
        super().__init__()
        self.dense = nn.Linear(shape.hidden, shape.hidden)


class Encoder(nn.Module):
    def __init__(self, vocab_size: int, shape: EncoderShape) -> None:
        super().__init__()
        self.embeddings = Embeddings(vocab_size, shape)
        self.encoder = Layers(shape)
        self.pooler = Pooler(shape)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states, (batch, length, hidden)."""
        hidden = self.embeddings(input_ids)
        additive_mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.encoder.layer:
            hidden = layer(hidden, additive_mask)
        return hidden


class CRF(nn.Module):
    """Linear-chain CRF with start/end/transition scores (the pytorch-crf parameterisation ModelScope uses)."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.start_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log p(tags | emissions) per sequence; `mask` marks real positions, the first always real."""
        batch = torch.arange(emissions.shape[0], device=emissions.device)
        lengths = mask.sum(1)
        score = self.start_transitions[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
        partition = self.start_transitions + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            real = mask[:, t]
            step = self.transitions[tags[:, t - 1], tags[:, t]] + emissions[batch, t, tags[:, t]]
            score = score + step * real
            advanced = torch.logsumexp(partition[:, :, None] + self.transitions + emissions[:, t, None, :], dim=1)
            partition = torch.where(real[:, None], advanced, partition)
        score = score + self.end_transitions[tags[batch, lengths - 1]]
        return score - torch.logsumexp(partition + self.end_transitions, dim=1)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best tag path per sequence, (batch, length); positions past a sequence's end are 0."""
        best = self.start_transitions + emissions[:, 0]
        back: list[torch.Tensor] = []
        for t in range(1, emissions.shape[1]):
            scores, previous = (best[:, :, None] + self.transitions).max(dim=1)
            real = mask[:, t, None]
            best = torch.where(real, scores + emissions[:, t], best)
            back.append(torch.where(real, previous, torch.arange(best.shape[1], device=best.device)))
        last = (best + self.end_transitions).argmax(dim=1)
        path = [last]
        for previous in reversed(back):
            last = previous.gather(1, last[:, None]).squeeze(1)
            path.append(last)
        return torch.stack(path[::-1], dim=1) * mask


class Head(nn.Module):
    def __init__(self, hidden: int, num_tags: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden, num_tags)
        self.crf = CRF(num_tags)


class BertCRF(nn.Module):
    """Emissions per character from the encoder and `head.linear`; tag paths from `head.crf`."""

    def __init__(self, vocab_size: int, num_tags: int, shape: EncoderShape) -> None:
        super().__init__()
        self.encoder = Encoder(vocab_size, shape)
        self.head = Head(shape.hidden, num_tags)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """BERT's initialisation: normal(0, 0.02) weights, zero biases, unit layer norms."""
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def emissions(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Tag scores per character: [CLS] and [SEP] cut off, so (batch, length - 2, tags)."""
        return self.head.linear(self.encoder(input_ids, attention_mask))[:, 1:-1]

    def loss(self, emissions: torch.Tensor, tags: torch.Tensor, char_mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the gold tag paths."""
        return -self.head.crf.log_likelihood(emissions, tags, char_mask).mean()


def parameter_count(model: nn.Module) -> float:
    """Millions of parameters."""
    return sum(p.numel() for p in model.parameters()) / 1e6
