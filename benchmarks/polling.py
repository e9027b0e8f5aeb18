"""Polling: this client's scheduler against what users write today, on one workload.

The same jobs (by default 120: 30 v4 batches of 4, log-normal durations around 30
emulated seconds on a clock sped up 20x) are followed several ways, each against a fresh
emulator with the same seed, in interleaved rounds, all through the client's rate limiter
at the per-key limit (on by default in this library), under two per-key limits:

- spare (1,000 requests/s): the rate binds none but the 0.5 s loop; what a schedule costs
  in polls, CPU and notice delay (all four variants);
- rate-bound (25 requests/s): a create per batch and a poll per job take longer at the
  limit than the slowest job, so makespan over that bound measures how well the rate is
  used (scheduler, naive 3 s, webhook).

The variants:

- scheduler: ``client.generate()``; one poll scheduler and one rate budget for all jobs;
- naive 3 s: a loop per job that polls every 3 s (the docs' examples, third-party clients);
- fixed 0.5 s: the same loop every 0.5 s (Replicate's client);
- webhook: the scheduler with a ``WebhookReceiver`` served (uvicorn, on the client's event
  loop) where the emulator sends its signed, encrypted callbacks: polls are a safety net.

Figures: polls per job, the median delay between the emulator finishing a job and the
client noticing (emulated seconds, and as a share of the job's duration), rejections,
makespan over the bound, client CPU per job; for webhooks the delay split into the
emulator's part (finished -> callback sealed) and the client's (sealed -> noticed).

    python benchmarks/polling.py [--jobs 120] [--time-scale 20] [--rounds 3]
                                 [--spare-rate 1000] [--bound-rate 25]
                                 [--only "spare/scheduler,rate-bound/webhook"] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import attrs
from _common import EmulatorProcess, emulator_process, median, pin_client
from _rounds import Figures, interleave_async, parser, ratios

from akool_async import AkoolClient, ImageJob, PollPolicy, RetryPolicy, WebhookReceiver
from akool_async.emulator._server import listening_socket, uvicorn_server
from akool_async.webhook import WebhookEvent, parse_callback

BATCH = 4
Follow = Callable[[AkoolClient, int, dict[str, float]], Awaitable[None]]


@attrs.frozen
class Run:
    noticed: dict[str, float]  # job id -> epoch seconds the client saw it finished
    started: float
    cpu: float
    polls: int
    rejected: int
    jobs: dict[str, dict[str, float]]
    sealed: dict[str, float]  # webhook: job id -> when the emulator sealed its last callback
    accepted: dict[str, float]  # webhook: job id -> when the receiver began to read it
    server_cpu: float
    callbacks: int


class TimedReceiver(WebhookReceiver):
    """Notes when the emulator sealed each job's final callback (its signed timestamp)."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.sealed: dict[str, float] = {}
        self.accepted: dict[str, float] = {}

    def accept(self, body: bytes | str | dict[str, Any]) -> WebhookEvent | None:
        accepted = time.time()
        event = super().accept(body)
        if event is not None and event.status.is_terminal:
            self.sealed[event.job_id] = parse_callback(body).timestamp / 1000
            self.accepted[event.job_id] = accepted
        return event


async def run_scheduler(client: AkoolClient, batches: int, noticed: dict[str, float]) -> None:
    async def one(n: int) -> None:
        async for outcome in client.generate(prompt=f"a fox, take {n}", batch_quantity=BATCH):
            if outcome.job_id is not None:
                noticed[outcome.job_id] = outcome.finished_at

    async with anyio.create_task_group() as tg:
        for n in range(batches):
            tg.start_soon(one, n)


def naive_loop(every: float) -> Follow:
    async def run(client: AkoolClient, batches: int, noticed: dict[str, float]) -> None:
        async def follow(job: ImageJob) -> None:
            while True:
                await anyio.sleep(every)
                current = await client.info_by_model_id(job.id)
                if current.is_terminal:
                    noticed[job.id] = time.time()
                    return

        async def one(n: int, tg: anyio.abc.TaskGroup) -> None:
            for job in await client.create_by_source_prompt(
                prompt=f"a fox, take {n}", batch_quantity=BATCH
            ):
                tg.start_soon(follow, job)

        async with anyio.create_task_group() as tg:
            for n in range(batches):
                tg.start_soon(one, n, tg)

    return run


async def measure(name: str, args: argparse.Namespace, follow: Follow, rate: float) -> Run:
    emulator_args = [
        *("--seed", "7", "--time-scale", str(args.time_scale), "--rate-limit", str(rate)),
        *("--rate-burst", str(args.burst), "--image-max-side", "64"),
    ]
    with emulator_process(*emulator_args) as server:
        noticed: dict[str, float] = {}
        scheduled = name in {"scheduler", "webhook"}
        async with webhook_receiver(server, enabled=name == "webhook") as hook, AkoolClient(
            api_key=server.api_key, base_url=server.base_url,
            rate_limit=rate, rate_burst=args.burst,
            retry=RetryPolicy(attempts=30, timeout=None),
            poll_policy=_policy(args) if scheduled else None,
            webhook=hook[0] if hook else None, webhook_url=hook[1] if hook else None,
        ) as client:  # fmt: skip
            started, cpu = time.time(), time.process_time()
            server_cpu = server.cpu_seconds()
            await follow(client, args.jobs // BATCH, noticed)
            cpu = time.process_time() - cpu
        counters, jobs = server.counters(), server.jobs()
        server_cpu = server.cpu_seconds() - server_cpu
    sealed, accepted = (hook[0].sealed, hook[0].accepted) if hook else ({}, {})
    return Run(noticed, started, cpu, counters["requests"].get("infobymodelid", 0),
               counters["rate_limited"], jobs, sealed, accepted, server_cpu,
               counters["callbacks_sent"])  # fmt: skip


@contextlib.asynccontextmanager
async def webhook_receiver(
    server: EmulatorProcess, *, enabled: bool
) -> AsyncIterator[tuple[TimedReceiver, str] | None]:
    """A receiver served by uvicorn on this event loop, and its URL (when ``enabled``)."""
    if not enabled:
        yield None
        return
    receiver = TimedReceiver(api_key=server.api_key, client_id=server.client_id)
    listener = listening_socket()
    web = uvicorn_server(receiver, log_level="critical")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(functools.partial(web.serve, sockets=[listener]))
        yield receiver, f"http://127.0.0.1:{listener.getsockname()[1]}/akool/webhook"
        web.should_exit = True
    listener.close()


def _policy(args: argparse.Namespace) -> PollPolicy:
    # What a user of the real service would set, on the benchmark's sped-up clock: the
    # typical 30 s, and 1 s between two polls of a job at the least.
    return PollPolicy(
        expected_seconds=30 / args.time_scale,
        min_interval=1 / args.time_scale,
        polls_per_job=args.polls_per_job,
    )


def figures_of(run: Run, args: argparse.Namespace, rate: float) -> dict[str, float]:
    done = [j for j in run.noticed if j in run.jobs]
    delays = [run.noticed[j] - run.jobs[j]["finished"] for j in done]
    shares = [
        d / (run.jobs[j]["finished"] - run.jobs[j]["created"])
        for d, j in zip(delays, done, strict=True)
    ]
    makespan = max(run.noticed.values()) - run.started
    last_finish = max(job["finished"] for job in run.jobs.values()) - run.started
    floor = (args.jobs // BATCH + args.jobs) / rate  # a create per batch, a poll per job
    figures = {
        "jobs noticed": len(done),
        "polls/job": run.polls / max(1, len(done)),
        "median delay s": median(delays) * args.time_scale,
        "median delay %": 100 * median(shares),
        "rejections": run.rejected,
        "makespan/bound": makespan / max(last_finish, floor),
        "bound is the rate": float(floor > last_finish),
        "cpu ms/job": 1000 * run.cpu / max(1, len(done)),
    }
    if run.sealed:
        sealed = [j for j in done if j in run.sealed]
        parts = {
            "finished to sealed": [run.sealed[j] - run.jobs[j]["finished"] for j in sealed],
            "sealed to accepted": [run.accepted[j] - run.sealed[j] for j in sealed],
            "accepted to noticed": [run.noticed[j] - run.accepted[j] for j in sealed],
        }
        figures["emulator cpu ms/callback"] = 1000 * run.server_cpu / max(1, run.callbacks)
        for part, values in parts.items():
            figures[f"median delay, {part} s"] = median(values) * args.time_scale
    return figures


async def main() -> None:
    arguments = parser(__doc__, rounds=3)
    arguments.add_argument("--jobs", type=int, default=120)
    arguments.add_argument("--time-scale", type=float, default=20.0)
    arguments.add_argument("--spare-rate", type=float, default=1000.0, help="requests/s")
    arguments.add_argument("--bound-rate", type=float, default=25.0, help="requests/s")
    arguments.add_argument("--burst", type=int, default=20)
    arguments.add_argument("--only", default="", help="comma-separated workload/variant")
    arguments.add_argument("--polls-per-job", type=float, default=1.5, help="scheduler target")
    args = arguments.parse_args()
    limits = f"per-key limits {args.spare_rate}/s and {args.bound_rate}/s"
    report = Figures(__file__, args, f"{args.jobs} jobs, {args.time_scale}x clock, {limits}; "
                     f"{pin_client()}")  # fmt: skip
    variants: dict[str, Follow] = {
        "scheduler": run_scheduler,
        "naive 3 s": naive_loop(3.0 / args.time_scale),
        "fixed 0.5 s": naive_loop(0.5 / args.time_scale),
        "webhook": run_scheduler,
    }
    plan = {
        **{f"spare/{name}": (name, args.spare_rate) for name in variants},
        **{f"rate-bound/{name}": (name, args.bound_rate)
           for name in ("scheduler", "naive 3 s", "webhook")},
    }  # fmt: skip
    only = {v.strip() for v in args.only.split(",") if v.strip()}
    chosen = {key: value for key, value in plan.items() if not only or key in only}

    def contender(key: str) -> Callable[[], Awaitable[dict[str, float]]]:
        name, rate = chosen[key]

        async def one() -> dict[str, float]:
            return figures_of(await measure(name, args, variants[name], rate), args, rate)

        return one

    results = await interleave_async(args.rounds, {key: contender(key) for key in chosen})
    for key, rounds in results.items():
        for figure in rounds[0]:
            unit = "x" if "/bound" in figure else ""
            report.add(f"{key}: {figure}", [r[figure] for r in rounds], unit)
    for workload in ("spare", "rate-bound"):
        ours = results.get(f"{workload}/scheduler")
        for name in ("naive 3 s", "fixed 0.5 s"):
            theirs = results.get(f"{workload}/{name}")
            if ours is None or theirs is None:
                continue
            for figure in ("polls/job", "cpu ms/job", "median delay s"):
                report.add(f"{workload}: scheduler/{name} {figure}",
                           ratios([r[figure] for r in ours], [r[figure] for r in theirs]),
                           "x")  # fmt: skip
    report.close()


if __name__ == "__main__":
    anyio.run(main)
