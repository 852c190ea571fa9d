"""The operator CLI: `ftserve versions`, `ftserve show`, … (tables by default, --json for scripts)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="ftserve: versioned fine-tuned models behind an OpenAI-compatible API.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)
LOCAL_STATE = Path(".ftserve/local.json")

EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        envvar="AWS_ENDPOINT_URL",
        help="Any AWS-compatible endpoint (moto, LocalStack).",
    ),
]
TableOpt = Annotated[
    str | None, typer.Option("--table", envvar="FTSERVE_TABLE_NAME", help="Registry table name.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _local_state() -> dict[str, Any]:
    try:
        return dict(json.loads(LOCAL_STATE.read_text()))
    except (OSError, ValueError):
        return {}


def _connect(endpoint_url: str | None, table: str | None) -> Any:
    """Point boto3 at the endpoint and open the registry (falls back to .ftserve/local.json)."""
    from ftserve.aws import reset_clients
    from ftserve.registry import Registry

    local = _local_state()
    endpoint_url = endpoint_url or local.get("aws_endpoint_url")
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
        if local:
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                os.environ.setdefault(key, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", local.get("region", "us-east-1"))
    reset_clients()
    return Registry(table or local.get("table") or "ftserve-registry")


keys_app = typer.Typer(
    help="API keys: each is scoped to the models it may call.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


def _keystore(endpoint_url: str | None, table: str | None) -> Any:
    from ftserve.auth import KeyStore

    registry = _connect(endpoint_url, table)
    return KeyStore(registry.table_name)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    models: Annotated[
        list[str], typer.Option("--model", help="Model name or family (acme-*); repeat.")
    ],
    endpoint_url: EndpointOpt = None,
    table: TableOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; it is shown once and stored only as a hash."""
    import re

    for scope in models:
        if (
            not re.fullmatch(r"[a-z0-9*][a-z0-9*-]{0,62}", scope)
            or scope == "*"
            and len(models) > 1
        ):
            _fail(f"scope {scope!r} must be a model name or a family like 'acme-*'")
    key, record = _keystore(endpoint_url, table).create(name, models)
    if as_json:
        print(json.dumps({"api_key": key, **record.model_dump()}, indent=2))
        return
    console.print(f"[bold]{key}[/bold]")
    console.print(
        f"key id {record.key_id} for {name}, models: {', '.join(models)} "
        "[dim](store it now: it is not shown again)[/dim]"
    )


@keys_app.command("list")
def keys_list(
    endpoint_url: EndpointOpt = None, table: TableOpt = None, as_json: JsonOpt = False
) -> None:
    """List keys (never the keys themselves)."""
    keys = _keystore(endpoint_url, table).list()
    if as_json:
        print(json.dumps([k.model_dump() for k in keys], indent=2))
        return
    out = Table(title="API keys")
    for column in ("key id", "name", "models", "created", "revoked"):
        out.add_column(column)
    for k in keys:
        out.add_row(k.key_id, k.name, ", ".join(k.scopes), k.created_at, "yes" if k.revoked else "")
    console.print(out)


@keys_app.command("revoke")
def keys_revoke(key_id: str, endpoint_url: EndpointOpt = None, table: TableOpt = None) -> None:
    """Revoke a key (warm containers stop accepting it within a minute)."""
    try:
        _keystore(endpoint_url, table).revoke(key_id)
    except Exception as exc:
        from ftserve.aws import error_code

        if error_code(exc) == "ConditionalCheckFailedException":
            _fail(f"no key with id {key_id!r}")
        raise
    console.print(f"revoked {key_id}")


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(1)


def _check_names(model: str, version: str | None = None) -> None:
    from ftserve.manifest import check_model_name, check_version

    try:
        check_model_name(model)
        if version is not None:
            check_version(version)
    except ValueError as exc:
        _fail(str(exc))


@app.command()
def versions(
    model: str, endpoint_url: EndpointOpt = None, table: TableOpt = None, as_json: JsonOpt = False
) -> None:
    """List every registered version of a model, oldest first."""
    _check_names(model)
    records = _connect(endpoint_url, table).list_versions(model)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return
    if not records:
        _fail(f"no versions registered for {model!r}")
    out = Table(title=f"{model}: versions")
    for column in ("version", "status", "base_model", "backend", "registered_at", "sha256", "eval"):
        out.add_column(column)
    for r in records:
        out.add_row(
            r.version,
            r.status,
            r.manifest.base_model,
            r.manifest.backend,
            r.registered_at,
            r.content_sha256[:12],
            ", ".join(f"{k}={v}" for k, v in r.manifest.eval.items()),
        )
    console.print(out)


@app.command()
def show(
    model: str,
    version: str,
    endpoint_url: EndpointOpt = None,
    table: TableOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one version's whole lineage."""
    from ftserve.errors import VersionNotFound

    _check_names(model, version)
    try:
        record = _connect(endpoint_url, table).get_version(model, version)
    except VersionNotFound as exc:
        _fail(str(exc))
        return
    if as_json:
        print(json.dumps(record.model_dump(mode="json"), indent=2))
        return
    out = Table(title=record.name, show_header=False)
    out.add_column("field", style="bold")
    out.add_column("value")
    data = record.model_dump(mode="json", exclude_none=True)
    for key, value in {**data.pop("manifest"), **data}.items():
        out.add_row(key, value if isinstance(value, str) else json.dumps(value))
    console.print(out)


@app.command()
def merge(
    model: str,
    version: str,
    base_dir: Annotated[Path, typer.Option(help="Local copy of the pinned base model.")],
    python: Annotated[
        str, typer.Option(help="A Python with torch and peft.")
    ] = ".venv-vllm/bin/python",
    endpoint_url: EndpointOpt = None,
    table: TableOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge a version into its base (one tune, high volume); written to S3 and recorded."""
    from ftserve.aws import client
    from ftserve.errors import FtserveError, VersionNotFound
    from ftserve.merge import merge_version

    _check_names(model, version)
    registry = _connect(endpoint_url, table)
    try:
        record = registry.get_version(model, version)
        merged = merge_version(registry, record, client("s3"), base_dir, python, _actor())
    except (VersionNotFound, FtserveError) as exc:
        _fail(str(exc))
        return
    if as_json:
        print(merged.model_dump_json(indent=2))
        return
    console.print(f"merged {record.name} into {record.manifest.base_model}: {merged.uri}")
    for name, sha in merged.files.items():
        console.print(f"  {name}  sha256:{sha[:16]}…")


PrefixOpt = Annotated[
    str | None,
    typer.Option(
        "--parameter-prefix", envvar="FTSERVE_PARAMETER_PREFIX", help="SSM path of the pointers."
    ),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the history).")]


def _releases(endpoint_url: str | None, table: str | None, prefix: str | None) -> Any:
    from ftserve.aws import client
    from ftserve.release import Releases

    registry = _connect(endpoint_url, table)
    local = _local_state()
    return Releases(
        registry,
        client("ssm"),
        prefix or local.get("parameter_prefix") or "/ftserve/models",
        local.get("event_bus", "default"),
    )


def _refused(action: Any) -> Any:
    from ftserve.release import ReleaseRefused

    try:
        return action()
    except (ReleaseRefused, ValueError) as exc:
        _fail(str(exc))


@app.command()
def promote(
    model: str,
    version: str,
    canary: Annotated[
        int | None, typer.Option(help="Send this % of traffic to the version first.")
    ] = None,
    bake: Annotated[
        str, typer.Option(help="How long a canary bakes before full promotion.")
    ] = "30m",
    force: Annotated[bool, typer.Option(help="Promote despite a failing eval gate.")] = False,
    reason: ReasonOpt = "",
    endpoint_url: EndpointOpt = None,
    table: TableOpt = None,
    parameter_prefix: PrefixOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a version the active one (or a canary), checked against the model's eval gate."""
    from ftserve.release import parse_duration

    _check_names(model, version)
    releases = _releases(endpoint_url, table, parameter_prefix)
    bake_time = _refused(lambda: parse_duration(bake))
    details = _refused(
        lambda: releases.promote(model, version, _actor(), reason, force, canary, bake_time)
    )
    if as_json:
        print(json.dumps(details, indent=2))
        return
    what = f"canary {canary}% (bakes until {details['bake_until']})" if canary else "active"
    console.print(f"{model}: {details['from'] or '(none)'} → [bold]{details['to']}[/bold] ({what})")
    if details["forced"]:
        console.print(
            f"[yellow]forced past the gate:[/yellow] {'; '.join(details['gate_failures'])}"
        )


@app.command()
def rollback(
    model: str,
    to: Annotated[
        str | None,
        typer.Option("--to", help="The version to go back to (default: the previous one)."),
    ] = None,
    reason: ReasonOpt = "",
    endpoint_url: EndpointOpt = None,
    table: TableOpt = None,
    parameter_prefix: PrefixOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Go back to the previous active version (or --to vN) in one parameter write."""
    _check_names(model, to)
    releases = _releases(endpoint_url, table, parameter_prefix)
    details = _refused(lambda: releases.rollback(model, _actor(), to, reason))
    if as_json:
        print(json.dumps(details, indent=2))
        return
    console.print(
        f"{model}: {details['from'] or '(none)'} → [bold]{details['to']}[/bold] (rolled back)"
    )


gate_app = typer.Typer(help="Per-model eval gates that promotion checks.", no_args_is_help=True)
app.add_typer(gate_app, name="gate")


@gate_app.command("set")
def gate_set(
    model: str,
    rules: Annotated[list[str], typer.Argument(help="e.g. accuracy>=0.9 toxicity<=0.05")],
    endpoint_url: EndpointOpt = None,
    table: TableOpt = None,
) -> None:
    """Set the thresholds a version's manifest eval must meet to be promoted."""
    _check_names(model)
    releases = _releases(endpoint_url, table, None)
    parsed = _refused(lambda: releases.set_gate(model, rules, _actor()))
    console.print(f"{model} gate: {', '.join(str(r) for r in parsed)}")


@gate_app.command("show")
def gate_show(model: str, endpoint_url: EndpointOpt = None, table: TableOpt = None) -> None:
    _check_names(model)
    rules = _releases(endpoint_url, table, None).gate(model)
    console.print(f"{model} gate: {', '.join(str(r) for r in rules) or '(none)'}")


@app.command()
def history(
    model: str,
    endpoint_url: EndpointOpt = None,
    table: TableOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every change to a model, in order: registrations, statuses, promotions, rollbacks."""
    _check_names(model)
    entries = _connect(endpoint_url, table).history(model)
    if as_json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return
    if not entries:
        _fail(f"no history for {model!r}")
    out = Table(title=f"{model}: history")
    for column in ("when", "action", "version", "from → to", "actor", "reason"):
        out.add_column(column)
    for e in entries:
        move = f"{e.details.get('from') or '-'} → {e.details['to']}" if "to" in e.details else ""
        out.add_row(e.at[:19].replace("T", " "), e.action, e.version or "", move, e.actor, e.reason)
    console.print(out)


@app.command()
def status(
    model: str,
    endpoint_url: EndpointOpt = None,
    table: TableOpt = None,
    parameter_prefix: PrefixOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The active version or split, what replicas have loaded, alarm states, last changes."""
    from ftserve.alarms import alarm_states
    from ftserve.aws import client

    _check_names(model)
    releases = _releases(endpoint_url, table, parameter_prefix)
    versions = releases.registry.list_versions(model)
    if not versions:
        _fail(f"no versions registered for {model!r}")
    pointer = releases.pointer_value(model)
    alarms = {v.version: alarm_states(client("cloudwatch"), model, v.version) for v in versions}
    loaded = _loaded_on_replicas(versions)
    changes = releases.pointer_changes(model)[-5:]
    report = {
        "model": model,
        "pointer": pointer,
        "canary": releases.registry.get_model_setting(model, "canary"),
        "versions": [
            {
                "version": v.version,
                "status": v.status,
                "status_reason": v.status_reason,
                "loaded_on": loaded.get(v.name, []),
                "alarms": alarms[v.version],
            }
            for v in versions
        ],
        "last_changes": [c.model_dump(mode="json") for c in changes],
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(
        f"[bold]{model}[/bold] active: [bold]{pointer or '(no pointer)'}[/bold]"
        + (f"  canary bakes until {report['canary']['bake_until']}" if report["canary"] else "")
    )
    out = Table()
    for column in ("version", "status", "loaded on", "alarms"):
        out.add_column(column)
    for v in report["versions"]:
        states = ", ".join(f"{k.rsplit('-', 1)[-1]}={s}" for k, s in sorted(v["alarms"].items()))
        out.add_row(v["version"], v["status"], ", ".join(v["loaded_on"]), states)
    console.print(out)
    for c in changes:
        console.print(
            f"  {c.at}  {c.action}  {c.details.get('from')} → {c.details.get('to')}  "
            f"by {c.actor}  {c.reason}"
        )


def _loaded_on_replicas(versions: list[Any]) -> dict[str, list[str]]:
    from ftserve.backends.vllm import VllmBackend
    from ftserve.config import get_settings
    from ftserve.errors import BackendError
    from ftserve.serving import Serving

    serving = Serving(get_settings())
    loaded: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    for record in versions:
        backend = serving.backend_for(record)
        if not isinstance(backend, VllmBackend):
            continue
        for replica in backend.replicas:
            if replica.url not in seen:
                try:
                    seen[replica.url] = replica.loaded()
                except BackendError:
                    seen[replica.url] = set()
            if record.name in seen[replica.url]:
                loaded.setdefault(record.name, []).append(replica.url)
    return loaded


local_app = typer.Typer(
    help="The embedded default: the whole system on this machine (moto, vLLM on CPU).",
    no_args_is_help=True,
)
app.add_typer(local_app, name="local")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@local_app.command("up")
def local_up(
    detach: Annotated[
        bool, typer.Option("--detach", help="Return once everything is ready.")
    ] = False,
    moto_port: int = 4566,
    api_port: int = 8080,
    vllm_port: int = 8000,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 600,
) -> None:
    """Start moto, the template's resources, vLLM on CPU, the API gateway and the dispatcher."""
    import subprocess
    import sys
    import time

    state = _local_state()
    if state and _pid_alive(state.get("pid")):
        _fail(
            f"the local stack is already running (pid {state['pid']}); `ftserve local down` stops it"
        )
    LOCAL_STATE.unlink(missing_ok=True)
    LOCAL_STATE.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "ftserve_local.stack",
        "--moto-port",
        str(moto_port),
        "--api-port",
        str(api_port),
        "--vllm-port",
        str(vllm_port),
        "--state-file",
        str(LOCAL_STATE.resolve()),
    ]
    if not detach:
        raise typer.Exit(subprocess.call(command))
    log_path = LOCAL_STATE.parent / "stack.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    started = time.monotonic()
    with err.status("starting the local stack") as spinner:
        while True:
            state = _local_state() if LOCAL_STATE.exists() else {}
            if state.get("ready"):
                break
            if state.get("error") or process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-1500:]
                _fail(f"{state.get('error') or 'the local stack exited'}\n{tail}")
            if time.monotonic() - started > timeout:
                process.terminate()
                _fail(f"not ready after {timeout:.0f} s; see {log_path}")
            spinner.update(
                f"{state.get('progress', 'starting')} ({time.monotonic() - started:.0f} s)"
            )
            time.sleep(0.3)
    out = Table(
        title=f"ftserve local stack is up ({time.monotonic() - started:.0f} s)", show_header=False
    )
    for key in (
        "api_url",
        "api_key",
        "aws_endpoint_url",
        "bucket",
        "table",
        "parameter_prefix",
        "vllm_url",
        "base_model",
    ):
        out.add_row(key, str(state[key]))
    console.print(out)
    console.print(f"state in {LOCAL_STATE}; stop with `ftserve local down`")


@local_app.command("status")
def local_status() -> None:
    """Exit 0 only while every part answers; say which part does not."""
    import urllib.error
    import urllib.request

    state = _local_state()
    if not state:
        _fail("the local stack is not running (`ftserve local up --detach` starts it)")
    checks: dict[str, bool] = {"supervisor": _pid_alive(state.get("pid"))}

    def answers(url: str, expect: tuple[int, ...]) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.status in expect
        except urllib.error.HTTPError as exc:
            return exc.code in expect
        except OSError:
            return False

    if state.get("ready"):
        checks["moto (AWS APIs)"] = answers(
            state["aws_endpoint_url"] + "/moto-api/data.json", (200,)
        )
        checks["API gateway"] = answers(state["api_url"] + "/models", (401,))
        checks["vLLM"] = answers(state["vllm_url"] + "/health", (200,))
    else:
        checks["ready"] = False
    for part, ok in checks.items():
        console.print(f"{'[green]ok[/green]  ' if ok else '[red]DOWN[/red]'} {part}")
    if not state.get("ready"):
        console.print(f"not ready: {state.get('error') or state.get('progress')}")
    raise typer.Exit(0 if all(checks.values()) else 1)


@local_app.command("down")
def local_down() -> None:
    """Stop everything `local up` started."""
    import signal
    import time

    state = _local_state()
    pid = int(state.get("pid") or 0)
    if not state or not _pid_alive(pid):
        LOCAL_STATE.unlink(missing_ok=True)
        console.print("the local stack is not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 40
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    for leftover in (pid, state.get("vllm_pid")):
        if leftover and _pid_alive(leftover):
            try:
                os.killpg(leftover, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                os.kill(leftover, signal.SIGKILL)
    LOCAL_STATE.unlink(missing_ok=True)
    console.print("the local stack is down")


def _actor() -> str:
    import getpass

    return f"cli:{os.environ.get('FTSERVE_ACTOR') or getpass.getuser()}"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
