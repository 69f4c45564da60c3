"""Errors as RFC 9457 `application/problem+json`, for every route."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, object]] | None = None
    reason: str | None = Field(None, description="why, for a program: a coupon's refusal")
    redeemed_ms: int | None = Field(None, description="a used coupon: when it was redeemed")
    redeemed_at: str | None = Field(None, description="a used coupon: the venue that did")


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, **extra)  # type: ignore[arg-type]
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_problem(_request: Request, exc: HTTPException) -> JSONResponse:
        from http import HTTPStatus

        return problem(
            exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail), exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_problem(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return problem(422, "Invalid request", "see `errors` for each invalid field", errors=errors)


PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": text}
    for code, text in (
        (401, "No API key, or not a valid one"),
        (403, "The key's role may not do this"),
        (404, "Not found, or not the caller's to see"),
        (409, "Conflicts with what exists"),
        (422, "Invalid request"),
        (503, "A backing service is unavailable"),
    )
}
