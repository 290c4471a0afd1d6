// SPDX-License-Identifier: LGPL-2.1-or-later
//! Delegated mode: the VM's own LUO session fd and the two ioctls a VMM calls on it
//! (docs/protocol.md §5.5). Numbers from the kernel ABIs: PRESERVE_FD is 0xBA40 on both;
//! the retrieve is RETRIEVE_FD 0xBA41 upstream but RESTORE_FD 0xBA42 on v4, where 0xBA41
//! is UNPRESERVE_FD (using the upstream number there would drop the file).

use std::io;
use std::os::unix::io::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::Abi;

const SESSION_PRESERVE_FD: libc::c_ulong = 0xBA40;
const SESSION_RETRIEVE_FD_UPSTREAM: libc::c_ulong = 0xBA41;
const SESSION_RESTORE_FD_V4: libc::c_ulong = 0xBA42;

/// The argument of all three: `{ __u32 size; __s32 fd; __aligned_u64 token; }`.
#[repr(C)]
struct FdArg {
    size: u32,
    fd: i32,
    token: u64,
}

fn ioctl_fd_arg(session: RawFd, nr: libc::c_ulong, arg: &mut FdArg) -> io::Result<()> {
    loop {
        // SAFETY: the request numbers above take a pointer to a 16-byte FdArg.
        let r = unsafe { libc::ioctl(session, nr as _, arg as *mut FdArg) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A delegated session, from [`Client::session`](crate::Client::session). Dropping it closes
/// this reference; the daemon keeps its own through the kexec and finishes the session when
/// the VM reports restored.
#[derive(Debug)]
pub struct Session {
    fd: OwnedFd,
    name: String,
    incoming: bool,
    abi: Abi,
}

impl Session {
    pub(crate) fn new(fd: OwnedFd, name: String, incoming: bool, abi: Abi) -> Session {
        Session { fd, name, incoming, abi }
    }

    /// The session's name (`luvf:vm-42:1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True after the reboot: the session came across the update; retrieve from it.
    pub fn incoming(&self) -> bool {
        self.incoming
    }

    /// The kernel ABI, which decides the retrieve ioctl.
    pub fn abi(&self) -> &Abi {
        &self.abi
    }

    /// PRESERVE_FD (0xBA40): the kernel preserves `file` under `token`, which the caller
    /// chooses (unique in the session) and must remember across the reboot. Errors are the
    /// kernel's: EEXIST token in use, EBUSY file preserved elsewhere, ENOENT a kind the
    /// kernel does not preserve (an unbound VFIO cdev on upstream), ENOSPC session full.
    pub fn preserve(&self, file: BorrowedFd<'_>, token: u64) -> Result<()> {
        let mut a = FdArg { size: 16, fd: file.as_raw_fd(), token };
        ioctl_fd_arg(self.fd.as_raw_fd(), SESSION_PRESERVE_FD, &mut a).map_err(Error::Io)
    }

    /// Gets the file preserved under `token` back from an incoming session: RETRIEVE_FD
    /// (0xBA41) upstream, RESTORE_FD (0xBA42) on v4. For a VFIO device wait for its bind
    /// first ([`Client::wait_bound`](crate::Client::wait_bound)): a retrieve that comes too
    /// early fails for good.
    pub fn retrieve(&self, token: u64) -> Result<OwnedFd> {
        let nr = match self.abi {
            Abi::Upstream => SESSION_RETRIEVE_FD_UPSTREAM,
            Abi::V4 => SESSION_RESTORE_FD_V4,
            ref other => return Err(Error::InvalidArgument(format!("no retrieve ioctl for kernel ABI {other}"))),
        };
        let mut a = FdArg { size: 16, fd: -1, token };
        ioctl_fd_arg(self.fd.as_raw_fd(), nr, &mut a).map_err(Error::Io)?;
        if a.fd < 0 {
            return Err(Error::Protocol(format!("the kernel returned no fd for token {token}")));
        }
        // SAFETY: the kernel installed a new fd for us in a.fd.
        Ok(unsafe { OwnedFd::from_raw_fd(a.fd) })
    }
}

impl AsFd for Session {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Session {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<Session> for OwnedFd {
    fn from(s: Session) -> OwnedFd {
        s.fd
    }
}
