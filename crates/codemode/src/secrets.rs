//! Where a secret of the config comes from: an environment variable
//! (`<field>_env`), a file (`<field>_file`: Docker and Kubernetes secrets)
//! or a command (`<field>_command`: a password manager, a cloud secret
//! store's CLI). Each is read once, at start-up; a literal secret in the
//! config is refused (see `config.rs`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a `<field>_command` may run before start-up fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes read from a secret file or a command's output.
const MAX_SECRET_BYTES: usize = 64 * 1024;

/// One secret's source, as the config names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// `<field>_env = "VAR"`.
    Env(String),
    /// `<field>_file = "path"` (relative to the config file).
    File(String),
    /// `<field>_command = "shell command"`: its standard output.
    Command(String),
}

impl SecretSource {
    /// The source given by the three optional fields `<field>_env`,
    /// `<field>_file`, `<field>_command`: exactly one must be set. `key` is
    /// the config key without suffix (`api[0].auth.token`), for the error.
    pub fn one_of(
        key: &str,
        env: &Option<String>,
        file: &Option<String>,
        command: &Option<String>,
    ) -> Result<Option<SecretSource>, String> {
        let given: Vec<SecretSource> = [
            env.clone().map(SecretSource::Env),
            file.clone().map(SecretSource::File),
            command.clone().map(SecretSource::Command),
        ]
        .into_iter()
        .flatten()
        .collect();
        match given.len() {
            0 => Ok(None),
            1 => Ok(given.into_iter().next()),
            _ => {
                let f = last(key);
                Err(format!("{key}: give one of `{f}_env`, `{f}_file` or `{f}_command`, not several"))
            }
        }
    }

    /// How it is named in messages (`$VAR`, `file …`, `command …`), never
    /// the secret.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(v) => format!("${v}"),
            SecretSource::File(p) => format!("the file {p}"),
            SecretSource::Command(c) => format!("the command `{}`", shorten(c)),
        }
    }

    /// Reads the secret. `key` is where it is configured
    /// (`api[0].auth.token_file`), `base_dir` what relative paths are
    /// relative to. A file or command output loses its trailing newline
    /// (`\n` or `\r\n`, as `echo` and editors leave it); an empty secret is
    /// an error. A file others may read is read, with a warning.
    pub fn load(&self, key: &str, base_dir: &Path) -> Result<String, String> {
        let value = match self {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => return Ok(v),
                _ => {
                    return Err(format!(
                    "{key}: the environment variable `{var}` is not set (or empty); export it before starting codemode"
                ))
                }
            },
            SecretSource::File(p) => read_file(key, &base_dir.join(p))?,
            SecretSource::Command(c) => run(key, c, base_dir)?,
        };
        let value = trim_newline(&value).to_string();
        if value.is_empty() {
            return Err(format!("{key}: {} gave an empty secret", self.describe()));
        }
        Ok(value)
    }
}

fn last(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

/// One trailing `\n` or `\r\n` (a file may end with several: only the
/// last line break is the editor's).
fn trim_newline(s: &str) -> &str {
    s.strip_suffix("\r\n").or_else(|| s.strip_suffix('\n')).unwrap_or(s)
}

fn read_file(key: &str, path: &PathBuf) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{key}: cannot read the secret file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{key}: {shown} is not a file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o004 != 0 {
            tracing::warn!(
                file = %shown,
                mode = format!("{:o}", mode & 0o777),
                "{key}: the secret file is readable by every user of this machine; restrict it (chmod 600, or 640 with a group)"
            );
        }
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("{key}: cannot read the secret file {shown}: {e}"))?;
    if bytes.len() > MAX_SECRET_BYTES {
        return Err(format!("{key}: {shown} is larger than {MAX_SECRET_BYTES} bytes; that is not a secret"));
    }
    String::from_utf8(bytes).map_err(|_| format!("{key}: {shown} is not UTF-8 text"))
}

/// Runs `command` with `sh -c` in `base_dir`, with codemode's environment,
/// no standard input, at most [`COMMAND_TIMEOUT`]; its standard output is
/// the secret, its standard error is shown only when it fails (the first
/// line, which should not be the secret).
fn run(key: &str, command: &str, base_dir: &Path) -> Result<String, String> {
    let shown = shorten(command);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(if base_dir.as_os_str().is_empty() { Path::new(".") } else { base_dir })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{key}: cannot start `{shown}`: {e}"))?;
    // Read both pipes on threads so a chatty command cannot block on a
    // full pipe while we wait for it.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = (&mut out).take(MAX_SECRET_BYTES as u64 + 1).read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = (&mut err).take(4096).read_to_end(&mut b);
        b
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{key}: `{shown}` did not finish within {} s; make it faster (or read the secret from a file with `_file`)",
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("{key}: waiting for `{shown}`: {e}")),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        let why = String::from_utf8_lossy(&stderr).lines().next().unwrap_or("").trim().to_string();
        return Err(format!(
            "{key}: `{shown}` failed ({status}){}; fix the command or give the secret another way (`_env`, `_file`)",
            if why.is_empty() { String::new() } else { format!(": {}", shorten(&why)) }
        ));
    }
    if stdout.len() > MAX_SECRET_BYTES {
        return Err(format!("{key}: `{shown}` printed more than {MAX_SECRET_BYTES} bytes; that is not a secret"));
    }
    String::from_utf8(stdout).map_err(|_| format!("{key}: `{shown}` printed something that is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("codemode-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_file_loses_its_trailing_newline_only() {
        let d = dir();
        std::fs::write(d.join("tok"), "s3cret-value\n").unwrap();
        std::fs::write(d.join("crlf"), "s3cret value \r\n").unwrap();
        let f = |p: &str| SecretSource::File(p.into()).load("api[0].auth.token_file", &d);
        assert_eq!(f("tok").unwrap(), "s3cret-value");
        assert_eq!(f("crlf").unwrap(), "s3cret value ");
        let e = f("missing").unwrap_err();
        assert!(e.starts_with("api[0].auth.token_file: cannot read the secret file"), "{e}");
        std::fs::write(d.join("empty"), "\n").unwrap();
        assert!(f("empty").unwrap_err().contains("empty secret"));
    }

    #[test]
    fn a_command_runs_once_with_a_timeout_and_a_clear_failure() {
        let d = dir();
        let c = |cmd: &str| SecretSource::Command(cmd.into()).load("mcp[0].headers_command.Authorization", &d);
        assert_eq!(c("printf 'Bearer abc-123\\n'").unwrap(), "Bearer abc-123");
        let e = c("echo nope >&2; exit 3").unwrap_err();
        assert!(e.contains("failed (exit status: 3): nope") && e.contains("mcp[0].headers_command"), "{e}");
        let started = Instant::now();
        let e = c("sleep 30").unwrap_err();
        assert!(e.contains("did not finish within 10 s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(15));
    }

    #[test]
    fn exactly_one_source() {
        let s = |e: Option<&str>, f: Option<&str>| {
            SecretSource::one_of("api[0].auth.token", &e.map(Into::into), &f.map(Into::into), &None)
        };
        assert_eq!(s(Some("T"), None).unwrap(), Some(SecretSource::Env("T".into())));
        assert_eq!(s(None, None).unwrap(), None);
        let e = s(Some("T"), Some("f")).unwrap_err();
        assert_eq!(e, "api[0].auth.token: give one of `token_env`, `token_file` or `token_command`, not several");
    }
}
