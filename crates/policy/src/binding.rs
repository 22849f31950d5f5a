//! Per-thread state: each policy instance's current loop on each thread.
//!
//! An [`EventLoop`] is `!Send`, so a policy (which is `Send + Sync` and shared by every thread)
//! cannot hold loops itself: the loops live in a thread-local table, one row per policy
//! instance, keyed by the instance's id. A row whose policy has been dropped is pruned the next
//! time the thread touches the table; the whole table (and so each thread's current loops) is
//! dropped when the thread ends.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use evloop_core::{Error, EventLoop};

/// What one policy instance knows about one thread.
#[derive(Default)]
struct ThreadState {
    /// The thread's current loop.
    current: Option<EventLoop>,
    /// `set_event_loop` was called on this thread (asyncio's `_set_called`).
    set_called: bool,
}

struct Row {
    id: u64,
    alive: Weak<()>,
    state: ThreadState,
}

thread_local! {
    static ROWS: RefCell<Vec<Row>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The thread-bound state of one policy instance (each built-in policy owns one).
pub(crate) struct Binding {
    id: u64,
    alive: Arc<()>,
}

impl Binding {
    pub(crate) fn new() -> Binding {
        Binding {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
        }
    }

    /// Runs `f` on this instance's state for the calling thread. `None` if the thread-local
    /// table is unavailable (the thread is being torn down) or already borrowed (a loop's
    /// destructor re-entered the policy while it was being replaced).
    fn with<R>(&self, f: impl FnOnce(&mut ThreadState) -> R) -> Option<R> {
        let mut dead = Vec::new();
        let out = ROWS
            .try_with(|rows| {
                let mut rows = rows.try_borrow_mut().ok()?;
                // Prune the rows of dropped policies; their loops are dropped after the
                // borrow ends (dropping a loop may run user code that calls back in here).
                let mut i = 0;
                while i < rows.len() {
                    if rows[i].alive.strong_count() == 0 {
                        dead.push(rows.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
                let row = match rows.iter().position(|r| r.id == self.id) {
                    Some(i) => &mut rows[i],
                    None => {
                        rows.push(Row {
                            id: self.id,
                            alive: Arc::downgrade(&self.alive),
                            state: ThreadState::default(),
                        });
                        let last = rows.len() - 1;
                        &mut rows[last]
                    }
                };
                Some(f(&mut row.state))
            })
            .ok()
            .flatten();
        drop(dead);
        out
    }

    /// The current loop of this thread, if one is set.
    pub(crate) fn current(&self) -> Option<EventLoop> {
        self.with(|s| s.current.clone()).flatten()
    }

    /// True if `set_event_loop` was ever called on this thread (through this instance).
    pub(crate) fn set_called(&self) -> bool {
        self.with(|s| s.set_called).unwrap_or(true)
    }

    /// Makes `lp` the current loop of this thread (or unsets it).
    pub(crate) fn set(&self, lp: Option<&EventLoop>) {
        let old = self.with(|s| {
            s.set_called = true;
            std::mem::replace(&mut s.current, lp.cloned())
        });
        // Dropped outside the borrow: it may be the loop's last handle, and closing a loop
        // runs user code (its exception handler, the destructors of its tasks).
        drop(old);
    }

    /// The rule shared by the built-in policies: the current loop; else (if `auto_create`),
    /// on the main thread and only if `set_event_loop` was never called there, a new loop
    /// (made current); else `Err(NoCurrentLoop)`.
    pub(crate) fn get_or_create(
        &self,
        auto_create: bool,
        new_loop: impl FnOnce() -> Result<EventLoop, Error>,
    ) -> Result<EventLoop, Error> {
        if let Some(lp) = self.current() {
            return Ok(lp);
        }
        if auto_create && is_main_thread() && !self.set_called() {
            let lp = new_loop()?;
            self.set(Some(&lp));
            return Ok(lp);
        }
        Err(Error::NoCurrentLoop {
            thread: thread_description(),
        })
    }
}

/// True on the process's main thread.
///
/// Rust has no stable API that names the main thread; the standard library names it `"main"`,
/// and that is what this checks (`std::thread::current().name() == Some("main")`). Limits: a
/// thread spawned with `Builder::new().name("main".into())` passes for the main thread, and
/// code whose `main` is not Rust's (a library loaded by a C or Python host) never runs on a
/// thread named `"main"`. The cargo test harness runs each test on a thread named after the
/// test, so tests see themselves off the main thread.
///
/// ```
/// // In a program's `main` (doc-tests too run there):
/// assert!(evloop_policy::is_main_thread());
/// let other = std::thread::spawn(evloop_policy::is_main_thread).join().unwrap();
/// assert!(!other);
/// ```
pub fn is_main_thread() -> bool {
    std::thread::current().name() == Some("main")
}

/// How errors name the calling thread: its name, or for an unnamed thread the `Debug` form
/// of its [`ThreadId`](std::thread::ThreadId), e.g. `ThreadId(5)`.
pub(crate) fn thread_description() -> String {
    let me = std::thread::current();
    match me.name() {
        Some(name) => name.to_owned(),
        None => format!("{:?}", me.id()),
    }
}
