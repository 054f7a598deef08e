"""The customer's web pages: the complaint form with "Call me now", the locked-out way in (a
one-time code instead of a login), and the case status page.

Server-rendered HTML with a little vanilla JavaScript that calls the public HTTP API, so the pages
add no business rule of their own: what the API refuses, the page shows.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from contracts.intake import CATEGORY_LABELS, short_reference

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

# Only our own scripts and styles; the status page's URL carries the case's access token, so no
# request the page makes (scripts, styles, links followed) may send it on as a Referer.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@router.get("/", response_class=HTMLResponse)
async def complaint_page(request: Request, without_code: bool = False) -> HTMLResponse:
    """``?without_code=1``: the locked-out page's way out, when the code cannot arrive. The filing
    is an unverified one about a locked account, which routing's rules give to a human for a
    manual check (``security_unverified``), never to anyone who acts on the account at once."""
    categories = [(category.value, label) for category, label in CATEGORY_LABELS.items()]
    return templates.TemplateResponse(
        request, "complaint.html", {"categories": categories, "without_code": without_code}, headers=HEADERS
    )


@router.get("/locked-out", response_class=HTMLResponse)
async def locked_out_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "locked_out.html", {}, headers=HEADERS)


@router.get("/complaints/{complaint_id}", response_class=HTMLResponse)
async def status_page(request: Request, complaint_id: str) -> HTMLResponse:
    # The token stays in the query string for the browser's script only; never cache the page.
    return templates.TemplateResponse(
        request,
        "status.html",
        {"complaint_id": complaint_id, "reference": short_reference(complaint_id)},
        headers={**HEADERS, "Cache-Control": "no-store"},
    )


def mount_static(app: FastAPI) -> None:
    """Serve the pages' scripts and stylesheet under ``/static``."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="intake-static")
