//! A fixed budget of bytes for data being compressed, shared by everything that compresses in this
//! process, so a save's memory does not grow with the number of cores or the size of the files:
//! each compression takes what it needs (at most the whole budget) before it reads, and gives it
//! back when its output is out of its hands. Holders never wait for anything while holding, so
//! waiting for the budget cannot deadlock.

use std::sync::{Condvar, Mutex};

/// Bytes that compressions in flight may hold at once (input and output buffers).
pub const COMPRESSION_BYTES: u64 = 128 << 20;

pub struct Budget {
    total: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Bytes taken from a budget; given back when dropped.
pub struct Permit<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub const fn new(total: u64) -> Budget {
        Budget {
            total,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Takes `bytes` (at most the whole budget), waiting until they are free.
    pub fn take(&self, bytes: u64) -> Permit<'_> {
        let bytes = bytes.min(self.total);
        let mut used = self.used.lock().expect("budget lock");
        while *used + bytes > self.total {
            used = self.freed.wait(used).expect("budget lock");
        }
        *used += bytes;
        Permit {
            budget: self,
            bytes,
        }
    }

    /// Bytes free right now.
    pub fn available(&self) -> u64 {
        self.total - *self.used.lock().expect("budget lock")
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.budget.used.lock().expect("budget lock") -= self.bytes;
        self.budget.freed.notify_all();
    }
}

/// The budget of this process's compressions.
pub static COMPRESSION: Budget = Budget::new(COMPRESSION_BYTES);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_wait_for_room_and_never_exceed_the_total() {
        static B: Budget = Budget::new(100);
        let peak = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for k in 0..8 {
                let peak = &peak;
                s.spawn(move || {
                    for _ in 0..200 {
                        let _p = B.take(30 + k);
                        let used = B.total() - B.available();
                        peak.fetch_max(used, std::sync::atomic::Ordering::Relaxed);
                        std::thread::yield_now();
                    }
                });
            }
        });
        assert!(peak.into_inner() <= 100);
        assert_eq!(B.available(), 100);
        // More than the whole budget is capped to it rather than waiting for ever.
        let p = B.take(1000);
        assert_eq!(B.available(), 0);
        drop(p);
    }
}
