"""The application factory: routers, error mapping, the inference gateway and the web UI."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app.catalog.endpoints import router as models_router
from app.config import ROOT, get_settings
from app.errors import NotFound, install_error_handlers
from app.files.endpoints import router as files_router
from app.inference.endpoints import router as inference_router
from app.inference.service import Gateway
from app.inference.vllm_client import VLLMClient
from app.jobs.endpoints import router as jobs_router
from app.tenants.endpoints import router as tenants_router

FRONTEND_DIST = ROOT / "frontend" / "dist"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    client = VLLMClient(get_settings().vllm_url)
    app.state.gateway = Gateway(client)
    yield
    await client.aclose()


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
    for router in (tenants_router, files_router, jobs_router, models_router, inference_router):
        app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    _mount_frontend(app, FRONTEND_DIST)
    return app


app = create_app()
