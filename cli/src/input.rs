//! Where a document comes from: inline (`'{"name":"Legs"}'`), standard input (`-`) or a file
//! (`@FILE`). Linux caps one command-line argument at 128 KiB, below the 256 KiB a document may
//! be, so large documents come from stdin or a file.

use std::io::Read;

use crate::error::CliError;

/// The JSON text `arg` names.
pub fn document(arg: &str) -> Result<String, CliError> {
    if arg == "-" {
        stdin_text()
    } else if let Some(path) = arg.strip_prefix('@') {
        file_text(path)
    } else {
        Ok(arg.to_string())
    }
}

/// The whole of standard input.
pub fn stdin_text() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| CliError::new("io", format!("cannot read standard input: {e}")))?;
    Ok(text)
}

/// The whole of the file `path` (`-`: standard input).
pub fn file_text(path: &str) -> Result<String, CliError> {
    if path == "-" {
        return stdin_text();
    }
    if path.is_empty() {
        return Err(CliError::usage("`@` needs a file name, e.g. @doc.json"));
    }
    std::fs::read_to_string(path)
        .map_err(|e| CliError::new("io", format!("cannot read {path}: {e}")))
}
