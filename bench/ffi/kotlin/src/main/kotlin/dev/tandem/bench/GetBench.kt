// The Kotlin side of `tandem-bench ffi`: the cost of `Tandem.get` of one existing record through
// the generated bindings (JNA), timed the same way as the Rust floor and the Python harness
// (bench/src/ffi.rs): same schema, same documents, same id order, same loop sizes.
//
// Usage: java -Djna.library.path=DIR -cp ... dev.tandem.bench.GetBenchKt SCHEMA RECORDS WARMUP LOOPS CALLS
// Prints one JSON line: {"harness": "kotlin", "us_per_call": [one figure per loop]}.
package dev.tandem.bench

import dev.tandem.Tandem
import dev.tandem.TandemConfig
import dev.tandem.WriteOp
import java.io.File
import java.nio.file.Files

fun main(args: Array<String>) {
    require(args.size == 5) { "usage: GetBench SCHEMA RECORDS WARMUP LOOPS CALLS" }
    val schema = File(args[0]).readText()
    val records = args[1].toInt()
    val warmup = args[2].toInt()
    val loops = args[3].toInt()
    val calls = args[4].toInt()

    val dir = Files.createTempDirectory("tandem-ffi-bench-kotlin").toFile()
    try {
        Tandem.open(TandemConfig(dataDir = dir.path, schemaJson = schema)).use { tandem ->
            // Must match plan_json in bench/src/ffi.rs: the record's size is part of the cost.
            val ids = List(records) { "plan-$it" }
            tandem.write(ids.mapIndexed { i, id -> WriteOp.Put("plans", id, planJson(i)) })

            // The returned document's length is summed and printed to stderr so that the JIT
            // cannot drop the calls as dead code.
            var sink = 0L
            fun run(n: Int) {
                for (i in 0 until n) {
                    val record = tandem.get("plans", ids[i % records]) ?: error("record ${ids[i % records]} missing")
                    sink += record.document.length
                }
            }
            // Long enough for the JIT to compile the call path (JNA's marshalling included).
            run(warmup)
            val perCall = DoubleArray(loops) {
                val start = System.nanoTime()
                run(calls)
                (System.nanoTime() - start) / 1000.0 / calls
            }
            System.err.println("kotlin sink $sink")
            println("""{"harness": "kotlin", "us_per_call": [${perCall.joinToString(", ")}]}""")
        }
    } finally {
        dir.deleteRecursively()
    }
}

fun planJson(i: Int): String =
    """{"name": "Plan $i", "notes": "Warm up for ten minutes, then three rounds of the main lifts with long rests in between; finish with mobility work.", "archived": false}"""
