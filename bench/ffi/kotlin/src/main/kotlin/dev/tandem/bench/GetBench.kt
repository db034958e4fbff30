// The Kotlin side of `tandem-bench ffi`: the cost of reads through the generated bindings (JNA),
// timed the same way as the Rust floor and the Python harness (bench/src/ffi.rs): same schema,
// same documents, same id order, same loop sizes.
//
// Usage: java -Djna.library.path=DIR -cp ... dev.tandem.bench.GetBenchKt \
//          SCHEMA RECORDS WARMUP LOOPS CALLS QUERY_WARMUP QUERY_CALLS FIGURES
// FIGURES is a comma-separated list of:
//   get       `plans.get(id)` on the collection handle (`tandem.collection("plans")`);
//   get2      `tandem.get("plans", id)`;
//   query100  `plans.query(Query(limit = 100))`: the first 100 plans in id order;
//   getmany100  `plans.getMany(ids)` of 100 consecutive ids (windows cycling through the ids).
// Prints one JSON line: {"harness": "kotlin", "<figure>": [µs per call, one per loop], ...}.
package dev.tandem.bench

import dev.tandem.Query
import dev.tandem.Tandem
import dev.tandem.TandemConfig
import dev.tandem.WriteOp
import java.io.File
import java.nio.file.Files

fun main(args: Array<String>) {
    require(args.size == 8) {
        "usage: GetBench SCHEMA RECORDS WARMUP LOOPS CALLS QUERY_WARMUP QUERY_CALLS FIGURES"
    }
    val schema = File(args[0]).readText()
    val records = args[1].toInt()
    val warmup = args[2].toInt()
    val loops = args[3].toInt()
    val calls = args[4].toInt()
    val queryWarmup = args[5].toInt()
    val queryCalls = args[6].toInt()
    val figures = args[7].split(",")

    val dir = Files.createTempDirectory("tandem-ffi-bench-kotlin").toFile()
    try {
        Tandem.open(TandemConfig(dataDir = dir.path, schemaJson = schema)).use { tandem ->
            // Must match plan_json in bench/src/ffi.rs: the record's size is part of the cost.
            val ids = List(records) { "plan-$it" }
            tandem.write(ids.mapIndexed { i, id -> WriteOp.Put("plans", id, planJson(i)) })
            val plans = tandem.collection("plans")
            val query100 = Query(limit = 100UL)
            val expected = minOf(100, records)

            // The returned documents' lengths are summed and printed to stderr so that the JIT
            // cannot drop the calls as dead code.
            var sink = 0L
            val loopsOf = mapOf<String, (Int) -> Unit>(
                "get" to { n ->
                    for (i in 0 until n) {
                        val record = plans.get(ids[i % records]) ?: error("record ${ids[i % records]} missing")
                        sink += record.document.length
                    }
                },
                "get2" to { n ->
                    for (i in 0 until n) {
                        val record = tandem.get("plans", ids[i % records]) ?: error("record ${ids[i % records]} missing")
                        sink += record.document.length
                    }
                },
                "query100" to { n ->
                    for (i in 0 until n) {
                        val found = plans.query(query100)
                        check(found.size == expected) { "query100 returned ${found.size} records" }
                        sink += found.last().document.length
                    }
                },
                "getmany100" to { n ->
                    for (i in 0 until n) {
                        val start = (i * 100) % records
                        val window = List(100) { ids[(start + it) % records] }
                        val found = plans.getMany(window)
                        sink += (found.last() ?: error("record missing")).document.length
                    }
                },
            )
            val results = figures.map { figure ->
                val run = loopsOf[figure] ?: error("unknown figure $figure")
                val (warm, timed) = if (figure == "query100" || figure == "getmany100") queryWarmup to queryCalls else warmup to calls
                // Long enough for the JIT to compile the call path (JNA's marshalling included).
                run(warm)
                val perCall = DoubleArray(loops) {
                    val start = System.nanoTime()
                    run(timed)
                    (System.nanoTime() - start) / 1000.0 / timed
                }
                "\"$figure\": [${perCall.joinToString(", ")}]"
            }
            plans.close()
            System.err.println("kotlin sink $sink")
            println("""{"harness": "kotlin", ${results.joinToString(", ")}}""")
        }
    } finally {
        dir.deleteRecursively()
    }
}

fun planJson(i: Int): String =
    """{"name": "Plan $i", "notes": "Warm up for ten minutes, then three rounds of the main lifts with long rests in between; finish with mobility work.", "archived": false}"""
