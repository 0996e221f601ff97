//! What the cache logs: TRACE output captured process-wide, to search for secrets.

#[path = "../../common/captured.rs"]
mod captured;
pub use captured::Captured;

/// Everything this test binary's cache logs, at TRACE, with the fields of the spans each event
/// is in. Installed once, globally: a thread-local subscriber would miss events from the
/// runtime's other threads. Only this crate's events: the promise is about what it writes.
pub fn captured_log() -> &'static Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "reqwest_dynamodb_cache=trace",
            ))
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}
