package dev.tandem

import java.nio.file.Path
import kotlin.test.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir

/**
 * A reference and a unique key added to a collection that already holds data breaking them:
 * `schemaViolations()` reports each breaking record (typed, naming the field or the other record)
 * after `open`, and stops reporting it once the app fixes it.
 */
class SchemaViolationsTest {
    @TempDir
    lateinit var dir: Path

    private val before = """
        {"version": 1, "collections": {
          "projects": {"fields": {"name": {"type": "string"}}},
          "files": {"fields": {"projectId": {"type": "string"}, "path": {"type": "string"}}}}}
    """.trimIndent()

    private val after = """
        {"version": 2, "collections": {
          "projects": {"fields": {"name": {"type": "string"}}},
          "files": {"fields": {
              "projectId": {"type": "string", "ref": {"collection": "projects", "onDelete": "cascade"}},
              "path": {"type": "string"}},
            "unique": [["projectId", "path"]]}}}
    """.trimIndent()

    @Test
    fun `rules added to stored data are reported until the data is fixed`() {
        openTandem(dir, before).use { t ->
            t.put("projects", "p", """{"name": "P"}""")
            t.put("files", "a", """{"projectId": "p", "path": "/a"}""")
            t.put("files", "b", """{"projectId": "p", "path": "/a"}""")
            t.put("files", "c", """{"projectId": "gone", "path": "/c"}""")
            assertEquals(emptyList(), t.schemaViolations())
        }

        openTandem(dir, after).use { t ->
            val found = t.schemaViolations()
            assertEquals(listOf("files" to "c", "files" to "b"), found.map { it.collection to it.id })
            assertEquals(
                SchemaViolationKind.DanglingReference(field = "projectId", targetCollection = "projects", targetId = "gone"),
                found[0].kind,
            )
            assertEquals(
                SchemaViolationKind.DuplicateKey(fields = listOf("projectId", "path"), otherId = "a"),
                found[1].kind,
            )

            t.patch("files", "b", """{"path": "/b"}""")
            t.delete("files", "c")
            assertEquals(emptyList(), t.schemaViolations())
        }
    }
}
