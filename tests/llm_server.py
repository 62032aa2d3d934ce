"""A scripted OpenAI-compatible chat server on loopback (stdlib http.server in a thread) for
the LLM tests: it answers each request with the next scripted reply and keeps every request,
so tests assert on the prompts the loop sent."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Script:
    def __init__(self, replies: list[str]):
        self.replies, self.requests = replies, []
        self.lock = threading.Lock()


def serve(script: Script):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with script.lock:
                script.requests.append(body)
                i = len(script.requests) - 1
            content = script.replies[min(i, len(script.replies) - 1)]
            reply = {"id": f"c{i}", "object": "chat.completion", "created": 0,
                     "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}],
                     "usage": {"prompt_tokens": 100, "completion_tokens": 50,
                               "total_tokens": 150}}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def endpoint():
    servers = []

    def start(replies):
        script = Script(replies)
        servers.append(serve(script))
        return script, f"http://127.0.0.1:{servers[-1].server_address[1]}/v1"

    yield start
    for s in servers:
        s.shutdown()
