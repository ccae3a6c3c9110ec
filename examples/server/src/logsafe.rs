//! Text that came from an agent (or any other untrusted peer), made safe to log.
//!
//! [`Untrusted`] displays a string with every control character escaped (`\n`, `\r`, `\t`,
//! `\u{1b}`, …), as well as Unicode bidirectional overrides and the backslash itself, so an
//! agent can neither forge a log line (a newline followed by `audit actor=admin …`) nor send
//! terminal escape sequences to whoever reads the log. Printable text, non-ASCII letters
//! included, is kept as it is. Every log statement that carries an agent-supplied string
//! wraps it: `tracing::info!(error = %Untrusted(&status.error), "…")`.
//!
//! ```
//! use opamp_fleet_server::logsafe::Untrusted;
//!
//! let forged = "ok\n2026-01-01T00:00:00Z INFO audit actor=admin\u{1b}[2J";
//! assert_eq!(
//!     Untrusted(forged).to_string(),
//!     r"ok\n2026-01-01T00:00:00Z INFO audit actor=admin\u{1b}[2J"
//! );
//! assert_eq!(Untrusted("état").to_string(), "état");
//! ```

use std::fmt::{self, Write};

/// Longest text written for one value; the rest is replaced by `…(N more bytes)`.
pub const MAX_LOGGED_CHARS: usize = 1024;

/// A string displayed escaped (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

/// True for characters written as escapes.
fn must_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        // Bidirectional embeddings, overrides and isolates reorder what a reader sees.
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
        // Line and paragraph separators.
        || matches!(c, '\u{2028}' | '\u{2029}')
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (i, c)) in self.0.char_indices().enumerate() {
            if n == MAX_LOGGED_CHARS {
                return write!(f, "…({} more bytes)", self.0.len() - i);
            }
            if must_escape(c) {
                match c {
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    '\\' => f.write_str("\\\\")?,
                    c => write!(f, "\\u{{{:x}}}", c as u32)?,
                }
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_forge_or_hide_text() {
        assert_eq!(Untrusted("a\r\nb\tc\\d").to_string(), r"a\r\nb\tc\\d");
        assert_eq!(
            Untrusted("\u{7f}\u{9b}\u{0}").to_string(),
            r"\u{7f}\u{9b}\u{0}"
        );
        assert_eq!(
            Untrusted("x\u{202e}y\u{2028}").to_string(),
            r"x\u{202e}y\u{2028}"
        );
        assert_eq!(Untrusted("ünïcödé 漢字").to_string(), "ünïcödé 漢字");
        let long = "x".repeat(MAX_LOGGED_CHARS + 10);
        assert_eq!(
            Untrusted(&long).to_string(),
            format!("{}…(10 more bytes)", "x".repeat(MAX_LOGGED_CHARS))
        );
    }
}
