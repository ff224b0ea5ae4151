//! The running telemetry: providers, instruments, the tool-call span.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::config::{Protocol, Settings};
use crate::context::{self, Incoming};

/// Bucket boundaries the MCP conventions give for their duration histograms.
const MCP_BUCKETS: [f64; 14] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// Bucket boundaries the HTTP conventions give for `http.client.request.duration`.
const HTTP_BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// Telemetry, on or off. Cheap to clone; off is `None` inside, so every
/// method costs a branch and nothing runs in the background.
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("traces", &self.inner.as_ref().is_some_and(|i| i.tracer.is_some()))
            .field("metrics", &self.inner.as_ref().is_some_and(|i| i.instruments.is_some()))
            .finish()
    }
}

pub(crate) struct Inner {
    pub(crate) tracer: Option<SdkTracer>,
    traces: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
    pub(crate) instruments: Option<Instruments>,
    registry: Option<prometheus::Registry>,
    shut: AtomicBool,
}

/// The histograms; one place records each.
pub(crate) struct Instruments {
    /// `mcp.server.operation.duration`: each tool call.
    pub(crate) server: Histogram<f64>,
    /// `http.client.request.duration`: each API request of the code.
    pub(crate) http: Histogram<f64>,
    /// `mcp.client.operation.duration`: each upstream MCP tool call.
    pub(crate) mcp_client: Histogram<f64>,
}

impl Telemetry {
    /// Telemetry off.
    pub fn off() -> Telemetry {
        Telemetry { inner: None }
    }

    /// Starts what `settings` asks for: OTLP exporters (each on a
    /// background thread of the SDK's batch processor and periodic reader)
    /// and the Prometheus registry. With nothing asked, nothing starts.
    /// Call it inside the Tokio runtime: the gRPC exporter's channel lives
    /// on it.
    pub fn start(settings: &Settings) -> Result<Telemetry, String> {
        if !settings.is_on() {
            return Ok(Telemetry::off());
        }
        let resource = Resource::builder()
            .with_service_name(settings.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let scope = InstrumentationScope::builder("codemode").with_version(env!("CARGO_PKG_VERSION")).build();
        let headers: HashMap<String, String> = settings.headers.iter().cloned().collect();
        let metadata = || {
            let mut map = http::HeaderMap::new();
            for (k, v) in &headers {
                if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(v)) {
                    map.insert(k, v);
                }
            }
            opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(map)
        };
        let (tracer, traces) = match &settings.traces_endpoint {
            Some(endpoint) => {
                let builder = opentelemetry_otlp::SpanExporter::builder();
                let exporter = match settings.protocol {
                    Protocol::HttpProtobuf => builder
                        .with_http()
                        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                        .with_endpoint(endpoint)
                        .with_headers(headers.clone())
                        .build(),
                    Protocol::Grpc => builder.with_tonic().with_endpoint(endpoint).with_metadata(metadata()).build(),
                }
                .map_err(|e| format!("telemetry: the OTLP trace exporter for {endpoint}: {e}"))?;
                let provider =
                    SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.clone()).build();
                (Some(provider.tracer_with_scope(scope.clone())), Some(provider))
            }
            None => (None, None),
        };
        let mut registry = None;
        let meters = if settings.metrics_on() {
            let mut builder = SdkMeterProvider::builder().with_resource(resource);
            if let Some(endpoint) = &settings.metrics_endpoint {
                let b = opentelemetry_otlp::MetricExporter::builder();
                let exporter = match settings.protocol {
                    Protocol::HttpProtobuf => b
                        .with_http()
                        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                        .with_endpoint(endpoint)
                        .with_headers(headers.clone())
                        .build(),
                    Protocol::Grpc => b.with_tonic().with_endpoint(endpoint).with_metadata(metadata()).build(),
                }
                .map_err(|e| format!("telemetry: the OTLP metric exporter for {endpoint}: {e}"))?;
                builder = builder.with_reader(PeriodicReader::builder(exporter).build());
            }
            if settings.prometheus {
                let r = prometheus::Registry::new();
                let exporter = opentelemetry_prometheus::exporter()
                    .with_registry(r.clone())
                    .build()
                    .map_err(|e| format!("telemetry: the Prometheus exporter: {e}"))?;
                builder = builder.with_reader(exporter);
                registry = Some(r);
            }
            Some(builder.build())
        } else {
            None
        };
        let instruments = meters.as_ref().map(|p| {
            let meter = p.meter_with_scope(scope);
            Instruments {
                server: meter
                    .f64_histogram("mcp.server.operation.duration")
                    .with_unit("s")
                    .with_description("MCP request duration as observed on the receiver from the time it was received until the result is sent.")
                    .with_boundaries(MCP_BUCKETS.to_vec())
                    .build(),
                http: meter
                    .f64_histogram("http.client.request.duration")
                    .with_unit("s")
                    .with_description("Duration of HTTP client requests.")
                    .with_boundaries(HTTP_BUCKETS.to_vec())
                    .build(),
                mcp_client: meter
                    .f64_histogram("mcp.client.operation.duration")
                    .with_unit("s")
                    .with_description("The duration of the MCP request as observed on the sender from the time it was sent until the response is received.")
                    .with_boundaries(MCP_BUCKETS.to_vec())
                    .build(),
            }
        });
        tracing::info!(
            traces = settings.traces_endpoint.as_deref().unwrap_or("off"),
            metrics = settings.metrics_endpoint.as_deref().unwrap_or("off"),
            protocol = settings.protocol.as_str(),
            prometheus = settings.prometheus,
            service = %settings.service_name,
            "telemetry: on"
        );
        Ok(Telemetry {
            inner: Some(Arc::new(Inner {
                tracer,
                traces,
                meters,
                instruments,
                registry,
                shut: AtomicBool::new(false),
            })),
        })
    }

    /// Whether anything is recorded.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    pub(crate) fn inner(&self) -> Option<&Arc<Inner>> {
        self.inner.as_ref()
    }

    /// The metrics in Prometheus text format (`None` unless `prometheus`
    /// is on).
    pub fn prometheus_text(&self) -> Option<String> {
        let registry = self.inner.as_ref()?.registry.as_ref()?;
        let mut out = String::new();
        prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut out).ok()?;
        Some(out)
    }

    /// Exports what is buffered and stops the exporters (once; later calls
    /// do nothing). Runs the SDK's blocking flush off the async threads.
    pub async fn shutdown(&self) {
        let Some(inner) = self.inner.clone() else { return };
        if inner.shut.swap(true, Ordering::AcqRel) {
            return;
        }
        let done = tokio::task::spawn_blocking(move || {
            if let Some(t) = &inner.traces {
                if let Err(e) = t.shutdown() {
                    tracing::warn!(error = %e, "telemetry: flushing spans failed");
                }
            }
            if let Some(m) = &inner.meters {
                if let Err(e) = m.shutdown() {
                    tracing::warn!(error = %e, "telemetry: flushing metrics failed");
                }
            }
        });
        let _ = done.await;
    }

    /// Starts the SERVER span of one tool call (`tools/call execute`) as a
    /// child of the caller's context, and its duration measurement. With
    /// telemetry off it only carries the caller's context through, for
    /// propagation and log correlation.
    pub fn tool_call(&self, info: ToolCallInfo<'_>) -> ToolCall {
        let remote = info.incoming.context();
        let started = Instant::now();
        let Some(inner) = &self.inner else {
            return ToolCall { cx: remote, started, metric: None, done: false };
        };
        let mut common = vec![
            KeyValue::new("mcp.method.name", "tools/call"),
            KeyValue::new("gen_ai.tool.name", info.tool.to_string()),
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("network.transport", info.transport.as_str()),
        ];
        if info.transport == Transport::Tcp {
            common.push(KeyValue::new("network.protocol.name", "http"));
        }
        if let Some(v) = info.protocol_version {
            common.push(KeyValue::new("mcp.protocol.version", v.to_string()));
        }
        let cx = inner.tracer.as_ref().map(|tracer| {
            let mut attrs = common.clone();
            if let Some(s) = info.session_id {
                attrs.push(KeyValue::new("mcp.session.id", s.to_string()));
            }
            if let Some(id) = info.request_id {
                attrs.push(KeyValue::new("jsonrpc.request.id", id.to_string()));
            }
            let parent = remote.clone().unwrap_or_default();
            let span = tracer
                .span_builder(format!("tools/call {}", info.tool))
                .with_kind(SpanKind::Server)
                .with_attributes(attrs)
                .start_with_context(tracer, &parent);
            parent.with_span(span)
        });
        let metric = inner.instruments.is_some().then(|| (inner.clone(), common));
        ToolCall { cx: cx.or(remote), started, metric, done: false }
    }
}

/// How the tool call arrived (`network.transport`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// stdio.
    #[default]
    Pipe,
    /// Streamable HTTP.
    Tcp,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Pipe => "pipe",
            Transport::Tcp => "tcp",
        }
    }
}

/// What is known about a tool call when it starts.
#[derive(Clone, Copy, Debug)]
pub struct ToolCallInfo<'a> {
    /// `execute` or `search`.
    pub tool: &'a str,
    /// `Mcp-Session-Id`, over HTTP with sessions.
    pub session_id: Option<&'a str>,
    /// The negotiated MCP protocol version.
    pub protocol_version: Option<&'a str>,
    /// The JSON-RPC request id.
    pub request_id: Option<&'a str>,
    /// stdio or HTTP.
    pub transport: Transport,
    /// The caller's trace context.
    pub incoming: &'a Incoming,
}

/// One tool call in flight: its context (attach it around the call with
/// [`ToolCall::context`]) and its measurement. Dropped unfinished — the
/// client cancelled — it ends with `error.type = cancelled`.
pub struct ToolCall {
    cx: Option<Context>,
    started: Instant,
    metric: Option<(Arc<Inner>, Vec<KeyValue>)>,
    done: bool,
}

impl ToolCall {
    /// The context to run the call in: its span, or the caller's context
    /// passed through, or nothing.
    pub fn context(&self) -> Option<Context> {
        self.cx.clone()
    }

    /// `fut` run in [`ToolCall::context`] (in the current context when
    /// there is none), so everything it starts is a child of the call.
    pub fn wrap<F: std::future::Future>(&self, fut: F) -> opentelemetry::context::WithContext<F> {
        use opentelemetry::context::FutureExt as _;
        fut.with_context(self.cx.clone().unwrap_or_else(Context::current))
    }

    /// The trace id, for the `call` log span.
    pub fn trace_id(&self) -> Option<String> {
        self.cx.as_ref().and_then(context::trace_id)
    }

    /// Ends the span and records the duration; `error` is the error type
    /// when the call failed (`timeout`, `PolicyError`…).
    pub fn finish(mut self, error: Option<&str>) {
        self.end(error);
    }

    fn end(&mut self, error: Option<&str>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if let Some(cx) = &self.cx {
            let span = cx.span();
            if span.is_recording() {
                if let Some(e) = error {
                    span.set_attribute(KeyValue::new("error.type", e.to_string()));
                    span.set_status(Status::error(e.to_string()));
                }
                span.end();
            }
        }
        if let Some((inner, mut attrs)) = self.metric.take() {
            if let Some(e) = error {
                attrs.push(KeyValue::new("error.type", e.to_string()));
            }
            if let Some(i) = &inner.instruments {
                i.server.record(self.started.elapsed().as_secs_f64(), &attrs);
            }
        }
    }
}

impl Drop for ToolCall {
    fn drop(&mut self) {
        self.end(Some("cancelled"));
    }
}
