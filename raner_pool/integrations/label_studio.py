"""Label Studio's ML backend protocol, the parts that are not HTTP: read a project's labelling config, map its
label values to model types, and turn entities into Label Studio regions.

A region is `{"from_name", "to_name", "type": "labels", "value": {"start", "end", "text", "labels": [...]},
"score"}` with offsets in code points, which is what Label Studio's `Text` tag counts in its current frontend
(older ones counted UTF-16 units); a task's `score` is its least sure entity's `prob` (1.0 with none), so the Data
Manager sorts the tasks the model is least sure of first.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raner_pool.entities import Entity
from raner_pool.errors import RaNERError


class LabelConfigError(RaNERError):
    """The project's labelling config has no `<Labels>` on a `<Text>`, or cannot be parsed."""


@dataclass(frozen=True)
class LabelConfig:
    """The first `<Labels>` of a project that labels a `<Text>`: its names, the task data key, the label values."""

    from_name: str
    to_name: str
    data_key: str
    labels: tuple[str, ...]
    label_to_type: dict[str, str] = field(default_factory=dict)
    """Label value -> model type; labels absent here map to themselves."""

    def model_type(self, label: str) -> str:
        return self.label_to_type.get(label, label)

    def label_for(self, entity_type: str) -> str | None:
        """The project's label for a model type, or None when the project has no label for it."""
        for label in self.labels:
            if self.model_type(label) == entity_type:
                return label
        return None

    def unsupported(self, model_types: Sequence[str]) -> list[str]:
        """Labels whose type the model cannot produce."""
        return [label for label in self.labels if self.model_type(label) not in model_types]


def parse_label_config(xml: str, mapping: Mapping[str, str] | None = None) -> LabelConfig:
    """Read `xml` (a project's `label_config`); `mapping` (label value -> model type) from the project's
    `extra_params` or the registry."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise LabelConfigError(f"the labelling config is not valid XML: {error}") from None
    texts = {tag.get("name"): tag.get("value", "") for tag in root.iter() if tag.tag in ("Text", "HyperText")}
    for tag in root.iter("Labels"):
        to_name = tag.get("toName", "")
        if to_name in texts and texts[to_name].startswith("$"):
            labels = tuple(str(label.get("value")) for label in tag.iter("Label") if label.get("value"))
            if not labels:
                raise LabelConfigError(f"<Labels name={tag.get('name')!r}> has no <Label value=...>")
            return LabelConfig(tag.get("name", ""), to_name, texts[to_name][1:], labels, dict(mapping or {}))
    raise LabelConfigError("the labelling config has no <Labels> on a <Text value=\"$...\">: this backend labels "
                           "spans of text (named entities)")


def task_text(task: Mapping[str, Any], config: LabelConfig) -> str:
    """The task's text under the config's data key; `RaNERError` naming the task when it has none."""
    data = task.get("data") if isinstance(task, Mapping) else None
    text = data.get(config.data_key) if isinstance(data, Mapping) else None
    if not isinstance(text, str):
        raise RaNERError(f"task {task.get('id', '?') if isinstance(task, Mapping) else '?'} has no text under "
                         f"data.{config.data_key} (the key the labelling config's <Text value=\"$"
                         f"{config.data_key}\"> names)")
    return text


def prediction(entities: Sequence[Entity], config: LabelConfig, model_version: str) -> dict[str, Any]:
    """One task's prediction: a region per entity whose type the project has a label for."""
    regions: list[dict[str, Any]] = []
    scores: list[float] = []
    for entity in entities:
        label = config.label_for(entity.type)
        if label is None:
            continue
        regions.append({"from_name": config.from_name, "to_name": config.to_name, "type": "labels",
                        "value": {"start": entity.start, "end": entity.end, "text": entity.span, "labels": [label]},
                        "score": round(entity.prob, 6)})
        scores.append(round(entity.prob, 6))
    score = min(scores, default=1.0)
    return {"result": regions, "score": score, "model_version": model_version}
