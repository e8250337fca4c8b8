"""GET /: the WebUI page (a jinja2 template under webui/) and its compiled, CDN-free static files."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from raner_pool import __version__
from raner_pool.server.errors import APIError

WEBUI_DIR = Path(os.environ.get("RANER_POOL_WEBUI_DIR", Path(__file__).resolve().parents[2] / "webui"))

router = APIRouter(tags=["WebUI"])
templates = Jinja2Templates(directory=str(WEBUI_DIR / "templates"))


@router.get("/", response_class=HTMLResponse, summary="The entity highlighter page")
def index(request: Request) -> HTMLResponse:
    if not (WEBUI_DIR / "templates" / "index.html").is_file():
        raise APIError(404, "webui_missing", f"the WebUI is not installed at {WEBUI_DIR} (set RANER_POOL_WEBUI_DIR)")
    return templates.TemplateResponse(request, "index.html", {"version": __version__, "static_url": "/static"})


def mount_webui(app: FastAPI) -> None:
    """Serve the page at / and its assets at /static, when the webui/ folder is present."""
    app.include_router(router)
    if (WEBUI_DIR / "static").is_dir():
        app.mount("/static", StaticFiles(directory=WEBUI_DIR / "static"), name="static")
