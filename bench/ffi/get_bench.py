"""The Python side of `tandem-bench ffi`: the cost of `Tandem.get` of one existing record through
the generated bindings (ctypes), timed the same way as the Rust floor and the Kotlin harness
(bench/src/ffi.rs): same schema, same documents, same id order, same loop sizes.

Usage: TANDEM_PYTHON_BINDINGS=DIR python3 get_bench.py SCHEMA RECORDS WARMUP LOOPS CALLS
DIR holds the generated tandem.py and libtandem.so (the suite passes a private copy, so a
concurrent scripts/generate-bindings.sh cannot swap the library mid-run).
Prints one JSON line: {"harness": "python", "us_per_call": [one figure per loop]}.
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
    schema_path, records, warmup, loops, calls = sys.argv[1], *map(int, sys.argv[2:6])
    with open(schema_path) as f:
        schema = f.read()
    with tempfile.TemporaryDirectory(prefix="tandem-ffi-bench-python") as data_dir:
        store = tandem.Tandem.open(tandem.TandemConfig(data_dir=data_dir, schema_json=schema))
        try:
            ids = [f"plan-{i}" for i in range(records)]
            store.write([tandem.WriteOp.PUT("plans", id, plan_json(i)) for i, id in enumerate(ids)])

            # A local binding and a precomputed id list keep the loop's own overhead to what any
            # caller pays; the call itself (argument lowering, the C call, lifting the Record) is
            # what is measured.
            get = store.get

            def run(n):
                for i in range(n):
                    if get("plans", ids[i % records]) is None:
                        raise RuntimeError(f"record {ids[i % records]} missing")

            run(warmup)
            per_call = []
            for _ in range(loops):
                start = time.perf_counter_ns()
                run(calls)
                per_call.append((time.perf_counter_ns() - start) / 1000 / calls)
        finally:
            store.shutdown()
    print(json.dumps({"harness": "python", "us_per_call": per_call}))


if __name__ == "__main__":
    main()
