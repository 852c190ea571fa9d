"""moto in server mode: the AWS APIs of the embedded default."""

from __future__ import annotations

import logging
import os
import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aws_environment(endpoint_url: str) -> dict[str, str]:
    """What points boto3 (powertools' clients included) and the AWS CLI at the local endpoint."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }


class ThreadedMoto:
    """moto's ThreadedMotoServer on a free loopback port, quiet."""

    def __init__(self, port: int | None = None) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> ThreadedMoto:
        self._server.start()
        os.environ.update(aws_environment(self.url))
        return self

    def stop(self) -> None:
        self._server.stop()


def port_in_use_message(port: int, what: str) -> str | None:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            return (
                f"port {port} for {what} is in use: stop what listens there "
                f"(`ss -ltnp 'sport = :{port}'`) or pick another port"
            )
    return None
