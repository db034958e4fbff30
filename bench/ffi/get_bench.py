"""The Python side of `tandem-bench ffi`: the cost of reads through the generated bindings
(ctypes), timed the same way as the Rust floor and the Kotlin harness (bench/src/ffi.rs): same
schema, same documents, same id order, same loop sizes.

Usage: TANDEM_PYTHON_BINDINGS=DIR python3 get_bench.py \
         SCHEMA RECORDS WARMUP LOOPS CALLS QUERY_WARMUP QUERY_CALLS FIGURES
DIR holds the generated tandem.py and libtandem.so (the suite passes a private copy, so a
concurrent scripts/generate-bindings.sh cannot swap the library mid-run). FIGURES is a
comma-separated list of `get` (`plans.get(id)` on the collection handle), `get2`
(`store.get("plans", id)`), `query100` (the first 100 plans in id order, on the handle) and
`getmany100` (`plans.get_many` of 100 consecutive ids, windows cycling through the ids).
Prints one JSON line: {"harness": "python", "<figure>": [µs per call, one per loop], ...}.
"""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.environ["TANDEM_PYTHON_BINDINGS"])
import tandem  # noqa: E402  (the path above first)


def plan_json(i):
    # Must match plan_json in bench/src/ffi.rs: the record's size is part of the cost.
    return json.dumps(
        {
            "name": f"Plan {i}",
            "notes": "Warm up for ten minutes, then three rounds of the main lifts with long rests in between; finish with mobility work.",
            "archived": False,
        }
    )


def main():
    schema_path = sys.argv[1]
    records, warmup, loops, calls, query_warmup, query_calls = map(int, sys.argv[2:8])
    figures = sys.argv[8].split(",")
    with open(schema_path) as f:
        schema = f.read()
    with tempfile.TemporaryDirectory(prefix="tandem-ffi-bench-python") as data_dir:
        store = tandem.Tandem.open(tandem.TandemConfig(data_dir=data_dir, schema_json=schema))
        try:
            ids = [f"plan-{i}" for i in range(records)]
            store.write([tandem.WriteOp.PUT("plans", id, plan_json(i)) for i, id in enumerate(ids)])
            plans = store.collection("plans")
            query100 = tandem.Query(limit=100)
            expected = min(100, records)

            # Local bindings and a precomputed id list keep the loop's own overhead to what any
            # caller pays; the call itself (argument lowering, the C call, lifting the records)
            # is what is measured.
            def run_get(n, get=plans.get):
                for i in range(n):
                    if get(ids[i % records]) is None:
                        raise RuntimeError(f"record {ids[i % records]} missing")

            def run_get2(n, get=store.get):
                for i in range(n):
                    if get("plans", ids[i % records]) is None:
                        raise RuntimeError(f"record {ids[i % records]} missing")

            def run_query100(n, query=plans.query):
                for _ in range(n):
                    if len(query(query100)) != expected:
                        raise RuntimeError("query100 returned the wrong number of records")

            def run_getmany100(n, get_many=plans.get_many):
                for i in range(n):
                    start = (i * 100) % records
                    window = [ids[(start + j) % records] for j in range(100)]
                    if any(r is None for r in get_many(window)):
                        raise RuntimeError("get_many missed a record")

            runs = {"get": run_get, "get2": run_get2, "query100": run_query100, "getmany100": run_getmany100}
            results = {"harness": "python"}
            for figure in figures:
                run = runs[figure]
                warm, timed = (query_warmup, query_calls) if figure in ("query100", "getmany100") else (warmup, calls)
                run(warm)
                per_call = []
                for _ in range(loops):
                    start = time.perf_counter_ns()
                    run(timed)
                    per_call.append((time.perf_counter_ns() - start) / 1000 / timed)
                results[figure] = per_call
        finally:
            store.shutdown()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
