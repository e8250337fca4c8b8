"""Errors the API answers with: one exception type, rendered in the REST or the OpenAI shape by route."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

OPENAI_ERROR_TYPES = {
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    400: "invalid_request_error",
    429: "rate_limit_exceeded",
    503: "server_error",
    500: "server_error",
}


def documented_errors(body: type, descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` for the error statuses a route can answer, each with its body model and meaning."""
    return {status: {"model": body, "description": text} for status, text in descriptions.items()}


class APIError(Exception):
    """An answer other than 200: HTTP status, a stable machine code, a message for people, the field at fault."""

    def __init__(
        self, status: int, code: str, message: str, *, param: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.retry_after = retry_after


def speaks_openai(request: Request) -> bool:
    """/v1/* and vLLM's /pooling answer errors with OpenAI's error object, as their clients expect."""
    path = request.url.path
    return path.startswith("/v1/") or path == "/pooling"


def error_response(request: Request, error: APIError) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "")
    headers = {"X-Request-ID": request_id}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    body: dict[str, Any]
    if speaks_openai(request):
        message = error.message if error.status != 500 else f"{error.message} (request id {request_id})"
        body = {"error": {"message": message, "type": OPENAI_ERROR_TYPES.get(error.status, "invalid_request_error"),
                          "param": error.param, "code": error.code}}
    else:
        body = {"success": False, "error": {"code": error.code, "message": error.message, "request_id": request_id}}
        if error.param is not None:
            body["error"]["param"] = error.param
    return JSONResponse(body, status_code=error.status, headers=headers)


def validation_error(error: RequestValidationError) -> APIError:
    """FastAPI's validation failure as one 422 naming the first bad field, e.g. `text: Field required`."""
    problems = []
    first_field: str | None = None
    for problem in error.errors():
        if problem.get("type") == "json_invalid":
            at = problem.get("loc", ("body", "?"))[-1]
            first_field = first_field or "body"
            problems.append(f"body: not valid JSON (at character {at}): {problem.get('ctx', {}).get('error', '')}")
            continue
        location = [str(part) for part in problem.get("loc", ()) if part != "body"]
        field = ".".join(location) or "body"
        first_field = first_field or field
        problems.append(f"{field}: {problem.get('msg', '')}")
    return APIError(422, "invalid_request", "; ".join(problems) or "invalid request", param=first_field)
