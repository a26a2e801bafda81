"""``/metrics`` in Prometheus' text format: what lockstep holds now (runs, workers, trigger
fires, notification deliveries), read from the database at each scrape, and how long that
read took."""

from __future__ import annotations

import time

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
            shown = f"{name}{{{labels}}}" if labels else name
            self.lines.append(f"{shown} {value:g}")


def _two(first: str, second: str, counted: dict[tuple[str, str], int]) -> dict[str, float]:
    return {
        f'{first}="{_label(a)}",{second}="{_label(b)}"': float(n) for (a, b), n in counted.items()
    }


class MetricsService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def exposition(self) -> str:
        began = time.perf_counter()
        got = await self._db.call(store.counts)
        took = time.perf_counter() - began
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
        return "\n".join(text.lines) + "\n"
