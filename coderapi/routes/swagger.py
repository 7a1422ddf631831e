"""`/swagger`: the OpenAPI document of the General API and a page listing it (`swagger.enable`).

With the option off every `/swagger` path answers 404 `Swagger documentation is disabled.`, as coderd
does. The document and the page are built once, when the app is created (`answers`).
"""

from __future__ import annotations

import html

from flask import Blueprint, Response, redirect

from coderapi import openapi
from coderapi.config.experiments import EXPERIMENTS_KNOWN
from coderapi.httpapi import APIError, Prebuilt
from coderapi.httpapi.jsonwire import encode
from coderapi.runtime import Answers, runtime

SWAGGER_DISABLED = "Swagger documentation is disabled."
PAGE_CONTENT_TYPE = "text/html; charset=utf-8"

enabled_bp = Blueprint("swagger", __name__, url_prefix="/swagger")
disabled_bp = Blueprint("swagger_disabled", __name__, url_prefix="/swagger")


@enabled_bp.get("")
def swagger_root() -> Response:
    return redirect("/swagger/", code=301)  # type: ignore[return-value]


@enabled_bp.get("/")
@enabled_bp.get("/index.html")
def swagger_page() -> Response:
    return _enabled(runtime().answers.swagger_page)


@enabled_bp.get("/doc.json")
def swagger_doc() -> Response:
    return _enabled(runtime().answers.swagger_doc)


def _enabled(answer: Prebuilt | None) -> Response:
    if answer is None:
        raise RuntimeError("swagger answers missing: the enabled routes are registered without them")
    return answer.response()


def swagger_disabled(**_path: str) -> Response:
    """Aborts: always 404."""
    raise APIError(404, SWAGGER_DISABLED)


# Separate endpoints: rules sharing one endpoint and its defaults would make werkzeug redirect.
disabled_bp.add_url_rule("", "root", swagger_disabled, methods=["GET"])
disabled_bp.add_url_rule("/", "index", swagger_disabled, methods=["GET"])
disabled_bp.add_url_rule("/<path:rest>", "any", swagger_disabled, methods=["GET"])


def page(version: str, form: str) -> bytes:
    """A dependency-free page: every operation with its auth, and the link to the document."""
    rows = "\n".join(
        f"<tr><td><code>{html.escape(method)}</code></td><td><code>{html.escape(openapi.BASE_PATH + path)}</code></td>"
        f"<td>{html.escape(summary)}</td><td>{'session token' if auth else 'none'}</td></tr>"
        for method, path, summary, auth in openapi.operations(form)
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Coder API (General)</title>'
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left}</style></head>"
        f"<body><h1>Coder API: General</h1><p>Version {html.escape(version)}. The OpenAPI 2.0 document: "
        '<a href="/swagger/doc.json">/swagger/doc.json</a>. Authenticated operations take the '
        "<code>Coder-Session-Token</code> header.</p>"
        f"<table><tr><th>method</th><th>path</th><th>operation</th><th>auth</th></tr>\n{rows}\n</table>"
        "</body></html>\n"
    ).encode()


def answers(version: str, form: str) -> tuple[Prebuilt, Prebuilt]:
    """The document and the page, for `Answers.swagger_doc` and `Answers.swagger_page`."""
    doc = Prebuilt.of(encode(openapi.build_spec(version, EXPERIMENTS_KNOWN, form)))
    return doc, Prebuilt.of(page(version, form), PAGE_CONTENT_TYPE)


def blueprint(answers: Answers) -> Blueprint:
    """The enabled routes when the app has the answers (`swagger.enable`), else the disabled ones."""
    return enabled_bp if answers.swagger_doc is not None else disabled_bp
