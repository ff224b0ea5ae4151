//! `[telemetry]` in `codemode.toml` and the standard `OTEL_*` variables,
//! resolved once into [`Settings`].
//!
//! ```toml
//! [telemetry]
//! otlp_endpoint = "http://127.0.0.1:4318"   # the collector; /v1/traces and /v1/metrics are added for HTTP
//! protocol = "http/protobuf"                # or "grpc" (then the endpoint is usually :4317)
//! service_name = "codemode"
//! headers = { "x-tenant" = "platform" }     # literal, non-secret headers
//! headers_env = { "authorization" = "OTLP_AUTH" }   # secret headers: read from these variables
//! prometheus = false                        # /metrics on the HTTP listener
//! ```
//!
//! **Precedence.** The OpenTelemetry specification leaves open whether
//! programmatic or environment configuration wins; its newer declarative
//! configuration settles it by making the file the source of truth, with
//! environment variables only substituted into it (and `OTEL_CONFIG_FILE`
//! overriding every other variable). codemode follows that model: a key set
//! in `[telemetry]` wins over its `OTEL_*` variable, and a variable fills in
//! what the file leaves out. Within one source a per-signal endpoint
//! (`traces_endpoint`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) wins over the
//! general one and is used as is. Headers are merged; for the same header
//! name `OTEL_EXPORTER_OTLP_HEADERS` wins, because the `opentelemetry-otlp`
//! exporter applies that variable itself after any programmatic header.
//! `OTEL_SDK_DISABLED=true` turns everything off.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[telemetry]`: every key optional. Nothing set (and no `OTEL_*`
/// endpoint in the environment) means telemetry is off.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Base URL of the OTLP receiver for every signal, e.g.
    /// `http://127.0.0.1:4318` (HTTP) or `http://127.0.0.1:4317` (gRPC).
    pub otlp_endpoint: Option<String>,
    /// Traces only, used as is (HTTP: the full `/v1/traces` URL).
    pub traces_endpoint: Option<String>,
    /// Metrics only, used as is (HTTP: the full `/v1/metrics` URL).
    pub metrics_endpoint: Option<String>,
    /// `http/protobuf` (default) or `grpc`.
    pub protocol: Option<Protocol>,
    /// The `service.name` resource attribute. Default `codemode`.
    pub service_name: Option<String>,
    /// Headers sent with every export, literally (nothing secret: the
    /// config refuses literal secrets elsewhere too).
    pub headers: BTreeMap<String, String>,
    /// Headers whose values are read from the named environment variables
    /// (an API key for a hosted collector).
    pub headers_env: BTreeMap<String, String>,
    /// Serve the metrics in Prometheus text format at `/metrics` on the
    /// HTTP listener (behind the listener's Host check and inbound auth).
    pub prometheus: bool,
}

/// How spans and metrics travel to the collector.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies (the specification's default).
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/gRPC.
    #[serde(rename = "grpc")]
    Grpc,
}

impl Protocol {
    /// The name used in config and `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }

    fn parse(s: &str) -> Result<Protocol, String> {
        match s.trim() {
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "grpc" => Ok(Protocol::Grpc),
            "http/json" => Err("`http/json` is not supported: use `http/protobuf` or `grpc`".into()),
            other => Err(format!("unknown OTLP protocol `{other}`: use `http/protobuf` or `grpc`")),
        }
    }
}

/// What the config and the environment resolve to: the one value the rest
/// of codemode reads.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Where spans go (`None`: no traces are exported).
    pub traces_endpoint: Option<String>,
    /// Where metrics go over OTLP (`None`: none pushed).
    pub metrics_endpoint: Option<String>,
    /// The OTLP protocol of both.
    pub protocol: Protocol,
    /// `service.name`.
    pub service_name: String,
    /// Export headers, in order (values may be secret: never printed).
    pub headers: Vec<(String, String)>,
    /// Whether `/metrics` is served.
    pub prometheus: bool,
}

impl std::fmt::Debug for Settings {
    /// Header names only: a value may be a collector's API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("traces_endpoint", &self.traces_endpoint)
            .field("metrics_endpoint", &self.metrics_endpoint)
            .field("protocol", &self.protocol)
            .field("service_name", &self.service_name)
            .field("headers", &self.headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("prometheus", &self.prometheus)
            .finish()
    }
}

impl Settings {
    /// Telemetry off: nothing exported, nothing served.
    pub fn off() -> Settings {
        Settings { service_name: "codemode".into(), ..Settings::default() }
    }

    /// Whether anything at all is recorded (an exporter or `/metrics`).
    pub fn is_on(&self) -> bool {
        self.traces_endpoint.is_some() || self.metrics_endpoint.is_some() || self.prometheus
    }

    /// Whether metrics are recorded (pushed over OTLP, served, or both).
    pub fn metrics_on(&self) -> bool {
        self.metrics_endpoint.is_some() || self.prometheus
    }
}

/// A problem with a `[telemetry]` key or an `OTEL_*` variable: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `telemetry.protocol`, `OTEL_EXPORTER_OTLP_ENDPOINT`…
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Resolves `config` and the environment (`env`, `std::env::var` in
/// production) into [`Settings`], reporting every problem at once.
pub fn resolve(config: &TelemetryConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, Vec<Problem>> {
    let env = |k: &str| env(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(Settings::off());
    }
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| problems.push(Problem { key: key.into(), message });

    let protocol = match (&config.protocol, env("OTEL_EXPORTER_OTLP_PROTOCOL")) {
        (Some(p), _) => *p,
        (None, Some(v)) => Protocol::parse(&v).unwrap_or_else(|m| {
            problem("OTEL_EXPORTER_OTLP_PROTOCOL", m);
            Protocol::default()
        }),
        (None, None) => Protocol::default(),
    };
    // Config first (per-signal, then general), then the environment in the
    // same order: the file wins as a whole, so a config that names a
    // collector is never half-redirected by a stray variable.
    let signal = |own: &Option<String>, own_key: &str, env_key: &str, path: &str| -> Option<(String, String)> {
        let derive = |base: &str| match protocol {
            Protocol::HttpProtobuf => format!("{}/{path}", base.trim_end_matches('/')),
            Protocol::Grpc => base.to_string(),
        };
        if let Some(e) = own {
            return Some((e.clone(), format!("telemetry.{own_key}")));
        }
        if let Some(e) = &config.otlp_endpoint {
            return Some((derive(e), "telemetry.otlp_endpoint".into()));
        }
        if let Some(e) = env(env_key) {
            return Some((e, env_key.into()));
        }
        env("OTEL_EXPORTER_OTLP_ENDPOINT").map(|e| (derive(&e), "OTEL_EXPORTER_OTLP_ENDPOINT".into()))
    };
    let traces = signal(&config.traces_endpoint, "traces_endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "v1/traces");
    let metrics =
        signal(&config.metrics_endpoint, "metrics_endpoint", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "v1/metrics");
    let mut check = |found: Option<(String, String)>| -> Option<String> {
        let (url, key) = found?;
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(url),
            _ => {
                problem(&key, format!("`{url}` is not an http(s) URL (e.g. `http://127.0.0.1:4318`)"));
                None
            }
        }
    };
    let traces_endpoint = check(traces);
    let metrics_endpoint = check(metrics);

    let service_name = config
        .service_name
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| env("OTEL_SERVICE_NAME"))
        .unwrap_or_else(|| "codemode".into());

    let mut headers: Vec<(String, String)> = Vec::new();
    let mut put = |name: &str, value: String| {
        let name = name.trim().to_ascii_lowercase();
        headers.retain(|(k, _)| *k != name);
        headers.push((name, value));
    };
    for (k, v) in &config.headers {
        put(k, v.clone());
    }
    for (k, var) in &config.headers_env {
        match env(var) {
            Some(v) => put(k, v),
            None => problem(
                &format!("telemetry.headers_env.{k}"),
                format!("the environment variable `{var}` is not set (or empty); export it before starting codemode"),
            ),
        }
    }
    if let Some(raw) = env("OTEL_EXPORTER_OTLP_HEADERS") {
        for pair in raw.split(',').filter(|p| !p.trim().is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => put(k, percent_decode(v.trim())),
                _ => problem("OTEL_EXPORTER_OTLP_HEADERS", "expected `name=value` pairs separated by commas".into()),
            }
        }
    }
    for (k, v) in &headers {
        let valid_name = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid_name || v.chars().any(|c| c.is_control()) {
            problem(&format!("telemetry.headers.{k}"), "not a valid header name or value".into());
        }
    }
    if problems.is_empty() {
        Ok(Settings {
            traces_endpoint,
            metrics_endpoint,
            protocol,
            service_name,
            headers,
            prometheus: config.prometheus,
        })
    } else {
        Err(problems)
    }
}

/// `%xx` escapes decoded, as the specification's header format allows.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn nothing_set_is_off() {
        let s = resolve(&TelemetryConfig::default(), &env_of(&[])).unwrap();
        assert!(!s.is_on());
        assert_eq!(s, Settings::off());
    }

    #[test]
    fn http_endpoints_get_signal_paths() {
        let c = TelemetryConfig { otlp_endpoint: Some("http://127.0.0.1:4318/".into()), ..Default::default() };
        let s = resolve(&c, &env_of(&[])).unwrap();
        assert_eq!(s.traces_endpoint.as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(s.metrics_endpoint.as_deref(), Some("http://127.0.0.1:4318/v1/metrics"));
        assert_eq!(s.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.service_name, "codemode");
    }

    #[test]
    fn grpc_endpoints_are_used_as_is() {
        let s = resolve(
            &TelemetryConfig::default(),
            &env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
        )
        .unwrap();
        assert_eq!(s.protocol, Protocol::Grpc);
        assert_eq!(s.traces_endpoint.as_deref(), Some("http://c:4317"));
        assert_eq!(s.metrics_endpoint.as_deref(), Some("http://c:4317"));
    }

    #[test]
    fn config_wins_over_env_and_env_fills_in() {
        let c = TelemetryConfig {
            otlp_endpoint: Some("http://file:4318".into()),
            service_name: Some("gateway".into()),
            ..Default::default()
        };
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env-traces:4318/t"),
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        let s = resolve(&c, &env).unwrap();
        assert_eq!(s.traces_endpoint.as_deref(), Some("http://file:4318"), "grpc from env, endpoint from the file");
        assert_eq!(s.service_name, "gateway");
        assert_eq!(s.protocol, Protocol::Grpc);
    }

    #[test]
    fn per_signal_env_endpoint_turns_on_only_that_signal() {
        let s =
            resolve(&TelemetryConfig::default(), &env_of(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/x")]))
                .unwrap();
        assert_eq!(s.traces_endpoint.as_deref(), Some("http://t:1/x"));
        assert_eq!(s.metrics_endpoint, None);
        assert!(s.is_on() && !s.metrics_on());
    }

    #[test]
    fn headers_merge_with_env_last_and_secrets_from_variables() {
        let c = TelemetryConfig {
            otlp_endpoint: Some("http://c:4318".into()),
            headers: [("X-Tenant".to_string(), "a".to_string()), ("x-team".into(), "t".into())].into(),
            headers_env: [("authorization".to_string(), "OTLP_KEY".to_string())].into(),
            ..Default::default()
        };
        let s = resolve(
            &c,
            &env_of(&[("OTLP_KEY", "Bearer s3cret"), ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=b%20c,extra=1")]),
        )
        .unwrap();
        let h: HashMap<_, _> = s.headers.iter().cloned().collect();
        assert_eq!(h["x-tenant"], "b c");
        assert_eq!(h["x-team"], "t");
        assert_eq!(h["authorization"], "Bearer s3cret");
        assert_eq!(h["extra"], "1");
        assert!(!format!("{s:?}").contains("s3cret"), "Debug never prints header values");
    }

    #[test]
    fn problems_are_reported_at_their_keys() {
        let c = TelemetryConfig {
            otlp_endpoint: Some("ftp://x".into()),
            headers_env: [("authorization".to_string(), "MISSING".to_string())].into(),
            ..Default::default()
        };
        let e = resolve(&c, &env_of(&[])).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"telemetry.otlp_endpoint"), "{e:?}");
        assert!(keys.contains(&"telemetry.headers_env.authorization"), "{e:?}");
        let e = resolve(
            &TelemetryConfig::default(),
            &env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
        )
        .unwrap_err();
        assert_eq!(e[0].key, "OTEL_EXPORTER_OTLP_PROTOCOL");
    }

    #[test]
    fn sdk_disabled_wins() {
        let c = TelemetryConfig { otlp_endpoint: Some("http://c:4318".into()), prometheus: true, ..Default::default() };
        let s = resolve(&c, &env_of(&[("OTEL_SDK_DISABLED", "true")])).unwrap();
        assert!(!s.is_on());
    }

    #[test]
    fn protocol_names_parse_from_toml() {
        #[derive(Deserialize)]
        struct T {
            telemetry: TelemetryConfig,
        }
        let t: T = toml_like(r#"{"telemetry": {"protocol": "grpc", "prometheus": true}}"#);
        assert_eq!(t.telemetry.protocol, Some(Protocol::Grpc));
        assert!(t.telemetry.prometheus);
        assert!(serde_json::from_str::<TelemetryConfig>(r#"{"protcol": "grpc"}"#).is_err(), "unknown keys refused");
    }

    fn toml_like<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }
}
