"""Polling: this client's scheduler against what users write today, on one workload.

The same jobs (by default 2,000: 500 v4 batches of 4, log-normal durations around 30 s on
a clock sped up 2x, a per-key limit of 1,000 requests/s, enough for the scheduler not to
queue for it) are followed three ways, each against a fresh emulator with the same seed:

- scheduler: ``client.generate()``; one poll scheduler and one rate budget for all jobs;
- naive 3 s: a loop per job that polls every 3 s (the docs' examples, third-party clients);
- fixed 0.5 s: a loop per job that polls every 0.5 s (Replicate's client);
- webhook: the scheduler with a ``WebhookReceiver`` served (uvicorn, on the client's event
  loop) where the emulator sends its signed, encrypted callbacks: polls are a safety net.

For each: polls per completed job, the median and p95 delay between the emulator
finishing a job and the client noticing (also as a share of the job's duration),
rate-limit rejections, makespan over its lower bound, and client CPU per job.
Goal (issue 4): at most 1.5 polls per job, a median notice delay under 10% of the job's
duration, zero rejections. Goal (issue 6): under 0.2 polls per job with webhooks.

    python benchmarks/polling.py [--jobs 2000] [--time-scale 2] [--rate 1000]
                                 [--polls-per-job 1.5] [--only scheduler]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import attrs
from _common import (  # benchmarks/ is on sys.path
    EmulatorProcess,
    emulator_process,
    median,
    percentile,
    pin_client,
)

from akool_async import AkoolClient, ImageJob, RetryPolicy, WebhookReceiver
from akool_async.emulator._server import listening_socket, uvicorn_server

BATCH = 4


@attrs.frozen
class Run:
    name: str
    noticed: dict[str, float]  # job id -> epoch seconds the client saw it finished
    started: float
    cpu: float
    polls: int
    rejected: int
    jobs: dict[str, dict[str, float]]


async def run_scheduler(client: AkoolClient, batches: int, noticed: dict[str, float]) -> None:
    async def one(n: int) -> None:
        async for outcome in client.generate(prompt=f"a fox, take {n}", batch_quantity=BATCH):
            if outcome.job_id is not None:
                noticed[outcome.job_id] = outcome.finished_at

    async with anyio.create_task_group() as tg:
        for n in range(batches):
            tg.start_soon(one, n)


def naive_loop(every: float) -> Callable[[AkoolClient, int, dict[str, float]], Awaitable[None]]:
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


async def measure(
    name: str, args: argparse.Namespace, follow: Callable[..., Awaitable[None]]
) -> Run:
    emulator_args = [
        *("--seed", "7", "--time-scale", str(args.time_scale), "--rate-limit", str(args.rate)),
        *("--rate-burst", str(args.burst), "--image-max-side", "64"),
    ]
    with emulator_process(*emulator_args) as server:
        noticed: dict[str, float] = {}
        paced = name in {"scheduler", "webhook"}  # the naive loops pace nothing, as users' do
        async with webhook_receiver(server, enabled=name == "webhook") as hook, AkoolClient(
            api_key=server.api_key, base_url=server.base_url,
            rate_limit=args.rate if paced else None, rate_burst=args.burst,
            retry=RetryPolicy(attempts=30, timeout=None),
            poll_policy=_policy(args) if paced else None,
            webhook=hook[0] if hook else None, webhook_url=hook[1] if hook else None,
        ) as client:  # fmt: skip
            started, cpu = time.time(), time.process_time()
            await follow(client, args.jobs // BATCH, noticed)
            cpu = time.process_time() - cpu
        counters, jobs = server.counters(), server.jobs()
    return Run(name, noticed, started, cpu, counters["requests"].get("infobymodelid", 0),
               counters["rate_limited"], jobs)  # fmt: skip


@contextlib.asynccontextmanager
async def webhook_receiver(
    server: EmulatorProcess, *, enabled: bool
) -> AsyncIterator[tuple[WebhookReceiver, str] | None]:
    """A receiver served by uvicorn on this event loop, and its URL (when ``enabled``)."""
    if not enabled:
        yield None
        return
    receiver = WebhookReceiver(api_key=server.api_key, client_id=server.client_id)
    listener = listening_socket()
    web = uvicorn_server(receiver, log_level="critical")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(functools.partial(web.serve, sockets=[listener]))
        yield receiver, f"http://127.0.0.1:{listener.getsockname()[1]}/akool/webhook"
        web.should_exit = True
    listener.close()


def _policy(args: argparse.Namespace) -> object:
    from akool_async import PollPolicy

    # What a user of the real service would set, on the benchmark's sped-up clock: the
    # typical 30 s, and 1 s between two polls of a job at the least.
    return PollPolicy(
        expected_seconds=30 / args.time_scale,
        min_interval=1 / args.time_scale,
        polls_per_job=args.polls_per_job,
    )


def report(run: Run, args: argparse.Namespace) -> dict[str, float]:
    done = [j for j in run.noticed if j in run.jobs]
    delays = [run.noticed[j] - run.jobs[j]["finished"] for j in done]
    shares = [
        d / (run.jobs[j]["finished"] - run.jobs[j]["created"])
        for d, j in zip(delays, done, strict=True)
    ]
    makespan = max(run.noticed.values()) - run.started
    last_finish = max(job["finished"] for job in run.jobs.values()) - run.started
    floor = (args.jobs // BATCH + args.jobs) / args.rate  # a create per batch, a poll per job
    lower_bound = max(last_finish, floor)
    figures = {
        "polls/job": run.polls / len(done),
        "median delay s": median(delays) * args.time_scale,
        "p95 delay s": percentile(delays, 0.95) * args.time_scale,
        "median delay %": 100 * median(shares),
        "rejections": run.rejected,
        "makespan/bound": makespan / lower_bound,
        "cpu ms/job": 1000 * run.cpu / len(done),
    }
    print(f"{run.name:>12}: " + " | ".join(f"{k} {v:,.2f}" for k, v in figures.items())
          + f" | jobs {len(done)}")  # fmt: skip
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--time-scale", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="per-key requests/s")
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--only", default="", help="comma-separated variants to run")
    parser.add_argument("--polls-per-job", type=float, default=1.5, help="the scheduler's target")
    args = parser.parse_args()
    print(pin_client())
    print(f"{args.jobs} jobs, emulated seconds at {args.time_scale}x, per-key limit {args.rate}/s "
          f"(delays shown in emulated seconds)")  # fmt: skip
    variants: dict[str, Callable[..., Awaitable[None]]] = {
        "scheduler": run_scheduler,
        "naive 3 s": naive_loop(3.0 / args.time_scale),
        "fixed 0.5 s": naive_loop(0.5 / args.time_scale),
        "webhook": run_scheduler,
    }
    only = {v.strip() for v in args.only.split(",") if v.strip()}
    results = {}
    for name, follow in variants.items():
        if not only or name in only:
            results[name] = report(await measure(name, args, follow), args)
    if "scheduler" in results and len(results) > 1:
        ours = results["scheduler"]
        for name, theirs in results.items():
            if name not in {"scheduler", "webhook"}:
                polls = ours["polls/job"] / theirs["polls/job"]
                cpu = ours["cpu ms/job"] / theirs["cpu ms/job"]
                print(f"scheduler vs {name}: polls/job x{polls:.2f}, cpu/job x{cpu:.2f}")
        if "webhook" in results:
            theirs = results["webhook"]
            polls = theirs["polls/job"] / ours["polls/job"]
            delay = theirs["median delay s"] / ours["median delay s"]
            print(f"webhook vs scheduler: polls/job x{polls:.3f}, median delay x{delay:.3f}")


if __name__ == "__main__":
    anyio.run(main)
