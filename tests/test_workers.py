"""coderapi.workers: gunicorn's protocol-level refusals in the error envelope."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from gunicorn.http import errors

from coderapi import serving, workers
from coderapi.config.settings import Settings
from coderapi.httpapi.errors import BAD_REQUEST, FORBIDDEN, INTERNAL_SERVER_ERROR
from tests.conftest import MakeValues, StartServer, assert_envelope, live_server, raw_http


@pytest.mark.parametrize(
    ("exc", "status", "message"),
    [
        (errors.InvalidRequestLine("GARBAGE"), 400, BAD_REQUEST),
        (errors.InvalidRequestMethod("G\x00T"), 400, BAD_REQUEST),
        (errors.InvalidHTTPVersion("HTTP/9.9"), 400, BAD_REQUEST),
        (errors.InvalidHeaderName("Bad Name"), 400, BAD_REQUEST),
        (errors.InvalidHeader("X-A"), 400, BAD_REQUEST),
        (errors.InvalidChunkSize(b"zz"), 400, BAD_REQUEST),
        (errors.ChunkMissingTerminator(b"XX"), 400, BAD_REQUEST),
        (errors.NoMoreData(b""), 400, BAD_REQUEST),
        (errors.LimitRequestLine(9000, 8190), 414, workers.URI_TOO_LONG),
        (errors.LimitRequestHeaders("too many"), 431, workers.HEADERS_TOO_LARGE),
        (errors.UnsupportedTransferCoding("gzip"), 501, workers.NOT_IMPLEMENTED),
        (errors.ForbiddenProxyRequest("10.0.0.1"), 403, FORBIDDEN),
    ],
)
def test_refusals(exc: BaseException, status: int, message: str) -> None:
    got, reason, body = workers.refusal(exc)
    assert (got, body["message"]) == (status, message)
    assert body["detail"] == str(exc)
    assert reason


@pytest.mark.parametrize(
    "exc",
    [errors.InvalidResponseHeader("X-Bad\r\n", "v"), errors.ConfigurationProblem("oops"), RuntimeError("a bug")],
)
def test_our_own_failures_are_500_without_details(exc: BaseException) -> None:
    assert workers.refusal(exc) == (500, "Internal Server Error", {"message": INTERNAL_SERVER_ERROR})


def test_response_bytes() -> None:
    data = workers.response_bytes(400, "Bad Request", {"message": BAD_REQUEST, "detail": "<x> & é"})
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Content-Length"] == str(len(body))
    assert headers["Connection"] == "close"
    assert body == '{"message":"Bad request.","detail":"\\u003cx\\u003e \\u0026 é"}\n'.encode()
    assert_envelope(400, headers, body, BAD_REQUEST)


class FakeLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warning(self, msg: str, *args: Any) -> None:
        self.lines.append(("warning", msg % args))

    def exception(self, msg: str, *args: Any, **_kw: Any) -> None:
        self.lines.append(("exception", msg % args))

    def debug(self, msg: str, *args: Any) -> None:
        self.lines.append(("debug", msg % args))


class Handler(workers.EnvelopeErrors):
    def __init__(self) -> None:
        self.log = FakeLog()


def test_handle_error_writes_the_envelope() -> None:
    handler = Handler()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        handler.handle_error(None, ours, ("203.0.113.9", 5555), errors.InvalidHTTPVersion("HTTP/9.9"))
        answer = theirs.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {
        "message": BAD_REQUEST,
        "detail": "Invalid HTTP Version: 'HTTP/9.9'",
    }
    assert handler.log.lines == [("warning", "Invalid request from ip=203.0.113.9: Invalid HTTP Version: 'HTTP/9.9'")]


def test_handle_error_on_a_closed_socket_is_quiet() -> None:
    handler = Handler()
    ours, theirs = socket.socketpair()
    theirs.close()
    with ours:
        ours.close()
        handler.handle_error(None, ours, None, RuntimeError("boom"))
    assert [level for level, _ in handler.log.lines] == ["exception", "debug"]


def test_serving_uses_the_envelope_workers(make_values: MakeValues, tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path)
    opts = serving.gunicorn_options(make_values(), settings)
    assert opts["worker_class"] == "coderapi.workers.SyncWorker"
    threaded = Settings(data_dir=tmp_path, threads=4)
    assert serving.gunicorn_options(make_values(), threaded)["worker_class"] == "coderapi.workers.ThreadWorker"


@pytest.mark.slow
def test_unknown_transfer_coding_is_501_in_the_envelope(start_server: StartServer) -> None:
    # RFC 9112 §6.1 (and Go's net/http under coderd): a transfer coding the server cannot decode is 501.
    server = start_server(workers=1)
    answer = raw_http(server.port, b"POST /api/v2/csp/reports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br\r\n\r\nxxxx")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501 ")
    headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
    assert_envelope(501, headers, body, workers.NOT_IMPLEMENTED)
    assert server.alive()


TOKEN = "AbCdEfGhIj-0123456789abcdefghijKL"


@pytest.mark.parametrize(
    "exc",
    [
        errors.InvalidRequestLine(f"GET /api/v2/users/me?coder_session_token={TOKEN}\x01 HTTP/1.1"),
        errors.InvalidRequestLine("GET /?a=1&coder_session_token=not-token-shaped\x01&b=2 HTTP/1.1"),
        errors.InvalidRequestLine("GET /?Access_Token=opaque-secret\x7f HTTP/1.1"),
        errors.InvalidHeader(f"Coder-Session-Token {TOKEN}"),
        errors.InvalidHeaderName(f"Coder-Session-Token {TOKEN}"),
    ],
)
def test_refusals_never_carry_a_credential(exc: BaseException) -> None:
    handler = Handler()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        handler.handle_error(None, ours, ("203.0.113.9", 5555), exc)
        answer = theirs.recv(65536)
    detail = json.loads(answer.partition(b"\r\n\r\n")[2])["detail"]
    for text in (detail, *(line for _, line in handler.log.lines)):
        assert TOKEN not in text and "not-token-shaped" not in text and "opaque-secret" not in text, text
        assert "[REDACTED]" in text, text


@pytest.mark.slow
def test_a_token_in_a_refused_request_never_reaches_the_server_log(tmp_path: Any) -> None:
    with live_server(tmp_path / "node", workers=1) as server:
        token = server.owner_token
        for data in (
            f"GET /api/v2/users/me?coder_session_token={token}\x01 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            f"GET /api/v2/users/me HTTP/1.1\r\nHost: x\r\nCoder-Session-Token {token}\r\n\r\n".encode(),
        ):
            answer = raw_http(server.port, data)
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
            assert token.encode() not in answer
        output = server.process.output()
    assert "Invalid request from ip=" in output
    assert token not in output and token.split("-")[1] not in output


def test_the_uri_of_a_failed_request_is_logged_without_credentials() -> None:
    class Req:
        uri = f"/api/v2/users/me?coder_session_token={TOKEN}&x=1"

    handler = Handler()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        handler.handle_error(Req(), ours, None, RuntimeError("a bug"))
    assert handler.log.lines[0] == (
        "exception",
        "Error handling request /api/v2/users/me?coder_session_token=[REDACTED]&x=1",
    )
