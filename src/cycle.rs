//! The UTC+8 billing calendar.
//!
//! Huawei bills in China Standard Time: a `bill_cycle` of `2026-03` runs from
//! 2026-03-01T00:00+08:00 (= 2026-02-28T16:00Z) to 2026-04-01T00:00+08:00, and it
//! becomes final at 10:00 UTC+8 on the 3rd of the next month (fact sheet §1.5).
//! Every cycle/date computation in hcbill goes through this module so that the
//! offset is applied in exactly one place.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds east of UTC of the billing calendar.
pub const BILLING_OFFSET_SECS: i32 = 8 * 3600;

pub fn billing_tz() -> FixedOffset {
    FixedOffset::east_opt(BILLING_OFFSET_SECS).expect("valid offset")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid billing cycle {0:?}: expected YYYY-MM (e.g. 2026-03)")]
pub struct CycleError(pub String);

/// A billing month (`bill_cycle`), ordered chronologically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BillCycle {
    year: i32,
    month: u32,
}

impl BillCycle {
    pub fn new(year: i32, month: u32) -> Result<Self, CycleError> {
        if !(2000..=2999).contains(&year) || !(1..=12).contains(&month) {
            return Err(CycleError(format!("{year:04}-{month:02}")));
        }
        Ok(Self { year, month })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    /// The cycle a UTC instant falls in, on the UTC+8 calendar.
    pub fn containing(instant: DateTime<Utc>) -> Self {
        let local = instant.with_timezone(&billing_tz());
        Self {
            year: local.year(),
            month: local.month(),
        }
    }

    pub fn succ(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn pred(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// First local (UTC+8) day of the cycle.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid cycle")
    }

    /// Last local (UTC+8) day of the cycle.
    pub fn last_day(self) -> NaiveDate {
        self.succ().first_day().pred_opt().expect("valid date")
    }

    pub fn days(self) -> u32 {
        self.last_day().day()
    }

    /// The UTC instant the cycle starts (00:00 UTC+8 on the 1st).
    pub fn start_utc(self) -> DateTime<Utc> {
        local_midnight_utc(self.first_day())
    }

    /// The UTC instant the cycle ends (exclusive).
    pub fn end_utc(self) -> DateTime<Utc> {
        self.succ().start_utc()
    }

    /// When Huawei closes the cycle: 10:00 UTC+8 on the 3rd of the next month
    /// (monthly-settlement customers: the 4th; cover that with `grace`).
    pub fn final_at(self, grace: Duration) -> DateTime<Utc> {
        let third = self.succ().first_day() + Duration::days(2);
        let ten = billing_tz()
            .from_local_datetime(&third.and_hms_opt(10, 0, 0).expect("valid time"))
            .single()
            .expect("fixed offsets are unambiguous");
        ten.with_timezone(&Utc) + grace
    }

    pub fn is_final(self, now: DateTime<Utc>, grace: Duration) -> bool {
        now >= self.final_at(grace)
    }

    /// Inclusive range of cycles.
    pub fn range(from: Self, to: Self) -> impl Iterator<Item = BillCycle> {
        let mut next = Some(from);
        std::iter::from_fn(move || {
            let cur = next?;
            if cur > to {
                return None;
            }
            next = Some(cur.succ());
            Some(cur)
        })
    }
}

/// 00:00 at the start of a UTC+8 local day, as a UTC instant.
pub fn local_midnight_utc(day: NaiveDate) -> DateTime<Utc> {
    billing_tz()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("valid time"))
        .single()
        .expect("fixed offsets are unambiguous")
        .with_timezone(&Utc)
}

impl fmt::Display for BillCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for BillCycle {
    type Err = CycleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CycleError(s.to_string());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Self::new(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?).map_err(|_| bad())
    }
}

impl Serialize for BillCycle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BillCycle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let c: BillCycle = "2026-03".parse().unwrap();
        assert_eq!(c.to_string(), "2026-03");
        for bad in [
            "2026-3",
            "2026-13",
            "26-03",
            "2026/03",
            "",
            "2026-00",
            "abcd-ef",
            "2026-03-01",
        ] {
            assert!(bad.parse::<BillCycle>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cycle_starts_at_utc_plus_8_midnight() {
        let c: BillCycle = "2026-03".parse().unwrap();
        assert_eq!(c.start_utc().to_rfc3339(), "2026-02-28T16:00:00+00:00");
        assert_eq!(c.end_utc().to_rfc3339(), "2026-03-31T16:00:00+00:00");
        assert_eq!(c.days(), 31);
        assert_eq!("2028-02".parse::<BillCycle>().unwrap().days(), 29);
    }

    #[test]
    fn containing_uses_the_billing_calendar() {
        let just_before = "2026-02-28T15:59:59Z".parse::<DateTime<Utc>>().unwrap();
        let at = "2026-02-28T16:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(BillCycle::containing(just_before).to_string(), "2026-02");
        assert_eq!(BillCycle::containing(at).to_string(), "2026-03");
    }

    #[test]
    fn finality_is_10am_utc8_on_the_3rd() {
        let c: BillCycle = "2026-10".parse().unwrap();
        assert_eq!(c.final_at(Duration::zero()).to_rfc3339(), "2026-11-03T02:00:00+00:00");
        let before = "2026-11-03T01:59:59Z".parse().unwrap();
        assert!(!c.is_final(before, Duration::zero()));
        assert!(c.is_final("2026-11-03T02:00:00Z".parse().unwrap(), Duration::zero()));
        assert!(!c.is_final("2026-11-03T02:00:00Z".parse().unwrap(), Duration::hours(24)));
    }

    #[test]
    fn range_crosses_years() {
        let from = "2025-11".parse().unwrap();
        let to = "2026-02".parse().unwrap();
        let v: Vec<String> = BillCycle::range(from, to).map(|c| c.to_string()).collect();
        assert_eq!(v, ["2025-11", "2025-12", "2026-01", "2026-02"]);
        assert_eq!(BillCycle::range(to, from).count(), 0);
    }
}
