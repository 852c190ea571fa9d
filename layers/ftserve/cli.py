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
    if LOCAL_STATE.exists():
        return dict(json.loads(LOCAL_STATE.read_text()))
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
    err.print(f"[red]error:[/red] {message}")
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
    data = record.model_dump(mode="json")
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


def _actor() -> str:
    import getpass

    return f"cli:{os.environ.get('FTSERVE_ACTOR') or getpass.getuser()}"


def main() -> None:
    app()
