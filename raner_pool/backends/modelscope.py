"""ModelScope RaNER models (`transformer-crf`): loaded by ModelScope's own classes, run without its pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from raner_pool.crf import CRFParams
from raner_pool.errors import ModelNotAvailable
from raner_pool.modeldir import trained_window
from raner_pool.onednn import can_fuse, fuse_linear_layers
from raner_pool.precision import compute_in, keep_weights_in
from raner_pool.tokenization import CharTokenizer
from raner_pool.unpadded import UnpaddedBert, supports

MODELSCOPE_MAX_LENGTH = 512  # the pipeline's sequence_length


class ModelScopeBackend:
    """Encoder + emission head of a ModelScope token-classification model; the CRF is decoded in numpy."""

    kind = "modelscope"

    def __init__(self, model_dir: Path, device: str = "cpu", dtype: str = "float32", fused: bool = True) -> None:
        """`fused`: serve the linear layers through oneDNN (raner_pool.onednn); False keeps ModelScope's own
        modules, which training and the ONNX export need."""
        from modelscope.models import Model
        from modelscope.preprocessors import Preprocessor

        if not (model_dir / "configuration.json").is_file():
            raise ModelNotAvailable(
                f"{model_dir} is not a ModelScope model dir: it has no configuration.json "
                "(for a Hugging Face token-classification dir use backend='transformers')"
            )
        self.model_dir = model_dir
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = Model.from_pretrained(str(model_dir)).to(self.device).eval()
        keep_weights_in(self.model, dtype)
        if fused and can_fuse(device, dtype):
            fuse_linear_layers(self.model)
        self.unpadded = UnpaddedBert(self.model.encoder) if supports(self.model.encoder) else None
        self.packs = self.unpadded is not None
        preprocessor = Preprocessor.from_pretrained(str(model_dir))
        self.tokenizer = CharTokenizer(preprocessor.nlp_tokenizer.tokenizer)
        id2label = getattr(self.model, "id2label", None) or preprocessor.id2label
        self.labels = [id2label[i] for i in range(len(id2label))]
        positions = getattr(self.model.encoder.config, "max_position_embeddings", MODELSCOPE_MAX_LENGTH)
        self.max_positions = min(positions, MODELSCOPE_MAX_LENGTH)
        trained = trained_window(model_dir)
        if trained is not None:  # positions the model never saw in training would only add noise
            self.max_positions = min(self.max_positions, trained + 2)
        crf = getattr(self.model.head, "crf", None)
        self.crf = None if crf is None else CRFParams(
            start=crf.start_transitions.detach().float().cpu().numpy(),
            end=crf.end_transitions.detach().float().cpu().numpy(),
            transitions=crf.transitions.detach().float().cpu().numpy(),
        )

    def emissions(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), compute_in(self.dtype, self.device.type):
            features = self.model.encoder(
                input_ids=torch.from_numpy(input_ids).to(self.device),
                attention_mask=torch.from_numpy(attention_mask).to(self.device),
            )
            logits = self.model.head.forward(features).logits
        return logits.float().cpu().numpy()

    def emissions_packed(self, token_ids: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
        from modelscope.outputs import AttentionBackboneModelOutput

        assert self.unpadded is not None, "emissions_packed needs a BERT encoder (ModelScopeBackend.packs)"
        with torch.inference_mode(), compute_in(self.dtype, self.device.type):
            hidden = self.unpadded(torch.from_numpy(token_ids).to(self.device), lengths)
            logits = self.model.head.forward(AttentionBackboneModelOutput(last_hidden_state=hidden)).logits
        return logits.float().cpu().numpy()
