"""PDF documents from HTML templates (WeasyPrint), rendered without the network.

``render_pdf("pdf/statement.html", **context)`` renders the template in the current
language and returns the PDF's bytes. Only the app's own static files can be fetched
(stylesheets, images); anything else a template names fails instead of reaching out.
CJK text needs a CJK font on the machine (Debian: ``fonts-noto-cjk``).
"""
from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlparse

from flask import current_app, render_template

STATIC_PREFIX = "app-static:"


def _static_root() -> Path:
    return Path(current_app.static_folder).resolve()


def _fetcher():
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class LocalFetcher(URLFetcher):
        """``app-static:`` (the app's own files) and ``data:`` URLs; nothing else."""

        def fetch(self, url, headers=None):
            if url.startswith(STATIC_PREFIX):
                root = _static_root()
                path = (root / unquote(urlparse(url).path.lstrip("/"))).resolve()
                if root in path.parents and path.is_file():
                    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(url, path.read_bytes(),
                                              headers={"Content-Type": mime})
            if url.startswith("data:"):
                return super().fetch(url, headers)
            raise ValueError(f"PDF documents may not fetch {url[:80]}")

    return LocalFetcher(allowed_protocols={"data"}, timeout=5)


def render_pdf(template: str, **context) -> bytes:
    from weasyprint import HTML
    html = render_template(template, **context)
    return HTML(string=html, base_url=f"{STATIC_PREFIX}/", url_fetcher=_fetcher()).write_pdf()


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
