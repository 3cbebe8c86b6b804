//! Repeated natural keys, found with flat memory however large a month is.
//!
//! A unit's keys are kept as 64-bit hashes with the row that had them. Up to
//! [`SPILL_AT`] of them wait in memory; then they are sorted, checked for
//! repeats and written to an unnamed file as one sorted run. At the end the
//! runs are merged, which finds a repeat across runs. A unit of fewer rows
//! never touches the disk.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;

/// Keys held in memory before a run is written: 2 MiB of (hash, row).
pub const SPILL_AT: usize = 131_072;

/// Two rows with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    pub first: u64,
    pub again: u64,
    /// The key's hash: a re-read that repeats the same key is no drift.
    pub hash: u64,
}

pub struct KeyLog {
    pending: Vec<(u64, u64)>,
    runs: Vec<(File, usize)>,
    /// Where runs go; `None` keeps every key in memory (tests, small tools).
    spill_dir: Option<PathBuf>,
    spill_at: usize,
}

impl KeyLog {
    pub fn new(spill_dir: Option<PathBuf>) -> Self {
        Self {
            pending: Vec::new(),
            runs: Vec::new(),
            spill_dir,
            spill_at: SPILL_AT,
        }
    }

    #[cfg(test)]
    fn spilling_every(mut self, n: usize) -> Self {
        self.spill_at = n;
        self
    }

    /// Records `row`'s key hash. A repeat among the keys held in memory is
    /// reported when they are spilled; every other one by [`KeyLog::finish`].
    pub fn insert(&mut self, hash: u64, row: u64) -> io::Result<Option<Repeat>> {
        self.pending.push((hash, row));
        match &self.spill_dir {
            Some(dir) if self.pending.len() >= self.spill_at => {
                if let Some(r) = sort_and_check(&mut self.pending) {
                    return Ok(Some(r));
                }
                let file = unnamed_file(dir)?;
                let mut w = BufWriter::with_capacity(1 << 16, file);
                for (h, r) in &self.pending {
                    w.write_all(&h.to_le_bytes())?;
                    w.write_all(&r.to_le_bytes())?;
                }
                let mut file = w.into_inner().map_err(|e| e.into_error())?;
                file.rewind()?;
                self.runs.push((file, self.pending.len()));
                self.pending.clear();
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// The first repeat over every key recorded, if any: the runs and the
    /// keys still in memory are merged in hash order.
    pub fn finish(&mut self) -> io::Result<Option<Repeat>> {
        if let Some(r) = sort_and_check(&mut self.pending) {
            return Ok(Some(r));
        }
        if self.runs.is_empty() {
            return Ok(None);
        }
        let mut sources: Vec<Source> = std::mem::take(&mut self.runs)
            .into_iter()
            .map(|(f, n)| Source::Run(BufReader::with_capacity(1 << 16, f), n))
            .collect();
        sources.push(Source::Memory(std::mem::take(&mut self.pending).into_iter()));
        let mut heap = BinaryHeap::new();
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some((h, r)) = s.next()? {
                heap.push(Reverse((h, r, i)));
            }
        }
        let mut last: Option<(u64, u64)> = None;
        while let Some(Reverse((h, r, i))) = heap.pop() {
            if let Some((lh, lr)) = last
                && lh == h
            {
                return Ok(Some(Repeat {
                    first: lr.min(r),
                    again: lr.max(r),
                    hash: h,
                }));
            }
            last = Some((h, r));
            if let Some((h, r)) = sources[i].next()? {
                heap.push(Reverse((h, r, i)));
            }
        }
        Ok(None)
    }
}

enum Source {
    Run(BufReader<File>, usize),
    Memory(std::vec::IntoIter<(u64, u64)>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<(u64, u64)>> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::Run(_, 0) => Ok(None),
            Source::Run(r, left) => {
                let mut b = [0u8; 16];
                r.read_exact(&mut b)?;
                *left -= 1;
                let (h, row) = b.split_at(8);
                Ok(Some((
                    u64::from_le_bytes(h.try_into().expect("8 bytes")),
                    u64::from_le_bytes(row.try_into().expect("8 bytes")),
                )))
            }
        }
    }
}

/// Sorts by hash (then row) and returns the first repeat, if any.
fn sort_and_check(keys: &mut [(u64, u64)]) -> Option<Repeat> {
    keys.sort_unstable();
    keys.windows(2).find(|w| w[0].0 == w[1].0).map(|w| Repeat {
        first: w[0].1,
        again: w[1].1,
        hash: w[0].0,
    })
}

fn unnamed_file(dir: &std::path::Path) -> io::Result<File> {
    crate::sink::create_private_dir(dir).map_err(io::Error::other)?;
    crate::sink::parquet::unnamed_file(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every repeat is found, in memory or across runs, and none is invented.
    #[test]
    fn repeats_are_found_across_runs_and_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        for (n, repeat_at) in [
            (10_000u64, None),
            (10_000, Some((17u64, 9_999u64))),
            (10_000, Some((5_000, 5_001))),
        ] {
            let mut log = KeyLog::new(Some(dir.path().to_path_buf())).spilling_every(1_000);
            let mut found = None;
            for row in 0..n {
                // Distinct, well-spread hashes; the chosen row repeats an earlier one's.
                let key = match repeat_at {
                    Some((first, again)) if row == again => first,
                    _ => row,
                };
                let hash = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                if let Some(r) = log.insert(hash, row).unwrap() {
                    found = Some(r);
                    break;
                }
            }
            let found = match found {
                Some(r) => Some(r),
                None => log.finish().unwrap(),
            };
            assert_eq!(found.map(|r| (r.first, r.again)), repeat_at, "{n} {repeat_at:?}");
        }
        // The runs left no file behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn without_a_spill_directory_everything_stays_in_memory() {
        let mut log = KeyLog::new(None).spilling_every(2);
        for row in 0..10 {
            assert_eq!(log.insert(row * 3, row).unwrap(), None);
        }
        assert!(log.runs.is_empty());
        log.insert(9, 10).unwrap();
        assert_eq!(log.finish().unwrap().map(|r| (r.first, r.again)), Some((3, 10)));
    }
}
