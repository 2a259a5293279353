"""The eval runner's HTTP clients against a real local HTTP server speaking the OpenAI chat
shape: retries after 429 with Retry-After, a refused row as GatewayError, usage read back,
and the judge asking any OpenAI-compatible endpoint."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from worker.evaluation.gateway import GatewayClient, GatewayError
from worker.evaluation.judge import http_judge


class Handler(BaseHTTPRequestHandler):
    script: list[tuple[int, dict[str, Any]]] = []
    seen: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.seen.append((self.headers.get("Authorization", ""), body))
        status, reply = Handler.script.pop(0)
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def completion(text: str) -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3},
    }


@pytest.fixture
def server() -> Iterator[str]:
    Handler.script, Handler.seen = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_rate_limited_request_is_retried_and_usage_read(server):
    Handler.script = [(429, {"error": {"message": "slow down"}}), (200, completion("blue"))]
    client = GatewayClient(server, "lpx-key")
    answer = client.chat("ft:x", [{"role": "user", "content": "hi"}], max_tokens=8, seed=3)
    assert answer.text == "blue" and answer.prompt_tokens == 11 and answer.completion_tokens == 3
    assert answer.latency_ms > 0
    assert len(Handler.seen) == 2
    auth, body = Handler.seen[-1]
    assert auth == "Bearer lpx-key"
    assert body == {
        "model": "ft:x",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "temperature": 0,
        "seed": 3,
    }


def test_a_refused_request_is_the_rows_error(server):
    Handler.script = [(400, {"error": {"message": "prompt is too long"}})]
    with pytest.raises(GatewayError, match="prompt is too long"):
        GatewayClient(server, "k").chat("m", [{"role": "user", "content": "x"}], 8, 0)


def test_the_judge_asks_an_openai_compatible_endpoint(server):
    Handler.script = [(200, completion("PASS"))]
    complete = http_judge(server + "/v1", "judge-model", "judge-key")
    assert complete([{"role": "user", "content": "grade"}]) == "PASS"
    auth, body = Handler.seen[0]
    assert auth == "Bearer judge-key" and body["model"] == "judge-model"
    assert body["temperature"] == 0
