//! Streaming Parquet writer for one unit: batches go straight to a staging
//! file in bounded row groups, so memory stays flat however large a month is.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowWriterOptions, PageKey, PageStore, PageStoreArgs, PageStoreFactory};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use super::{SinkError, io_err};

/// Rows per row group. A row group's finished pages wait in [`SpillStore`]s,
/// not on the heap, so this is chosen for readers, not for memory.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Finished pages a column keeps in memory before the rest of its row group
/// goes to disk: small units never touch the disk; large ones hold at most
/// this per column (about 2 MB for 60 columns).
pub const RESIDENT_PAGE_BYTES: usize = 32 << 10;

/// Rows per data page. A column writer holds its page's values unencoded
/// until the page is cut, so with ~60 columns this, not the row group, is
/// most of a writer's memory: 8192 rows keep it to a few MB (the default
/// 20,000 held three times that) for ~4% more bytes on disk.
pub const PAGE_ROWS: usize = 8192;

/// A column's dictionary may grow to this before the column falls back to
/// plain encoding: columns that repeat (services, regions, codes) stay
/// dictionary-encoded, near-unique ones (ids) stop holding a large dictionary
/// per writer in memory.
pub const DICTIONARY_LIMIT: usize = 128 << 10;

pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_dictionary_page_size_limit(DICTIONARY_LIMIT)
        .set_created_by(format!("hcbill {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Writes one staging file. Dropped before `finish` (an error, a deadline),
/// it removes its file: an unfinished unit leaves nothing behind.
pub struct StagedWriter {
    path: PathBuf,
    writer: Option<ArrowWriter<File>>,
}

/// A finished staging file, ready to be published.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl StagedWriter {
    pub fn create(path: PathBuf, schema: SchemaRef) -> Result<Self, SinkError> {
        if let Some(dir) = path.parent() {
            super::create_private_dir(dir)?;
        }
        let file = super::create_new(&path)?;
        let spill = Arc::new(SpillFactory {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        });
        let mut staged = Self { path, writer: None };
        let options = ArrowWriterOptions::new()
            .with_properties(writer_properties())
            .with_page_store_factory(spill);
        let writer = ArrowWriter::try_new_with_options(file, schema, options).map_err(|source| SinkError::Parquet {
            path: staged.path.display().to_string(),
            source,
        })?;
        staged.writer = Some(writer);
        Ok(staged)
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let writer = self.writer.as_mut().expect("written before finish");
        let perr = |source| SinkError::Parquet {
            path: self.path.display().to_string(),
            source,
        };
        writer.write(batch).map_err(perr)
    }

    /// Closes the file, syncs it and checksums it.
    pub fn finish(mut self) -> Result<StagedFile, SinkError> {
        let path = self.path.clone();
        let perr = |source| SinkError::Parquet {
            path: path.display().to_string(),
            source,
        };
        let writer = self.writer.take().expect("finished once");
        let meta = writer.close().map_err(perr)?;
        let rows = meta.file_metadata().num_rows() as u64;
        File::open(&path).and_then(|f| f.sync_all()).map_err(io_err(&path))?;
        let (bytes, sha256) = file_sha256(&path)?;
        // Finished: from here the file belongs to the caller.
        self.path = PathBuf::new();
        Ok(StagedFile {
            path,
            rows,
            bytes,
            sha256,
        })
    }
}

impl Drop for StagedWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            self.writer.take();
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Where one column chunk's finished pages wait until its row group is
/// written: the first [`RESIDENT_PAGE_BYTES`] in memory, the rest in an
/// unnamed file that goes away with the store (or the process).
struct SpillStore {
    dir: PathBuf,
    pages: Vec<Stored>,
    resident: usize,
    file: Option<File>,
    end: u64,
}

enum Stored {
    Memory(Bytes),
    Disk { at: u64, len: usize },
    Taken,
}

impl PageStore for SpillStore {
    fn put(&mut self, value: Bytes) -> parquet::errors::Result<PageKey> {
        let key = PageKey::new(self.pages.len() as u64);
        if self.resident + value.len() <= RESIDENT_PAGE_BYTES {
            self.resident += value.len();
            self.pages.push(Stored::Memory(value));
            return Ok(key);
        }
        if self.file.is_none() {
            self.file = Some(unnamed_file(&self.dir)?);
        }
        let file = self.file.as_ref().expect("opened above");
        file.write_all_at(&value, self.end)?;
        self.pages.push(Stored::Disk {
            at: self.end,
            len: value.len(),
        });
        self.end += value.len() as u64;
        Ok(key)
    }

    fn take(&mut self, key: PageKey) -> parquet::errors::Result<Bytes> {
        let slot = self
            .pages
            .get_mut(key.get() as usize)
            .ok_or_else(|| parquet::errors::ParquetError::General(format!("no page {}", key.get())))?;
        match std::mem::replace(slot, Stored::Taken) {
            Stored::Memory(b) => {
                self.resident -= b.len();
                Ok(b)
            }
            Stored::Disk { at, len } => {
                let mut buf = vec![0u8; len];
                self.file
                    .as_ref()
                    .expect("a page on disk has a file")
                    .read_exact_at(&mut buf, at)?;
                Ok(Bytes::from(buf))
            }
            Stored::Taken => Err(parquet::errors::ParquetError::General(format!(
                "page {} taken twice",
                key.get()
            ))),
        }
    }

    fn memory_size(&self) -> usize {
        self.resident
    }
}

#[derive(Debug)]
struct SpillFactory {
    dir: PathBuf,
}

impl SpillFactory {
    fn create_store(&self) -> SpillStore {
        SpillStore {
            dir: self.dir.clone(),
            pages: Vec::new(),
            resident: 0,
            file: None,
            end: 0,
        }
    }
}

impl PageStoreFactory for SpillFactory {
    fn create(&self, _args: &PageStoreArgs<'_>) -> parquet::errors::Result<Box<dyn PageStore>> {
        Ok(Box::new(self.create_store()))
    }
}

/// A file in `dir` with no name: removed at once, so it goes away with its
/// handle, even after a crash.
pub(crate) fn unnamed_file(dir: &Path) -> std::io::Result<File> {
    let path = dir.join(format!("spill-{}.tmp", uuid::Uuid::new_v4()));
    let file = File::options().read(true).write(true).create_new(true).open(&path)?;
    fs::remove_file(&path)?;
    Ok(file)
}

pub fn file_sha256(path: &Path) -> Result<(u64, String), SinkError> {
    let f = File::open(path).map_err(io_err(path))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf).map_err(io_err(path))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((n, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    #[test]
    fn pages_past_the_resident_share_go_to_disk_and_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SpillFactory {
            dir: dir.path().to_path_buf(),
        }
        .create_store();
        let blobs: Vec<Bytes> = (0..40u8).map(|i| Bytes::from(vec![i; 3000 + usize::from(i)])).collect();
        let keys: Vec<PageKey> = blobs.iter().map(|b| store.put(b.clone()).unwrap()).collect();
        assert!(store.memory_size() <= RESIDENT_PAGE_BYTES);
        assert!(store.file.is_some(), "the rest went to disk");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the spill file has no name"
        );
        for (k, b) in keys.iter().zip(&blobs).rev() {
            assert_eq!(&store.take(*k).unwrap(), b);
        }
        assert_eq!(store.memory_size(), 0);
        assert!(store.take(keys[0]).is_err(), "a page is taken once");
    }

    /// A file larger than memory holds (many row groups, spilled pages) reads
    /// back row for row.
    #[test]
    fn a_spilled_file_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let path = dir.path().join("t.parquet");
        let mut w = StagedWriter::create(path.clone(), schema.clone()).unwrap();
        let rows = ROW_GROUP_ROWS * 2 + 1234;
        let id = |i: usize| (!i.is_multiple_of(7)).then(|| format!("resource-{:08x}", i.wrapping_mul(2_654_435_761)));
        for start in (0..rows).step_by(5000) {
            let end = (start + 5000).min(rows);
            let ids: StringArray = (start..end).map(id).collect();
            let ns: Int64Array = (start..end).map(|i| i as i64).collect();
            let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(ns)]).unwrap();
            w.write(&batch).unwrap();
        }
        let staged = w.finish().unwrap();
        assert_eq!(staged.rows, rows as u64);
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 3);
        let mut i = 0;
        for b in reader.build().unwrap() {
            let b = b.unwrap();
            let ids = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let ns = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            for r in 0..b.num_rows() {
                assert_eq!(ids.is_valid(r).then(|| ids.value(r).to_string()), id(i));
                assert_eq!(ns.value(r), i as i64);
                i += 1;
            }
        }
        assert_eq!(i, rows);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("t.parquet")],
            "no spill file is left"
        );
    }
}
