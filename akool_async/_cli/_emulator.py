"""``akool-async emulator``: serve the emulator on a real port until interrupted."""

from __future__ import annotations

import argparse
import errno
from typing import Any

from ._connect import require_emulator
from ._errors import CLIError
from ._parsing import subcommand

EXAMPLES = """  akool-async emulator --port 8000 --time-scale 100
  eval "$(akool-async emulator --port 0 --instant | head -4 | sed 's/^/export /')" &"""


def add_parser(commands: Any) -> None:
    parser = subcommand(
        commands, "emulator",
        help="serve a local Akool emulator",
        description="Serve a faithful local Akool API until Ctrl-C. Prints its base URL and "
        "test credentials (AKOOL_BASE_URL=..., AKOOL_API_KEY=..., and the AKOOL_CLIENT_ID and "
        "AKOOL_CLIENT_SECRET getToken accepts) for other programs to use.",
        examples=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0, help="random seed: runs repeat")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="emulated seconds per real second (1000: 30 s in 30 ms)")  # fmt: skip
    parser.add_argument("--instant", action="store_true", help="jobs finish at once")
    parser.add_argument("--median-seconds", type=float, default=30.0,
                        help="median emulated seconds per image (log-normal)")  # fmt: skip
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of jobs that fail")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests/s per key")
    parser.add_argument("--rate-burst", type=int, default=10,
                        help="requests a key may send at once beyond --rate-limit")  # fmt: skip
    parser.add_argument("--credits", type=float, default=100_000,
                        help="the test account's starting balance")  # fmt: skip
    parser.add_argument("--image-max-side", type=int, default=512,
                        help="scale images down to this many pixels (0: full size)")  # fmt: skip
    parser.add_argument("--parts-delay", type=float, default=3.0,
                        help="emulated seconds after completion at which a grid's four "
                        "images come (0: with the status)")  # fmt: skip
    for fault in ("5xx", "429", "1005", "1108", "1009", "1200", "drop", "slow", "malformed",
                  "html"):  # fmt: skip
        parser.add_argument(f"--fault-{fault}", type=float, default=0.0, metavar="P",
                            help=f"probability of a {fault} fault per request")  # fmt: skip
    # Answers that prove nothing, after the request was handled: a create meeting one is
    # uncertain, never resent (what a client must not take for a refusal).
    parser.add_argument("--fault-proxy-4xx", type=float, default=0.0, metavar="P",
                        help="probability of a proxy's bare 403 page after handling")  # fmt: skip
    parser.add_argument("--fault-code-in-5xx", type=float, default=0.0, metavar="P",
                        help="probability of a business code (1108) inside a 503 after "
                        "handling")  # fmt: skip
    parser.set_defaults(run=run)


def _faults(args: argparse.Namespace) -> Any:
    from ..emulator import Faults

    return Faults(
        http_5xx=args.fault_5xx, http_429=args.fault_429, code_1005=args.fault_1005,
        code_1108=args.fault_1108, code_1009=args.fault_1009, code_1200=args.fault_1200,
        drop_connection=args.fault_drop, slow=args.fault_slow,
        malformed_json=args.fault_malformed, html_error=args.fault_html,
        proxy_4xx=args.fault_proxy_4xx, code_in_5xx=args.fault_code_in_5xx,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    require_emulator("the emulator command")
    from ..emulator import Emulator
    from ..emulator._server import listening_socket, uvicorn_server

    try:
        config = _config(args)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CLIError(
                f"port {args.port} on {args.host} is in use: choose another --port "
                "(--port 0 picks a free one)"
            ) from None
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    host, port = sock.getsockname()[:2]

    def announce() -> None:  # once serving: scripts may start as soon as they read this
        print(f"AKOOL_BASE_URL=http://{host}:{port}", flush=True)
        print(f"AKOOL_API_KEY={config.api_key}", flush=True)
        print(f"AKOOL_CLIENT_ID={config.client_id}", flush=True)
        print(f"AKOOL_CLIENT_SECRET={config.api_key}", flush=True)
        print(f"counters: http://{host}:{port}/_emulator/counters  (Ctrl-C stops)", flush=True)

    emulator = Emulator(config, on_ready=announce)
    uvicorn_server(emulator, log_level="warning").run(sockets=[sock])
    return 0


def _config(args: argparse.Namespace) -> Any:
    from ..emulator import Credits, EmulatorConfig, LogNormal

    return EmulatorConfig(
        seed=args.seed,
        time_scale=args.time_scale,
        instant=args.instant,
        durations=LogNormal(median=args.median_seconds),
        fail_rate=args.fail_rate,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        credits=Credits(balance=args.credits),
        image_max_side=args.image_max_side or None,
        parts_delay=args.parts_delay,
        faults=_faults(args),
    )
