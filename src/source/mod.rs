//! Everything that talks to the BSS API.

pub mod api;
pub mod client;
pub mod credentials;
pub mod datasets;
pub mod error;
pub mod limits;
pub mod paging;
pub mod retry;
pub mod signer;
pub mod stats;
