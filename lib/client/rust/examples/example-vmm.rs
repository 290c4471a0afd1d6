// SPDX-License-Identifier: LGPL-2.1-or-later
//! example-vmm (Rust): a pretend VMM built on lu-vfio-client, the counterpart of
//! examples/example-vmm.c, driven by the same end-to-end driver (tests/e2e) under luo-emu.
//!
//! Fresh start: fill a memfd "guest RAM" with a pattern derived from the VM id, open a VFIO
//! device cdev, bind it to an iommufd, attach an IOAS and enable MSI-X (the "running guest"),
//! hand both to lu-vfiod (custodian mode) or preserve them into the VM's own session
//! (`--delegated`), then serve events: ack prepare, and on freeze disable interrupts and ack.
//! The kexec kills it. Started again after the reboot, it sees its VM is incoming, reclaims
//! (or retrieves) both, verifies the pattern and the PCI address, binds the device to a new
//! iommufd and reports the VM restored, then exits 0. It says hello with
//! `Client::connect_reclaim` (protocol version 2): a custodian VM's files come with the hello
//! reply, and with a version 2 daemon that reports no `reclaim_error` it fails if they did not
//! (the e2e check of that path); its acknowledgements are then quiet.
//!
//! Options: --socket=PATH --vm=ID --vfio=/dev/vfio/devices/vfioN --ready-file=PATH
//! --state-file=PATH (keeps the PCI address across the reboot) --ram-kib=N --delegated
//! --exit-on-resume.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::exit;

use lu_vfio_client::{Client, Error, EventKind};

const TOKEN_RAM: u64 = 1;
const TOKEN_DEV: u64 = 2;
const MSIX_VECTORS: usize = 2;

// VFIO and iommufd ioctls (type ';' = 0x3B), as in the kernel's uapi headers.
const VFIO_DEVICE_SET_IRQS: libc::c_ulong = 0x3B6E;
const VFIO_DEVICE_BIND_IOMMUFD: libc::c_ulong = 0x3B76;
const VFIO_DEVICE_ATTACH_IOMMUFD_PT: libc::c_ulong = 0x3B77;
const IOMMU_IOAS_ALLOC: libc::c_ulong = 0x3B81;
const VFIO_PCI_MSIX_IRQ_INDEX: u32 = 2;
const VFIO_IRQ_SET_DATA_NONE: u32 = 1 << 0;
const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;

#[repr(C)]
struct BindIommufd { argsz: u32, flags: u32, iommufd: i32, out_devid: u32, token_uuid_ptr: u64 }
#[repr(C)]
struct IoasAlloc { size: u32, flags: u32, out_ioas_id: u32 }
#[repr(C)]
struct AttachPt { argsz: u32, flags: u32, pt_id: u32, pasid: u32 }
#[repr(C)]
struct IrqSet<const N: usize> { argsz: u32, flags: u32, index: u32, start: u32, count: u32, data: [i32; N] }

#[derive(Default)]
struct Args {
    socket: Option<PathBuf>,
    vm: String,
    vfio: Option<String>,
    ready_file: Option<PathBuf>,
    state_file: Option<PathBuf>,
    ram_kib: usize,
    delegated: bool,
    exit_on_resume: bool,
}

fn say(vm: &str, what: &str) {
    eprintln!("example-vmm-rs[{vm}]: {what}");
}

fn ioctl<T>(fd: RawFd, nr: libc::c_ulong, arg: &mut T) -> io::Result<()> {
    // SAFETY: each request number above takes a pointer to the struct passed with it.
    if unsafe { libc::ioctl(fd, nr as _, arg as *mut T) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Every 8-byte word holds a function of its index and the VM id: any mix-up shows.
fn pattern_bytes(vm: &str, kib: usize) -> Vec<u8> {
    let mut seed: u64 = 1469598103934665603;
    for b in vm.bytes() {
        seed = (seed ^ b as u64).wrapping_mul(1099511628211);
    }
    (0..kib * 1024 / 8)
        .flat_map(|i| seed.wrapping_add(i as u64).wrapping_mul(0x9E3779B97F4A7C15).to_ne_bytes())
        .collect()
}

fn ram_create(a: &Args) -> io::Result<File> {
    // SAFETY: memfd_create with a NUL-terminated name; the fd is owned right away.
    let fd = unsafe { libc::memfd_create(b"guest-ram\0".as_ptr() as *const libc::c_char, libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut f = unsafe { File::from_raw_fd(fd) };
    f.write_all(&pattern_bytes(&a.vm, a.ram_kib))?;
    Ok(f)
}

fn ram_verify(a: &Args, fd: OwnedFd) -> Result<(), String> {
    let mut f = File::from(fd);
    let mut got = Vec::new();
    f.seek(SeekFrom::Start(0)).and_then(|_| f.read_to_end(&mut got)).map_err(|e| format!("read guest RAM: {e}"))?;
    let want = pattern_bytes(&a.vm, a.ram_kib);
    if got.len() != want.len() {
        return Err(format!("guest RAM is {} bytes, expected {}", got.len(), want.len()));
    }
    let bad = got.chunks(8).zip(want.chunks(8)).filter(|(x, y)| x != y).count();
    if bad > 0 {
        return Err(format!("guest RAM: {bad} of {} words differ", want.len() / 8));
    }
    Ok(())
}

/// The PCI address of a VFIO device fd: fdinfo's "vfio-device-syspath:" (Linux >= 6.18 and
/// the emulator), else the cdev's sysfs node.
fn pci_of(fd: RawFd, cdev: Option<&str>) -> Option<String> {
    let is_bdf = |s: &str| s.len() == 12 && s.as_bytes()[4] == b':' && s.as_bytes()[7] == b':' && s.as_bytes()[10] == b'.';
    let last_bdf = |p: &str| p.rsplit('/').find(|c| is_bdf(c)).map(str::to_string);
    if let Ok(info) = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) {
        for l in info.lines() {
            if let Some(v) = l.strip_prefix("vfio-device-syspath:") {
                return last_bdf(v.trim());
            }
        }
    }
    let name = Path::new(cdev?).file_name()?.to_str()?.to_string();
    let link = fs::read_link(format!("/sys/class/vfio-dev/{name}/device")).ok()?;
    last_bdf(link.to_str()?)
}

fn iommufd_bind(dev: RawFd) -> io::Result<OwnedFd> {
    let iommu = OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open("/dev/iommu")?;
    let mut b = BindIommufd { argsz: std::mem::size_of::<BindIommufd>() as u32, flags: 0, iommufd: iommu.as_raw_fd(), out_devid: 0, token_uuid_ptr: 0 };
    ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &mut b)?;
    Ok(OwnedFd::from(iommu))
}

/// Opens the cdev, binds it to an iommufd with an IOAS attached and turns MSI-X on. The
/// iommufd and eventfds stay open for the life of the "guest".
fn device_start(path: &str, keep: &mut Vec<OwnedFd>) -> io::Result<(File, String)> {
    let dev = OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open(path)?;
    let pci = pci_of(dev.as_raw_fd(), Some(path)).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no PCI address"))?;
    let iommu = iommufd_bind(dev.as_raw_fd())?;
    let mut alloc = IoasAlloc { size: std::mem::size_of::<IoasAlloc>() as u32, flags: 0, out_ioas_id: 0 };
    ioctl(iommu.as_raw_fd(), IOMMU_IOAS_ALLOC, &mut alloc)?;
    let mut at = AttachPt { argsz: std::mem::size_of::<AttachPt>() as u32, flags: 0, pt_id: alloc.out_ioas_id, pasid: 0 };
    ioctl(dev.as_raw_fd(), VFIO_DEVICE_ATTACH_IOMMUFD_PT, &mut at)?;
    let mut efds = [0i32; MSIX_VECTORS];
    for e in efds.iter_mut() {
        // SAFETY: plain eventfd(2).
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        *e = fd;
        keep.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let mut set = IrqSet::<MSIX_VECTORS> {
        argsz: std::mem::size_of::<IrqSet<MSIX_VECTORS>>() as u32,
        flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        start: 0,
        count: MSIX_VECTORS as u32,
        data: efds,
    };
    ioctl(dev.as_raw_fd(), VFIO_DEVICE_SET_IRQS, &mut set)?;
    keep.push(iommu);
    Ok((dev, pci))
}

fn device_irqs_off(dev: RawFd) -> io::Result<()> {
    let mut set = IrqSet::<0> {
        argsz: std::mem::size_of::<IrqSet<0>>() as u32,
        flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        start: 0,
        count: 0,
        data: [],
    };
    ioctl(dev, VFIO_DEVICE_SET_IRQS, &mut set)
}

fn die(vm: &str, what: &str, e: impl std::fmt::Display) -> ! {
    say(vm, &format!("FAILED: {what}: {e}"));
    exit(1);
}

fn first_start(a: &Args, mut c: Client) {
    let vm = a.vm.clone();
    let mut keep = Vec::new();
    let ram = ram_create(a).unwrap_or_else(|e| die(&vm, "create guest RAM", e));
    let dev = a.vfio.as_ref().map(|p| {
        let (d, pci) = device_start(p, &mut keep).unwrap_or_else(|e| die(&vm, "start the VFIO device", e));
        say(&vm, &format!("device {p} ({pci}) bound to iommufd, MSI-X on"));
        if let Some(s) = &a.state_file {
            fs::write(s, &pci).unwrap_or_else(|e| die(&vm, "write the state file", e));
        }
        d
    });
    if a.delegated {
        let s = c.session().unwrap_or_else(|e| die(&vm, "get the delegated session", e));
        s.preserve(ram.as_fd(), TOKEN_RAM).unwrap_or_else(|e| die(&vm, "preserve guest RAM into my session", e));
        if let Some(d) = &dev {
            s.preserve(d.as_fd(), TOKEN_DEV).unwrap_or_else(|e| die(&vm, "preserve the device into my session", e));
        }
        say(&vm, &format!("preserved guest RAM{} in my own session {}", if dev.is_some() { " and the device" } else { "" }, s.name()));
    } else {
        let p = c.preserve("ram0", ram.as_fd()).unwrap_or_else(|e| die(&vm, "preserve ram0", e));
        say(&vm, &format!("handed over ram0 (token {})", p.token));
        if let Some(d) = &dev {
            let p = c.preserve("dev0", d.as_fd()).unwrap_or_else(|e| die(&vm, "preserve dev0", e));
            say(&vm, &format!("handed over dev0 (token {}, {})", p.token, p.pci.unwrap_or_default()));
        }
    }
    if let Some(r) = &a.ready_file {
        fs::write(r, "ready\n").unwrap_or_else(|e| die(&vm, "write the ready file", e));
    }
    loop {
        let ev = c.next_event(None).unwrap_or_else(|e| die(&vm, "wait for events", e));
        match ev.kind {
            EventKind::Prepare | EventKind::Freeze => {
                say(&vm, &format!("event {} (update {}, deadline {} ms)", ev.name, ev.update, ev.deadline_ms));
                if ev.kind == EventKind::Freeze {
                    if let Some(d) = &dev {
                        device_irqs_off(d.as_raw_fd()).unwrap_or_else(|e| die(&vm, "disable interrupts", e));
                        say(&vm, "vCPUs paused, MSI-X disabled");
                    }
                }
                c.ack(&ev, true, None).unwrap_or_else(|e| die(&vm, "ack", e));
            }
            EventKind::Resume => {
                say(&vm, &format!("resume ({}: {})", ev.reason, ev.message));
                if a.exit_on_resume {
                    exit(0);
                }
            }
            _ => say(&vm, &format!("ignoring event {}", ev.name)),
        }
    }
}

fn restart(a: &Args, mut c: Client) {
    let vm = a.vm.clone();
    let expected = a.state_file.as_ref().and_then(|s| fs::read_to_string(s).ok()).unwrap_or_default().trim().to_string();
    let (ram, dev, daemon_pci) = if a.delegated {
        let s = c.session().unwrap_or_else(|e| die(&vm, "get the delegated session back", e));
        if !s.incoming() {
            die(&vm, "delegated session", "not the incoming one");
        }
        let ram = s.retrieve(TOKEN_RAM).unwrap_or_else(|e| die(&vm, "retrieve guest RAM from my session", e));
        let dev = a.vfio.as_ref().map(|_| {
            // We retrieve it ourselves: not before the device is bound again.
            c.wait_bound(&expected, None).unwrap_or_else(|e| die(&vm, "wait for the device to be bound", e));
            s.retrieve(TOKEN_DEV).unwrap_or_else(|e| die(&vm, "retrieve the device from my session", e))
        });
        (ram, dev, None)
    } else {
        let labels: &[&str] = if a.vfio.is_some() { &["ram0", "dev0"] } else { &["ram0"] };
        let carried = c.hello_reclaimed().len();
        match c.hello_reclaim_error() {
            Some(e) => say(&vm, &format!("nothing came with the hello ({e}): reclaiming by label")),
            None if c.protocol_version() >= 2 && carried != labels.len() => {
                die(&vm, "hello with reclaim", format!("{carried} file(s) came with the reply, expected {}", labels.len()))
            }
            None if carried > 0 => say(&vm, &format!("{carried} file(s) came with the hello reply")),
            None => {}
        }
        let mut got = c.reclaim_many(labels).unwrap_or_else(|e| die(&vm, "reclaim", e)).into_iter();
        let ram = got.next().unwrap().fd;
        let dev = got.next();
        let pci = dev.as_ref().and_then(|d| d.pci.clone());
        (ram, dev.map(|d| d.fd), pci)
    };
    ram_verify(a, ram).unwrap_or_else(|e| die(&vm, "verify guest RAM", e));
    say(&vm, &format!("guest RAM reclaimed, pattern intact ({} KiB)", a.ram_kib));
    let _iommu = dev.as_ref().map(|d| {
        let target = fs::read_link(format!("/proc/self/fd/{}", d.as_raw_fd())).unwrap_or_default();
        if !target.to_string_lossy().contains("vfio") {
            die(&vm, "reclaimed device", format!("not a VFIO device fd: {}", target.display()));
        }
        if let Some(p) = &daemon_pci {
            if *p != expected {
                die(&vm, "reclaimed device", format!("daemon reported {p}, expected {expected}"));
            }
        }
        if let Some(p) = pci_of(d.as_raw_fd(), None) {
            if p != expected {
                die(&vm, "reclaimed device", format!("it is {p}, expected {expected}"));
            }
        }
        let i = iommufd_bind(d.as_raw_fd()).unwrap_or_else(|e| die(&vm, "bind the reclaimed device", e));
        say(&vm, &format!("device {expected} reclaimed and bound to a new iommufd"));
        i
    });
    match c.restored() {
        Ok(r) if r.finished => say(&vm, "RESTORED"),
        Ok(_) => die(&vm, "report restored", "the daemon finished nothing"),
        Err(e) => die(&vm, "report restored", e),
    }
}

fn parse_args() -> Args {
    let mut a = Args { vm: "vm0".into(), ram_kib: 1024, ..Default::default() };
    for arg in std::env::args().skip(1) {
        let (k, v) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        match (k.as_str(), v) {
            ("--socket", Some(v)) => a.socket = Some(v.into()),
            ("--vm", Some(v)) => a.vm = v,
            ("--vfio", Some(v)) => a.vfio = Some(v),
            ("--ready-file", Some(v)) => a.ready_file = Some(v.into()),
            ("--state-file", Some(v)) => a.state_file = Some(v.into()),
            ("--ram-kib", Some(v)) => a.ram_kib = v.parse().ok().filter(|n| (1..=1 << 20).contains(n)).unwrap_or(1024),
            ("--delegated", None) => a.delegated = true,
            ("--exit-on-resume", None) => a.exit_on_resume = true,
            _ => {
                eprintln!("example-vmm-rs: unknown option {arg}");
                exit(2);
            }
        }
    }
    a
}

fn main() {
    let a = parse_args();
    let c = match Client::connect_reclaim(a.socket.as_deref(), &a.vm) {
        Ok(c) => c,
        Err(e @ Error::Daemon { .. }) => die(&a.vm, "hello", e),
        Err(e) => die(&a.vm, "connect to lu-vfiod", e),
    };
    say(&a.vm, &format!("connected (protocol {}, ABI {}, daemon {}, {})", c.protocol_version(), c.abi(), c.daemon_state(),
                        if c.incoming() { "incoming: restoring" } else { "fresh start" }));
    if c.incoming() {
        restart(&a, c);
    } else {
        first_start(&a, c);
    }
}
