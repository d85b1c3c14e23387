//! `aidocs-obs`: observability plumbing.
//!
//! Owns the metric instruments and their Prometheus exposition ([`Metrics`]; catalogue in
//! `docs/metrics.md`), the process's log and trace setup ([`logging`]) and on-demand CPU
//! profiles ([`profile`]).
//!
//! Must not know: HTTP, the search engine or any backend. Callers hand it label values
//! from closed sets (route templates, modes, outcomes) and scrape-time sources as closures.

pub mod logging;
pub mod metrics;
pub mod profile;

pub use metrics::{Metrics, MetricsError, Outcome, Snapshot, Stage};
