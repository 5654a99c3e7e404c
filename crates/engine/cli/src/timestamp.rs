//! Times given on the command line (`logs --since/--until`), read as docker's `GetTimestamp`
//! reads them, and Go's duration syntax (`10m`, `1h30m`, `1.5s`).
//!
//! A duration means that long before now and is sent as whole unix seconds; a date or RFC 3339
//! time is sent as `seconds.nanoseconds`; a unix timestamp (`1700000000`, `1700000000.5`) is sent
//! as given. A time without a zone is read in the local zone.

use anyhow::{anyhow, bail, Result};

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i128> {
    let invalid = || anyhow!("time: invalid duration {s:?}");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after) = rest.strip_prefix('.') {
            let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after[..frac_len];
            rest = &after[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit: i128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => bail!("time: missing unit in duration {s:?}"),
            other => bail!("time: unknown unit {other:?} in duration {s:?}"),
        };
        rest = &rest[unit_len..];
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut value = int * unit;
        let mut scale = unit;
        for d in frac_part.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            value += i128::from(d - b'0') * scale;
        }
        total += value;
        if total > i128::from(i64::MAX) {
            return Err(invalid());
        }
    }
    Ok(if negative { -total } else { total })
}

/// The local zone's offset from UTC, in seconds, at unix time `at`.
pub fn local_offset(at: i64) -> i64 {
    let t: libc::time_t = at as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers point at live locals; localtime_r is the thread-safe variant and
    // writes only into `tm`.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff
    } else {
        0
    }
}

/// Docker's `GetTimestamp(value, now)`: the value to send for `since`/`until`. `now_ns` is the
/// reference time in unix nanoseconds and `offset` the local zone's offset in seconds.
pub fn get_timestamp(value: &str, now_ns: i128, offset: i64) -> Result<String> {
    if value != "0" {
        if let Ok(d) = parse_go_duration(value) {
            return Ok((now_ns - d).div_euclid(1_000_000_000).to_string());
        }
    }
    let in_location =
        !(value.contains(['z', 'Z', '+']) || value.bytes().filter(|&b| b == b'-').count() == 3);
    match parse_time(value, in_location) {
        Some((secs, nanos)) => {
            let secs = if in_location { secs - offset } else { secs };
            Ok(format!("{secs}.{nanos:09}"))
        }
        None if value.contains('-') => bail!("parsing time {value:?}: not an RFC 3339 time"),
        None if is_unix_timestamp(value) => Ok(value.to_string()),
        None => bail!("failed to parse value as time or duration: {value:?}"),
    }
}

/// `1700000000` or `1700000000.123456789`.
fn is_unix_timestamp(value: &str) -> bool {
    let (secs, nanos) = value.split_once('.').unwrap_or((value, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let secs = secs.strip_prefix('-').unwrap_or(secs);
    digits(secs) && digits(nanos)
}

/// Parses the layouts `GetTimestamp` picks from: `2006-01-02`, `2006-01-02T15`,
/// `2006-01-02T15:04`, `2006-01-02T15:04:05`, each with an optional fraction after the seconds
/// and, unless `local`, a zone (`Z` or `±07:00`). Returns the civil time read as UTC.
fn parse_time(value: &str, local: bool) -> Option<(i64, u32)> {
    let b = value.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = b.get(from..from + len)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(s).ok()?.parse().ok())?
    };
    let year = num(0, 4)?;
    (b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-')).then_some(())?;
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    let mut pos = 10;
    let (mut hour, mut min, mut sec, mut nanos) = (0, 0, 0, 0u32);
    let colons = value.bytes().filter(|&c| c == b':').count();
    // A `+07:00` zone has a colon that is not part of the time of day.
    let zone_colon = usize::from(!local && !value.contains(['z', 'Z']) && colons > 0);
    let has_fraction = value.contains('.');
    if b.get(pos) == Some(&b'T') {
        let time_colons = if has_fraction { 2 } else { colons - zone_colon };
        hour = num(pos + 1, 2)?;
        pos += 3;
        if time_colons >= 1 {
            (b.get(pos) == Some(&b':')).then_some(())?;
            min = num(pos + 1, 2)?;
            pos += 3;
        }
        if time_colons >= 2 {
            (b.get(pos) == Some(&b':')).then_some(())?;
            sec = num(pos + 1, 2)?;
            pos += 3;
            if b.get(pos) == Some(&b'.') {
                let digits = b[pos + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if digits == 0 || digits > 9 {
                    return None;
                }
                let frac = std::str::from_utf8(&b[pos + 1..pos + 1 + digits]).ok()?;
                nanos = format!("{frac:0<9}").parse().ok()?;
                pos += 1 + digits;
            }
        }
    } else if has_fraction {
        return None;
    }
    let offset = if local {
        0
    } else {
        match b.get(pos) {
            Some(b'Z') => {
                pos += 1;
                0
            }
            Some(&sign @ (b'+' | b'-')) => {
                (b.get(pos + 3) == Some(&b':')).then_some(())?;
                let h = num(pos + 1, 2)?;
                let m = num(pos + 4, 2)?;
                pos += 6;
                let off = h * 3600 + m * 60;
                if sign == b'-' {
                    -off
                } else {
                    off
                }
            }
            _ => return None,
        }
    };
    if pos != b.len() {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec - offset;
    Some((secs, nanos))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Now, in unix nanoseconds.
pub fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10m").unwrap(), 600_000_000_000);
        assert_eq!(parse_go_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_go_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_go_duration(".5ms").unwrap(), 500_000);
        assert_eq!(parse_go_duration("-2h").unwrap(), -7_200_000_000_000);
        assert_eq!(parse_go_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_go_duration("1µs2ns").unwrap(), 1_002);
        assert_eq!(parse_go_duration("0").unwrap(), 0);
        for bad in ["", "10", "1x", "m", "1.s.", "1h-2m", "."] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_go_duration("10").unwrap_err().to_string(),
            "time: missing unit in duration \"10\""
        );
    }

    const NOW: i128 = 1_700_000_000_123_456_789;

    #[test]
    fn durations_are_whole_seconds_before_now() {
        assert_eq!(get_timestamp("10m", NOW, 0).unwrap(), "1699999400");
        assert_eq!(get_timestamp("1.5s", NOW, 0).unwrap(), "1699999998");
        assert_eq!(get_timestamp("-1h", NOW, 0).unwrap(), "1700003600");
    }

    #[test]
    fn rfc3339_and_dates_like_docker() {
        let t = |v: &str| get_timestamp(v, NOW, 3600).unwrap();
        assert_eq!(t("2025-01-01T00:00:00Z"), "1735689600.000000000");
        assert_eq!(t("2025-01-01T00:00:00.5Z"), "1735689600.500000000");
        assert_eq!(t("2025-01-01T02:00:00+02:00"), "1735689600.000000000");
        assert_eq!(t("2025-01-01T00:00:00-01:30"), "1735695000.000000000");
        assert_eq!(t("2024-02-29"), "1709161200.000000000"); // local: UTC+1
        assert_eq!(t("2024-02-29T10"), "1709197200.000000000");
        assert_eq!(t("2024-02-29T10:30"), "1709199000.000000000");
        assert_eq!(t("2024-02-29T10:30:15"), "1709199015.000000000");
        assert_eq!(t("2024-02-29T10:30:15.25"), "1709199015.250000000");
        assert_eq!(t("2024-02-29Z"), "1709164800.000000000");
        assert_eq!(t("2024-02-29T10Z"), "1709200800.000000000");
        assert_eq!(t("1700000000"), "1700000000");
        assert_eq!(t("1700000000.5"), "1700000000.5");
        assert_eq!(t("0"), "0");
        assert!(get_timestamp("2023-02-29", NOW, 0).is_err());
        assert!(get_timestamp("2024-13-01T00:00:00Z", NOW, 0).is_err());
        assert_eq!(
            get_timestamp("yesterday", NOW, 0).unwrap_err().to_string(),
            "failed to parse value as time or duration: \"yesterday\""
        );
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }
}
