"""A fast OpenAI-compatible replica on loopback: for the benchmark figures that measure ftserve's
own path without a model's latency in the way, and for fault tests (slow, or counting loads)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StubBackend:
    def __init__(self, port: int = 0, delay_s: float = 0.0) -> None:
        self.loads: list[str] = []
        self.delay_s = delay_s
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/load_lora_adapter"):
                    stub.loads.append(str(body.get("lora_name")))
                    return self._send({"ok": True}, text=True)
                if stub.delay_s:
                    import time

                    time.sleep(stub.delay_s)
                answer = {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model"),
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "ok"},
                        }
                    ],
                }
                self._send(answer)

            def do_GET(self) -> None:  # noqa: N802
                loaded = [
                    {"id": name, "object": "model", "parent": "base"} for name in set(stub.loads)
                ]
                self._send({"object": "list", "data": loaded})

            def _send(self, body: Any, text: bool = False) -> None:
                data = b"Success" if text else json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
