"""How long jobs take, learned from the jobs this client follows.

Polling never sees a job finish, only that it had not finished at one poll and had at
the next: a finished job is known to have taken between two ages, and a job still
running to take longer than the age at its last poll. Durations are modelled as
log-normal (as Akool's are reported) and fitted to both kinds of observation by maximum
likelihood, with EM on log ages (truncated-normal moments have closed forms).

Counting the running jobs matters: jobs created together finish in order of duration,
so the finished ones alone would make every early estimate too short. Observations are
kept as counts in bins of 1% of age, so a fit costs the same for ten jobs or a million;
the counts are halved when they grow large, so the model follows a service that changes.
A few prior pseudo-observations (Akool reports ~30 s per image) stand in until real ones
arrive. The first jobs are also probed densely: if they put the median more than a factor
of two away from the prior (a faster emulator, a slower plan), the prior moves to them;
otherwise their few observations are left out, as noise next to the jobs' own.

The scheduler polls a job first at the age by which a share ``q0`` of jobs are done, and
then, each time it is still running, at the age by which half of the jobs still running
at its age will be done: each poll halves the chance of another, so a job costs about
1 + 2 (1 - q0) polls. Ages come from the job's own age at each poll, so a late poll (a
busy rate budget) or a changed model never makes the next one come too soon.
"""

from __future__ import annotations

import math
import statistics
from statistics import NormalDist

_PROBE_GROWTH = 2.0
_BIN = 0.01  # log-age bin width: 1% of age (coarser bins blur close polls)
_PRIOR_POINTS = 8
_EM_STEPS = 30
_MAX_WEIGHT = 8192.0
_MIN_SPREAD = 0.1
_MIN_FOR_SPREAD = 32  # finished jobs before the spread is re-estimated
_SPAN_FOR_SPREAD = 0.3  # and the log-age band their polls must cover (about 35%)
_MIN_AGE, _MAX_AGE = 1e-3, 1e7
_PROBES_TO_JUDGE = 2
_FAR = math.log(2.0)
_INF = math.inf
_NORMAL = NormalDist()
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / _SQRT2)


def _sf(z: float) -> float:
    return 0.5 * math.erfc(z / _SQRT2)


def _pdf(z: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * z * z) if math.isfinite(z) else 0.0


def _bin(age: float, edge: str) -> float:
    """A log age rounded outwards to the bin grid (``low`` down, ``high`` up)."""
    if age <= 0:
        return -_INF
    scaled = math.log(min(max(age, _MIN_AGE), _MAX_AGE)) / _BIN
    return (math.floor(scaled) if edge == "low" else math.ceil(scaled)) * _BIN


class DurationModel:
    def __init__(
        self, *, expected: float, spread: float, first_quantile: float, probes: int
    ) -> None:
        self._first_z = _NORMAL.inv_cdf(first_quantile)
        self.mu, self.sigma = math.log(expected), spread
        prior = (
            self.mu + spread * _NORMAL.inv_cdf((i + 0.5) / _PRIOR_POINTS)
            for i in range(_PRIOR_POINTS)
        )
        self._prior: dict[tuple[float, float], float] = {(x, x): 1.0 for x in prior}
        self._finished: dict[tuple[float, float], float] = {}
        self._running: dict[float, float] = {}
        self._since_fit = 0
        self.spread_learned = False
        self.probes_left = probes
        self._probes: list[tuple[float, float, float]] = []
        self._spread0 = spread

    def first_age(self) -> float:
        """The age (seconds since creation) of a job's first poll."""
        return math.exp(self.mu + self.sigma * self._first_z)

    def oldest_running(self) -> float | None:
        """The largest age at which a job was last seen still running, if any."""
        return math.exp(max(self._running)) if self._running else None

    def next_age(self, age: float) -> float:
        """Where half of the jobs still running at ``age`` will be done.

        A job older than the model can explain (fewer survivors than one in twenty times the
        jobs seen) says more about the model than about itself: then step out by at least a
        quarter of its age, instead of halving a vanishing tail in ever shorter steps.
        """
        z = (math.log(min(max(age, _MIN_AGE), _MAX_AGE)) - self.mu) / self.sigma
        surviving = _sf(z)
        seen = len(self._prior) + sum(self._finished.values()) + sum(self._running.values())
        floor = age * 1.25 if surviving < 1 / (20 * seen) else age
        if surviving < 1e-12:
            return floor
        z_next = _NORMAL.inv_cdf(1.0 - surviving / 2)
        return max(floor, math.exp(self.mu + self.sigma * z_next))

    def take_probe(self) -> bool:
        """Whether the next new job should be probed (polled densely to learn from it)."""
        if self.probes_left > 0:
            self.probes_left -= 1
            return True
        return False

    def probe_age(self, polls: int, floor: float) -> float:
        """Probes start at a sixteenth of the first poll's age and double: a prior wrong by
        2x or more shows within a few polls, without the floor's many."""
        return max(floor, self.first_age() / 16) * _PROBE_GROWTH**polls

    # -- observations -----------------------------------------------------------------

    def running(self, previous_age: float, age: float) -> None:
        """A job was seen unfinished at ``age`` (last seen unfinished at ``previous_age``)."""
        self._forget(previous_age)
        key = _bin(age, "low")
        self._running[key] = self._running.get(key, 0.0) + 1
        self._count()

    def finished(self, last_running_age: float, age: float) -> None:
        """A job finished after ``last_running_age`` (0: never seen running) and by ``age``."""
        self._forget(last_running_age)
        key = (_bin(last_running_age, "low"), _bin(max(age, _MIN_AGE), "high"))
        self._finished[key] = self._finished.get(key, 0.0) + 1
        self._count()

    def probe_finished(self, last_running_age: float, age: float) -> bool:
        """A probed job finished between two ages: once a few did, judge the prior by them.
        True when the prior moved (jobs planned on it should be planned again)."""
        self._probes.append((_bin(last_running_age, "low"), _bin(age, "high"), 1.0))
        if len(self._probes) != _PROBES_TO_JUDGE:
            return False
        mu, prior_mu = self.mu, statistics.fmean(x for x, _ in self._prior)
        for _ in range(_EM_STEPS):
            mu = statistics.fmean(_truncated_moments(mu, self._spread0, lo, hi)[0]
                                  for lo, hi, _ in self._probes)  # fmt: skip
        if abs(mu - prior_mu) <= _FAR:
            return False
        self._prior = {
            (x - prior_mu + mu, x - prior_mu + mu): n for (x, _), n in self._prior.items()
        }
        self.mu = mu
        return True

    def dropped(self, last_running_age: float) -> None:
        """A job is no longer followed (nobody waits for it): forget it."""
        self._forget(last_running_age)

    def _forget(self, age: float) -> None:
        key = _bin(age, "low")
        if age > 0 and key in self._running:
            self._running[key] -= 1
            if self._running[key] <= 1e-9:
                del self._running[key]

    def _count(self) -> None:
        self._since_fit += 1
        weight = sum(self._finished.values()) + sum(self._running.values())
        # Refit often while little is known, then less: the cost stays small per job.
        if self._since_fit >= max(4, min(weight / 16, 512)):
            self._fit(weight)

    # -- the fit ----------------------------------------------------------------------

    def _fit(self, weight: float) -> None:
        self._since_fit = 0
        if weight > _MAX_WEIGHT:  # let old observations fade, evenly (the running are now)
            self._finished = {key: n / 2 for key, n in self._finished.items()}
        mu, sigma = self.mu, self.sigma
        seen = [
            *((low, high, n) for (low, high), n in self._finished.items()),
            *((low, _INF, n) for low, n in self._running.items()),
        ]
        observations = [*((low, high, n) for (low, high), n in self._prior.items()), *seen]
        # A few jobs, only jobs still running, or polls at a narrow band of ages (a burst of
        # first polls) fix the median but not the spread: re-estimate the spread only from
        # enough finished jobs whose polls span a band of ages (the median learns at once).
        finished = sum(self._finished.values())
        learn_spread = finished >= _MIN_FOR_SPREAD and _span(seen) >= _SPAN_FOR_SPREAD
        self.spread_learned = self.spread_learned or learn_spread
        for _ in range(_EM_STEPS):
            total = squares = count = 0.0
            for low, high, n in observations:
                mean, second = _truncated_moments(mu, sigma, low, high)
                total += n * mean
                squares += n * second
                count += n
            mu = total / count
            if learn_spread:
                sigma = math.sqrt(max(_MIN_SPREAD**2, squares / count - mu * mu))
        self.mu, self.sigma = mu, sigma


def _span(observations: list[tuple[float, float, float]]) -> float:
    """The log-age range of the middle 80% of the observations' finite bounds."""
    bounds = sorted(
        (bound, n) for low, high, n in observations for bound in (low, high) if math.isfinite(bound)
    )
    total = sum(n for _, n in bounds)
    if not total:
        return 0.0
    low = high = bounds[0][0]
    seen = 0.0
    for bound, n in bounds:
        seen += n
        if seen <= 0.1 * total:
            low = bound
        if seen <= 0.9 * total:
            high = bound
    return high - low


def _truncated_moments(mu: float, sigma: float, low: float, high: float) -> tuple[float, float]:
    """E[x] and E[x^2] for x ~ N(mu, sigma) given low < x <= high (either may be infinite)."""
    if low == high:
        return low, low * low
    a, b = (low - mu) / sigma, (high - mu) / sigma
    mass = _sf(a) - _sf(b) if a > 0 else _cdf(b) - _cdf(a)  # the tail that keeps precision
    if mass < 1e-12:  # far in a tail: the nearest finite bound is the best guess
        x = low if math.isfinite(low) and (a > 0 or not math.isfinite(high)) else high
        return x, x * x
    pdf_a, pdf_b = _pdf(a), _pdf(b)
    shift = (pdf_a - pdf_b) / mass
    a_pdf_a = a * pdf_a if math.isfinite(a) else 0.0
    b_pdf_b = b * pdf_b if math.isfinite(b) else 0.0
    variance = sigma * sigma * (1 + (a_pdf_a - b_pdf_b) / mass - shift * shift)
    mean = mu + sigma * shift
    return mean, max(variance, 0.0) + mean * mean
