//! Where `signup` and `login` get the password: `TANDEM_PASSWORD`, else the first line of
//! standard input with `--password-stdin`, else a prompt on the terminal. Never a command-line
//! argument, which every user of the machine can read in the process list.

use std::io::{BufRead, IsTerminal};

use crate::error::CliError;

pub const ENV: &str = "TANDEM_PASSWORD";

/// The password for `email`. `confirm` asks twice when prompting (sign-up).
pub fn read(email: &str, from_stdin: bool, confirm: bool) -> Result<String, CliError> {
    let password = if let Some(password) = std::env::var_os(ENV) {
        password
            .into_string()
            .map_err(|_| CliError::usage(format!("{ENV} is not valid UTF-8")))?
    } else if from_stdin {
        first_line_of_stdin()?
    } else if std::io::stdin().is_terminal() {
        prompt(email, confirm)?
    } else {
        return Err(CliError::usage(format!(
            "no password: set {ENV}, pass --password-stdin, or run in a terminal to be asked"
        )));
    };
    if password.is_empty() {
        return Err(CliError::usage("the password is empty"));
    }
    Ok(password)
}

fn first_line_of_stdin() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn prompt(email: &str, confirm: bool) -> Result<String, CliError> {
    let password = rpassword::prompt_password(format!("Password for {email}: "))?;
    if confirm && rpassword::prompt_password("Repeat the password: ")? != password {
        return Err(CliError::usage("the passwords differ"));
    }
    Ok(password)
}
