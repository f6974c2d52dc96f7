//! The `X-Glimpse-*` headers, named once for the API that reads or writes them and for the
//! clients that send or read them (lower case, as HTTP/2 and `http::HeaderName` want).

/// A replication upload asks the destination to verify this md5 before it publishes.
pub const EXPECTED_CHECKSUM: &str = "x-glimpse-expected-checksum";
/// A replication upload asks the destination to verify this sha512 before it publishes.
pub const EXPECTED_OS_HASH: &str = "x-glimpse-expected-os-hash-value";
/// A replication upload that continues a cut one: the byte its body starts at.
pub const UPLOAD_OFFSET: &str = "x-glimpse-upload-offset";
/// A replication job's current phase (`GET …/jobs/{id}`).
pub const JOB_PHASE: &str = "x-glimpse-job-phase";
/// Why a replication job ended in `error`.
pub const JOB_ERROR: &str = "x-glimpse-job-error";
/// The byte a cut replication copy went on from.
pub const JOB_RESUMED_FROM: &str = "x-glimpse-job-resumed-from";
