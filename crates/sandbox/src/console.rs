//! `console.log` and friends: what the code prints, kept beside its result.

/// Captured console output, capped in bytes.
#[derive(Debug, Default)]
pub struct Console {
    lines: Vec<String>,
    bytes: usize,
    cap: usize,
    dropped: usize,
}

impl Console {
    /// A console that keeps at most `cap` bytes of output.
    pub fn with_cap(cap: usize) -> Self {
        Console { cap, ..Default::default() }
    }

    /// Appends one line; `warn`, `error`, `info` and `debug` lines get a
    /// `[level] ` prefix, as in Cloudflare's executor.
    pub fn push(&mut self, level: &str, text: &str) {
        let line = match level {
            "log" => text.to_string(),
            other => format!("[{other}] {text}"),
        };
        if self.bytes + line.len() > self.cap {
            let room = self.cap.saturating_sub(self.bytes);
            if room > 64 && self.dropped == 0 {
                let mut cut = room - 1;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.bytes += cut;
                self.lines.push(format!("{}…", &line[..cut]));
            }
            self.dropped += 1;
            return;
        }
        self.bytes += line.len();
        self.lines.push(line);
    }

    /// The kept lines and how many lines were dropped or cut.
    pub fn take(&mut self) -> (Vec<String>, usize) {
        (std::mem::take(&mut self.lines), self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_output_and_counts_what_it_dropped() {
        let mut c = Console::with_cap(100);
        c.push("log", "hello");
        c.push("warn", "careful");
        for _ in 0..10 {
            c.push("log", &"x".repeat(40));
        }
        let (lines, dropped) = c.take();
        assert_eq!(lines[0], "hello");
        assert_eq!(lines[1], "[warn] careful");
        assert!(lines.iter().map(|l| l.len()).sum::<usize>() <= 100 + 3);
        assert!(dropped >= 8, "{dropped}");
    }
}
