"""Protocols existing clients already speak: OpenAI chat completions and models, and vLLM's /pooling."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse

from raner_pool.server.errors import APIError, documented_errors
from raner_pool.server.schemas import (
    ChatCompletionRequest,
    ChatMessage,
    OpenAIErrorBody,
    PoolingRequest,
    PoolingResponse,
)
from raner_pool.server.service import Service, entity_json

router = APIRouter()

OPENAI_ERRORS = documented_errors(
    OpenAIErrorBody,
    {
        400: "a request the protocol allows but this server cannot serve (e.g. base64 pooling output)",
        401: "API keys are configured and the request carries none, or a wrong one (code invalid_api_key)",
        404: "unknown model (code model_not_found; the message lists the known names)",
        413: "the text is longer than the model's max_text_chars, or the body is over the server's limit",
        415: "the body is not sent as Content-Type: application/json",
        422: "malformed JSON, a missing field or a wrong type (param names the field)",
        429: "more requests are waiting for the model than its max_waiting",
        500: "the model raised; the message carries the request id",
        503: "no instance became free within the deadline, or the model is still loading",
    },
)


def user_text(messages: list[ChatMessage]) -> str:
    """The text to analyse: every user message's text, joined by newlines (system prompts are ignored)."""
    texts = [m.text() for m in messages if m.role == "user"]
    if not texts:
        raise APIError(422, "invalid_request", "messages: there is no message with role 'user' to analyse",
                       param="messages")
    return "\n".join(texts)


@router.get("/v1/models", tags=["OpenAI"], responses={401: OPENAI_ERRORS[401]},
            summary="The registry's models, as OpenAI lists models")
def list_models(request: Request) -> dict[str, Any]:
    service: Service = request.app.state.service
    created = request.app.state.started
    return {"object": "list", "data": [
        {"id": spec.name, "object": "model", "created": created, "owned_by": "raner-pool",
         "model_version": slot.version, "types": slot.pool.entity_types if slot.pool is not None else None}
        for spec, slot in service.models.entries()
    ]}


CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **OPENAI_ERRORS,
    200: {"description": "a chat.completion; with stream: true, server-sent events (one chunk, then [DONE])",
          "content": {"application/json": {}, "text/event-stream": {
              "schema": {"type": "object", "properties": {"data": {"type": "string"}}, "required": ["data"]}}}},
}


@router.post("/v1/chat/completions", tags=["OpenAI"], responses=CHAT_RESPONSES,
             summary="Entities of the user messages, as a chat.completion whose content is their JSON")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    service: Service = request.app.state.service
    spec = service.model(request, body.model)
    text = user_text(body.messages)
    prompt_tokens = service.run(request, spec, [text], lambda pool: pool.count_tokens(text))
    [entities] = await service.entities(request, spec, [text])
    content = json.dumps([e.to_dict() for e in entities], ensure_ascii=False)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 0, "total_tokens": prompt_tokens}
    headers = {"X-Prompt-Tokens": str(prompt_tokens)}
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        events = _stream(completion_id, created, spec.name, content, usage if include_usage else None)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    reply = {
        "id": completion_id, "object": "chat.completion", "created": created, "model": spec.name,
        "system_fingerprint": request.state.model_version,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": usage,
    }
    return JSONResponse(reply, headers=headers)


def _stream(completion_id: str, created: int, model: str, content: str, usage: dict[str, int] | None) -> Iterator[str]:
    """The whole answer as one content chunk, a finishing chunk, the usage chunk if asked for, then [DONE]."""
    def chunk(delta: dict[str, str], finish: str | None, **extra: Any) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": content}, None)
    yield chunk({}, "stop")
    if usage is not None:
        final = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [], "usage": usage}
        yield f"data: {json.dumps(final)}\n\n"
    yield "data: [DONE]\n\n"


@router.post("/pooling", tags=["vLLM"], response_model=PoolingResponse, responses=OPENAI_ERRORS,
             summary="vLLM token_classify pooling: label probabilities per token, plus decoded entities")
def pooling(body: PoolingRequest, request: Request,
            x_model: str | None = Header(None, description="the model, when the body names none")) -> dict[str, Any]:
    service: Service = request.app.state.service
    spec = service.model(request, body.model or x_model)
    if body.task not in (None, "token_classify"):
        raise APIError(400, "unsupported_task", f"task {body.task!r} is not served; NER models serve "
                       "'token_classify'", param="task")
    if body.encoding_format not in (None, "float", "json"):
        raise APIError(400, "unsupported_encoding", f"encoding_format {body.encoding_format!r} is not served; "
                       "use 'float'", param="encoding_format")
    if (body.input is None) == (body.messages is None):
        raise APIError(422, "invalid_request", "give exactly one of input and messages", param="input")
    if body.messages is not None:
        texts = [user_text(body.messages)]
    else:
        texts = [body.input] if isinstance(body.input, str) else list(body.input or [])
    results = service.on_engine(request, spec, texts, lambda engine: engine.classify_tokens(texts))
    tokens = sum(len(r.token_probs) for r in results)
    return {
        "id": f"pool-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()), "model": spec.name,
        "model_version": request.state.model_version,
        "data": [{"index": i, "object": "pooling", "data": r.token_probs.tolist(),
                  "entities": [entity_json(spec, e) for e in r.entities]} for i, r in enumerate(results)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0,
                  "prompt_tokens_details": None},
    }
