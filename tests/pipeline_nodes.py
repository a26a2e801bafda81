"""Node programs for the pipeline tests and bench, speaking the node contract on stdin/stdout.

source N [START]   emit records {"n": START..START+N-1} to "out", then exit 0
transform [DELAY]  for each record: emit {"n": …} to "out", then ack (DELAY s per record)
sink FILE          append each record's n to FILE (a line each), then ack
hostile            print lines that break the contract, then three good records
"""

from __future__ import annotations

import json
import sys
import time


def out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "source":
        start = int(args[1]) if len(args) > 1 else 0
        for n in range(start, start + int(args[0])):
            out({"emit": {"to": "out", "data": {"n": n}}})
        sys.stdout.flush()
    elif mode == "transform":
        delay = float(args[0]) if args else 0.0
        for line in sys.stdin:
            record = json.loads(line)
            if delay:
                time.sleep(delay)
            out({"emit": {"to": "out", "data": record["data"]}})
            out({"ack": record["id"]})
            sys.stdout.flush()
    elif mode == "sink":
        delay = float(args[1]) if len(args) > 1 else 0.0
        with open(args[0], "a") as f:
            for line in sys.stdin:
                record = json.loads(line)
                if delay:
                    time.sleep(delay)
                f.write(f"{record['data']['n']}\n")
                f.flush()
                out({"ack": record["id"]})
                sys.stdout.flush()
    elif mode == "adapt":
        for n, line in enumerate(sys.stdin):
            emitted = json.loads(line).get("emit")
            if emitted is not None:
                out({"id": str(n), "data": emitted["data"]})
        sys.stdout.flush()
    elif mode == "hostile":
        sys.stderr.write("log with \x1b]0;owned\x07 escape\n" + "e" * 200_000 + "\n")
        sys.stderr.flush()
        sys.stdout.write("not json\n")
        sys.stdout.write("[1, 2]\n")
        out({"emit": {"to": "nowhere", "data": 1}})
        out({"ack": "no-such-id"})
        out({"emit": {"to": "out", "data": "x" * 2_000_000}})  # over the 1 MiB line cap
        sys.stdout.write("\x1b[2J\x9b\n")
        for n in range(3):
            out({"emit": {"to": "out", "data": {"n": n}}})
        sys.stdout.flush()


if __name__ == "__main__":
    main()
