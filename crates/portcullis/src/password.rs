//! Reading passwords for admin commands without putting them on the command line.

use std::io::BufRead;

use anyhow::{bail, Context, Result};

use crate::cli::PasswordSource;

/// The password from the chosen source: an environment variable, or the first line of standard input.
pub fn read(source: &PasswordSource) -> Result<String> {
    let password = if let Some(var) = &source.password_env {
        std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?
    } else {
        if !source.password_stdin {
            eprintln!("password (one line on standard input):");
        }
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}
