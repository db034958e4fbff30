//! What the user gives: a document, inline (`'{"name":"Legs"}'`), from standard input (`-`) or a
//! file (`@FILE`) — Linux caps one command-line argument at 128 KiB, below the 256 KiB a document
//! may be, so large documents come from stdin or a file —, and the yes of a destructive command.

use std::io::{BufRead, IsTerminal, Read, Write};

use crate::error::CliError;

/// Asks `question` (`[y/N]`) on the terminal; anything but yes fails `cancelled` with
/// `refused`. Without a terminal it fails as a usage error: `what` needs a yes, or `--yes`.
pub fn confirm(what: &str, question: &str, refused: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "{what}: confirm on a terminal, or pass --yes"
        )));
    }
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::new("cancelled", refused)),
    }
}

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
