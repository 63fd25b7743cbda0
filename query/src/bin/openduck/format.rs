//! Human-readable sizes and times for CLI output.

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

/// The longest duration accepted anywhere on the command line: 100 years.
/// Longer ones are typos (and near `i64::MAX` milliseconds they would
/// overflow the arithmetic that uses them).
pub const MAX_DURATION_MS: i64 = 36_500 * 86_400_000;

/// Parse `90s`, `15m`, `12h`, `7d` (or plain seconds) into milliseconds, at
/// most [`MAX_DURATION_MS`].
pub fn duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let too_long = || format!("duration '{s}' is too long: at most 36500d (100 years)");
    let mult = match unit {
        "" | "s" => 1_000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("invalid duration unit in '{s}': use ms, s, m, h or d")),
    };
    let n: i64 = match num.parse() {
        Ok(n) => n,
        // All digits but more than an i64 holds.
        Err(_) if !num.is_empty() => return Err(too_long()),
        Err(_) => return Err(format!("invalid duration '{s}': use e.g. 90s, 15m, 12h or 7d")),
    };
    match n.checked_mul(mult) {
        Some(ms) if ms <= MAX_DURATION_MS => Ok(ms),
        _ => Err(too_long()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration_ms("7d"), Ok(604_800_000));
        assert_eq!(duration_ms("0s"), Ok(0));
        assert!(duration_ms("7y").is_err());
        assert!(duration_ms("x").is_err());
    }

    #[test]
    fn durations_too_long_are_clear_errors() {
        // Overflows i64 milliseconds: an error, never a panic or a wrap.
        let e = duration_ms("999999999999999d").unwrap_err();
        assert!(e.contains("too long"), "{e}");
        // Too many digits for any integer: still "too long", not "invalid".
        let e = duration_ms("99999999999999999999999s").unwrap_err();
        assert!(e.contains("too long"), "{e}");
        // Fits in i64 but is no sensible grace or retention (> 100 years).
        let e = duration_ms("99999999999d").unwrap_err();
        assert!(e.contains("too long"), "{e}");
        assert_eq!(duration_ms("36500d"), Ok(36_500 * 86_400_000));
        assert!(duration_ms("36501d").is_err());
    }
}
