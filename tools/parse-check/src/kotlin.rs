//! Kotlin on machines without an Android toolchain: the Compose app, the Android glue and the
//! Gradle scripts (`.kts`) cannot be compiled here, so each file must at least parse with the
//! tree-sitter Kotlin grammar (`tree-sitter-kotlin-ng`). Unlike the Swift check there are no
//! workarounds: every construct the repository's Kotlin uses must parse as it is written.

use std::path::{Path, PathBuf};

use tree_sitter::{Parser, Tree};

use crate::{collect_errors, source_files, ParseError};

/// Parses Kotlin source text (a `.kt` file or a `.kts` script; the grammar reads both).
pub fn parse_kotlin(source: &str) -> Tree {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_kotlin_ng::LANGUAGE.into())
        .expect("the tree-sitter-kotlin-ng grammar matches the tree-sitter library");
    parser
        .parse(source, None)
        .expect("parsing without a timeout or cancellation returns a tree")
}

/// Parses `source` and lists every parse error (1-based line and column, one per broken region).
///
/// Besides ERROR and MISSING nodes, text that no token of the tree covers counts as an error:
/// the grammar's error recovery can drop a stray token and everything after it without leaving
/// an ERROR node (`val x = f(1))` followed by more declarations parses "cleanly" as the first
/// declaration alone), and that must not pass.
pub fn check_kotlin_source(source: &str) -> Vec<ParseError> {
    let tree = parse_kotlin(source);
    let mut errors = Vec::new();
    collect_errors(tree.root_node(), source, &mut errors);
    errors.extend(uncovered_text(&tree, source));
    errors.sort_by_key(|e| (e.line, e.column));
    errors
}

/// Runs of non-blank text outside every node without named children (leaf tokens, comments,
/// literals): text the parser skipped between the declarations or statements of a node.
fn uncovered_text(tree: &Tree, source: &str) -> Vec<ParseError> {
    let mut covered = vec![false; source.len()];
    let mut cursor = tree.walk();
    let mut descending = true;
    loop {
        if descending {
            // A node without named children covers its whole range: its text is tokens the
            // grammar read (a character literal like '"' has only its quotes as children).
            let node = cursor.node();
            if node.named_child_count() == 0 {
                covered[node.byte_range()].fill(true);
            }
            if cursor.goto_first_child() {
                continue;
            }
        }
        if cursor.goto_next_sibling() {
            descending = true;
        } else if cursor.goto_parent() {
            descending = false;
        } else {
            break;
        }
    }
    let mut errors = Vec::new();
    let mut at = 0;
    while at < source.len() {
        if covered[at] || source.as_bytes()[at].is_ascii_whitespace() {
            at += 1;
            continue;
        }
        let start = at;
        while at < source.len() && !covered[at] {
            at += 1;
        }
        let before = &source[..start];
        let line = before.matches('\n').count() + 1;
        let column = start - before.rfind('\n').map_or(0, |n| n + 1) + 1;
        let snippet: String = source[start..at]
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(80)
            .collect();
        errors.push(ParseError {
            line,
            column,
            snippet: format!("dropped by the parser: {snippet}"),
        });
    }
    errors
}

/// Directories that hold build output or IDE and Gradle state, never sources of ours.
const NOT_SOURCES: &[&str] = &["build", ".gradle", ".idea", "target", ".kotlin"];

/// Every `.kt` and `.kts` file under `path` (or `path` itself), sorted, and the build or state
/// directories that were left out (Gradle's `build/`, Maven's `target/`, `.gradle`, `.idea`,
/// `.kotlin`), so the caller can say which.
pub fn kotlin_files(path: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    source_files(path, is_kotlin, NOT_SOURCES)
}

/// Whether a file name is Kotlin source (`.kt`) or a Kotlin script (`.kts`).
pub fn is_kotlin(name: &str) -> bool {
    name.ends_with(".kt") || name.ends_with(".kts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn valid_kotlin_and_gradle_scripts_parse() {
        let source = r#"
package dev.example

import kotlinx.coroutines.flow.StateFlow

/** A doc comment. */
data class Plan(val id: String, val name: String, val days: List<String> = emptyList())

sealed interface Screen {
    data object Plans : Screen
    data class Detail(val id: String) : Screen
}

fun label(screen: Screen): String = when (screen) {
    Screen.Plans -> "plans"
    is Screen.Detail -> "detail ${screen.id}"
}
"#;
        assert_eq!(check_kotlin_source(source), vec![]);
        let script = r#"
plugins {
    id("com.android.application") version "8.13.2" apply false
}
android {
    namespace = "dev.example"
    buildFeatures { compose = true }
}
dependencies { implementation(project(":state")) }
"#;
        assert_eq!(check_kotlin_source(script), vec![]);
        // Character literals whose character is a quote or a slash are read whole.
        assert_eq!(
            check_kotlin_source("val a = s.substringAfter('\"').trimEnd('/')\nval b = '\\''\n"),
            vec![]
        );
    }

    #[test]
    fn broken_kotlin_fails_with_its_position() {
        let errors = check_kotlin_source("package a\n\nfun f() {\n    val x = (1 + \n}\n");
        assert!(!errors.is_empty());
        assert!(errors[0].line >= 4, "{errors:?}");
        let errors =
            check_kotlin_source("class A {\n    fun g() {\n        val y = 1 +\n    }\n}\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].line, errors[0].column), (3, 19), "{errors:?}");
    }

    #[test]
    fn text_the_grammar_drops_silently_is_an_error() {
        // The grammar's recovery swallows the stray `)` and the declaration after it without an
        // ERROR node; the coverage check still catches it.
        let source = "val x = listOf(1, 2))\nval y = 2\n";
        assert!(!parse_kotlin(source).root_node().has_error());
        let errors = check_kotlin_source(source);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].line, errors[0].column), (1, 21), "{errors:?}");
    }

    #[test]
    fn build_directories_are_left_out() {
        let dir = std::env::temp_dir().join(format!("parse-check-kotlin-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("app/src/main/kotlin")).unwrap();
        fs::create_dir_all(dir.join("app/build/generated")).unwrap();
        fs::write(
            dir.join("settings.gradle.kts"),
            "rootProject.name = \"x\"\n",
        )
        .unwrap();
        fs::write(dir.join("app/src/main/kotlin/A.kt"), "class A\n").unwrap();
        fs::write(dir.join("app/src/main/kotlin/notes.txt"), "not kotlin\n").unwrap();
        fs::write(dir.join("app/build/generated/B.kt"), "class B\n").unwrap();
        let (files, left_out) = kotlin_files(&dir).unwrap();
        assert_eq!(
            files,
            vec![
                dir.join("app/src/main/kotlin/A.kt"),
                dir.join("settings.gradle.kts")
            ]
        );
        assert_eq!(left_out, vec![dir.join("app/build")]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
