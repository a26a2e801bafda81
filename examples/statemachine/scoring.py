"""The scoring service that examples/statemachine/workflow.json calls, for trying it out.

    python3 examples/statemachine/scoring.py            # listens on 127.0.0.1:8099

It answers each POST /score with the order it was sent plus a verdict: 'pending' the first
two times it sees an order, then 'approved' (or 'rejected' for totals over 1000), so a run of
the example loops through its retry transition before it finishes.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

seen: Counter[str] = Counter()


class Scoring(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = min(int(self.headers.get("content-length") or 0), 64 * 1024)
        try:
            order = json.loads(self.rfile.read(length) or b"{}")
            total = float(order["total"])
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "send a JSON order with a numeric 'total'"})
            return
        seen[str(order.get("orderId"))] += 1
        if seen[str(order.get("orderId"))] < 3:
            status = "pending"
        else:
            status = "approved" if total <= 1000 else "rejected"
        self._answer(200, {**order, "status": status, "score": round(1 / (1 + total / 100), 3)})

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"scoring: {format % args}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8099)
    port = parser.parse_args().port
    server = ThreadingHTTPServer(("127.0.0.1", port), Scoring)
    print(f"scoring service on http://127.0.0.1:{port}/score (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
