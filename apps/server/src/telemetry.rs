//! The tracing subscriber, built once per process: log lines (JSON in
//! production, human-readable in development, filtered by `RUST_LOG`) and,
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OpenTelemetry traces exported
//! over OTLP/HTTP with W3C `traceparent` propagation.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Keeps the trace exporter alive; flushes it on [`Telemetry::shutdown`].
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            eprintln!("eagate: flushing traces failed: {e}");
        }
    }

    /// Flushes and stops the exporter (at process exit).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("eagate: stopping the trace exporter failed: {e}");
        }
    }
}

static TRACES_EXPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process exports traces (then every request gets a span
/// continuing the caller's `traceparent`).
pub fn traces_exported() -> bool {
    TRACES_EXPORTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The OTLP/HTTP traces URL for a base endpoint, as the OpenTelemetry
/// specification derives it (`<base>/v1/traces`).
pub fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

/// Where log lines go and what they show: the process's stdout in the
/// format the configuration asks for (the server), or any writer (tests
/// capture the production format in memory).
#[derive(Debug)]
pub struct LogOutput<W> {
    pub format: LogFormat,
    /// The log filter (`EnvFilter` syntax, e.g. `info,eagate_postgres=debug`).
    pub filter: &'static str,
    /// Whether a set `RUST_LOG` replaces `filter` (the server: yes; tests
    /// that inspect every line: no).
    pub rust_log_overrides: bool,
    pub writer: W,
    /// ANSI colours (pretty format only).
    pub ansi: bool,
}

impl LogOutput<fn() -> std::io::Stdout> {
    /// The server's output: stdout, filtered by `RUST_LOG` (default `info`),
    /// coloured only when stdout is a terminal and `NO_COLOR` is unset, so
    /// logs redirected to a file or a pipe carry no escape codes.
    pub fn stdout(format: LogFormat) -> Self {
        use std::io::IsTerminal as _;
        Self {
            format,
            filter: "info",
            rust_log_overrides: true,
            writer: std::io::stdout,
            ansi: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

/// Installs the global subscriber writing to stdout (the server's
/// subscriber). A second call (as in tests) keeps the first subscriber and
/// exports nothing.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Telemetry {
    init_with(LogOutput::stdout(format), otlp_endpoint)
}

/// Installs the global subscriber — log lines, the `db.*` latency metric
/// and, with an OTLP endpoint, trace export — writing log lines to
/// `output`. The one place the subscriber is built: the server and the
/// tests both come through here.
pub fn init_with<W>(output: LogOutput<W>, otlp_endpoint: Option<&str>) -> Telemetry
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    // Each layer filters on its own: RUST_LOG decides what is logged and
    // traced, never whether the `db.*` latency metric is recorded.
    let rust_log = output
        .rust_log_overrides
        .then(|| std::env::var("RUST_LOG").ok())
        .flatten()
        .filter(|directives| EnvFilter::try_new(directives).is_ok());
    let directives = rust_log.unwrap_or_else(|| output.filter.to_owned());
    let filter = || EnvFilter::new(&directives);
    let logs = match output.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            // The request's root span (request id, route, user or device)
            // appears on every line logged under it.
            .with_span_list(true)
            .with_writer(output.writer)
            .with_filter(filter())
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(output.ansi)
            .with_writer(output.writer)
            .with_filter(filter())
            .boxed(),
    };
    let mut telemetry = Telemetry::default();
    let traces = otlp_endpoint.and_then(|base| match tracer_provider(base) {
        Ok(provider) => {
            let tracer = provider.tracer("eagate");
            telemetry.provider = Some(provider);
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            TRACES_EXPORTED.store(true, std::sync::atomic::Ordering::Relaxed);
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(filter()),
            )
        }
        Err(e) => {
            eprintln!("eagate: traces disabled, cannot set up OTLP export to {base}: {e}");
            None
        }
    });
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(db_metrics_layer())
        .with(traces)
        .try_init()
        .is_ok();
    if !installed {
        telemetry.provider = None;
    }
    telemetry
}

fn tracer_provider(base: &str) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(traces_url(base))
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("eagate")
                .build(),
        )
        .build())
}

/// Reads W3C trace context from request headers.
#[derive(Debug)]
pub struct HeaderExtractor<'a>(pub &'a actix_web::http::header::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// [`DbMetricsLayer`] with a filter of its own: every `db.*` span, whatever
/// `RUST_LOG` says about logging.
fn db_metrics_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // The hint matters: without one the subscriber's most verbose level is
    // TRACE, and every `trace!` in the stack (actix-http's dispatcher has
    // several per request) asks each layer whether it is enabled — about
    // 4k instructions per request, measured with callgrind. Repository
    // spans are `#[instrument]`'s default, INFO.
    DbMetricsLayer.with_filter(
        tracing_subscriber::filter::filter_fn(|meta| meta.is_span() && meta.name().starts_with("db."))
            .with_max_level_hint(tracing::Level::INFO),
    )
}

/// A tracing layer that turns the duration of every `db.*` span (each
/// repository call) into the `db_query_duration_seconds{operation}`
/// histogram.
#[derive(Debug, Default)]
pub struct DbMetricsLayer;

struct Started(std::time::Instant);

impl<S> tracing_subscriber::Layer<S> for DbMetricsLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name().starts_with("db.")
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(Started(std::time::Instant::now()));
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(started) = span.extensions().get::<Started>()
        {
            metrics::histogram!("db_query_duration_seconds", "operation" => span.name())
                .record(started.0.elapsed().as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn database_spans_reach_the_metrics_layer_whatever_the_log_level() {
        let quiet = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(EnvFilter::new("error"));
        let subscriber = tracing_subscriber::registry()
            .with(quiet)
            .with(db_metrics_layer());
        tracing::subscriber::with_default(subscriber, || {
            assert!(
                !tracing::info_span!("db.devices.find").is_disabled(),
                "a db span is recorded for the metric even when logs are at `error`"
            );
            assert!(
                tracing::info_span!("http.request").is_disabled(),
                "other spans follow the log filter"
            );
        });
    }

    #[test]
    fn trace_events_are_refused_by_the_level_hint_not_asked_of_every_layer() {
        use tracing::Subscriber as _;
        use tracing_subscriber::filter::LevelFilter;
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .with_filter(EnvFilter::new("info"));
        let subscriber = tracing_subscriber::registry().with(logs).with(db_metrics_layer());
        assert_eq!(subscriber.max_level_hint(), Some(LevelFilter::INFO));
    }
}
