"""`ftserve local up`: the whole system on one machine, as one supervised process.

moto in server mode (the AWS APIs) with the template's resources; real vLLM on CPU serving the
tiny base; the local API Gateway; the dispatcher that runs the functions for the template's
rules; and the emulation of what AWS does around them (EMF → metrics → alarms → events, pointer
writes → SSM change events, schedules). `.ftserve/local.json` says where everything is.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE_FILE = ROOT / ".ftserve" / "local.json"


class StackError(RuntimeError):
    """A part did not start; the message says which and how to fix it."""


def serve(moto_port: int, api_port: int, vllm_port: int, state_file: Path) -> None:
    from ftserve_local.moto_server import aws_environment, port_in_use_message
    from ftserve_local.vllm_server import VllmServer, base_info

    for name, port in (
        ("moto (AWS APIs)", moto_port),
        ("the API gateway", api_port),
        ("vLLM", vllm_port),
    ):
        problem = port_in_use_message(port, name)
        if problem:
            raise StackError(problem)
    log_dir = state_file.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    adapter_dir = state_file.parent / "adapters"

    def terminate(*_: Any) -> None:
        raise SystemExit(0)  # unwinds through the finally below: vLLM is stopped too

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    os.environ.update(aws_environment(f"http://127.0.0.1:{moto_port}"))
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
    progress(state_file, "starting vLLM (about 40 s on CPU)")
    vllm = VllmServer(vllm_port, adapter_dir, log_dir / "vllm.log").start()
    if vllm.process is not None:
        VLLM_PID.append(vllm.process.pid)
    stop = threading.Event()
    try:
        parts = _start_aws_side(moto_port, api_port, vllm, adapter_dir, stop, state_file, log_dir)
        vllm.wait_ready(
            timeout_s=600, progress=lambda s: progress(state_file, f"waiting for vLLM ({s:.0f} s)")
        )
        base = base_info()
        state = {
            "pid": os.getpid(),
            "region": "us-east-1",
            "aws_endpoint_url": f"http://127.0.0.1:{moto_port}",
            "api_url": f"http://127.0.0.1:{api_port}/v1",
            "api_key": parts["api_key"],
            "bucket": parts["cloud"].name("AdapterBucket"),
            "table": parts["cloud"].name("RegistryTable"),
            "parameter_prefix": parts["cloud"].parameters["ParameterPrefix"],
            "event_log_queue_url": parts["cloud"].event_log_queue_url,
            "vllm_url": vllm.url,
            "base_model_dir": str(vllm.base_dir),
            "base_model": base["base_model"],
            "adapter_dir": str(adapter_dir),
            "logs": str(log_dir),
            "vllm_pid": vllm.process.pid if vllm.process else None,
            "ready": True,
        }
        write_state(state_file, state)
        while not stop.wait(1.0):
            if vllm.process is not None and vllm.process.poll() is not None:
                progress(state_file, "vLLM exited; see " + str(log_dir / "vllm.log"))
    finally:
        stop.set()
        vllm.stop()
        state_file.unlink(missing_ok=True)


VLLM_PID: list[int] = []


def progress(state_file: Path, message: str) -> None:
    write_state(
        state_file,
        {
            "pid": os.getpid(),
            "ready": False,
            "progress": message,
            "vllm_pid": VLLM_PID[0] if VLLM_PID else None,
        },
    )


def write_state(state_file: Path, state: dict[str, Any]) -> None:
    """Atomically: readers never see half a file."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, state_file)


def _start_aws_side(
    moto_port: int,
    api_port: int,
    vllm: Any,
    adapter_dir: Path,
    stop: threading.Event,
    state_file: Path,
    log_dir: Path,
) -> dict[str, Any]:
    from ftserve.aws import client, reset_clients
    from ftserve_local.cloud import provision
    from ftserve_local.dispatcher import Dispatcher
    from ftserve_local.emulation import (
        AlarmEvaluator,
        EmfStdout,
        MetricStore,
        PointerWatcher,
        schedule_seconds,
    )
    from ftserve_local.gateway import Gateway
    from ftserve_local.moto_server import ThreadedMoto
    from ftserve_local.vllm_server import base_info

    progress(state_file, "starting moto and creating the template's resources")
    ThreadedMoto(moto_port).start()
    reset_clients()
    cloud = provision(ROOT / "template.yaml", client, ROOT)
    endpoints = json.dumps({base_info()["base_model_id"]: [vllm.url]})
    for spec in cloud.functions.values():
        spec.environment |= {
            "FTSERVE_VLLM_ENDPOINTS": endpoints,
            "FTSERVE_ADAPTER_DIR": str(adapter_dir),
            "FTSERVE_REPLICA_ADAPTER_DIR": str(adapter_dir),
        }
    store = MetricStore(client)
    sys.stdout = EmfStdout(store, open(log_dir / "functions.log", "a"))
    dispatcher = Dispatcher(cloud, client)
    from ftserve.auth import KeyStore

    api_key, _ = KeyStore(cloud.name("RegistryTable")).create("local", ["*"])
    Gateway(cloud, dispatcher, api_port).start()
    watcher = PointerWatcher(client, cloud.parameters["ParameterPrefix"])
    watcher.poll_once()
    threads = [
        threading.Thread(target=dispatcher.run_forever, daemon=True),
        threading.Thread(target=AlarmEvaluator(client, store).run, args=(stop,), daemon=True),
        threading.Thread(target=watcher.run, args=(stop,), daemon=True),
    ]
    for rule in cloud.rules.values():
        every = schedule_seconds(rule.schedule or "")
        if every:
            threads.append(
                threading.Thread(
                    target=_schedule, args=(dispatcher, rule.function, every, stop), daemon=True
                )
            )
    for thread in threads:
        thread.start()
    stop_dispatcher = threading.Thread(target=lambda: (stop.wait(), dispatcher.stop()), daemon=True)
    stop_dispatcher.start()
    return {"cloud": cloud, "api_key": api_key}


def _schedule(dispatcher: Any, function: str, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        try:
            dispatcher.invoke(
                function, {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
            )
        except Exception:  # a scheduled run that fails is retried next time, as on AWS
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moto-port", type=int, default=4566)
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--vllm-port", type=int, default=8000)
    parser.add_argument("--state-file", type=Path, default=STATE_FILE)
    args = parser.parse_args()
    try:
        serve(args.moto_port, args.api_port, args.vllm_port, args.state_file)
    except Exception as exc:
        write_state(args.state_file, {"pid": os.getpid(), "ready": False, "error": str(exc)})
        print(f"ftserve local: {exc}", file=sys.__stderr__)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
