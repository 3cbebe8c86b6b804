//! What can go wrong in a run, typed end to end, and the one place that maps
//! it to an exit code.

use crate::model::ModelError;
use crate::sink::SinkError;
use crate::sink::output::OutputError;
use crate::source::error::SourceError;
use crate::source::paging::PagingError;
use crate::state::StateError;

/// Errors that stop a run before or around its units.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("listing enterprise members: {0}")]
    Members(SourceError),
    #[error("probing the size of a query: {0}")]
    Probe(SourceError),
    #[error("{0}")]
    Account(#[from] super::accounts::AccountIdError),
    #[error(transparent)]
    Output(#[from] crate::sink::output::OutputError),
}

/// Why one unit (or the group sharing its pages) failed.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("{0}")]
    Source(SourceError),
    #[error("data kept changing while paging: {0}")]
    Drift(String),
    /// A natural key seen twice: the pages overlapped (the data moved), unless
    /// the same key repeats again on a re-read. `dataset` is filled in by the
    /// writer that saw it.
    #[error("data kept changing while paging: {detail}")]
    Repeat {
        dataset: Option<&'static str>,
        /// The key's hash and the two rows (first, again) that hold it.
        hash: u64,
        rows: (u64, u64),
        detail: String,
    },
    /// The same key repeated on a re-read: the API returns rows the dataset's
    /// key cannot tell apart. This dataset's failure alone.
    #[error("{0}")]
    KeyNotUnique(String),
    #[error("{0}")]
    TooManyPages(String),
    /// A row the model refuses (a value that does not fit its column…).
    #[error("offset {offset}: {source}")]
    Data { offset: u64, source: ModelError },
    /// A row a derived dataset cannot build.
    #[error("offset {offset}: {reason}")]
    Transform { offset: u64, reason: String },
    #[error("{0}")]
    FanOut(String),
    #[error("building the last record batch: {0}")]
    Batch(ModelError),
    /// A repeated key within a companion's rows, or the key log's disk failing.
    #[error("{0}")]
    Keys(ModelError),
    #[error("not finished: {0} passed; the next run resumes it")]
    Deadline(String),
    /// A failure of the pages a unit shares with others, as each of them reports it.
    #[error("{0}")]
    Shared(String),
    /// Every unit reading a stream failed on its own: its paging stops.
    #[error("every unit reading these pages failed")]
    Abandoned,
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Output(String),
}

impl From<PagingError<UnitError>> for UnitError {
    fn from(e: PagingError<UnitError>) -> Self {
        match e {
            PagingError::Source(s) => UnitError::Source(s),
            PagingError::Drift(d) => UnitError::Drift(d),
            e @ PagingError::TooManyPages { .. } => UnitError::TooManyPages(e.to_string()),
            PagingError::Consumer(c) => c,
        }
    }
}

impl UnitError {
    pub fn output(e: crate::sink::output::OutputError) -> Self {
        UnitError::Output(e.to_string())
    }

    /// A repeated key means overlapping pages: the data moved, so page again.
    pub fn data(offset: u64, source: ModelError) -> Self {
        match source {
            ModelError::Duplicate {
                companion: false,
                hash,
                row,
                first,
                ..
            } => UnitError::Repeat {
                dataset: None,
                hash,
                rows: (first, row),
                detail: format!("offset {offset}: {source}"),
            },
            source => UnitError::Data { offset, source },
        }
    }

    /// Whether the error is the pages' (every writer of the group shares it)
    /// rather than one writer's.
    pub fn is_shared(&self) -> bool {
        !matches!(
            self,
            UnitError::Data { .. }
                | UnitError::Transform { .. }
                | UnitError::Batch(_)
                | UnitError::Keys(_)
                | UnitError::KeyNotUnique(_)
                | UnitError::Sink(_)
        )
    }
}

/// How a run ended, for the exit code (documented in `hcbill --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Some units failed (permission, deadline, bad answers…): the next run resumes them.
    UnitsFailed,
    /// Bad flags, pipeline file, dates, ids, missing credentials, output locked.
    BadInput,
    /// The server refused the credentials: the run stopped after one request.
    CredentialsRefused,
    /// Stopped early by SIGTERM/SIGINT or a lost bucket lease: the next run resumes.
    Stopped,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::UnitsFailed => 1,
            Outcome::BadInput => 2,
            Outcome::CredentialsRefused => 3,
            Outcome::Stopped => 4,
        }
    }

    /// A run that stopped with an error.
    pub fn of_error(e: &RunError) -> Self {
        match e {
            // One writer at a time, and a bucket the credentials cannot use or
            // that cannot keep runs apart: before any request.
            RunError::Output(
                OutputError::Leased { .. }
                | OutputError::Locked(..)
                | OutputError::LeaseRace { .. }
                | OutputError::Denied { .. }
                | OutputError::Conditions { .. }
                | OutputError::Layout(_),
            ) => Outcome::BadInput,
            RunError::Output(OutputError::LeaseLost { .. } | OutputError::Stopped(_))
            | RunError::State(StateError::Output(OutputError::LeaseLost { .. } | OutputError::Stopped(_))) => {
                Outcome::Stopped
            }
            RunError::Members(s) | RunError::Probe(s) if s.is_fatal() => Outcome::CredentialsRefused,
            _ => Outcome::UnitsFailed,
        }
    }

    /// A run that finished: `halted` is the client's fatal error, if one
    /// tripped; `stopped`, whether a signal or a lost lease stopped it.
    pub fn of_run(success: bool, halted: bool, stopped: bool) -> Self {
        match (success, halted, stopped) {
            (_, _, true) => Outcome::Stopped,
            (true, _, _) => Outcome::Success,
            (false, true, _) => Outcome::CredentialsRefused,
            (false, false, _) => Outcome::UnitsFailed,
        }
    }
}
