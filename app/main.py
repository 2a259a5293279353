"""The application factory: routers, error mapping, the inference gateway and the web UI."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app.adapters.endpoints import router as adapters_router
from app.aliases.endpoints import router as aliases_router
from app.audit.endpoints import router as audit_router
from app.auth.endpoints import router as api_keys_router
from app.catalog.endpoints import router as models_router
from app.config import ROOT, get_settings
from app.errors import NotFound, install_error_handlers
from app.evals.endpoints import router as evals_router
from app.feedback.completions import CompletionLog
from app.feedback.endpoints import router as feedback_router
from app.files.endpoints import router as files_router
from app.inference.endpoints import router as inference_router
from app.inference.replicas import ReplicaPool
from app.inference.service import Gateway
from app.jobs.endpoints import router as jobs_router
from app.kit.body_limit import JsonBodyLimit
from app.kit.flusher import PeriodicFlusher
from app.kit.metrics import MetricsMiddleware
from app.kit.redact import install_redaction
from app.ratelimits.endpoints import router as ratelimits_router
from app.ratelimits.service import RateLimited, make_limiter
from app.tenants.endpoints import router as tenants_router
from app.uploads.endpoints import router as uploads_router
from app.usage.endpoints import router as usage_router
from app.usage.recorder import UsageRecorder

FRONTEND_DIST = ROOT / "frontend" / "dist"
API_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    install_redaction()  # uvicorn has configured its log handlers by now
    pool = ReplicaPool(
        settings.vllm_urls,
        capacity=settings.vllm_max_loras,
        spill_inflight=settings.vllm_spill_inflight,
        health_interval=settings.vllm_health_interval,
    )
    limiter = make_limiter(settings.redis_url)
    usage, completions = UsageRecorder(), CompletionLog()
    flusher = PeriodicFlusher(settings.usage_flush_interval, [completions.flush, usage.flush])
    app.state.gateway = Gateway(pool, limiter, sinks=[usage.add, completions.add])
    app.state.flusher = flusher
    pool.start()
    flusher.start()
    try:
        yield
    finally:
        await flusher.stop()
        await pool.aclose()
        await limiter.aclose()


def _mount_frontend(app: FastAPI, dist: Path) -> None:
    if not (dist / "index.html").exists():
        return
    app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")

    @app.get("/{path:path}", include_in_schema=False)
    def spa(path: str) -> FileResponse:
        if path == "v1" or path.startswith("v1/"):
            raise NotFound(f"Unknown API route: /{path}", code="unknown_url")
        candidate = (dist / path).resolve()
        if path and candidate.is_relative_to(dist.resolve()) and candidate.is_file():
            return FileResponse(candidate)
        return FileResponse(dist / "index.html")


def create_app() -> FastAPI:
    app = FastAPI(title="Loraplex", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers())

    for router in (
        tenants_router,
        files_router,
        uploads_router,
        jobs_router,
        models_router,
        inference_router,
        adapters_router,
        aliases_router,
        usage_router,
        feedback_router,
        ratelimits_router,
        audit_router,
        api_keys_router,
        evals_router,
    ):
        app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    # Any other /v1 route is a 404 whatever the method — vLLM's admin routes
    # (/v1/load_lora_adapter, …) included: the gateway proxies only the inference routes.
    # Keep this after every router: routes added later would be shadowed by it.
    @app.api_route("/v1/{path:path}", methods=API_METHODS, include_in_schema=False)
    def unknown_api_route(path: str) -> None:
        raise NotFound(f"Unknown API route: /v1/{path}", code="unknown_url")

    app.add_middleware(JsonBodyLimit)
    app.add_middleware(MetricsMiddleware)
    _mount_frontend(app, FRONTEND_DIST)
    return app


app = create_app()
