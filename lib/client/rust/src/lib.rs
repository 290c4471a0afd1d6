// SPDX-License-Identifier: LGPL-2.1-or-later
//! # lu-vfio-client
//!
//! The VMM side of the lu-vfiod protocol (docs/protocol.md), the Rust counterpart of the C
//! library `liblu-vfio-client` (`lu-client.h`). A VMM connects once per VM, hands over what
//! must survive a kexec live update (guest RAM memfds, VFIO device cdev fds), answers the
//! daemon's `prepare` and `freeze` events, and after the reboot reclaims everything by label
//! and reports the VM restored. Or, in delegated mode, it gets the VM's own LUO session and
//! preserves and retrieves files itself.
//!
//! Calls block until the daemon answers. Events that arrive while a call waits are queued;
//! [`Client::next_event`] returns them first. Poll the client's fd ([`AsRawFd`]) for
//! readability to learn that an event is waiting. A `Client` is not shared between threads.
//! Errors carry the protocol's code ([`ErrorCode`]), errno and message.
//!
//! The crate speaks protocol version 2 and falls back to 1 with an older daemon: with a
//! version 2 daemon [`Client::ack`] sends its acknowledgements quiet (no reply to wait for),
//! and [`Client::connect_reclaim`] gets a restarted VM's files with the hello reply.
//!
//! Before the update (custodian mode):
//!
//! ```no_run
//! use lu_vfio_client::{Client, EventKind};
//! use std::os::unix::io::AsFd;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let guest_ram = std::fs::File::open("/dev/null")?; let vfio_dev = std::fs::File::open("/dev/null")?;
//! let mut c = Client::connect(None, "vm-42")?;
//! if !c.incoming() {
//!     c.preserve("ram0", guest_ram.as_fd())?;   // memfds first,
//!     let dev = c.preserve("dev0", vfio_dev.as_fd())?; // then VFIO cdevs bound to an iommufd
//!     println!("dev0 is {} in {}", dev.pci.unwrap_or_default(), dev.session);
//!     loop {
//!         let ev = c.next_event(None)?;
//!         match ev.kind {
//!             EventKind::Prepare => c.ack(&ev, true, None)?,
//!             EventKind::Freeze => {
//!                 // pause vCPUs, disable device interrupts, then:
//!                 c.ack(&ev, true, Some("paused"))?;
//!             }
//!             EventKind::Resume => println!("update abandoned: {}", ev.reason),
//!             _ => {}
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! After the reboot, the restarted VMM:
//!
//! ```no_run
//! use lu_vfio_client::Client;
//!
//! # fn main() -> Result<(), lu_vfio_client::Error> {
//! let mut c = Client::connect_reclaim(None, "vm-42")?; // the hello waits for the device bind
//! assert!(c.incoming());
//! let got = c.reclaim_many(&["ram0", "dev0"])?;   // came with the hello: no round trip
//! let (ram, dev) = (&got[0].fd, &got[1].fd);
//! // map guest RAM from `ram`, bind `dev` to a new iommufd, then:
//! let r = c.restored()?;
//! assert!(r.finished);
//! # let _ = (ram, dev); Ok(()) }
//! ```

mod error;
mod session;
mod wire;

use std::collections::VecDeque;
use std::fmt;
use std::os::unix::io::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

pub use error::{Error, ErrorCode, Result};
pub use session::Session;

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/lu-vfiod/vmm.sock";
/// The protocol version this crate speaks.
/// The highest protocol version this crate speaks (docs/protocol.md §5.1); the daemon
/// answers the version both speak ([`Client::protocol_version`]).
pub const PROTOCOL_VERSION: u64 = 2;
/// Most labels one [`Client::reclaim_many`] takes.
pub const RECLAIM_MAX: usize = 16;
/// Longest acknowledgement message the daemon takes, in bytes.
pub const ACK_MESSAGE_MAX: usize = 256;
/// Events kept for a VMM that does not read them; older ones are dropped.
const EVENT_QUEUE_MAX: usize = 64;

/// The kernel LUO ABI the daemon drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abi {
    /// The session ABI of Linux 7.1 and later.
    Upstream,
    /// The v4 patch series' ABI (global PREPARE/FREEZE events).
    V4,
    /// The daemon has no Live Update Orchestrator.
    None,
    /// A name this crate does not know.
    Other(String),
}

impl Abi {
    fn parse(s: &str) -> Abi {
        match s {
            "upstream" => Abi::Upstream,
            "v4" => Abi::V4,
            "none" => Abi::None,
            o => Abi::Other(o.to_string()),
        }
    }

    /// The name the protocol uses.
    pub fn as_str(&self) -> &str {
        match self {
            Abi::Upstream => "upstream",
            Abi::V4 => "v4",
            Abi::None => "none",
            Abi::Other(s) => s,
        }
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item the daemon holds for this VM, as `hello` and `list` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub label: String,
    /// `memfd`, `vfio` (or `iommufd` from older registries).
    pub kind: String,
    pub session: String,
    pub token: u64,
    /// PCI address of a VFIO device.
    pub pci: Option<String>,
    /// `preserved`, `reclaimable`, `reclaimed`, `failed` or `lost`.
    pub state: String,
    /// For `failed`: the kernel's errno.
    pub errno: Option<i32>,
}

/// What [`Client::preserve`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preserved {
    pub label: String,
    pub kind: String,
    pub session: String,
    pub token: u64,
    pub pci: Option<String>,
}

/// A file handed back after the update.
#[derive(Debug)]
pub struct Reclaimed {
    pub label: String,
    pub kind: String,
    pub pci: Option<String>,
    pub fd: OwnedFd,
}

/// The answer to [`Client::restored`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// False for a VM that had nothing incoming.
    pub finished: bool,
    /// Devices whose retrieve failed for good; the kernel keeps them until the next update.
    pub unclaimed: Vec<String>,
}

/// What an event asks of the VMM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// An update is being prepared: get ready, then [`Client::ack`].
    Prepare,
    /// Pause vCPUs, stop device work, disable device interrupts, then [`Client::ack`].
    Freeze,
    /// The update was abandoned (`reason` `cancelled` or `failed`): carry on.
    Resume,
    /// After the reboot: items can be reclaimed.
    RestoreReady,
    /// An event this crate does not know; ignore it.
    Other,
}

/// An event pushed by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The name as sent (`"prepare"`).
    pub name: String,
    /// Pass the event to [`Client::ack`].
    pub seq: u64,
    /// The update number.
    pub update: u64,
    /// `prepare`/`freeze`: how long the daemon waits for the acknowledgement, in ms.
    pub deadline_ms: u64,
    /// `resume`: `cancelled` or `failed`.
    pub reason: String,
    /// `resume`: why.
    pub message: String,
}

impl Event {
    /// True for the events that must be acknowledged.
    pub fn wants_ack(&self) -> bool {
        matches!(self.kind, EventKind::Prepare | EventKind::Freeze)
    }
}

fn label_is_valid(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(&c))
}

fn vm_id_is_valid(s: &str) -> bool {
    (1..=36).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// The message an acknowledgement sends: at most [`ACK_MESSAGE_MAX`] bytes cut at a character
/// boundary, control characters replaced by spaces, so that a veto is never refused for its
/// wording (the daemon refuses both).
pub fn ack_message_clean(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(ACK_MESSAGE_MAX));
    for ch in msg.chars() {
        let ch = if ch.is_control() && (ch as u32) < 0x80 { ' ' } else { ch };
        if out.len() + ch.len_utf8() > ACK_MESSAGE_MAX {
            break;
        }
        out.push(ch);
    }
    out
}

fn get_str(o: &Value, key: &str) -> Option<String> {
    o.get(key).and_then(Value::as_str).map(str::to_string)
}

fn need_str(o: &Value, key: &str) -> Result<String> {
    get_str(o, key).ok_or_else(|| Error::Protocol(format!("no string \"{key}\" in {o}")))
}

fn item_from(o: &Value) -> Result<Item> {
    Ok(Item {
        label: need_str(o, "label")?,
        kind: need_str(o, "kind")?,
        session: need_str(o, "session")?,
        token: o.get("token").and_then(Value::as_u64).unwrap_or(0),
        pci: get_str(o, "pci"),
        state: get_str(o, "state").unwrap_or_default(),
        errno: o.get("errno").and_then(Value::as_i64).map(|e| e as i32),
    })
}

fn items_from(v: Option<&Value>) -> Result<Vec<Item>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(item_from).collect(),
        Some(o) => Err(Error::Protocol(format!("\"items\" is not an array: {o}"))),
    }
}

fn event_from(o: &Value) -> Event {
    let name = get_str(o, "event").unwrap_or_default();
    let kind = match name.as_str() {
        "prepare" => EventKind::Prepare,
        "freeze" => EventKind::Freeze,
        "resume" => EventKind::Resume,
        "restore-ready" => EventKind::RestoreReady,
        _ => EventKind::Other,
    };
    let num = |k: &str| o.get(k).and_then(Value::as_u64).unwrap_or(0);
    Event {
        kind,
        seq: num("seq"),
        update: num("update"),
        deadline_ms: num("deadline_ms"),
        reason: get_str(o, "reason").unwrap_or_default(),
        message: get_str(o, "message").unwrap_or_default(),
        name,
    }
}

fn daemon_error(e: &Value) -> Error {
    let code = ErrorCode::from_code(e.get("code").and_then(Value::as_str).unwrap_or("internal-error"));
    let errno = e.get("errno").and_then(Value::as_i64).filter(|v| (1..4096).contains(v)).map(|v| v as i32);
    Error::Daemon {
        errno: errno.unwrap_or_else(|| default_errno(&code)),
        code,
        message: get_str(e, "message").unwrap_or_default(),
    }
}

/// The errno of an error reply that carried none: that of the table in docs/protocol.md §3.
fn default_errno(code: &ErrorCode) -> i32 {
    match code {
        ErrorCode::LabelExists => libc::EEXIST,
        ErrorCode::LabelUnknown => libc::ENOENT,
        ErrorCode::VmBusy | ErrorCode::InvalidState => libc::EBUSY,
        ErrorCode::PermissionDenied | ErrorCode::HelloRequired => libc::EPERM,
        ErrorCode::VersionUnsupported => libc::EPROTONOSUPPORT,
        ErrorCode::Timeout => libc::ETIMEDOUT,
        ErrorCode::LimitReached => libc::ENOSPC,
        ErrorCode::MessageTooLarge => libc::EMSGSIZE,
        ErrorCode::TooManyFds => libc::EMFILE,
        ErrorCode::UnknownMethod => libc::EOPNOTSUPP,
        ErrorCode::AlreadyHello => libc::EALREADY,
        ErrorCode::Cancelled => libc::ECANCELED,
        _ => libc::EIO,
    }
}

/// A connection to lu-vfiod acting for one VM.
#[derive(Debug)]
pub struct Client {
    sock: OwnedFd,
    next_id: u64,
    vm: String,
    abi: Abi,
    daemon: String,
    state: String,
    incoming: bool,
    items: Vec<Item>,
    events: VecDeque<Event>,
    rx: Vec<u8>,
    /// The version both speak, from the hello reply (1 if it named none).
    version: u64,
    /// Files that came with the hello reply ([`Client::connect_reclaim`]), until reclaimed.
    stash: Vec<Reclaimed>,
    /// Why none came with it: the hello reply's `reclaim_error`.
    reclaim_error: Option<Error>,
    /// The last error reply nothing waited for (the refusal of a quiet ack).
    stray_error: Option<Error>,
}

impl Client {
    /// Connects to `socket` (`None`: [`DEFAULT_SOCKET`]) and says hello for VM `vm` (1-36
    /// characters of `A-Z a-z 0-9 . _ -`). Errors: `permission-denied` (may not claim this
    /// VM), `vm-busy` (another connection holds it), `version-unsupported`; [`Error::Io`]
    /// with ENOENT or ECONNREFUSED when no daemon listens.
    pub fn connect(socket: Option<&Path>, vm: &str) -> Result<Client> {
        Client::connect_as(socket, vm, concat!("lu-vfio-client-rs ", env!("CARGO_PKG_VERSION")))
    }

    /// [`Client::connect`] with a `client` name for the daemon's logs (at most 64 bytes).
    pub fn connect_as(socket: Option<&Path>, vm: &str, client: &str) -> Result<Client> {
        Client::connect_with(socket, vm, client, false)
    }

    /// [`Client::connect`], asking the daemon to send every item of this VM that came across
    /// the update with the hello reply (protocol version 2, `"reclaim":true`; the C library's
    /// `lu_client_connect_reclaim()`): [`Client::reclaim`] and [`Client::reclaim_many`] then
    /// return those files without asking the daemon, each once, and a restarted VMM gets its
    /// files back in one round trip. The reply waits until the VM's VFIO devices are bound
    /// to vfio-pci again (at most the daemon's BindTimeoutSec). For a VM with nothing incoming
    /// it is [`Client::connect`]. All or nothing: if any item cannot be reclaimed (a device
    /// that failed or is not bound in time, more than [`RECLAIM_MAX`] items) none comes, the
    /// reclaim calls ask the daemon as usual and meet that item's error, and
    /// [`Client::hello_reclaim_error`] says why. A daemon speaking only version 1 refuses the
    /// field (`invalid-params`): then this says hello again without it. Files never
    /// reclaimed are closed with the client.
    pub fn connect_reclaim(socket: Option<&Path>, vm: &str) -> Result<Client> {
        Client::connect_reclaim_as(socket, vm, concat!("lu-vfio-client-rs ", env!("CARGO_PKG_VERSION")))
    }

    /// [`Client::connect_reclaim`] with a `client` name for the daemon's logs.
    pub fn connect_reclaim_as(socket: Option<&Path>, vm: &str, client: &str) -> Result<Client> {
        Client::connect_with(socket, vm, client, true)
    }

    fn connect_with(socket: Option<&Path>, vm: &str, client: &str, reclaim: bool) -> Result<Client> {
        if !vm_id_is_valid(vm) {
            return Err(Error::InvalidArgument(format!("VM id {vm:?}: 1-36 characters of A-Z a-z 0-9 . _ -")));
        }
        let sock = wire::connect(socket.unwrap_or_else(|| Path::new(DEFAULT_SOCKET)))?;
        Client::hello_with(sock, vm, client, reclaim)
    }

    /// Says hello on an already connected socket (socket activation, tests).
    pub fn hello_on(sock: OwnedFd, vm: &str, client: &str) -> Result<Client> {
        Client::hello_with(sock, vm, client, false)
    }

    /// [`Client::hello_on`] asking for the VM's files with the reply, as
    /// [`Client::connect_reclaim`] does.
    pub fn hello_reclaim_on(sock: OwnedFd, vm: &str, client: &str) -> Result<Client> {
        Client::hello_with(sock, vm, client, true)
    }

    fn hello_with(sock: OwnedFd, vm: &str, client: &str, mut reclaim: bool) -> Result<Client> {
        let mut c = Client {
            sock,
            next_id: 0,
            vm: vm.to_string(),
            abi: Abi::None,
            daemon: String::new(),
            state: String::new(),
            incoming: false,
            items: Vec::new(),
            events: VecDeque::new(),
            rx: Vec::new(),
            version: 1,
            stash: Vec::new(),
            reclaim_error: None,
            stray_error: None,
        };
        let client = ack_message_clean(client);
        let client: String = client.chars().scan(0, |n, ch| { *n += ch.len_utf8(); if *n <= 64 { Some(ch) } else { None } }).collect();
        let (res, fds) = loop {
            let mut p = json!({"version": PROTOCOL_VERSION, "vm": vm, "client": client});
            if reclaim {
                p["reclaim"] = json!(true);
            }
            match c.call("hello", p, None, if reclaim { RECLAIM_MAX } else { 0 }) {
                // a daemon that speaks only version 1 refuses the field: hello again without it
                Err(e) if reclaim && e.is(ErrorCode::InvalidParams) => reclaim = false,
                r => break r?,
            }
        };
        c.version = res.get("version").and_then(Value::as_u64).unwrap_or(1);
        c.stash_hello_fds(&res, fds)?;
        c.abi = Abi::parse(&get_str(&res, "abi").unwrap_or_default());
        c.daemon = get_str(&res, "daemon").unwrap_or_default();
        c.state = get_str(&res, "state").unwrap_or_default();
        c.incoming = res.get("incoming").and_then(Value::as_bool).unwrap_or(false);
        c.items = items_from(res.get("items"))?;
        Ok(c)
    }

    /// Keeps the fds of the hello reply by label, in the order of its `reclaimed`.
    fn stash_hello_fds(&mut self, res: &Value, fds: Vec<OwnedFd>) -> Result<()> {
        let listed = match res.get("reclaimed") {
            Some(Value::Array(a)) => a.as_slice(),
            None | Some(Value::Null) => &[],
            Some(o) => return Err(Error::Protocol(format!("\"reclaimed\" is not an array: {o}"))),
        };
        if listed.len() != fds.len() {
            return Err(Error::Protocol(format!("{} fds with the hello reply for {} reclaimed items", fds.len(), listed.len())));
        }
        for (it, fd) in listed.iter().zip(fds) {
            self.stash.push(Reclaimed { label: need_str(it, "label")?, kind: need_str(it, "kind")?, pci: get_str(it, "pci"), fd });
        }
        self.reclaim_error = res.get("reclaim_error").filter(|e| e.is_object()).map(daemon_error);
        Ok(())
    }

    /// The protocol version the daemon answered hello with: 2, or 1 for an older daemon
    /// (then acknowledgements wait for their reply and nothing comes with the hello).
    pub fn protocol_version(&self) -> u64 {
        self.version
    }

    /// The labels whose files came with the hello reply ([`Client::connect_reclaim`]) and
    /// are not reclaimed yet, in the daemon's order.
    pub fn hello_reclaimed(&self) -> Vec<&str> {
        self.stash.iter().map(|r| r.label.as_str()).collect()
    }

    /// Why nothing came with the hello reply of [`Client::connect_reclaim`]: the error the
    /// failing item gets from [`Client::reclaim`] (`limit-reached` for more than
    /// [`RECLAIM_MAX`] items). `None` when they came, or nothing was incoming.
    pub fn hello_reclaim_error(&self) -> Option<&Error> {
        self.reclaim_error.as_ref()
    }

    /// The last error reply that answered nothing a call waited for: the refusal of a quiet
    /// acknowledgement ([`Client::ack`]), which needs nothing from the VMM (the update has
    /// ended and its `resume` follows); the C library's `lu_client_last_error()` for it.
    /// Noted while a call or [`Client::next_event`] reads; [`Client::take_stray_error`]
    /// clears it.
    pub fn stray_error(&self) -> Option<&Error> {
        self.stray_error.as_ref()
    }

    /// [`Client::stray_error`], cleared.
    pub fn take_stray_error(&mut self) -> Option<Error> {
        self.stray_error.take()
    }

    fn note_stray_reply(&mut self, v: &Value) {
        if let Some(e) = v.get("error") {
            self.stray_error = Some(daemon_error(e));
        }
    }

    /// The VM this connection acts for.
    pub fn vm(&self) -> &str {
        &self.vm
    }

    /// The kernel LUO ABI the daemon drives.
    pub fn abi(&self) -> &Abi {
        &self.abi
    }

    /// The daemon's version.
    pub fn daemon_version(&self) -> &str {
        &self.daemon
    }

    /// The update state at hello (`idle`, `restoring`, ...).
    pub fn daemon_state(&self) -> &str {
        &self.state
    }

    /// True if this VM came across a live update and has items to reclaim.
    pub fn incoming(&self) -> bool {
        self.incoming
    }

    /// The items the daemon reported at hello.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The state of `label` at hello, `None` if the daemon holds no such item. A VMM that
    /// reconnects without a kexec hands over again only what is `lost` or unknown.
    pub fn item_state(&self, label: &str) -> Option<&str> {
        self.items.iter().find(|i| i.label == label).map(|i| i.state.as_str())
    }

    /// The LUO session `label` is in, as reported at hello (`"luvf:vm-42:0"`), `None` if the
    /// daemon holds no such item (the C library's `lu_client_item_session()`). After the
    /// reboot a session holding a VFIO device whose reclaim failed for good (a kernel error,
    /// not a bind timeout) cannot be finished and is closed at [`Client::restored`]; the
    /// memfds reclaimed from that same session stay the kernel's until the next update and
    /// are refused if handed over again (`kernel-error` EBUSY): copy their contents into new
    /// memfds and preserve those (docs/protocol.md §5.8).
    pub fn item_session(&self, label: &str) -> Option<&str> {
        self.items.iter().find(|i| i.label == label).map(|i| i.session.as_str())
    }

    fn send(&mut self, method: &str, params: Value, fd: Option<BorrowedFd<'_>>) -> Result<u64> {
        self.next_id += 1;
        let id = self.next_id;
        let mut req = match params {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => return Err(Error::InvalidArgument(format!("parameters must be an object: {other}"))),
        };
        req.insert("id".into(), json!(id));
        req.insert("method".into(), json!(method));
        let text = Value::Object(req).to_string();
        let fds: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
        wire::send(self.sock.as_raw_fd(), text.as_bytes(), &fds)?;
        Ok(id)
    }

    /// Reads one message: `Ok(None)` if `deadline` passed first.
    fn recv(&mut self, deadline: Option<Instant>) -> Result<Option<(Value, Vec<OwnedFd>)>> {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if !wire::wait_readable(self.sock.as_raw_fd(), Some(left))? {
                return Ok(None);
            }
        }
        let m = wire::recv(self.sock.as_raw_fd(), &mut self.rx)?;
        if m.data.is_empty() {
            return Err(Error::Disconnected);
        }
        if m.truncated {
            return Err(Error::Protocol("message or its fds truncated".into()));
        }
        let v: Value = serde_json::from_slice(&m.data).map_err(|e| Error::Protocol(format!("not JSON: {e}")))?;
        if !v.is_object() {
            return Err(Error::Protocol(format!("not a JSON object: {v}")));
        }
        Ok(Some((v, m.fds)))
    }

    fn queue_event(&mut self, v: &Value) {
        if self.events.len() >= EVENT_QUEUE_MAX {
            self.events.pop_front();   // a VMM that never reads events loses the oldest news
        }
        self.events.push_back(event_from(v));
    }

    /// Sends a request and waits for its reply, queueing events meanwhile. Returns the
    /// `result` and the reply's fds; more than `want_fds` is a protocol error.
    fn call(&mut self, method: &str, params: Value, fd: Option<BorrowedFd<'_>>, want_fds: usize) -> Result<(Value, Vec<OwnedFd>)> {
        let id = self.send(method, params, fd)?;
        loop {
            let (v, fds) = match self.recv(None)? {
                Some(m) => m,
                None => continue,
            };
            if v.get("event").is_some() {
                self.queue_event(&v);
                continue;
            }
            match v.get("id") {
                Some(Value::Number(n)) if n.as_u64() == Some(id) => {}
                Some(Value::Number(_)) => {
                    self.note_stray_reply(&v);   // a reply to nothing we are waiting for
                    continue;
                }
                _ => {
                    // An id-less error (e.g. refused at accept): it answers us.
                    if let Some(e) = v.get("error") {
                        return Err(daemon_error(e));
                    }
                    continue;
                }
            }
            if let Some(e) = v.get("error") {
                return Err(daemon_error(e));
            }
            if fds.len() > want_fds {
                return Err(Error::Protocol(format!("{} fds with the reply to {method}, expected {want_fds}", fds.len())));
            }
            return Ok((v.get("result").cloned().unwrap_or(Value::Null), fds));
        }
    }

    /// Custodian mode: hands `file` over under `label` (1-64 characters of
    /// `A-Z a-z 0-9 . _ : -`). A copy is sent: the caller keeps (and may close) its own.
    /// Accepted: a memfd (not hugetlb) and a VFIO cdev fd (`/dev/vfio/devices/vfioN`, on the
    /// upstream ABI bound to an iommufd first); memfds before devices. Not an iommufd: no
    /// supported kernel preserves one. Errors: `wrong-fd-kind` (the message names the kind),
    /// `label-exists`, `order-violation`, `limit-reached`, `invalid-state`, `kernel-error`.
    ///
    /// ```no_run
    /// # use lu_vfio_client::{Client, ErrorCode};
    /// # use std::os::unix::io::AsFd;
    /// # fn f(c: &mut Client, ram: std::fs::File) -> Result<(), lu_vfio_client::Error> {
    /// match c.preserve("ram0", ram.as_fd()) {
    ///     Ok(p) => println!("token {} in {}", p.token, p.session),
    ///     Err(e) if e.is(ErrorCode::LabelExists) => println!("already handed over"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn preserve(&mut self, label: &str, file: BorrowedFd<'_>) -> Result<Preserved> {
        if !label_is_valid(label) {
            return Err(Error::InvalidArgument(format!("label {label:?}: 1-64 characters of A-Z a-z 0-9 . _ : -")));
        }
        let (r, _) = self.call("preserve", json!({ "label": label }), Some(file), 0)?;
        Ok(Preserved {
            label: need_str(&r, "label")?,
            kind: need_str(&r, "kind")?,
            session: need_str(&r, "session")?,
            token: r.get("token").and_then(Value::as_u64).ok_or_else(|| Error::Protocol("no token".into()))?,
            pci: get_str(&r, "pci"),
        })
    }

    /// Stops preserving `label` (`label-unknown` if there is none; only while idle).
    pub fn unpreserve(&mut self, label: &str) -> Result<()> {
        self.call("unpreserve", json!({ "label": label }), None, 0).map(|_| ())
    }

    /// Everything the daemon holds for this VM now.
    pub fn list(&mut self) -> Result<Vec<Item>> {
        let (r, _) = self.call("list", Value::Null, None, 0)?;
        items_from(r.get("items"))
    }

    /// The next event: queued ones first, else waits up to `timeout` (`None`: forever).
    /// [`Error::Timeout`] if none came, [`Error::Disconnected`] if the daemon went away.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Event> {
        if let Some(e) = self.events.pop_front() {
            return Ok(e);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.recv(deadline)? {
                None => return Err(Error::Timeout),
                Some((v, _fds)) => {
                    if v.get("event").is_some() {
                        return Ok(event_from(&v));
                    }
                    if v.get("id").map_or(true, Value::is_null) {
                        if let Some(e) = v.get("error") {
                            return Err(daemon_error(e));
                        }
                    }
                    self.note_stray_reply(&v);   // a stray reply: nothing waits for it
                }
            }
        }
    }

    /// Acknowledges a `prepare` or `freeze` event. `ok` false vetoes the update with
    /// `message`. Acknowledge a freeze only once the vCPUs are paused and device interrupts
    /// are off: acknowledging the last freeze may start the reboot at once. The message is
    /// cleaned first ([`ack_message_clean`]).
    ///
    /// With a daemon speaking protocol version 2 an `ok` acknowledgement is sent quiet
    /// (docs/protocol.md §5.6): this returns once it is sent, without waiting for the daemon,
    /// and a refusal (the update ended meanwhile; its `resume` follows) comes later and is
    /// only noted in [`Client::stray_error`]. A veto waits for its reply.
    pub fn ack(&mut self, ev: &Event, ok: bool, message: Option<&str>) -> Result<()> {
        let mut p = json!({ "seq": ev.seq, "ok": ok });
        if let Some(m) = message {
            p["message"] = json!(ack_message_clean(m));
        }
        if ok && self.version >= 2 {
            // One datagram per event instead of a round trip: nothing needs the answer.
            p["quiet"] = json!(true);
            return self.send("ack", p, None).map(|_| ());
        }
        self.call("ack", p, None, 0).map(|_| ())
    }

    /// After the reboot: the preserved file `label` back. For a VFIO device this waits until
    /// it is bound to vfio-pci again (`timeout` after the daemon's BindTimeoutSec).
    /// Errors: `label-unknown`, `invalid-state` (nothing came across), `timeout`,
    /// `kernel-error` (the retrieve failed for good). A file that came with the hello reply
    /// ([`Client::connect_reclaim`]) is returned without asking the daemon, once; a later
    /// reclaim of the same label asks it.
    pub fn reclaim(&mut self, label: &str) -> Result<Reclaimed> {
        if let Some(k) = self.stash.iter().position(|r| r.label == label) {
            return Ok(self.stash.remove(k));
        }
        let (r, mut fds) = self.call("reclaim", json!({ "label": label }), None, 1)?;
        let fd = fds.pop().ok_or_else(|| Error::Protocol(format!("no fd with the reclaim of {label:?}")))?;
        Ok(Reclaimed { label: need_str(&r, "label")?, kind: need_str(&r, "kind")?, pci: get_str(&r, "pci"), fd })
    }

    /// [`Client::reclaim`] for 1 to [`RECLAIM_MAX`] labels in one round trip; the i-th result
    /// belongs to `labels[i]`. All or nothing: if one label fails, no fd is returned and the
    /// error is that of the first failing label. If every label's file came with the hello
    /// reply (each label once) they are returned without asking the daemon; otherwise the
    /// daemon is asked for all of them, and those from the hello stay for a later call.
    pub fn reclaim_many(&mut self, labels: &[&str]) -> Result<Vec<Reclaimed>> {
        if labels.is_empty() || labels.len() > RECLAIM_MAX {
            return Err(Error::InvalidArgument(format!("{} labels: 1 to {RECLAIM_MAX} per call", labels.len())));
        }
        let distinct = labels.iter().enumerate().all(|(i, l)| !labels[..i].contains(l));
        if distinct && labels.iter().all(|l| self.stash.iter().any(|r| r.label == *l)) {
            return Ok(labels
                .iter()
                .map(|l| {
                    let k = self.stash.iter().position(|r| r.label == *l).expect("checked above");
                    self.stash.remove(k)
                })
                .collect());
        }
        let (r, fds) = self.call("reclaim", json!({ "labels": labels }), None, labels.len())?;
        let items = match r.get("items") {
            Some(Value::Array(a)) => a.clone(),
            _ => return Err(Error::Protocol("no \"items\" in the reclaim reply".into())),
        };
        if items.len() != labels.len() || fds.len() != labels.len() {
            return Err(Error::Protocol(format!("{} items and {} fds for {} labels", items.len(), fds.len(), labels.len())));
        }
        items
            .iter()
            .zip(fds)
            .map(|(it, fd)| Ok(Reclaimed { label: need_str(it, "label")?, kind: need_str(it, "kind")?, pci: get_str(it, "pci"), fd }))
            .collect()
    }

    /// Everything is reclaimed (and VFIO devices bound to an iommufd again): the daemon
    /// finishes the VM's sessions. `kernel-error` with EBUSY: a device is not bound yet;
    /// bind it and call again.
    pub fn restored(&mut self) -> Result<Restored> {
        let (r, _) = self.call("restored", Value::Null, None, 0)?;
        Ok(Restored {
            finished: r.get("finished").and_then(Value::as_bool).unwrap_or(false),
            unclaimed: r
                .get("unclaimed")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
        })
    }

    /// The VM shuts down: everything is unpreserved and the VM dropped. Allowed when idle,
    /// and after a reboot for a VM that did not come across it or is restored
    /// (`invalid-state` otherwise). The connection then acts for no VM, so this consumes
    /// the client.
    pub fn forget(mut self) -> Result<()> {
        self.call("forget", Value::Null, None, 0).map(|_| ())
    }

    /// Delegated mode: the VM's own LUO session. Before the update, preserve files into it
    /// with [`Session::preserve`] and tokens you choose and remember; after the reboot the
    /// same call returns the incoming session, from which [`Session::retrieve`] gets them.
    ///
    /// ```no_run
    /// # use lu_vfio_client::Client;
    /// # use std::os::unix::io::AsFd;
    /// # fn f(c: &mut Client, ram: std::fs::File) -> Result<(), lu_vfio_client::Error> {
    /// let s = c.session()?;
    /// if !s.incoming() {
    ///     s.preserve(ram.as_fd(), 1)?;           // token 1 = guest RAM
    /// } else {
    ///     let ram = s.retrieve(1)?;
    ///     // ... for a device: c.wait_bound(pci, None) before s.retrieve(token)
    ///     c.restored()?;
    /// #   drop(ram);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn session(&mut self) -> Result<Session> {
        let (r, mut fds) = self.call("session", Value::Null, None, 1)?;
        let fd = fds.pop().ok_or_else(|| Error::Protocol("no session fd".into()))?;
        let abi = get_str(&r, "abi").map(|s| Abi::parse(&s)).unwrap_or_else(|| self.abi.clone());
        Ok(Session::new(fd, need_str(&r, "session")?, r.get("incoming").and_then(Value::as_bool).unwrap_or(false), abi))
    }

    /// Delegated mode, after the reboot: waits until PCI device `pci` (`0000:01:00.0`) is
    /// bound to vfio-pci again; only then retrieve it from the session. `timeout` `None`:
    /// the daemon's BindTimeoutSec. `timeout` error if it never happens.
    pub fn wait_bound(&mut self, pci: &str, timeout: Option<Duration>) -> Result<()> {
        let mut p = json!({ "pci": pci });
        if let Some(t) = timeout {
            p["timeout_ms"] = json!(t.as_millis().min(u32::MAX as u128) as u64);
        }
        self.call("wait-bound", p, None, 0).map(|_| ())
    }
}

impl AsFd for Client {
    /// The socket: poll it for readability (an event is waiting).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for Client {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests;
