"""One cold start, in a fresh interpreter: import and initialise an invoke function, serve one
request. Prints the milliseconds from before the first import to the response."""

import time

STARTED = time.perf_counter()

import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402


class Context:
    function_name = "invoke"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:invoke"
    aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def main() -> None:
    path, event_json = sys.argv[1], sys.argv[2]
    spec = importlib.util.spec_from_file_location("cold_app", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    result = module.handler(json.loads(event_json), Context())
    elapsed = (time.perf_counter() - STARTED) * 1000
    body = result["body"] if isinstance(result, dict) and "body" in result else result
    ok = isinstance(result, dict) and result.get("statusCode") == 200
    sys.__stderr__.write(json.dumps({"ms": elapsed, "ok": ok, "body": str(body)[:200]}) + "\n")


if __name__ == "__main__":
    main()
