"""Request and response bodies of every route, as pydantic models: they validate input and document /docs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from raner_pool.timezones import DEFAULT_TIMEZONE, TIMEZONE_ENV, UnknownTimezone, zone

EXAMPLE_TEXT = "阿里巴巴集团创始人马云在杭州出席了技术峰会。"
MIN_PROB_HELP = "Only entities whose prob is at least this (0 to 1): higher trades recall for precision."
REFERENCE_HELP = ("ISO 8601 time that relative times (明天, 上周五) are resolved against, seen from `timezone`; "
                  "without an offset it is a wall clock in `timezone`. Default: now.")
TIMEZONE_HELP = ("IANA time zone the text's clock and relative times are read in (晚上8点, 明天), e.g. "
                 f"\"Europe/London\". Default: the model's `timezone` setting, else ${TIMEZONE_ENV}, else "
                 f"{DEFAULT_TIMEZONE}.")


def _iso_string(value: object) -> object:
    """JSON carries a time as an ISO 8601 string; pydantic would also take a number as a Unix time, which the
    schema does not document."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string, e.g. 2024-03-15T10:00:00+08:00")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_string)]


def _zone_name(value: str) -> str:
    """An IANA zone name as zoneinfo spells it; an unknown one fails validation (422 naming `timezone`)."""
    try:
        return zone(value).key
    except UnknownTimezone as error:
        raise ValueError(str(error)) from None


ZoneName = Annotated[StrictStr, AfterValidator(_zone_name)]
TYPES_HELP = "Only entities of these types (e.g. [\"TIME\", \"MONEY\"]); default: every type the model serves."


class NERRequest(BaseModel):
    text: StrictStr = Field(description="The text to analyse; offsets in the answer are code points into it.",
                            examples=[EXAMPLE_TEXT])
    model: StrictStr | None = Field(None, description="A registry name or alias; default: the first model.")
    min_prob: float = Field(0.0, ge=0.0, le=1.0, strict=True, description=MIN_PROB_HELP)
    reference_time: IsoDatetime | None = Field(None, description=REFERENCE_HELP)
    timezone: ZoneName | None = Field(None, description=TIMEZONE_HELP, examples=["Asia/Shanghai"])
    types: list[StrictStr] | None = Field(None, description=TYPES_HELP)


class BatchNERRequest(BaseModel):
    texts: list[StrictStr] = Field(description="Texts to analyse together; answers come back in the same order.",
                                   examples=[[EXAMPLE_TEXT, "据说，刘德华平时生活在香港。"]])
    model: StrictStr | None = None
    min_prob: float = Field(0.0, ge=0.0, le=1.0, strict=True, description=MIN_PROB_HELP)
    reference_time: IsoDatetime | None = Field(None, description=REFERENCE_HELP)
    timezone: ZoneName | None = Field(None, description=TIMEZONE_HELP, examples=["Asia/Shanghai"])
    types: list[StrictStr] | None = Field(None, description=TYPES_HELP)


class EntityOut(BaseModel):
    type: str = Field(description="PER, LOC, ORG, or whatever types the model has")
    start: int = Field(description="code-point offset of the first character")
    end: int = Field(description="code-point offset after the last character: span == text[start:end]")
    span: str
    prob: float = Field(description="the model's confidence: the lowest CRF marginal over the span's characters "
                                    "(1.0 for entities found by rules)")
    value: dict[str, Any] | None = Field(None, description="the normalised value: MONEY {amount, currency, approx}, "
                                         "PERCENT {fraction, approx}, TIME {kind, start, end, grain, timezone} "
                                         "(ISO 8601, in the zone named); "
                                         "null for PER, LOC, ORG and TITLE")
    source: Literal["model", "rule", "dictionary", "pattern"] = Field("model", description="what found it")
    color: str = Field(description="display colour of the type, from the model's registry entry")


class HFEntityOut(BaseModel):
    """transformers `pipeline("ner", aggregation_strategy="simple")` shape, for `?format=hf`."""

    entity_group: str
    score: float
    word: str
    start: int
    end: int
    value: dict[str, Any] | None = None
    source: Literal["model", "rule", "dictionary", "pattern"] = "model"


MODEL_VERSION = Field(description="content hash of the weights and config that produced the answer "
                                  "(also in the X-Model-Version header)")


REFERENCE_USED = Field(description="the time relative times were resolved against (ISO 8601), in `timezone`")
TIMEZONE_USED = Field(description="the IANA time zone the texts' times were read in")


class NERResponse(BaseModel):
    success: Literal[True] = True
    model: str
    model_version: str = MODEL_VERSION
    reference_time: str = REFERENCE_USED
    timezone: str = TIMEZONE_USED
    data: list[EntityOut] | list[HFEntityOut]
    elapsed_ms: float


class BatchNERResponse(BaseModel):
    success: Literal[True] = True
    model: str
    model_version: str = MODEL_VERSION
    reference_time: str = REFERENCE_USED
    timezone: str = TIMEZONE_USED
    data: list[list[EntityOut]] | list[list[HFEntityOut]]
    elapsed_ms: float


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str
    param: str | None = None


class ErrorBody(BaseModel):
    success: Literal[False] = False
    error: ErrorDetail


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: StrictStr
    text: StrictStr | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: StrictStr
    content: StrictStr | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text: the string, or its text parts joined."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(part.text or "" for part in self.content if part.type == "text")


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, ...: accepted, meaningless for NER
    model: StrictStr
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail


class PoolingRequest(BaseModel):
    """vLLM's pooling request; only `task: "token_classify"` is meaningful for a NER model."""

    model_config = ConfigDict(extra="allow")
    model: StrictStr | None = None
    input: StrictStr | list[StrictStr] | None = None
    messages: list[ChatMessage] | None = None
    task: StrictStr | None = "token_classify"
    encoding_format: StrictStr | None = "float"


class PoolingItem(BaseModel):
    index: int
    object: Literal["pooling"] = "pooling"
    data: list[list[float]] = Field(description="one row per token ([CLS] first, [SEP] last): label probabilities "
                                                "in label-id order")
    entities: list[EntityOut] = Field(description="the CRF-decoded entities (vLLM has no such field)")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int
    completion_tokens: int = 0
    prompt_tokens_details: None = None


class PoolingResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    created: int
    model: str
    model_version: str = MODEL_VERSION
    data: list[PoolingItem]
    usage: Usage
