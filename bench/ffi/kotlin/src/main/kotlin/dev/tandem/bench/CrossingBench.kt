// The floor of each kind of crossing the generated Kotlin makes, for the profile in
// docs/benchmarks.md ("ffi suite"): not part of the suite's JSON. It calls the generated
// `UniffiLib` functions directly (they are `internal`, and this harness is compiled in the same
// module as the generated code), so each line is one shape of native call with nothing of ours
// inside it.
//
// Usage: java -Djna.library.path=DIR -cp ... dev.tandem.bench.CrossingBenchKt SCHEMA WARMUP LOOPS CALLS
// Prints one JSON line: {"harness": "kotlin-crossings", "<shape>": median µs per call, ...}.
package dev.tandem.bench

import dev.tandem.FfiConverterString
import dev.tandem.RustBuffer
import dev.tandem.Tandem
import dev.tandem.TandemConfig
import dev.tandem.UniffiLib
import dev.tandem.UniffiRustCallStatus
import java.io.File
import java.nio.file.Files

fun main(args: Array<String>) {
    require(args.size == 4) { "usage: CrossingBench SCHEMA WARMUP LOOPS CALLS" }
    val schema = File(args[0]).readText()
    val warmup = args[1].toInt()
    val loops = args[2].toInt()
    val calls = args[3].toInt()
    val dir = Files.createTempDirectory("tandem-ffi-crossings").toFile()
    try {
        Tandem.open(TandemConfig(dataDir = dir.path, schemaJson = schema)).use { tandem ->
            val handle = tandem.uniffiCloneHandle()
            var sink = 0L
            val shapes = linkedMapOf<String, () -> Unit>(
                // JNA Structures built on the JVM alone, no native call.
                "new_call_status" to { sink += UniffiRustCallStatus().code },
                "new_rustbuffer" to { sink += RustBuffer.ByValue().len },
                // A no-argument function returning an Int: the call status is the only Structure.
                "call_status_only" to {
                    val status = UniffiRustCallStatus()
                    sink += UniffiLib.uniffi_tandem_fn_func_max_write_batch(status)
                },
                // What every method call of an object starts with (and the matching free).
                "clone_handle" to {
                    val status = UniffiRustCallStatus()
                    val h = UniffiLib.uniffi_tandem_fn_clone_tandem(handle, status)
                    UniffiLib.uniffi_tandem_fn_free_tandem(h, UniffiRustCallStatus())
                },
                // Lowering one string argument: an alloc returning a RustBuffer by value, then
                // freeing it (passing a RustBuffer by value), as a call taking it would.
                "lower_string_and_free" to {
                    val buf = FfiConverterString.lower("plan-1234")
                    UniffiLib.ffi_tandem_rustbuffer_free(buf, UniffiRustCallStatus())
                },
                // A whole method call with a primitive result: clone + call.
                "pending_count" to { sink += tandem.pendingCount().toLong() },
            )
            val results = shapes.mapValues { (_, shape) ->
                repeat(warmup) { shape() }
                val perCall = DoubleArray(loops) {
                    val start = System.nanoTime()
                    repeat(calls) { shape() }
                    (System.nanoTime() - start) / 1000.0 / calls
                }
                perCall.sort()
                perCall[loops / 2]
            }
            UniffiLib.uniffi_tandem_fn_free_tandem(handle, UniffiRustCallStatus())
            System.err.println("crossings sink $sink")
            println(
                "{\"harness\": \"kotlin-crossings\", " +
                    results.entries.joinToString(", ") { (k, v) -> "\"$k\": ${"%.3f".format(v)}" } + "}",
            )
        }
    } finally {
        dir.deleteRecursively()
    }
}
