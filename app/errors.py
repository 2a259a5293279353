"""Typed errors that carry their HTTP status, rendered in OpenAI's error body:
`{"error": {"message", "type", "param", "code"}}`."""

import errno
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException


class LoraplexError(Exception):
    status_code = 400
    type = "invalid_request_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequest(LoraplexError):
    pass


class AuthenticationFailed(LoraplexError):
    status_code = 401
    code = "invalid_api_key"


class PermissionDenied(LoraplexError):
    status_code = 403
    type = "permission_error"
    code = "insufficient_scope"


class NotFound(LoraplexError):
    status_code = 404
    code = "not_found"


class Conflict(LoraplexError):
    status_code = 409
    code = "conflict"


class RequestTimeout(LoraplexError):
    status_code = 408
    code = "upload_timeout"


class PayloadTooLarge(LoraplexError):
    status_code = 413
    code = "file_too_large"


class UpstreamUnavailable(LoraplexError):
    status_code = 503
    type = "server_error"
    code = "inference_unavailable"


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _validation_param(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoraplexError)
    async def _loraplex(_: Request, exc: LoraplexError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if exc.status_code == 408:
            # The client stopped sending mid-body: close the connection rather than wait
            # for the rest of a body that may never come.
            headers = {"Connection": "close"}
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "Invalid request"}
        msg = str(first.get("msg", "Invalid value")).removeprefix("Value error, ")
        param = _validation_param(tuple(first.get("loc", ())))
        message = msg + (f" (param: {param})" if param else "")
        return JSONResponse(
            error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400
        )

    @app.exception_handler(OSError)
    async def _os(_: Request, exc: OSError) -> JSONResponse:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return JSONResponse(
                error_body(
                    "The server's storage is full; nothing was stored. Retry later or ask an "
                    "operator to free space.",
                    "server_error",
                    None,
                    "insufficient_storage",
                ),
                status_code=507,
            )
        raise exc  # any other OS error is a server error: logged, answered 500

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the client sent (a NUL character in a name or a query
        # parameter, a number out of range): the request's fault, and nothing was written.
        message = (
            "A value in the request cannot be stored or searched: text must not contain NUL "
            "characters and numbers must be in range."
        )
        return JSONResponse(
            error_body(message, "invalid_request_error", None, "invalid_value"), status_code=400
        )

    @app.exception_handler(UnicodeEncodeError)
    async def _surrogate(_: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # JSON may spell a lone UTF-16 surrogate ("\\ud800"), which no UTF-8 text (the
        # database's, an upstream request's) can hold: the client's text is malformed.
        if exc.encoding.replace("-", "").lower() != "utf8" or "surrogate" not in exc.reason:
            raise exc  # any other encoding failure is the server's: logged, answered 500
        message = "A text value in the request contains a lone UTF-16 surrogate (not valid text)."
        return JSONResponse(
            error_body(message, "invalid_request_error", None, "invalid_value"), status_code=400
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # The database is restarting or unreachable: a temporary condition the client should
        # retry, not a bug. Nothing was committed (the request's transaction rolled back).
        return JSONResponse(
            error_body(
                "The service is temporarily unavailable (its database cannot be reached). "
                "Nothing was changed; retry shortly.",
                "server_error",
                None,
                "service_unavailable",
            ),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            408: "request_timeout",
            413: "request_too_large",
        }.get(exc.status_code)
        message = str(exc.detail)
        if isinstance(exc.__cause__, RecursionError):
            # FastAPI's JSON parsing gave up on a body nested deeper than Python recurses.
            message, code = "The JSON body is nested too deeply.", "json_too_deep"
        return JSONResponse(
            error_body(message, "invalid_request_error", None, code),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body("The server had an error processing your request.", "server_error"),
            status_code=500,
        )
