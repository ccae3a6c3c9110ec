//! The tail of the agent's output: the last lines, bounded in count and bytes, so that a
//! failure report can say what the agent printed before it died.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest line kept (longer lines are cut, with a marker).
pub const MAX_LINE: usize = 1024;

/// The last lines of a stream.
#[derive(Debug, Clone)]
pub struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
}

fn cut(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_owned();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

impl Tail {
    /// Keeps at most `max_lines` lines and `max_bytes` bytes.
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        Tail {
            lines: VecDeque::new(),
            bytes: 0,
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Adds a line (cut to [`MAX_LINE`] bytes), dropping the oldest lines over the limits.
    pub fn push(&mut self, line: &str) {
        let line = cut(
            line.trim_end_matches(['\r', '\n']),
            MAX_LINE.min(self.max_bytes),
        );
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > self.max_lines || self.bytes > self.max_bytes {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// The lines, oldest first, joined with `\n`.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether no line was kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Splits a byte stream into lines, cutting lines longer than [`MAX_LINE`] so that memory
/// stays bounded whatever the stream sends.
pub async fn read_lines<R: AsyncRead + Unpin>(mut reader: R, mut on_line: impl FnMut(&str)) {
    let mut chunk = [0u8; 4096];
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut overflow = false;
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &byte in &chunk[..n] {
            if byte == b'\n' {
                on_line(&String::from_utf8_lossy(&line));
                line.clear();
                overflow = false;
            } else if line.len() < MAX_LINE {
                line.push(byte);
            } else if !overflow {
                overflow = true;
                line.extend_from_slice("…".as_bytes());
            }
        }
    }
    if !line.is_empty() {
        on_line(&String::from_utf8_lossy(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_within_limits() {
        let mut tail = Tail::new(3, 1000);
        for i in 0..10 {
            tail.push(&format!("line {i}\n"));
        }
        assert_eq!(tail.text(), "line 7\nline 8\nline 9");
        let mut small = Tail::new(100, 10);
        small.push("aaaaaa");
        small.push("bbbbbb");
        assert_eq!(small.text(), "bbbbbb");
        let mut long = Tail::new(2, 100_000);
        long.push(&"é".repeat(2000));
        assert!(long.text().len() <= MAX_LINE + "…".len());
    }

    #[tokio::test]
    async fn splits_and_bounds_lines() {
        let mut input = b"first\nsecond\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10_000));
        input.extend_from_slice(b"\nlast");
        let mut lines = Vec::new();
        read_lines(&input[..], |l| lines.push(l.to_owned())).await;
        assert_eq!(lines[0], "first");
        assert_eq!(lines[1], "second\r");
        assert!(lines[2].len() <= MAX_LINE + 3);
        assert_eq!(lines[3], "last");
    }
}
