"""Toy orbit propagation (leapfrog on a Kepler orbit) used by the demo workflow."""

import argparse
import json
import math
import os
import random


def energy_after(seed: int, case: int, step: float) -> float:
    rng = random.Random(seed * 1000 + case)
    r = 7000.0 + rng.uniform(0, 30000)  # km
    x, y, vx, vy = r, 0.0, 0.0, math.sqrt(398600.0 / r) * rng.uniform(0.9, 1.1)
    mu, t, period = 398600.0, 0.0, 2 * math.pi * math.sqrt(r**3 / 398600.0)
    while t < period:
        d3 = (x * x + y * y) ** 1.5
        vx -= 0.5 * step * mu * x / d3
        vy -= 0.5 * step * mu * y / d3
        x += step * vx
        y += step * vy
        d3 = (x * x + y * y) ** 1.5
        vx -= 0.5 * step * mu * x / d3
        vy -= 0.5 * step * mu * y / d3
        t += step
    return 0.5 * (vx * vx + vy * vy) - mu / math.hypot(x, y)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cases", type=int, required=True)
    parser.add_argument("--step", type=float, required=True)
    args = parser.parse_args()
    total = sum(energy_after(args.seed, c, args.step) for c in range(args.cases))
    print(f"{args.cases} cases with a {args.step:g}s step: mean energy {total / args.cases:.6f}")
    with open(os.environ["LOCKSTEP_OUTPUTS"], "w") as out:
        json.dump({"energy": total / args.cases}, out)


if __name__ == "__main__":
    main()
