//! An ordered parallel map: work items run on several threads, results reach the sink in item order.
//! Entries are compressed on all cores but written in walk order, so an archive's layout follows the
//! directory tree (good for cold sequential reads) and is the same from run to run. Workers claim
//! items in small batches, so that cheap items (entries copied as they are) do not pay a thread
//! handoff each.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Items a worker claims at once.
const BATCH: usize = 64;

struct Shared<R, E> {
    done: BTreeMap<usize, Result<R, E>>,
    next_to_sink: usize,
    bytes_waiting: u64,
    failed: bool,
}

pub struct Limits {
    pub threads: usize,
    /// Results computed ahead of the sink, at most.
    pub max_ahead: usize,
    /// Bytes (as `weight` counts them) waiting for the sink, at most (the next item may always run).
    pub max_bytes: u64,
}

/// Runs `work(i)` for `i in 0..n` on `limits.threads` threads and feeds `sink(i, result)` in order
/// on the calling thread. Stops at the first error, from `work` or `sink`. The results waiting for
/// the sink weigh at most `max_bytes` plus one item.
pub fn ordered_parallel<R: Send, E: Send>(
    n: usize,
    limits: &Limits,
    work: impl Fn(usize) -> Result<R, E> + Sync,
    weight: impl Fn(&R) -> u64 + Sync,
    mut sink: impl FnMut(usize, R) -> Result<(), E>,
) -> Result<(), E> {
    let next = AtomicUsize::new(0);
    let state = Mutex::new(Shared {
        done: BTreeMap::new(),
        next_to_sink: 0,
        bytes_waiting: 0,
        failed: false,
    });
    // Workers wait on `room` for the sink to catch up; the sink waits on `ready` for results.
    let (room, ready) = (Condvar::new(), Condvar::new());
    std::thread::scope(|s| {
        for _ in 0..limits.threads.max(1) {
            s.spawn(|| {
                loop {
                    let first = next.fetch_add(BATCH, Ordering::Relaxed);
                    if first >= n {
                        break;
                    }
                    {
                        let mut st = state.lock().expect("pipeline lock");
                        while !st.failed
                            && first != st.next_to_sink
                            && (first >= st.next_to_sink + limits.max_ahead
                                || st.bytes_waiting >= limits.max_bytes)
                        {
                            st = room.wait(st).expect("pipeline lock");
                        }
                        if st.failed {
                            break;
                        }
                    }
                    for i in first..(first + BATCH).min(n) {
                        // Results wait for the sink within `max_bytes`; the item the sink needs
                        // next may always run, so waiting here cannot stall the sink.
                        if i > first {
                            let mut st = state.lock().expect("pipeline lock");
                            while !st.failed
                                && i != st.next_to_sink
                                && st.bytes_waiting >= limits.max_bytes
                            {
                                st = room.wait(st).expect("pipeline lock");
                            }
                            if st.failed {
                                return;
                            }
                        }
                        let r = work(i);
                        let mut st = state.lock().expect("pipeline lock");
                        st.bytes_waiting += r.as_ref().map(&weight).unwrap_or(0);
                        st.done.insert(i, r);
                        if i == st.next_to_sink || i + 1 == (first + BATCH).min(n) {
                            ready.notify_one();
                        }
                    }
                }
            });
        }
        let mut outcome = Ok(());
        for i in 0..n {
            let (r, was_full) = {
                let mut st = state.lock().expect("pipeline lock");
                loop {
                    if let Some(r) = st.done.remove(&i) {
                        let was_full = st.bytes_waiting >= limits.max_bytes;
                        st.bytes_waiting -= r.as_ref().map(&weight).unwrap_or(0);
                        st.next_to_sink = i + 1;
                        break (r, was_full);
                    }
                    st = ready.wait(st).expect("pipeline lock");
                }
            };
            // Workers wait at batch boundaries (claiming), and for room when the bytes were full.
            if i % BATCH == BATCH - 1 || was_full {
                room.notify_all();
            }
            let res = r.and_then(|v| sink(i, v));
            if let Err(e) = res {
                state.lock().expect("pipeline lock").failed = true;
                room.notify_all();
                outcome = Err(e);
                break;
            }
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_order_and_errors_stop_the_run() {
        let limits = Limits {
            threads: 4,
            max_ahead: 3,
            max_bytes: 10,
        };
        let mut seen = Vec::new();
        ordered_parallel(
            200,
            &limits,
            |i| Ok::<_, String>(i * 2),
            |_| 4,
            |i, v| {
                assert_eq!(v, i * 2);
                seen.push(i);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());

        let err = ordered_parallel(
            1000,
            &limits,
            |i| {
                if i == 500 {
                    Err(format!("item {i}"))
                } else {
                    Ok(i)
                }
            },
            |_| 1,
            |_, _| Ok(()),
        );
        assert_eq!(err, Err("item 500".to_string()));
    }
}
