//! Prometheus metrics: messages by route and intent, classification latency, automated-answer
//! rate, handoffs by reason, errors by kind, the queue, and messaging channels' traffic and
//! deliveries. Rendered at `/metrics`.

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
    /// Conversations waiting per team (refreshed on scrape from the database).
    pub queue_length: prometheus::IntGaugeVec,
    /// Seconds from handoff to claim.
    pub wait_seconds: Histogram,
    /// Seconds from handoff to the first human answer.
    pub first_response_seconds: Histogram,
    pub sla_breaches: IntCounterVec,
    pub claims: IntCounterVec,
    pub csat: Histogram,
    /// Messages received from messaging channels, by channel and whether they were new or a
    /// redelivery.
    pub channel_messages: IntCounterVec,
    /// Outbox delivery attempts by channel and outcome (delivered, retry, dead).
    pub outbox_deliveries: IntCounterVec,
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
        let queue_length = prometheus::IntGaugeVec::new(
            Opts::new(
                "switchboard_queue_length",
                "Conversations waiting for a human, by team",
            ),
            &["team"],
        )
        .expect("valid metric");
        let wait_buckets = vec![
            5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        ];
        let wait_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "switchboard_queue_wait_seconds",
                "Seconds from handoff to an agent claiming the conversation",
            )
            .buckets(wait_buckets.clone()),
        )
        .expect("valid metric");
        let first_response_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "switchboard_first_response_seconds",
                "Seconds from handoff to the first human answer",
            )
            .buckets(wait_buckets),
        )
        .expect("valid metric");
        let sla_breaches = IntCounterVec::new(
            Opts::new(
                "switchboard_sla_breaches_total",
                "First human answers after the SLA deadline, by tier",
            ),
            &["tier"],
        )
        .expect("valid metric");
        let claims = IntCounterVec::new(
            Opts::new("switchboard_claims_total", "Claim attempts by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let csat = Histogram::with_opts(
            HistogramOpts::new("switchboard_csat_score", "Satisfaction ratings (1-5)")
                .buckets(vec![1.0, 2.0, 3.0, 4.0, 5.0]),
        )
        .expect("valid metric");
        let channel_messages = IntCounterVec::new(
            Opts::new(
                "switchboard_channel_messages_total",
                "Messages received from messaging channels, by channel and outcome (new, duplicate)",
            ),
            &["channel", "outcome"],
        )
        .expect("valid metric");
        let outbox_deliveries = IntCounterVec::new(
            Opts::new(
                "switchboard_outbox_deliveries_total",
                "Outbox delivery attempts, by channel and outcome (delivered, retry, dead)",
            ),
            &["channel", "outcome"],
        )
        .expect("valid metric");
        for m in [
            Box::new(messages.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(channel_messages.clone()),
            Box::new(outbox_deliveries.clone()),
            Box::new(queue_length.clone()),
            Box::new(wait_seconds.clone()),
            Box::new(first_response_seconds.clone()),
            Box::new(sla_breaches.clone()),
            Box::new(claims.clone()),
            Box::new(csat.clone()),
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
            queue_length,
            wait_seconds,
            first_response_seconds,
            sla_breaches,
            claims,
            csat,
            channel_messages,
            outbox_deliveries,
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
