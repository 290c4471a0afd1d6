// SPDX-License-Identifier: LGPL-2.1-or-later
//! Errors: the daemon's error replies with their protocol code (docs/protocol.md §3), and the
//! client's own failures (socket, malformed replies, bad arguments, timeouts).

use std::fmt;
use std::io;

/// The `code` of an error reply, one variant per row of the table in docs/protocol.md §3.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidJson,
    InvalidMessage,
    MessageTooLarge,
    TooManyFds,
    UnknownMethod,
    InvalidParams,
    WrongFdCount,
    WrongFdKind,
    VersionUnsupported,
    HelloRequired,
    AlreadyHello,
    PermissionDenied,
    VmBusy,
    LabelExists,
    LabelUnknown,
    LimitReached,
    OrderViolation,
    InvalidState,
    KernelError,
    PreconditionFailed,
    Timeout,
    Cancelled,
    InternalError,
    /// A code this version of the crate does not know (a newer daemon).
    Other(String),
}

const CODES: &[(ErrorCode, &str)] = &[
    (ErrorCode::InvalidJson, "invalid-json"),
    (ErrorCode::InvalidMessage, "invalid-message"),
    (ErrorCode::MessageTooLarge, "message-too-large"),
    (ErrorCode::TooManyFds, "too-many-fds"),
    (ErrorCode::UnknownMethod, "unknown-method"),
    (ErrorCode::InvalidParams, "invalid-params"),
    (ErrorCode::WrongFdCount, "wrong-fd-count"),
    (ErrorCode::WrongFdKind, "wrong-fd-kind"),
    (ErrorCode::VersionUnsupported, "version-unsupported"),
    (ErrorCode::HelloRequired, "hello-required"),
    (ErrorCode::AlreadyHello, "already-hello"),
    (ErrorCode::PermissionDenied, "permission-denied"),
    (ErrorCode::VmBusy, "vm-busy"),
    (ErrorCode::LabelExists, "label-exists"),
    (ErrorCode::LabelUnknown, "label-unknown"),
    (ErrorCode::LimitReached, "limit-reached"),
    (ErrorCode::OrderViolation, "order-violation"),
    (ErrorCode::InvalidState, "invalid-state"),
    (ErrorCode::KernelError, "kernel-error"),
    (ErrorCode::PreconditionFailed, "precondition-failed"),
    (ErrorCode::Timeout, "timeout"),
    (ErrorCode::Cancelled, "cancelled"),
    (ErrorCode::InternalError, "internal-error"),
];

impl ErrorCode {
    /// The code as the protocol spells it (`"label-exists"`).
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Other(s) => s,
            known => CODES.iter().find(|(c, _)| c == known).map(|(_, s)| *s).unwrap_or("internal-error"),
        }
    }

    /// Parses a protocol code; unknown ones become [`ErrorCode::Other`].
    pub fn from_code(code: &str) -> ErrorCode {
        CODES
            .iter()
            .find(|(_, s)| *s == code)
            .map(|(c, _)| c.clone())
            .unwrap_or_else(|| ErrorCode::Other(code.to_string()))
    }

    /// Every code the crate knows, in the order of docs/protocol.md §3.
    pub fn all() -> impl Iterator<Item = &'static ErrorCode> {
        CODES.iter().map(|(c, _)| c)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a call of this crate can fail with.
#[derive(Debug)]
pub enum Error {
    /// The daemon answered with an error reply. `errno` is the one it sent (the kernel's
    /// for `kernel-error`), `message` names what was wrong.
    Daemon { code: ErrorCode, errno: i32, message: String },
    /// The socket failed (`ENOENT`/`ECONNREFUSED`: no daemon).
    Io(io::Error),
    /// The daemon closed the connection.
    Disconnected,
    /// No event or reply within the time asked for.
    Timeout,
    /// The daemon sent something this crate cannot read (names what).
    Protocol(String),
    /// An argument the daemon would refuse anyway, caught before sending (names which).
    InvalidArgument(String),
}

impl Error {
    /// The protocol code, for an error reply of the daemon.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Daemon { code, .. } => Some(code),
            _ => None,
        }
    }

    /// An errno for this error, as the C library returns it (positive): the daemon's, the
    /// socket's, `ECONNRESET`, `ETIMEDOUT`, `EBADMSG` or `EINVAL`.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Daemon { errno, .. } => *errno,
            Error::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            Error::Disconnected => libc::ECONNRESET,
            Error::Timeout => libc::ETIMEDOUT,
            Error::Protocol(_) => libc::EBADMSG,
            Error::InvalidArgument(_) => libc::EINVAL,
        }
    }

    /// True for an error reply with this code.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code() == Some(&code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Daemon { code, errno, message } => write!(f, "{code} (errno {errno}): {message}"),
            Error::Io(e) => write!(f, "lu-vfiod socket: {e}"),
            Error::Disconnected => f.write_str("lu-vfiod closed the connection"),
            Error::Timeout => f.write_str("timed out"),
            Error::Protocol(what) => write!(f, "unreadable message from lu-vfiod: {what}"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
