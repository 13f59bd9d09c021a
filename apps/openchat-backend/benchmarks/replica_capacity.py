"""One API replica's streaming capacity (docs/deployment.md, "Capacity"): `uvicorn app:app` as
the scale profile runs it (OPENCHAT_LOCAL_MODELS=off, its one model the OpenAI-compatible
provider), in front of the fake engine of benchmarks/fake_engine.py, which streams a 200-token
reply at once: the numbers measure the API replica, not a model. Chats at each concurrency, each
client on its own keep-alive connection (benchmarks/capacity.py's client); a chat fails unless it
gets 200 and the whole reply.

Run: python -m benchmarks.replica_capacity [--levels 16 64 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform

from benchmarks.backend import Backend
from benchmarks.capacity import OPENCHAT_MODEL, Peer, fake_engine, openchat_body, requests_at, run_level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[16, 64, 200])
    args = parser.parse_args()
    with fake_engine() as engine:
        env = {
            "OPENCHAT_LOCAL_MODELS": "off",
            "OPENAI_COMPATIBLE_BASE_URL": engine.url.removesuffix("/chat/completions"),
            "OPENCHAT_DEFAULT_MODEL": OPENCHAT_MODEL,
            "OPENCHAT_WARM_UP": "false",
            "OPENCHAT_GENERATE_TITLES": "false",
            # One benchmark client is one user: let it have as many replies in flight as it sends.
            "OPENCHAT_USER_MAX_GENERATIONS": str(max(args.levels)),
        }
        with Backend("replica", env) as backend:
            peer = Peer(
                "OpenChat replica", "this checkout", backend.pid, f"{backend.url}/api/v1/chat", openchat_body, "ndjson"
            )
            print(
                f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}"
            )
            print("| streams | chats | failed | tokens/s | first token p50/p99 ms | gap p50/p99 ms | CPU | RSS |")
            print("|---|---|---|---|---|---|---|---|")
            for concurrency in args.levels:
                level = asyncio.run(run_level(peer, concurrency, requests_at(concurrency, quick=True)))
                print(
                    f"| {concurrency} | {level.requests} | {level.failed} | {level.tokens_per_s:,.0f} "
                    f"| {level.ttft_ms[0]:,.0f} / {level.ttft_ms[1]:,.0f} "
                    f"| {level.gap_ms[0]:.1f} / {level.gap_ms[1]:.1f} "
                    f"| {level.cpu_percent:.0f}% | {level.rss_mib:.0f} MiB |",
                    flush=True,
                )
                if level.errors:
                    print("  errors:", level.errors)


if __name__ == "__main__":
    main()
