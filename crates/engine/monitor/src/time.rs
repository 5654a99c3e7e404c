//! Wall-clock time as Docker writes it: UTC RFC 3339 with nanoseconds, in Go's
//! `time.RFC3339Nano` layout (trailing zeros of the fraction dropped, no fraction
//! at all on a whole second), which is what json-file log lines and Docker's
//! `FinishedAt` carry. Done by hand: the monitor links nothing but libc.

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31) in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Append `secs.nanos` since the epoch as `2026-11-23T14:29:07.123456789Z`.
pub fn write_rfc3339_nano(out: &mut Vec<u8>, secs: i64, nanos: u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    push_num(out, year.clamp(0, 9999) as u64, 4);
    out.push(b'-');
    push_num(out, month.into(), 2);
    out.push(b'-');
    push_num(out, day.into(), 2);
    out.push(b'T');
    push_num(out, (rem / 3600) as u64, 2);
    out.push(b':');
    push_num(out, (rem / 60 % 60) as u64, 2);
    out.push(b':');
    push_num(out, (rem % 60) as u64, 2);
    if nanos > 0 {
        let mut digits = 9;
        let mut frac = nanos;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        out.push(b'.');
        push_num(out, frac.into(), digits);
    }
    out.push(b'Z');
}

/// The current time, formatted as [`write_rfc3339_nano`] does.
pub fn now_rfc3339_nano() -> String {
    let (secs, nanos) = now();
    let mut out = Vec::with_capacity(32);
    write_rfc3339_nano(&mut out, secs, nanos);
    String::from_utf8(out).expect("ASCII digits and punctuation")
}

/// Seconds and nanoseconds since the epoch (CLOCK_REALTIME).
pub fn now() -> (i64, u32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives across the call.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, ts.tv_nsec as u32)
}

fn push_num(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let start = out.len();
    for _ in 0..width {
        out.push(b'0' + (n % 10) as u8);
        n /= 10;
    }
    out[start..].reverse();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(secs: i64, nanos: u32) -> String {
        let mut out = Vec::new();
        write_rfc3339_nano(&mut out, secs, nanos);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn civil_dates_across_leap_years_and_centuries() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        // 2000 is a leap year (divisible by 400), 1900 and 2100 are not.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-25_508), (1900, 3, 1));
        assert_eq!(civil_from_days(-25_509), (1900, 2, 28));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }

    #[test]
    fn civil_dates_agree_with_a_day_by_day_walk() {
        // Walk the calendar from 1969-01-01 for 1200 years and compare every day.
        let (mut y, mut m, mut d) = (1969i64, 1u32, 1u32);
        for days in -365..(1200 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
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
            d += 1;
            if d > len[m as usize - 1] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(fmt(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            fmt(1_795_444_147, 123_456_789),
            "2026-11-23T14:29:07.123456789Z"
        );
        assert_eq!(fmt(1_795_444_147, 120_000_000), "2026-11-23T14:29:07.12Z");
        assert_eq!(fmt(1_795_444_147, 5), "2026-11-23T14:29:07.000000005Z");
        assert_eq!(
            fmt(951_868_799, 999_999_999),
            "2000-02-29T23:59:59.999999999Z"
        );
        assert_eq!(fmt(-1, 500_000_000), "1969-12-31T23:59:59.5Z");
    }

    #[test]
    fn now_is_plausible() {
        let s = now_rfc3339_nano();
        assert!(s.starts_with("20"), "{s}");
        assert!(s.ends_with('Z'), "{s}");
        assert_eq!(&s[10..11], "T");
    }
}
