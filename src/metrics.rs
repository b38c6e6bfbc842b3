//! Prometheus metrics: messages by route and intent, classification latency, automated-answer
//! rate, handoffs by reason, and errors by kind. Rendered at `/metrics`.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    pub messages: IntCounterVec,
    pub classification_seconds: Histogram,
    pub automated: IntCounter,
    pub shopper_messages: IntCounter,
    pub automated_ratio: Gauge,
    pub handoffs: IntCounterVec,
    pub errors: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let messages = IntCounterVec::new(
            Opts::new(
                "switchboard_messages_total",
                "Shopper messages by route and intent",
            ),
            &["route", "intent"],
        )
        .expect("valid metric");
        let classification_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "switchboard_classification_seconds",
                "Time to classify one message (queueing included)",
            )
            .buckets(vec![
                0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("valid metric");
        let automated = IntCounter::new(
            "switchboard_automated_answers_total",
            "Shopper messages the bot answered itself",
        )
        .expect("valid metric");
        let shopper_messages = IntCounter::new(
            "switchboard_shopper_messages_total",
            "Shopper messages handled",
        )
        .expect("valid metric");
        let automated_ratio = Gauge::new(
            "switchboard_automated_answer_rate",
            "Share of shopper messages answered by the bot since start",
        )
        .expect("valid metric");
        let handoffs = IntCounterVec::new(
            Opts::new("switchboard_handoffs_total", "Handoffs to humans by reason"),
            &["reason"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new("switchboard_errors_total", "Error responses by kind"),
            &["kind"],
        )
        .expect("valid metric");
        for m in [
            Box::new(messages.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(classification_seconds.clone()),
            Box::new(automated.clone()),
            Box::new(shopper_messages.clone()),
            Box::new(automated_ratio.clone()),
            Box::new(handoffs.clone()),
            Box::new(errors.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        Self {
            registry,
            messages,
            classification_seconds,
            automated,
            shopper_messages,
            automated_ratio,
            handoffs,
            errors,
        }
    }

    /// Counts one handled shopper message.
    pub fn record_turn(&self, route: &str, intent: &str, automated: bool) {
        self.messages.with_label_values(&[route, intent]).inc();
        self.shopper_messages.inc();
        if automated {
            self.automated.inc();
        }
        let total = self.shopper_messages.get().max(1) as f64;
        self.automated_ratio
            .set(self.automated.get() as f64 / total);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
