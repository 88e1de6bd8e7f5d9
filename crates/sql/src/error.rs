//! Errors returned by the analyser.

/// Why a query text could not be analysed. Every variant means the gateway must not forward the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalysisError {
    /// PostgreSQL's grammar rejected the text.
    #[error("{message}")]
    Parse {
        /// The parser's message, e.g. `syntax error at or near "FORM"`.
        message: String,
        /// 1-based character position of the error in the query text, as PostgreSQL reports it.
        position: Option<u32>,
    },
    /// The text is longer than the analyser accepts.
    #[error("query text exceeds the analyser's size limit")]
    TooLarge,
    /// The text contains a NUL byte, which no PostgreSQL query can contain.
    #[error("query text contains a NUL byte")]
    NulByte,
    /// The parse tree is nested more deeply than the analyser walks.
    #[error("query is nested too deeply to analyse")]
    TooDeep,
    /// The parser library failed in a way that is not a syntax error (a bug or resource limit).
    #[error("the SQL parser failed: {0}")]
    Internal(String),
}
