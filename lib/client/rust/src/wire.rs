// SPDX-License-Identifier: LGPL-2.1-or-later
//! The framing of docs/protocol.md §1: a SOCK_SEQPACKET Unix socket, one JSON object per
//! datagram, fds as SCM_RIGHTS on the same datagram. std has no SEQPACKET sockets and no
//! stable ancillary data, so this speaks to libc directly.

use std::io;
use std::mem;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr;
use std::time::Duration;

/// Most fds one datagram carries to us (a reclaim of 16 labels).
pub const MAX_FDS_IN: usize = 16;
/// Largest message read: a `list` of many items is far below this.
pub const RX_MAX: usize = 1 << 20;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A connected SOCK_SEQPACKET socket to `path`.
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { OwnedFd::from_raw_fd(cvt(libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0))?) };
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut sa: libc::sockaddr_un = unsafe { mem::zeroed() };
    if bytes.len() >= sa.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "socket path too long or contains NUL"));
    }
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sa.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = (mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    loop {
        // SAFETY: sa is initialised and len within it.
        let r = unsafe { libc::connect(fd.as_raw_fd(), &sa as *const _ as *const libc::sockaddr, len) };
        if r == 0 {
            return Ok(fd);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sends one datagram `msg` with `fds` attached (copies: the caller keeps its own).
pub fn send(sock: RawFd, msg: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut iov = libc::iovec { iov_base: msg.as_ptr() as *mut libc::c_void, iov_len: msg.len() };
    // SAFETY: msghdr is plain old data.
    let mut mh: libc::msghdr = unsafe { mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    let fd_bytes = mem::size_of_val(fds) as u32;
    // u64 elements keep the control buffer aligned for cmsghdr.
    // SAFETY: CMSG_SPACE only computes a size.
    let mut cbuf = vec![0u64; (unsafe { libc::CMSG_SPACE(fd_bytes) } as usize + 7) / 8];
    if !fds.is_empty() {
        mh.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: as above.
        mh.msg_controllen = unsafe { libc::CMSG_SPACE(fd_bytes) } as _;
        // SAFETY: msg_control points to a zeroed buffer of CMSG_SPACE(fd_bytes) bytes, so the
        // first header and its data fit.
        unsafe {
            let cm = libc::CMSG_FIRSTHDR(&mh);
            (*cm).cmsg_level = libc::SOL_SOCKET;
            (*cm).cmsg_type = libc::SCM_RIGHTS;
            (*cm).cmsg_len = libc::CMSG_LEN(fd_bytes) as _;
            ptr::copy_nonoverlapping(fds.as_ptr() as *const u8, libc::CMSG_DATA(cm), fd_bytes as usize);
        }
    }
    loop {
        // SAFETY: mh describes valid buffers for the duration of the call.
        let n = unsafe { libc::sendmsg(sock, &mh, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Waits until `sock` is readable; false on timeout. `None` waits forever.
pub fn wait_readable(sock: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let ms = match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i32::MAX as u128) as libc::c_int,
    };
    let mut p = libc::pollfd { fd: sock, events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r >= 0 {
            return Ok(r > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One received datagram: its bytes (empty: the peer closed) and the fds that came with it.
pub struct Received {
    pub data: Vec<u8>,
    pub fds: Vec<OwnedFd>,
    pub truncated: bool,
}

/// Receives one datagram (blocking). Every attached fd is owned by the result, so none leaks.
pub fn recv(sock: RawFd, buf: &mut Vec<u8>) -> io::Result<Received> {
    buf.resize(RX_MAX, 0);
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS_IN * mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u64; (space + 7) / 8];
    // SAFETY: msghdr is plain old data.
    let mut mh: libc::msghdr = unsafe { mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    mh.msg_controllen = space as _;
    let n = loop {
        // SAFETY: mh describes valid buffers for the duration of the call.
        let n = unsafe { libc::recvmsg(sock, &mut mh, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control; CMSG_* walk it within msg_controllen, and each
    // SCM_RIGHTS entry carries (cmsg_len - CMSG_LEN(0)) / 4 fds that are now ours.
    unsafe {
        let mut cm = libc::CMSG_FIRSTHDR(&mh);
        while !cm.is_null() {
            if (*cm).cmsg_level == libc::SOL_SOCKET && (*cm).cmsg_type == libc::SCM_RIGHTS {
                let k = ((*cm).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / mem::size_of::<RawFd>();
                let data = libc::CMSG_DATA(cm) as *const RawFd;
                for i in 0..k {
                    fds.push(OwnedFd::from_raw_fd(ptr::read_unaligned(data.add(i))));
                }
            }
            cm = libc::CMSG_NXTHDR(&mh, cm);
        }
    }
    Ok(Received {
        data: buf[..n].to_vec(),
        fds,
        truncated: mh.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0,
    })
}
