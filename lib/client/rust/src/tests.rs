// SPDX-License-Identifier: LGPL-2.1-or-later
//! The client against a scripted daemon on the other end of a socketpair: what goes over
//! the wire (JSON and fds) and how replies, errors and events come back; then protocol
//! version 2: hello with "reclaim" (and its fallback for a version 1 daemon), the files of the
//! hello reply served by reclaim, quiet acks and their refusal.

use super::*;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::FromRawFd;
use std::sync::mpsc;
use std::thread;

fn pair() -> (OwnedFd, OwnedFd) {
    let mut sv = [0; 2];
    // SAFETY: socketpair fills sv with two new fds, owned right away.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) };
    assert_eq!(r, 0);
    unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) }
}

fn memfd(text: &str) -> File {
    let name = b"test\0";
    // SAFETY: memfd_create with a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(name.as_ptr() as *const libc::c_char, libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    let mut f = unsafe { File::from_raw_fd(fd) };
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn read_all(fd: OwnedFd) -> String {
    let mut f = File::from(fd);
    let mut s = String::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_string(&mut s).unwrap();
    s
}

/// The daemon's side: the next request and its fds.
struct Fake {
    sock: OwnedFd,
    buf: Vec<u8>,
}

impl Fake {
    fn req(&mut self) -> (Value, Vec<OwnedFd>) {
        let m = wire::recv(self.sock.as_raw_fd(), &mut self.buf).unwrap();
        (serde_json::from_slice(&m.data).unwrap(), m.fds)
    }
    fn send(&self, v: Value, fds: &[RawFd]) {
        wire::send(self.sock.as_raw_fd(), v.to_string().as_bytes(), fds).unwrap();
    }
    fn ok(&self, req: &Value, result: Value, fds: &[RawFd]) {
        self.send(json!({"id": req["id"], "result": result}), fds);
    }
    /// Answers hello as a version 1 daemon would, checking what the client sent.
    fn hello(&mut self, incoming: bool, items: Value) {
        let h = self.hello_req(false);
        self.ok(&h, json!({"version": 1, "daemon": "0.1.0", "abi": "v4", "state": if incoming {"restoring"} else {"idle"},
                           "incoming": incoming, "items": items}), &[]);
    }
    /// The client's hello: version 2, with "reclaim" or without.
    fn hello_req(&mut self, reclaim: bool) -> Value {
        let (h, fds) = self.req();
        assert_eq!(h["method"], "hello");
        assert_eq!(h["version"], PROTOCOL_VERSION);
        assert_eq!(PROTOCOL_VERSION, 2);
        assert!(h["id"].as_u64().unwrap() >= 1);
        assert_eq!(h.get("reclaim"), if reclaim { Some(&json!(true)) } else { None }, "{h}");
        assert!(fds.is_empty());
        h
    }
    /// Answers hello with "reclaim" as a version 2 daemon: `extra` completes the result
    /// ("reclaimed", "reclaim_error"), `fds` go with it.
    fn hello_v2(&mut self, reclaim: bool, incoming: bool, extra: Value, fds: &[RawFd]) {
        let h = self.hello_req(reclaim);
        let mut r = json!({"version": 2, "daemon": "0.1.0", "abi": "upstream", "state": if incoming {"restoring"} else {"idle"},
                           "incoming": incoming, "items": []});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        self.ok(&h, r, fds);
    }
}

fn with_daemon<F: FnOnce(&mut Fake) + Send + 'static>(vm: &str, f: F) -> (Result<Client>, thread::JoinHandle<()>) {
    let (a, b) = pair();
    let t = thread::spawn(move || f(&mut Fake { sock: b, buf: Vec::new() }));
    (Client::hello_on(a, vm, "test"), t)
}

/// [`with_daemon`] for a client saying hello with "reclaim".
fn with_daemon_reclaim<F: FnOnce(&mut Fake) + Send + 'static>(vm: &str, f: F) -> (Result<Client>, thread::JoinHandle<()>) {
    let (a, b) = pair();
    let t = thread::spawn(move || f(&mut Fake { sock: b, buf: Vec::new() }));
    (Client::hello_reclaim_on(a, vm, "test"), t)
}

#[test]
fn hello_reports_what_the_daemon_said() {
    let (c, t) = with_daemon("vm-1", |d| {
        d.hello(true, json!([{"label":"ram0","kind":"memfd","session":"luvf:vm-1:0","token":1,"pci":null,"state":"reclaimable"},
                             {"label":"dev0","kind":"vfio","session":"luvf:vm-1:0","token":2,"pci":"0000:00:04.0","state":"failed","errno":19}]));
    });
    let c = c.unwrap();
    t.join().unwrap();
    assert!(c.incoming());
    assert_eq!(c.abi(), &Abi::V4);
    assert_eq!(c.daemon_state(), "restoring");
    assert_eq!(c.item_state("ram0"), Some("reclaimable"));
    assert_eq!(c.item_state("nope"), None);
    assert_eq!(c.item_session("dev0"), Some("luvf:vm-1:0"));
    assert_eq!(c.item_session("nope"), None);
    assert_eq!(c.items()[1].pci.as_deref(), Some("0000:00:04.0"));
    assert_eq!(c.items()[1].errno, Some(19));
}

#[test]
fn hello_refused_is_a_typed_error() {
    let (c, t) = with_daemon("vm-1", |d| {
        let (h, _) = d.req();
        d.send(json!({"id": h["id"], "error": {"code": "vm-busy", "errno": 16, "message": "VM vm-1 is held by another connection"}}), &[]);
    });
    let e = c.unwrap_err();
    t.join().unwrap();
    assert!(e.is(ErrorCode::VmBusy));
    assert_eq!(e.errno(), libc::EBUSY);
    assert!(e.to_string().contains("held by another connection"), "{e}");
}

#[test]
fn preserve_sends_the_fd_and_reads_the_token() {
    let ram = memfd("guest ram");
    let (c, t) = with_daemon("vm-1", |d| {
        d.hello(false, json!([]));
        let (p, fds) = d.req();
        assert_eq!(p["method"], "preserve");
        assert_eq!(p["label"], "ram0");
        assert_eq!(fds.len(), 1);
        assert_eq!(read_all(fds.into_iter().next().unwrap()), "guest ram");
        d.ok(&p, json!({"label":"ram0","kind":"memfd","session":"luvf:vm-1:0","token":1,"pci":null}), &[]);
        let (p, fds) = d.req();
        assert_eq!(fds.len(), 1);
        d.send(json!({"id": p["id"], "error": {"code": "wrong-fd-kind", "errno": 22, "message": "fd is of kind \"o-path\""}}), &[]);
    });
    let mut c = c.unwrap();
    let p = c.preserve("ram0", ram.as_fd()).unwrap();
    assert_eq!((p.token, p.kind.as_str(), p.session.as_str(), p.pci), (1, "memfd", "luvf:vm-1:0", None));
    let e = c.preserve("dev0", ram.as_fd()).unwrap_err();
    assert!(e.is(ErrorCode::WrongFdKind));
    assert_eq!(e.errno(), libc::EINVAL);
    // refused before sending: the daemon would refuse it too
    assert!(matches!(c.preserve("bad label", ram.as_fd()), Err(Error::InvalidArgument(_))));
    t.join().unwrap();
}

#[test]
fn events_are_queued_during_calls_and_acked() {
    let (c, t) = with_daemon("vm-1", |d| {
        d.hello(false, json!([]));
        let (l, _) = d.req();
        assert_eq!(l["method"], "list");
        // an event overtakes the reply
        d.send(json!({"event":"prepare","seq":1,"update":3,"deadline_ms":30000}), &[]);
        d.ok(&l, json!({"items": []}), &[]);
        let (a, _) = d.req();
        assert_eq!(a["method"], "ack");
        assert_eq!(a["seq"], 1);
        assert_eq!(a["ok"], true);
        d.ok(&a, json!({}), &[]);
        d.send(json!({"event":"freeze","seq":2,"update":3,"deadline_ms":10000}), &[]);
        let (a, _) = d.req();
        assert_eq!(a["ok"], false);
        // cut to 256 bytes at a character boundary, control characters replaced
        let m = a["message"].as_str().unwrap();
        assert!(m.len() <= 256 && m.starts_with("no way") && !m.contains('\n'), "{m:?}");
        d.ok(&a, json!({}), &[]);
        d.send(json!({"event":"resume","seq":3,"update":3,"reason":"failed","message":"vetoed"}), &[]);
    });
    let mut c = c.unwrap();
    assert!(c.list().unwrap().is_empty());
    let ev = c.next_event(Some(Duration::from_secs(5))).unwrap();
    assert_eq!((ev.kind.clone(), ev.seq, ev.update, ev.deadline_ms), (EventKind::Prepare, 1, 3, 30000));
    assert!(ev.wants_ack());
    c.ack(&ev, true, None).unwrap();
    let ev = c.next_event(None).unwrap();
    assert_eq!(ev.kind, EventKind::Freeze);
    let long = format!("no way\n{}", "é".repeat(300));
    c.ack(&ev, false, Some(&long)).unwrap();
    let ev = c.next_event(None).unwrap();
    assert_eq!((ev.kind, ev.reason.as_str(), ev.message.as_str()), (EventKind::Resume, "failed", "vetoed"));
    t.join().unwrap();
    assert!(matches!(c.next_event(Some(Duration::from_millis(50))), Err(Error::Disconnected)));
}

#[test]
fn next_event_times_out() {
    let (c, t) = with_daemon("vm-1", |d| {
        d.hello(false, json!([]));
        // keeps the socket open until the client goes: then the read sees the end
        let m = wire::recv(d.sock.as_raw_fd(), &mut d.buf).unwrap();
        assert!(m.data.is_empty());
    });
    let mut c = c.unwrap();
    let e = c.next_event(Some(Duration::from_millis(30))).unwrap_err();
    assert!(matches!(e, Error::Timeout));
    assert_eq!(e.errno(), libc::ETIMEDOUT);
    drop(c);
    t.join().unwrap();
}

#[test]
fn reclaim_one_and_many_take_ownership_of_the_fds() {
    let (c, t) = with_daemon("vm-1", |d| {
        d.hello(true, json!([]));
        let (r, _) = d.req();
        assert_eq!(r["label"], "ram0");
        let m = memfd("ram");
        d.ok(&r, json!({"label":"ram0","kind":"memfd","pci":null}), &[m.as_raw_fd()]);
        let (r, _) = d.req();
        assert_eq!(r["labels"], json!(["ram0", "dev0"]));
        assert!(r.get("label").is_none());
        let (a, b) = (memfd("one"), memfd("two"));
        d.ok(&r, json!({"items":[{"label":"ram0","kind":"memfd","pci":null},{"label":"dev0","kind":"vfio","pci":"0000:00:04.0"}]}),
             &[a.as_raw_fd(), b.as_raw_fd()]);
        let (r, _) = d.req();
        d.send(json!({"id": r["id"], "error": {"code":"label-unknown","errno":2,"message":"no item \"nope\" in VM vm-1"}}), &[]);
        let (r, _) = d.req();
        assert_eq!(r["method"], "restored");
        d.ok(&r, json!({"finished": true, "unclaimed": ["dev1"]}), &[]);
    });
    let mut c = c.unwrap();
    let r = c.reclaim("ram0").unwrap();
    assert_eq!(read_all(r.fd), "ram");
    let v = c.reclaim_many(&["ram0", "dev0"]).unwrap();
    assert_eq!(v[1].pci.as_deref(), Some("0000:00:04.0"));
    let texts: Vec<String> = v.into_iter().map(|r| read_all(r.fd)).collect();
    assert_eq!(texts, ["one", "two"]);
    let e = c.reclaim_many(&["ram0", "nope"]).unwrap_err();
    assert!(e.is(ErrorCode::LabelUnknown) && e.errno() == libc::ENOENT);
    assert!(matches!(c.reclaim_many(&[]), Err(Error::InvalidArgument(_))));
    assert!(matches!(c.reclaim_many(&["x"; 17]), Err(Error::InvalidArgument(_))));
    let r = c.restored().unwrap();
    assert_eq!(r, Restored { finished: true, unclaimed: vec!["dev1".into()] });
    t.join().unwrap();
}

#[test]
fn session_wait_bound_forget() {
    let (c, t) = with_daemon("vm-1", |d| {
        d.hello(false, json!([]));
        let (r, _) = d.req();
        assert_eq!(r["method"], "session");
        let m = memfd("stand-in for a session fd");
        d.ok(&r, json!({"session":"luvf:vm-1:1","incoming":false,"abi":"upstream"}), &[m.as_raw_fd()]);
        let (r, _) = d.req();
        assert_eq!((r["method"].as_str(), r["pci"].as_str(), r["timeout_ms"].as_u64()), (Some("wait-bound"), Some("0000:01:00.0"), Some(1500)));
        d.send(json!({"id": r["id"], "error": {"code":"timeout","errno":110,"message":"not bound"}}), &[]);
        let (r, _) = d.req();
        assert_eq!(r["method"], "forget");
        d.ok(&r, json!({}), &[]);
    });
    let mut c = c.unwrap();
    let s = c.session().unwrap();
    assert_eq!((s.name(), s.incoming(), s.abi()), ("luvf:vm-1:1", false, &Abi::Upstream));
    // a memfd is no session: the kernel (here: not LUO at all) refuses the ioctl
    assert!(matches!(s.preserve(s.as_fd(), 1), Err(Error::Io(_))));
    let e = c.wait_bound("0000:01:00.0", Some(Duration::from_millis(1500))).unwrap_err();
    assert!(e.is(ErrorCode::Timeout) && e.errno() == libc::ETIMEDOUT);
    c.forget().unwrap();
    t.join().unwrap();
}

#[test]
fn unknown_codes_and_missing_errno() {
    let (c, t) = with_daemon("vm-1", |d| {
        d.hello(false, json!([]));
        let (r, _) = d.req();
        d.send(json!({"id": r["id"], "error": {"code":"brand-new","message":"from the future"}}), &[]);
        let (r, _) = d.req();
        d.send(json!({"id": r["id"], "error": {"code":"invalid-state","message":"no errno"}}), &[]);
        let (_r, _) = d.req();
        d.send(json!({"id": null, "error": {"code":"limit-reached","errno":28,"message":"too many connections"}}), &[]);
    });
    let mut c = c.unwrap();
    let e = c.unpreserve("a").unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::Other("brand-new".into())));
    assert_eq!(e.errno(), libc::EIO);
    let e = c.unpreserve("a").unwrap_err();
    assert_eq!(e.errno(), libc::EBUSY);
    let e = c.unpreserve("a").unwrap_err();
    assert!(e.is(ErrorCode::LimitReached) && e.errno() == libc::ENOSPC);
    t.join().unwrap();
}

#[test]
fn codes_round_trip() {
    for c in ErrorCode::all() {
        assert_eq!(&ErrorCode::from_code(c.as_str()), c);
    }
    assert_eq!(ErrorCode::all().count(), 23);
    assert_eq!(ErrorCode::KernelError.to_string(), "kernel-error");
}

#[test]
fn ack_message_is_cleaned() {
    assert_eq!(ack_message_clean("a\tb\nc"), "a b c");
    let s = ack_message_clean(&"€".repeat(100));
    assert!(s.len() <= ACK_MESSAGE_MAX && s.len() % 3 == 0);
    assert!(!label_is_valid("") && !label_is_valid("a b") && label_is_valid("ram0:node1"));
    assert!(!vm_id_is_valid(&"v".repeat(37)) && vm_id_is_valid("vm-42"));
}

#[test]
fn no_daemon_is_an_io_error() {
    let e = Client::connect(Some(Path::new("/nonexistent/lu-vfiod.sock")), "vm-1").unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT);
    assert!(matches!(Client::connect(None, "bad/vm"), Err(Error::InvalidArgument(_))));
}

#[test]
fn connect_reclaim_falls_back_for_a_version_1_daemon() {
    let (c, t) = with_daemon_reclaim("vm-1", |d| {
        let h = d.hello_req(true);
        d.send(json!({"id": h["id"], "error": {"code": "invalid-params", "errno": 22, "message": "unknown field \"reclaim\""}}), &[]);
        // hello again without it, on the same connection
        let h2 = d.hello_req(false);
        assert_ne!(h2["id"], h["id"]);
        d.ok(&h2, json!({"version": 1, "daemon": "0.1.0", "abi": "v4", "state": "idle", "incoming": false, "items": []}), &[]);
        // a version 1 daemon: the ack is not quiet and waits for its reply
        d.send(json!({"event":"prepare","seq":1,"update":1,"deadline_ms":500}), &[]);
        let (a, _) = d.req();
        assert_eq!((a["method"].as_str(), a["ok"].as_bool()), (Some("ack"), Some(true)));
        assert!(a.get("quiet").is_none(), "{a}");
        d.send(json!({"id": a["id"], "error": {"code": "invalid-state", "errno": 16, "message": "no update"}}), &[]);
    });
    let mut c = c.unwrap();
    assert_eq!(c.protocol_version(), 1);
    assert!(!c.incoming() && c.hello_reclaimed().is_empty() && c.hello_reclaim_error().is_none());
    let ev = c.next_event(Some(Duration::from_secs(5))).unwrap();
    // the refusal is the ack's own error, not a stray one
    assert!(c.ack(&ev, true, None).unwrap_err().is(ErrorCode::InvalidState));
    assert!(c.stray_error().is_none());
    t.join().unwrap();
}

#[test]
fn connect_reclaim_does_not_retry_other_refusals() {
    let (c, t) = with_daemon_reclaim("vm-1", |d| {
        let h = d.hello_req(true);
        d.send(json!({"id": h["id"], "error": {"code": "vm-busy", "errno": 16, "message": "held"}}), &[]);
        // the client gives up: the next read sees the end
        let m = wire::recv(d.sock.as_raw_fd(), &mut d.buf).unwrap();
        assert!(m.data.is_empty());
    });
    assert!(c.unwrap_err().is(ErrorCode::VmBusy));
    t.join().unwrap();
}

#[test]
fn quiet_ack_does_not_wait_and_its_refusal_is_noted() {
    let (acked_tx, acked_rx) = mpsc::channel::<()>();
    let (c, t) = with_daemon("vm-1", move |d| {
        d.hello_v2(false, false, json!({}), &[]);
        d.send(json!({"event":"freeze","seq":2,"update":1,"deadline_ms":500}), &[]);
        let (a, _) = d.req();
        assert_eq!((a["method"].as_str(), a["ok"].as_bool(), a["quiet"].as_bool()), (Some("ack"), Some(true), Some(true)), "{a}");
        // no reply: the client's ack has returned before anything comes back
        acked_rx.recv_timeout(Duration::from_secs(5)).expect("the quiet ack waited for a reply");
        d.send(json!({"id": a["id"], "error": {"code": "invalid-state", "errno": 16, "message": "update over"}}), &[]);
        d.send(json!({"event":"resume","seq":3,"update":1,"reason":"failed","message":"vetoed"}), &[]);
        // a veto is never quiet and waits for its reply
        let (v, _) = d.req();
        assert_eq!((v["ok"].as_bool(), v.get("quiet")), (Some(false), None), "{v}");
        d.ok(&v, json!({}), &[]);
    });
    let mut c = c.unwrap();
    assert_eq!(c.protocol_version(), 2);
    let ev = c.next_event(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ev.kind, EventKind::Freeze);
    c.ack(&ev, true, Some("paused")).unwrap();
    acked_tx.send(()).unwrap();
    assert!(c.stray_error().is_none());
    let ev = c.next_event(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ev.kind, EventKind::Resume);
    let e = c.stray_error().expect("the refusal of the quiet ack is noted");
    assert!(e.is(ErrorCode::InvalidState) && e.to_string().contains("update over"), "{e}");
    assert!(c.take_stray_error().is_some() && c.stray_error().is_none());
    c.ack(&ev, false, Some("no")).unwrap();
    t.join().unwrap();
}

#[test]
fn hello_files_are_served_without_a_round_trip_and_once() {
    let (c, t) = with_daemon_reclaim("vm-1", |d| {
        let (ram, dev, cfg) = (memfd("ram from hello"), memfd("dev from hello"), memfd("cfg from hello"));
        d.hello_v2(true, true, json!({"reclaimed": [{"label":"ram0","kind":"memfd","pci":null},
                                                    {"label":"dev0","kind":"vfio","pci":"0000:00:04.0"},
                                                    {"label":"cfg","kind":"memfd","pci":null}]}),
                   &[ram.as_raw_fd(), dev.as_raw_fd(), cfg.as_raw_fd()]);
        // the first request to reach the daemon is the second reclaim of ram0
        let (r, _) = d.req();
        assert_eq!((r["method"].as_str(), r["label"].as_str()), (Some("reclaim"), Some("ram0")), "{r}");
        let m = memfd("ram from reclaim");
        d.ok(&r, json!({"label":"ram0","kind":"memfd","pci":null}), &[m.as_raw_fd()]);
        // not all labels came with the hello (ram0 is taken): the daemon is asked for all
        let (r, _) = d.req();
        assert_eq!(r["labels"], json!(["cfg", "ram0"]));
        let (a, b) = (memfd("cfg again"), memfd("ram again"));
        d.ok(&r, json!({"items":[{"label":"cfg","kind":"memfd","pci":null},{"label":"ram0","kind":"memfd","pci":null}]}),
             &[a.as_raw_fd(), b.as_raw_fd()]);
        // a label twice is the daemon's to answer
        let (r, _) = d.req();
        assert_eq!(r["labels"], json!(["cfg", "cfg"]));
        d.send(json!({"id": r["id"], "error": {"code":"invalid-params","errno":22,"message":"label \"cfg\" twice"}}), &[]);
    });
    let mut c = c.unwrap();
    assert!(c.incoming() && c.hello_reclaim_error().is_none());
    assert_eq!(c.hello_reclaimed(), ["ram0", "dev0", "cfg"]);
    let r = c.reclaim("ram0").unwrap();
    assert_eq!((r.label.as_str(), r.kind.as_str()), ("ram0", "memfd"));
    assert_eq!(read_all(r.fd), "ram from hello");
    let v = c.reclaim_many(&["dev0"]).unwrap();
    assert_eq!((v[0].kind.as_str(), v[0].pci.as_deref()), ("vfio", Some("0000:00:04.0")));
    assert_eq!(read_all(v.into_iter().next().unwrap().fd), "dev from hello");
    assert_eq!(c.hello_reclaimed(), ["cfg"]);
    // taken once: now the daemon is asked
    assert_eq!(read_all(c.reclaim("ram0").unwrap().fd), "ram from reclaim");
    let v = c.reclaim_many(&["cfg", "ram0"]).unwrap();
    assert_eq!(v.into_iter().map(|r| read_all(r.fd)).collect::<Vec<_>>(), ["cfg again", "ram again"]);
    assert_eq!(c.hello_reclaimed(), ["cfg"], "a reclaim that asked the daemon keeps the hello's file");
    assert!(c.reclaim_many(&["cfg", "cfg"]).unwrap_err().is(ErrorCode::InvalidParams));
    assert_eq!(read_all(c.reclaim("cfg").unwrap().fd), "cfg from hello");
    t.join().unwrap();
}

#[test]
fn hello_reclaimed_and_its_fds_must_match() {
    let (c, t) = with_daemon_reclaim("vm-1", |d| {
        let m = memfd("one");
        d.hello_v2(true, true, json!({"reclaimed": [{"label":"ram0","kind":"memfd","pci":null},
                                                    {"label":"dev0","kind":"vfio","pci":"0000:00:04.0"}]}), &[m.as_raw_fd()]);
    });
    let e = c.unwrap_err();
    assert!(matches!(e, Error::Protocol(_)) && e.to_string().contains("1 fds with the hello reply for 2"), "{e}");
    t.join().unwrap();
    // more fds than a hello may carry are refused like those of any reply
    let (c, t) = with_daemon("vm-1", |d| {
        let m = memfd("unasked");
        let h = d.hello_req(false);
        d.ok(&h, json!({"version": 2, "incoming": true, "items": [], "reclaimed": [{"label":"ram0","kind":"memfd"}]}), &[m.as_raw_fd()]);
    });
    assert!(matches!(c.unwrap_err(), Error::Protocol(_)));
    t.join().unwrap();
}

#[test]
fn reclaim_error_at_hello_leaves_reclaim_to_the_daemon() {
    let (c, t) = with_daemon_reclaim("vm-1", |d| {
        d.hello_v2(true, true, json!({"reclaimed": [],
                                      "reclaim_error": {"code":"limit-reached","errno":7,"message":"VM vm-1 has more than 16 items to reclaim"}}), &[]);
        let (r, _) = d.req();
        assert_eq!((r["method"].as_str(), r["label"].as_str()), (Some("reclaim"), Some("m0")));
        let m = memfd("m0");
        d.ok(&r, json!({"label":"m0","kind":"memfd","pci":null}), &[m.as_raw_fd()]);
        let (r, _) = d.req();
        assert_eq!(r["labels"], json!(["m1", "m2"]));
        d.send(json!({"id": r["id"], "error": {"code":"kernel-error","errno":5,"message":"retrieve failed"}}), &[]);
    });
    let mut c = c.unwrap();
    assert!(c.incoming() && c.hello_reclaimed().is_empty());
    let e = c.hello_reclaim_error().unwrap();
    assert!(e.is(ErrorCode::LimitReached) && e.errno() == libc::E2BIG, "{e}");
    assert_eq!(read_all(c.reclaim("m0").unwrap().fd), "m0");
    assert!(c.reclaim_many(&["m1", "m2"]).unwrap_err().is(ErrorCode::KernelError));
    t.join().unwrap();
}
