//! Dates on the command line and in the config, as UTC milliseconds.

use chrono::{NaiveDate, TimeZone, Utc};

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// Parse `YYYY-MM-DD` as midnight UTC, in milliseconds since the Unix epoch.
pub fn parse_date_ms(text: &str) -> Result<i64, String> {
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date of the form YYYY-MM-DD"))?;
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    Ok(Utc.from_utc_datetime(&midnight).timestamp_millis())
}

/// Format UTC milliseconds as `YYYY-MM-DD HH:MM` for messages and reports.
pub fn format_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Format UTC milliseconds as `YYYY-MM-DD`.
pub fn format_date(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_dates_are_rejected() {
        let ms = parse_date_ms("2015-09-01").unwrap();
        assert_eq!(ms, 1_441_065_600_000);
        assert_eq!(format_date(ms), "2015-09-01");
        assert!(parse_date_ms("2015-13-01").is_err());
        assert!(parse_date_ms("yesterday").is_err());
    }
}
