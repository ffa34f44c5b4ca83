//! What the report says about the machine and the time it ran.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The machine a report ran on, as far as Linux tells (fields are `unknown` elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Machine {
    /// The CPU model name.
    pub cpu: String,
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// Total memory, in GiB.
    pub memory_gib: u64,
    /// The operating system and kernel.
    pub os: String,
    /// The 1, 5 and 15 minute load averages when the run started (empty when unknown):
    /// other work on the machine skews every figure.
    pub load_average: String,
}

impl Machine {
    /// Reads the machine's description from `/proc` and `/etc/os-release`.
    pub fn detect() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = field(&read("/proc/cpuinfo"), "model name", ':')
            .unwrap_or_else(|| "unknown".to_owned());
        let memory_gib = field(&read("/proc/meminfo"), "MemTotal", ':')
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| (kib + (1 << 19)) >> 20)
            .unwrap_or(0);
        let os = field(&read("/etc/os-release"), "PRETTY_NAME", '=')
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| std::env::consts::OS.to_owned());
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
        let load_average = read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib,
            os: if kernel.is_empty() {
                os
            } else {
                format!("{os}, Linux {kernel}")
            },
            load_average,
        }
    }

    /// One line: `CPU, N cores, M GiB RAM, OS` and the load average when known.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{}, {} cores, {} GiB RAM, {}",
            self.cpu, self.cores, self.memory_gib, self.os
        );
        if !self.load_average.is_empty() {
            line.push_str(&format!("; load average at start {}", self.load_average));
        }
        line
    }
}

/// The value of the first `name<sep>value` line of `text`, trimmed.
fn field(text: &str, name: &str, sep: char) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(sep)?;
        (key.trim() == name).then(|| value.trim().to_owned())
    })
}

/// The current time as `YYYY-MM-DD HH:MM UTC`.
pub fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// `secs` after the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The proleptic Gregorian date of `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }

    #[test]
    fn fields() {
        let text = "processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n";
        assert_eq!(
            field(text, "model name", ':').as_deref(),
            Some("Some CPU @ 2GHz")
        );
        assert_eq!(field(text, "flags", ':'), None);
    }
}
