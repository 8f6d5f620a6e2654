//! Wall-clock time and the spec's time formats (spec 1.5).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
}

fn civil(secs: i64) -> Civil {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    Civil { year, month, day, hour: tod / 3600, minute: tod % 3600 / 60, second: tod % 60 }
}

const UTC_PLUS_8: i64 = 8 * 3600;

/// `create_time` of stored rows: `YYYY-MM-DD HH:mm:ss` in UTC+08:00.
pub fn row_time(secs: i64) -> String {
    let c = civil(secs + UTC_PLUS_8);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute, c.second)
}

/// `update_time`, `last_login`, ...: ISO-8601 UTC at second precision, e.g. `2025-07-13T03:46:05.000Z`.
pub fn iso_time(secs: i64) -> String {
    let c = civil(secs);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z", c.year, c.month, c.day, c.hour, c.minute, c.second)
}

/// Group notices' local time string: `YYYY/M/D HH:mm:ss` in UTC+08:00.
pub fn local_time(secs: i64) -> String {
    let c = civil(secs + UTC_PLUS_8);
    format!("{}/{}/{} {:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute, c.second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_spec_examples() {
        // 2025-07-13T03:46:05Z is 11:46:05 in China.
        let t = 1_752_378_365;
        assert_eq!(iso_time(t), "2025-07-13T03:46:05.000Z");
        assert_eq!(row_time(t), "2025-07-13 11:46:05");
        assert_eq!(local_time(1_756_861_445), "2025/9/3 09:04:05");
        assert_eq!(row_time(0), "1970-01-01 08:00:00");
    }
}
