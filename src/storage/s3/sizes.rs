//! Byte counts for people: `52428800` reads better as `50.0 MiB`.
//!
//! Binary units (KiB = 1024 bytes), as `du -h` and the AWS console use, so that a
//! 5 MiB part size shows as `5.0 MiB`; `space` prints the exact count beside it.

/// `bytes` in the largest binary unit that keeps the number at least 1, one decimal
/// (`0 B`, `999 B`, `1.5 KiB`, `50.0 MiB`, `1.0 GiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Round first so that 1023.97 KiB prints as 1.0 MiB, not 1024.0 KiB.
    while (value * 10.0).round() / 10.0 >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A transfer rate, `bytes` over `seconds`, as `12.3 MiB/s`.
pub fn human_rate(bytes: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".to_string();
    }
    let per_second = (bytes as f64 / seconds).round() as u64;
    format!("{}/s", human_bytes(per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_du() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(50 * 1024 * 1024), "50.0 MiB");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn rates_are_per_second() {
        assert_eq!(human_rate(10 * 1024 * 1024, 2.0), "5.0 MiB/s");
        assert_eq!(human_rate(1, 0.0), "-");
    }
}
