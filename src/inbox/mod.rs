//! Inboxes: where files come from. Each inbox names one policy and one
//! submitter; it claims a complete file, hands its bytes to the run, and
//! puts the results back where the submitter looks for them.

pub mod sftp;
