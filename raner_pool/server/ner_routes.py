"""The design-card REST routes: POST /ner and POST /ner/batch."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from raner_pool.entities import Entity, confident
from raner_pool.model_specs import ModelSpec
from raner_pool.server.errors import documented_errors
from raner_pool.server.fast_json import FastJSONResponse
from raner_pool.server.schemas import BatchNERRequest, BatchNERResponse, ErrorBody, NERRequest, NERResponse
from raner_pool.server.service import Service, entity_json, hf_entity_json
from raner_pool.timezones import zone_name

router = APIRouter(tags=["NER"])

REST_ERRORS = documented_errors(
    ErrorBody,
    {
        401: "API keys are configured and the request carries none, or a wrong one (Authorization: Bearer KEY)",
        404: "unknown model (the message lists the known names)",
        413: "a text is longer than the model's max_text_chars, or the body is over the server's limit",
        415: "the body is not sent as Content-Type: application/json",
        422: "malformed JSON, a missing field or a wrong type (the field is named)",
        429: "more requests are waiting for the model than its max_waiting",
        500: "the model raised; the body carries the request id, also in the log",
        503: "no instance became free within the deadline, or the model is still loading (see Retry-After)",
    },
)

Format = Literal["raner", "hf"]
FORMAT_QUERY = Query("raner", description="'hf' answers in transformers' aggregated pipeline shape")


def _render(spec: ModelSpec, entities: list[Entity], output: Format) -> list[dict[str, Any]]:
    if output == "hf":
        return [hf_entity_json(e) for e in entities]
    return [entity_json(spec, e) for e in entities]


@router.post("/ner", response_model=NERResponse, responses=REST_ERRORS, summary="Entities of one text")
async def ner(body: NERRequest, request: Request, format: Format = FORMAT_QUERY) -> FastJSONResponse:
    service: Service = request.app.state.service
    began = time.perf_counter()
    spec = service.model(request, body.model)
    types = service.check_types(spec, body.types)
    reference = service.reference(spec, body.reference_time, body.timezone)
    [entities] = confident(await service.entities(request, spec, [body.text], reference, types), body.min_prob)
    return FastJSONResponse({"success": True, "model": spec.name, "model_version": request.state.model_version,
                             "reference_time": reference.isoformat(), "timezone": zone_name(reference),
                             "data": _render(spec, entities, format),
                             "elapsed_ms": round((time.perf_counter() - began) * 1000, 2)})


@router.post("/ner/batch", response_model=BatchNERResponse, responses=REST_ERRORS,
             summary="Entities of many texts, one list per text in order")
async def ner_batch(body: BatchNERRequest, request: Request, format: Format = FORMAT_QUERY) -> FastJSONResponse:
    service: Service = request.app.state.service
    began = time.perf_counter()
    spec = service.model(request, body.model)
    types = service.check_types(spec, body.types)
    reference = service.reference(spec, body.reference_time, body.timezone)
    results = confident(await service.entities(request, spec, body.texts, reference, types), body.min_prob)
    data = [_render(spec, found, format) for found in results]
    return FastJSONResponse({"success": True, "model": spec.name, "model_version": request.state.model_version,
                             "reference_time": reference.isoformat(), "timezone": zone_name(reference),
                             "data": data,
                             "elapsed_ms": round((time.perf_counter() - began) * 1000, 2)})
