//! Where the config file is: `--config`, then `CODEMODE_CONFIG`, then
//! `./codemode.toml`, then the user's config directory
//! (`$XDG_CONFIG_HOME/codemode/codemode.toml`, `~/Library/Application
//! Support/codemode/codemode.toml`, `%APPDATA%\codemode\codemode.toml`).
//!
//! Desktop clients start servers in a directory of their choosing (often `/`
//! or the user's home), so `./codemode.toml` alone would make a config that
//! works in a terminal fail inside Claude Desktop; the user directory is the
//! place that works from anywhere. Resolved once per command, with where it
//! came from, so that errors and `check` can say which file was read and why.

use std::path::{Path, PathBuf};

/// The environment variable naming the config file (after `--config`).
pub const ENV: &str = "CODEMODE_CONFIG";

/// The file name looked for in the current and the user's config directory.
pub const FILE_NAME: &str = "codemode.toml";

/// Why a config file was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `--config FILE`.
    Flag,
    /// `CODEMODE_CONFIG=FILE`.
    Env,
    /// `./codemode.toml`.
    CurrentDir,
    /// The user's config directory.
    UserDir,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--config",
            Origin::Env => ENV,
            Origin::CurrentDir => "the current directory",
            Origin::UserDir => "the user config directory",
        })
    }
}

/// The config file a command reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its path.
    pub path: PathBuf,
    /// Why this one.
    pub origin: Origin,
}

/// Where the environment says things are: read once, passed in, so that tests
/// do not have to change the process's own environment.
#[derive(Clone, Debug, Default)]
pub struct Places {
    /// `CODEMODE_CONFIG`, when set and not empty.
    pub env: Option<PathBuf>,
    /// The current directory.
    pub cwd: PathBuf,
    /// The user's config directory (the platform's, without `codemode/`).
    pub user_config: Option<PathBuf>,
}

impl Places {
    /// From this process's environment.
    pub fn from_env() -> Places {
        Places {
            env: std::env::var_os(ENV).filter(|v| !v.is_empty()).map(PathBuf::from),
            cwd: std::env::current_dir().unwrap_or_default(),
            user_config: user_config_dir(),
        }
    }

    /// `<user config dir>/codemode/codemode.toml`, whether or not it exists.
    pub fn user_file(&self) -> Option<PathBuf> {
        self.user_config.as_ref().map(|d| d.join("codemode").join(FILE_NAME))
    }

    /// The config file, in the order of the module's doc; `Ok(None)` when
    /// none exists. A `--config` or `CODEMODE_CONFIG` that names a missing
    /// file is an error (a typo must not silently fall through to another
    /// file).
    pub fn find(&self, flag: Option<&Path>) -> Result<Option<Found>, String> {
        if let Some(p) = flag {
            return Ok(Some(Found { path: p.to_path_buf(), origin: Origin::Flag }));
        }
        if let Some(p) = &self.env {
            if !p.is_file() {
                return Err(format!(
                    "{ENV}={} names no file: create it (`codemode init`), fix the path, or unset {ENV}",
                    p.display()
                ));
            }
            return Ok(Some(Found { path: p.clone(), origin: Origin::Env }));
        }
        let here = self.cwd.join(FILE_NAME);
        if here.is_file() {
            return Ok(Some(Found { path: PathBuf::from(FILE_NAME), origin: Origin::CurrentDir }));
        }
        if let Some(user) = self.user_file().filter(|p| p.is_file()) {
            return Ok(Some(Found { path: user, origin: Origin::UserDir }));
        }
        Ok(None)
    }

    /// The sentence for "no config": every place that was looked at.
    pub fn nothing_found(&self) -> String {
        let user = self.user_file().map(|p| format!(", {}", p.display())).unwrap_or_default();
        format!(
            "no API given: pass --config FILE or --spec FILE_OR_URL, set {ENV}, or create a config (`codemode init --spec FILE_OR_URL`); looked for ./{FILE_NAME}{user}"
        )
    }
}

/// The platform's per-user config directory: `$XDG_CONFIG_HOME` or
/// `~/.config` (Linux and other Unix), `~/Library/Application Support`
/// (macOS), `%APPDATA%` (Windows). Read from the environment the way the
/// `dirs` crate does, without the dependency.
pub fn user_config_dir() -> Option<PathBuf> {
    #[cfg(windows)]
    {
        std::env::var_os("APPDATA").filter(|v| !v.is_empty()).map(PathBuf::from)
    }
    #[cfg(target_os = "macos")]
    {
        home_dir().map(|h| h.join("Library").join("Application Support"))
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| home_dir().map(|h| h.join(".config")))
    }
}

/// The user's home directory (`HOME`, `USERPROFILE` on Windows).
pub fn home_dir() -> Option<PathBuf> {
    let var = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(dir: &Path) -> Places {
        Places { env: None, cwd: dir.join("cwd"), user_config: Some(dir.join("xdg")) }
    }

    #[test]
    fn the_order_is_flag_env_cwd_user() {
        let dir = std::env::temp_dir().join(format!("codemode-discover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("cwd")).unwrap();
        std::fs::create_dir_all(dir.join("xdg/codemode")).unwrap();
        let mut p = places(&dir);
        // Nothing anywhere: None, and the message names every place.
        assert_eq!(p.find(None).unwrap(), None);
        let msg = p.nothing_found();
        assert!(msg.contains("./codemode.toml") && msg.contains("xdg/codemode/codemode.toml"), "{msg}");
        assert!(msg.contains("CODEMODE_CONFIG") && msg.contains("codemode init"), "{msg}");
        // The user directory.
        let user = dir.join("xdg/codemode/codemode.toml");
        std::fs::write(&user, "").unwrap();
        assert_eq!(p.find(None).unwrap(), Some(Found { path: user.clone(), origin: Origin::UserDir }));
        // The current directory wins over it (relative, as before).
        std::fs::write(dir.join("cwd/codemode.toml"), "").unwrap();
        assert_eq!(p.find(None).unwrap().unwrap().origin, Origin::CurrentDir);
        // CODEMODE_CONFIG wins over both; a missing one is an error, not a fallback.
        let env = dir.join("env.toml");
        p.env = Some(env.clone());
        let e = p.find(None).unwrap_err();
        assert!(e.contains("CODEMODE_CONFIG=") && e.contains("names no file"), "{e}");
        std::fs::write(&env, "").unwrap();
        assert_eq!(p.find(None).unwrap(), Some(Found { path: env, origin: Origin::Env }));
        // --config wins over everything (its existence is the loader's to report).
        let flag = dir.join("missing.toml");
        assert_eq!(p.find(Some(&flag)).unwrap(), Some(Found { path: flag, origin: Origin::Flag }));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
