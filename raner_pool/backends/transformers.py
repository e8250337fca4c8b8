"""Hugging Face `AutoModelForTokenClassification` dirs (the seed server's path); argmax decoding, no CRF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from raner_pool.crf import CRFParams
from raner_pool.errors import ModelNotAvailable
from raner_pool.onednn import can_fuse, fuse_linear_layers
from raner_pool.precision import compute_in, keep_weights_in
from raner_pool.tokenization import CharTokenizer
from raner_pool.unpadded import UnpaddedBert, supports


class TransformersBackend:
    """A token-classification model and tokenizer loaded by `transformers` from a local dir."""

    kind = "transformers"
    crf: CRFParams | None = None

    def __init__(self, model_dir: Path, device: str = "cpu", dtype: str = "float32", fused: bool = True) -> None:
        """`fused`: serve the linear layers through oneDNN (raner_pool.onednn)."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        if not (model_dir / "config.json").is_file():
            raise ModelNotAvailable(f"{model_dir} is not a Hugging Face model dir: it has no config.json")
        self.model_dir = model_dir
        self.device = torch.device(device)
        self.dtype = dtype
        model, loading = AutoModelForTokenClassification.from_pretrained(model_dir, output_loading_info=True)
        if loading["missing_keys"]:  # transformers would fill them with random weights and only log a warning
            hint = (" it is a ModelScope dir: use backend='modelscope' or 'onnx'"
                    if (model_dir / "configuration.json").is_file() else "")
            raise ModelNotAvailable(
                f"{model_dir} is not a Hugging Face token-classification model: {len(loading['missing_keys'])} of "
                f"its weights are missing (e.g. {loading['missing_keys'][0]});{hint}")
        self.model = model.to(self.device).eval()
        keep_weights_in(self.model, dtype)
        if fused and can_fuse(device, dtype):
            fuse_linear_layers(self.model)
        # BertForTokenClassification: the encoder, then dropout (nothing at inference) and one linear classifier
        runs_unpadded = type(self.model).__name__ == "BertForTokenClassification" and supports(self.model.bert)
        self.unpadded = UnpaddedBert(self.model.bert) if runs_unpadded else None
        self.packs = self.unpadded is not None
        self.tokenizer = CharTokenizer(AutoTokenizer.from_pretrained(model_dir))
        id2label = self.model.config.id2label
        self.labels = [id2label[i] for i in range(len(id2label))]
        self.max_positions = min(getattr(self.model.config, "max_position_embeddings", 512), 512)

    def emissions(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), compute_in(self.dtype, self.device.type):
            logits = self.model(
                input_ids=torch.from_numpy(input_ids).to(self.device),
                attention_mask=torch.from_numpy(attention_mask).to(self.device),
            ).logits
        return logits.float().cpu().numpy()

    def emissions_packed(self, token_ids: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
        assert self.unpadded is not None, "emissions_packed needs a BERT token classifier (TransformersBackend.packs)"
        with torch.inference_mode(), compute_in(self.dtype, self.device.type):
            hidden = self.unpadded(torch.from_numpy(token_ids).to(self.device), lengths)
            logits = self.model.classifier(hidden)
        return logits.float().cpu().numpy()
