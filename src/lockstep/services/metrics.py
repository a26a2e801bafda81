"""``/metrics`` in Prometheus' text format: what lockstep holds now (runs, workers, trigger
fires, notification deliveries), read from the database at each scrape, and how long that
read took."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from lockstep import __version__
from lockstep.storage import metrics as store
from lockstep.storage.database import Database


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, about: str, samples: dict[str, float]) -> None:
        """``samples``: the label set (``k="v",…``, maybe empty) -> value."""
        self.lines += [f"# HELP {name} {about}", f"# TYPE {name} {kind}"]
        for labels, value in sorted(samples.items()):
            self._sample(name, labels, value)

    def histograms(self, name: str, about: str, by_pool: dict[str, store.Histogram]) -> None:
        self.lines += [f"# HELP {name} {about}", f"# TYPE {name} histogram"]
        for pool, h in sorted(by_pool.items()):
            labels = f'pool="{_label(pool)}"'
            for bound, n in zip(store.BUCKETS, h.buckets, strict=True):
                self._sample(f"{name}_bucket", f'{labels},le="{bound:g}"', n)
            self._sample(f"{name}_bucket", f'{labels},le="+Inf"', h.count)
            self._sample(f"{name}_sum", labels, h.total)
            self._sample(f"{name}_count", labels, h.count)

    def _sample(self, name: str, labels: str, value: float) -> None:
        shown = f"{name}{{{labels}}}" if labels else name
        self.lines.append(f"{shown} {value:g}")


def _two(first: str, second: str, counted: dict[tuple[str, str], int]) -> dict[str, float]:
    return {
        f'{first}="{_label(a)}",{second}="{_label(b)}"': float(n) for (a, b), n in counted.items()
    }


#: how long a scrape waits for the engine to answer before it says it did not (-1)
ENGINE_PROBE_TIMEOUT_S = 5.0


class MetricsService:
    def __init__(
        self, db: Database, engine_probe: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        self._db = db
        #: one cheap call to the engine (its health check), timed at each scrape
        self._engine_probe = engine_probe

    async def _engine_seconds(self) -> float:
        if self._engine_probe is None:
            return -1.0
        began = time.perf_counter()
        try:
            await asyncio.wait_for(self._engine_probe(), ENGINE_PROBE_TIMEOUT_S)
        except Exception:  # the engine's own errors, whatever their kind: it did not answer
            return -1.0
        return time.perf_counter() - began

    async def exposition(self) -> str:
        began = time.perf_counter()
        got = await self._db.call(store.counts)
        took = time.perf_counter() - began
        engine = await self._engine_seconds()
        text = _Text()
        text.family(
            "lockstep_build_info",
            "gauge",
            "This server's version.",
            {f'version="{__version__}"': 1},
        )
        text.family(
            "lockstep_runs",
            "gauge",
            "Runs by project and status.",
            _two("project", "status", got.runs),
        )
        pools = {f'pool="{_label(p)}"': v for p, v in got.pools.items()}
        text.family(
            "lockstep_workers_live",
            "gauge",
            "Live workers by pool.",
            {k: n for k, (n, _, _) in pools.items()},
        )
        text.family(
            "lockstep_worker_slots",
            "gauge",
            "Step slots of live workers by pool.",
            {k: c for k, (_, c, _) in pools.items()},
        )
        text.family(
            "lockstep_worker_slots_busy",
            "gauge",
            "Step slots in use by pool.",
            {k: r for k, (_, _, r) in pools.items()},
        )
        text.family(
            "lockstep_trigger_fires",
            "gauge",
            "Recorded trigger fires by project and status.",
            _two("project", "status", got.fires),
        )
        text.family(
            "lockstep_notification_deliveries",
            "gauge",
            "Notification deliveries by project and status.",
            _two("project", "status", got.deliveries),
        )
        text.family(
            "lockstep_db_scrape_seconds",
            "gauge",
            "How long this scrape's database reads took.",
            {"": took},
        )
        text.family(
            "lockstep_engine_probe_seconds",
            "gauge",
            "How long the engine took to answer this scrape's health check (-1: it did not).",
            {"": engine},
        )
        text.histograms(
            "lockstep_step_duration_seconds",
            "Step attempts' run time on their worker, by pool.",
            got.durations,
        )
        text.histograms(
            "lockstep_step_queue_wait_seconds",
            "Step attempts' wait from scheduled to started on a worker, by pool.",
            got.queue_waits,
        )
        return "\n".join(text.lines) + "\n"
