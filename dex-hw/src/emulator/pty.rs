//! The emulator on a pseudo-terminal, in real time.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};

use super::ServoBus;
use crate::error::{Error, Result};

/// A [`ServoBus`] served on a new pseudo-terminal by a background thread.
///
/// Any serial client (dex's own driver, the ROBOTIS SDK, a terminal) opens
/// [`PtyEmulator::path`] as it would a USB adapter; the baud rate it asks for is
/// accepted and ignored. Physics advance with the wall clock. Dropping the
/// emulator stops the thread and closes the terminal.
pub struct PtyEmulator {
    path: String,
    bus: Arc<Mutex<ServoBus>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Held open so the master never sees the slave side closed (EIO) between clients.
    _slave: TTYPort,
}

impl std::fmt::Debug for PtyEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyEmulator")
            .field("path", &self.path)
            .finish()
    }
}

impl PtyEmulator {
    /// Starts serving `bus` on a new pseudo-terminal.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if no pseudo-terminal can be created.
    pub fn start(bus: ServoBus) -> Result<Self> {
        Self::start_shared(Arc::new(Mutex::new(bus)))
    }

    /// As [`PtyEmulator::start`], with a bus shared with the caller.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if no pseudo-terminal can be created.
    pub fn start_shared(bus: Arc<Mutex<ServoBus>>) -> Result<Self> {
        let (mut master, slave) =
            TTYPort::pair().map_err(|e| Error::io("cannot create a pseudo-terminal", e.into()))?;
        let path = slave.name().ok_or_else(|| {
            Error::io(
                "pseudo-terminal has no name",
                std::io::Error::other("no slave path"),
            )
        })?;
        master
            .set_timeout(Duration::from_millis(1))
            .map_err(|e| Error::io("pseudo-terminal timeout", e.into()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bus, stop) = (Arc::clone(&bus), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("dex-servo-emulator".into())
                .spawn(move || serve(master, bus, stop))
                .map_err(|e| Error::io("cannot start the emulator thread", e))?
        };
        Ok(Self {
            path,
            bus,
            stop,
            thread: Some(thread),
            _slave: slave,
        })
    }

    /// Path of the terminal to open (e.g. `/dev/pts/3`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The bus being served.
    pub fn bus(&self) -> Arc<Mutex<ServoBus>> {
        Arc::clone(&self.bus)
    }

    /// Stops the thread (also done on drop).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PtyEmulator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(mut master: TTYPort, bus: Arc<Mutex<ServoBus>>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 4096];
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let n = match master.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => {
                tracing::warn!("servo emulator: read failed: {e}");
                std::thread::sleep(Duration::from_millis(5));
                0
            }
        };
        let now = Instant::now();
        let replies = {
            let mut bus = bus.lock().unwrap_or_else(|e| e.into_inner());
            bus.advance(now.duration_since(last).as_secs_f64());
            last = now;
            if n > 0 {
                bus.receive(&buf[..n])
            } else {
                Vec::new()
            }
        };
        for r in replies {
            if r.delay_us > 0 {
                let until = now + Duration::from_micros(r.delay_us);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            if let Err(e) = master.write_all(&r.bytes) {
                tracing::warn!("servo emulator: write failed: {e}");
            }
        }
    }
}
