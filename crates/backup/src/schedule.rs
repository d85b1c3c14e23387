//! Cron schedules for server-side backups (`backup.schedule`, five-field crontab syntax,
//! UTC).

use crate::BackupError;
use std::str::FromStr;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    expr: String,
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Self, BackupError> {
        let cron = croner::Cron::from_str(expr.trim()).map_err(|e| BackupError::Invalid(format!("backup.schedule `{expr}` is not a cron expression: {e}")))?;
        Ok(Self { cron, expr: expr.trim().to_owned() })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nightly_schedule_and_bad_expressions() {
        let s = Schedule::parse("30 2 * * *").unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-28T23:00:00Z").unwrap().to_utc();
        assert_eq!(s.next_after(at).unwrap().to_rfc3339(), "2026-11-29T02:30:00+00:00");
        let e = Schedule::parse("every night").unwrap_err().to_string();
        assert!(e.contains("backup.schedule `every night`"), "{e}");
    }
}
