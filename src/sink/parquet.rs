//! Streaming Parquet writer for one unit: batches go straight to a staging
//! file in bounded row groups, so memory stays flat however large a month is.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use super::{SinkError, io_err};

/// Rows per row group, at most.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// A row group is also cut once its encoded pages, which the writer holds in
/// memory until the group is complete, reach this: wide rows (60 columns of
/// consumption records) make smaller groups, so a writer's memory does not
/// depend on how wide or large the month is.
pub const ROW_GROUP_BYTES: usize = 4 << 20;

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
        let mut staged = Self { path, writer: None };
        let writer =
            ArrowWriter::try_new(file, schema, Some(writer_properties())).map_err(|source| SinkError::Parquet {
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
        writer.write(batch).map_err(perr)?;
        if writer.in_progress_size() >= ROW_GROUP_BYTES {
            writer.flush().map_err(perr)?;
        }
        Ok(())
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
