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

/// Rows per row group: bounds the writer's buffer (~tens of MB at most).
pub const ROW_GROUP_ROWS: usize = 65_536;

pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("hcbill {}", env!("CARGO_PKG_VERSION")))
        .build()
}

pub struct StagedWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
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
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let file = File::create(&path).map_err(io_err(&path))?;
        let writer =
            ArrowWriter::try_new(file, schema, Some(writer_properties())).map_err(|source| SinkError::Parquet {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Self { path, writer })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        self.writer.write(batch).map_err(|source| SinkError::Parquet {
            path: self.path.display().to_string(),
            source,
        })
    }

    /// Closes the file, syncs it and checksums it.
    pub fn finish(self) -> Result<StagedFile, SinkError> {
        let path = self.path;
        let perr = |source| SinkError::Parquet {
            path: path.display().to_string(),
            source,
        };
        let meta = self.writer.close().map_err(perr)?;
        let rows = meta.file_metadata().num_rows() as u64;
        File::open(&path).and_then(|f| f.sync_all()).map_err(io_err(&path))?;
        let (bytes, sha256) = file_sha256(&path)?;
        Ok(StagedFile {
            path,
            rows,
            bytes,
            sha256,
        })
    }

    pub fn abandon(self) {
        let _ = fs::remove_file(&self.path);
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
