//! An ordered parallel map: work items run on several threads, results reach the sink in item order.
//! Entries are compressed on all cores but written in walk order, so an archive's layout follows the
//! directory tree (good for cold sequential reads) and is the same from run to run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

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
/// on the calling thread. Stops at the first error, from `work` or `sink`.
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
    let cv = Condvar::new();
    std::thread::scope(|s| {
        for _ in 0..limits.threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    {
                        let mut st = state.lock().expect("pipeline lock");
                        while !st.failed
                            && i != st.next_to_sink
                            && (i >= st.next_to_sink + limits.max_ahead
                                || st.bytes_waiting >= limits.max_bytes)
                        {
                            st = cv.wait(st).expect("pipeline lock");
                        }
                        if st.failed {
                            break;
                        }
                    }
                    let r = work(i);
                    let w = r.as_ref().map(&weight).unwrap_or(0);
                    let mut st = state.lock().expect("pipeline lock");
                    st.bytes_waiting += w;
                    st.done.insert(i, r);
                    cv.notify_all();
                }
            });
        }
        let mut outcome = Ok(());
        for i in 0..n {
            let r = {
                let mut st = state.lock().expect("pipeline lock");
                loop {
                    if let Some(r) = st.done.remove(&i) {
                        st.bytes_waiting -= r.as_ref().map(&weight).unwrap_or(0);
                        break r;
                    }
                    st = cv.wait(st).expect("pipeline lock");
                }
            };
            let res = r.and_then(|v| sink(i, v));
            let mut st = state.lock().expect("pipeline lock");
            st.next_to_sink = i + 1;
            st.failed = res.is_err();
            cv.notify_all();
            drop(st);
            if let Err(e) = res {
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
