"""Schemathesis against a running api's /openapi.json, with real credentials.

Every operation of the schema is called with generated inputs, valid and invalid, within a
bounded number of examples per operation and a time budget. Checks: no 5xx, every answer's
status is one the schema lists for that operation, its content type is the documented one and
its body validates against the documented schema.

Usage: api_fuzz.py API_URL  (credentials from the environment: FUZZ_BEARER, a portal session
token; FUZZ_ADMIN_TOKEN; optional FUZZ_MAX_EXAMPLES, FUZZ_MAX_SECONDS, FUZZ_SEED.)
Exit status is schemathesis's: 0 when every check passed.
"""

import os
import subprocess
import sys
import tempfile

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)

# Logging out revokes the session the run authenticates with: every later call would only
# see 401. Its refusal paths are covered by tests/api_auth.rs.
EXCLUDED_PATHS = ["/v1/auth/logout"]


def main() -> int:
    api = sys.argv[1].rstrip("/")
    bearer = os.environ["FUZZ_BEARER"]
    admin = os.environ["FUZZ_ADMIN_TOKEN"]
    # Credentials per security scheme of the schema (`bearer` for users, `admin` for
    # operators); written to a private file, never on the command line.
    config = (
        "[auth.openapi.bearer]\n"
        'bearer = "${FUZZ_BEARER}"\n'
        "[auth.openapi.admin]\n"
        'bearer = "${FUZZ_ADMIN_TOKEN}"\n'
    )
    assert bearer and admin
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "schemathesis.toml")
        with open(path, "w") as f:
            f.write(config)
        args = [
            os.path.join(os.path.dirname(sys.executable), "schemathesis"),
            "--config-file",
            path,
            "run",
            f"{api}/openapi.json",
            "--url",
            api,
            "--checks",
            CHECKS,
            "--max-examples",
            os.environ.get("FUZZ_MAX_EXAMPLES", "25"),
            "--max-time",
            os.environ.get("FUZZ_MAX_SECONDS", "90"),
            "--seed",
            os.environ.get("FUZZ_SEED", "20261204"),
            "--generation-database",
            "none",
            "--phases",
            "examples,coverage,fuzzing",
            "--continue-on-failure",
            # One worker: CPython 3.11's AST parser is not thread-safe (Hypothesis parses
            # lambda sources to describe strategies), and two workers parsing at once failed a
            # CI run with "SystemError: AST constructor recursion depth mismatch".
            "--workers",
            "1",
            "--request-timeout",
            "10",
        ]
        for p in EXCLUDED_PATHS:
            args += ["--exclude-path", p]
        return subprocess.run(args, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
