"""Remote-policy load test: N requests from C concurrent clients over loopback, per protocol.

A policy server (the random policy, so the figures are transport and serialisation, not inference)
runs in its own process, as `egosim serve` would; C client threads, each with its own `remote`
policy (own socket), send the same real observation N/C times each. Prints p50/p99 request latency,
throughput, and the number of dropped requests (any request without a valid action chunk), which
must be 0. `--images` serves an env with cameras, so each request carries three 240x320 images.

    python benchmarks/remote.py --requests 1000 --clients 4
    python benchmarks/remote.py --requests 1000 --clients 4 --images --json out.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import threading
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

HOST = "127.0.0.1"


def _serve(protocol: str, embodiment: str, images: bool, ports: mp.Queue) -> None:
    from egosim.policies import make_policy
    from egosim.policies.remote.server import PolicyService, make_server
    from egosim.tasks import make_env

    env = make_env("pen_in_bin", embodiment, obs_mode="rgb" if images else "state")
    server = make_server(PolicyService(make_policy("random", env, seed=0), env, name="random"), protocol, HOST, 0)
    ports.put(server.port)
    server.serve_forever()


def run(protocol: str, requests: int, clients: int, embodiment: str, images: bool) -> dict:
    """One load test; returns its figures (latencies in ms)."""
    from egosim.policies import make_policy
    from egosim.tasks import make_env

    ctx = mp.get_context("spawn")
    ports: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(protocol, embodiment, images, ports), daemon=True)
    proc.start()
    try:
        port = ports.get(timeout=120)
        env = make_env("pen_in_bin", embodiment, obs_mode="rgb", privileged=True)
        obs, _ = env.reset(seed=0, options={"initial_state": 0})
        dim = env.action_space.shape[0]
        lat: list[list[float]] = [[] for _ in range(clients)]
        dropped = [0] * clients
        per = [requests // clients + (k < requests % clients) for k in range(clients)]

        def client(k: int) -> None:
            pol = make_policy("remote", env, protocol=protocol, host=HOST, port=port, timeout_s=30)
            for _ in range(per[k]):
                t0 = time.perf_counter()
                try:
                    ok = pol.act(obs).shape[1] == dim
                except Exception:  # noqa: BLE001 - counted, not raised: the figure is the count
                    ok = False
                lat[k].append(1000 * (time.perf_counter() - t0))
                dropped[k] += not ok
            pol.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        env.close()
    finally:
        proc.terminate()
        proc.join(10)
    all_lat = np.concatenate([np.asarray(x) for x in lat])
    return {"protocol": protocol, "embodiment": embodiment, "images": images, "clients": clients,
            "requests": int(all_lat.size), "dropped": int(sum(dropped)),
            "p50_ms": float(np.percentile(all_lat, 50)), "p99_ms": float(np.percentile(all_lat, 99)),
            "req_per_s": all_lat.size / wall, "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--protocol", choices=["gr00t", "openpi", "both"], default="both")
    ap.add_argument("--embodiment", default="sharpa_wave")
    ap.add_argument("--images", action="store_true", help="serve an env with cameras (three images per request)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    protocols = ["gr00t", "openpi"] if args.protocol == "both" else [args.protocol]
    rows = [run(p, args.requests, args.clients, args.embodiment, args.images) for p in protocols]
    print(f"{'protocol':<8} {'clients':>7} {'requests':>8} {'dropped':>7} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>7}"
          f"   ({args.embodiment}, {'3 cameras + state' if args.images else 'state'} per request, loopback)")
    for r in rows:
        print(f"{r['protocol']:<8} {r['clients']:>7} {r['requests']:>8} {r['dropped']:>7} {r['p50_ms']:>7.2f} "
              f"{r['p99_ms']:>7.2f} {r['req_per_s']:>7.0f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows}, fh, indent=2)
    return 0 if all(r["dropped"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
