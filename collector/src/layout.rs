//! Where each bucket type keeps its objects: listing prefixes, the
//! `StartAfter` marker for a day, and the key checks applied while listing
//! (spec §2.1–2.3, Wazuh 4.14.7 `buckets_s3/`).

use crate::formats::BucketType;

/// A calendar day (the `only_logs_after` value, or today in UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

impl Day {
    /// Parses `YYYY-MMM-DD` as the module does (`%Y-%b-%d`: month name in
    /// any case, day with or without its leading zero).
    pub fn parse_only_logs_after(text: &str) -> Result<Day, String> {
        let bad = || format!("Argument not a valid date in format YYYY-MMM-DD: '{text}'.");
        let mut parts = text.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let digits = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(y, 4) || !digits(d, 2) {
            return Err(bad());
        }
        let month = MONTHS
            .iter()
            .position(|name| name.eq_ignore_ascii_case(m))
            .ok_or_else(bad)? as u32
            + 1;
        let day = Day {
            year: y.parse().map_err(|_| bad())?,
            month,
            day: d.parse().map_err(|_| bad())?,
        };
        if day.year < 1 || day.day < 1 || day.day > days_in_month(day.year, month) {
            return Err(bad());
        }
        Ok(day)
    }

    /// The day in the form the type's keys use.
    pub fn format(self, kind: BucketType) -> String {
        match kind {
            BucketType::Config => format!("{}/{}/{}", self.year, self.month, self.day),
            BucketType::ServerAccess | BucketType::CiscoUmbrella => {
                format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
            }
            _ => format!("{:04}/{:02}/{:02}", self.year, self.month, self.day),
        }
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        _ => 28,
    }
}

/// The key layout of one configured bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub kind: BucketType,
    /// `path` with its trailing `/` (empty when not configured).
    pub prefix: String,
    /// `path_suffix` with its trailing `/`.
    pub suffix: String,
    pub organization_id: Option<String>,
    /// Native GuardDuty exports (`AWSLogs/...`) rather than Firehose.
    pub guardduty_native: bool,
}

impl Layout {
    /// Whether objects are found per account and region.
    pub fn per_account(&self) -> bool {
        match self.kind {
            BucketType::Cloudtrail
            | BucketType::Config
            | BucketType::Vpcflow
            | BucketType::Alb
            | BucketType::Clb
            | BucketType::Nlb => true,
            BucketType::Guardduty => self.guardduty_native,
            _ => false,
        }
    }

    fn service(&self) -> &'static str {
        match self.kind {
            BucketType::Cloudtrail => "CloudTrail",
            BucketType::Config => "Config",
            BucketType::Vpcflow => "vpcflowlogs",
            BucketType::Guardduty => "GuardDuty",
            _ => "elasticloadbalancing",
        }
    }

    /// Where account folders are listed.
    pub fn base_prefix(&self) -> String {
        let mut p = format!("{}AWSLogs/{}", self.prefix, self.suffix);
        let lb = matches!(
            self.kind,
            BucketType::Alb | BucketType::Clb | BucketType::Nlb
        );
        if let (Some(org), false) = (&self.organization_id, lb) {
            p.push_str(org);
            p.push('/');
        }
        p
    }

    /// Where region folders of an account are listed.
    pub fn service_prefix(&self, account: &str) -> String {
        format!("{}{account}/{}/", self.base_prefix(), self.service())
    }

    /// The listing prefix for an account and region (custom family: `path`).
    pub fn full_prefix(&self, account: &str, region: &str) -> String {
        if self.per_account() {
            format!("{}{region}/", self.service_prefix(account))
        } else {
            self.prefix.clone()
        }
    }

    /// The marker for a day: every object of that day sorts after it.
    pub fn day_marker(&self, account: &str, region: &str, day: Day) -> String {
        format!(
            "{}{}",
            self.full_prefix(account, region),
            day.format(self.kind)
        )
    }

    /// The `StartAfter` of the first listing request, from the last key in
    /// state (if any) and `only_logs_after` (or today).
    pub fn start_after(
        &self,
        account: &str,
        region: &str,
        last_key: Option<&str>,
        only_logs_after: Option<Day>,
        today: Day,
    ) -> String {
        let day_marker = self.day_marker(account, region, only_logs_after.unwrap_or(today));
        let marker = last_key.map_or_else(|| day_marker.clone(), str::to_string);
        if self.kind == BucketType::Config {
            // Only the year is kept; keys are filtered by date afterwards.
            return year_folder(&marker).unwrap_or(marker);
        }
        let mut start = match only_logs_after {
            Some(_) if day_marker > marker => day_marker,
            _ => marker,
        };
        if self.kind == BucketType::ServerAccess {
            let n = self.full_prefix(account, region).len().min(start.len());
            start = format!("{}{}", &start[..n], start[n..].replace('/', "-"));
        }
        if self.kind == BucketType::Guardduty && self.guardduty_native {
            if let Some(folder) = guardduty_day_folder(&start) {
                start = folder;
            }
        }
        start
    }

    /// Whether a listed key belongs to the layout: types whose keys start
    /// with a date need that date right after the listing prefix.
    pub fn key_in_layout(&self, key: &str, account: &str, region: &str) -> bool {
        if key.is_empty() || key.ends_with('/') {
            return false;
        }
        let needs_date = matches!(
            self.kind,
            BucketType::Alb
                | BucketType::Clb
                | BucketType::Nlb
                | BucketType::Custom
                | BucketType::Waf
                | BucketType::Guardduty
                | BucketType::ServerAccess
        );
        if !needs_date {
            return true;
        }
        let found = if self.kind == BucketType::ServerAccess {
            find_date(key, &[4, 2, 2, 2, 2, 2], b'-')
        } else {
            find_date(key, &[4, 2, 2], b'/')
        };
        found == Some(self.full_prefix(account, region).len())
    }
}

/// Start of the first run of digit groups of the given widths joined by
/// `sep` (`\d{4}/\d{2}/\d{2}` and the like), searching left to right.
fn find_date(key: &str, widths: &[usize], sep: u8) -> Option<usize> {
    let b = key.as_bytes();
    'start: for start in 0..b.len() {
        let mut i = start;
        for (n, w) in widths.iter().enumerate() {
            if n > 0 {
                if b.get(i) != Some(&sep) {
                    continue 'start;
                }
                i += 1;
            }
            if i + w > b.len() || !b[i..i + w].iter().all(u8::is_ascii_digit) {
                continue 'start;
            }
            i += w;
        }
        return Some(start);
    }
    None
}

/// `(.*?/\d{4}/)` of a config marker.
fn year_folder(marker: &str) -> Option<String> {
    let b = marker.as_bytes();
    (0..b.len()).find_map(|i| {
        (b[i] == b'/'
            && b.len() >= i + 6
            && b[i + 1..i + 5].iter().all(u8::is_ascii_digit)
            && b[i + 5] == b'/')
            .then(|| marker[..i + 6].to_string())
    })
}

/// `(.*?/GuardDuty/[^/]+/\d{4}/\d{2}/\d{2}/)` of a marker.
fn guardduty_day_folder(marker: &str) -> Option<String> {
    let pos = marker.find("/GuardDuty/")?;
    let after = pos + "/GuardDuty/".len();
    let region_end = after + marker[after..].find('/')?;
    if region_end == after {
        return None;
    }
    let rest = &marker[region_end + 1..];
    let b = rest.as_bytes();
    let ok = b.len() >= 11
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'/'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'/'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && b[10] == b'/';
    ok.then(|| marker[..region_end + 1 + 11].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(kind: BucketType) -> Layout {
        Layout {
            kind,
            prefix: String::new(),
            suffix: String::new(),
            organization_id: None,
            guardduty_native: false,
        }
    }

    #[test]
    fn only_logs_after_forms() {
        let d = Day::parse_only_logs_after("2024-mar-1").unwrap();
        assert_eq!(
            d,
            Day {
                year: 2024,
                month: 3,
                day: 1
            }
        );
        assert!(Day::parse_only_logs_after("2024-03-01").is_err());
        assert!(Day::parse_only_logs_after("2023-FEB-29").is_err());
        assert_eq!(d.format(BucketType::Config), "2024/3/1");
        assert_eq!(d.format(BucketType::ServerAccess), "2024-03-01");
    }

    #[test]
    fn markers() {
        let ola = Day {
            year: 2024,
            month: 3,
            day: 10,
        };
        let today = Day {
            year: 2026,
            month: 11,
            day: 23,
        };
        let ct = Layout {
            prefix: "logs/".into(),
            suffix: "sfx/".into(),
            ..layout(BucketType::Cloudtrail)
        };
        assert_eq!(
            ct.start_after("111111111111", "us-east-1", None, Some(ola), today),
            "logs/AWSLogs/sfx/111111111111/CloudTrail/us-east-1/2024/03/10"
        );
        // A later key in state wins; an earlier one does not.
        let later = "logs/AWSLogs/sfx/111111111111/CloudTrail/us-east-1/2024/03/12/x.json";
        assert_eq!(
            ct.start_after("111111111111", "us-east-1", Some(later), Some(ola), today),
            later
        );
        let cfg = layout(BucketType::Config);
        assert_eq!(
            cfg.start_after("1", "r", None, Some(ola), today),
            "AWSLogs/1/Config/r/2024/"
        );
        let sa = layout(BucketType::ServerAccess);
        assert_eq!(
            sa.start_after("1", "r", None, Some(ola), today),
            "2024-03-10"
        );
        let gd = Layout {
            guardduty_native: true,
            ..layout(BucketType::Guardduty)
        };
        assert_eq!(
            gd.start_after(
                "1",
                "r",
                Some("AWSLogs/1/GuardDuty/r/2024/03/11/abc.jsonl.gz"),
                None,
                today
            ),
            "AWSLogs/1/GuardDuty/r/2024/03/11/"
        );
    }

    #[test]
    fn keys_in_layout() {
        let custom = Layout {
            prefix: "macie/".into(),
            ..layout(BucketType::Custom)
        };
        assert!(custom.key_in_layout("macie/2024/03/10/10/s-1-2024-03-10-10-05-33-x", "", ""));
        // only the position counts (the listing prefix already fixed the start)
        assert!(!custom.key_in_layout("macie/x/2024/03/10/y", "", ""));
        assert!(!custom.key_in_layout("macie/", "", ""));
        let sa = layout(BucketType::ServerAccess);
        assert!(sa.key_in_layout("2024-03-10-10-05-33-0123456789ABCDEF", "", ""));
        assert!(!sa.key_in_layout("logs/2024-03-10-10-05-33-0123456789ABCDEF", "", ""));
        assert!(layout(BucketType::Cloudtrail).key_in_layout("AWSLogs/anything", "1", "r"));
    }
}
