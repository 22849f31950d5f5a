//! The running-loop slot: which loop (if any) runs on this thread right now.
//!
//! The core owns this slot because it enforces asyncio's rule that one thread never runs two
//! loops at once; the policy layer only reads it (through [`running_loop`]).

use std::cell::RefCell;

use crate::error::Error;
use crate::loop_state::EventLoop;
use crate::shared;

thread_local! {
    static RUNNING: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

/// The loop running on this thread, if any.
///
/// ```
/// use evloop_core::{EventLoop, running_loop};
///
/// let lp = EventLoop::new()?;
/// assert!(running_loop().is_none());
/// let inside = lp.run_until_complete(async { running_loop() })?;
/// assert!(inside == Some(lp.clone()));
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn running_loop() -> Option<EventLoop> {
    RUNNING
        .try_with(|slot| slot.try_borrow().ok().and_then(|s| s.clone()))
        .ok()
        .flatten()
}

/// Holds the slot while a loop runs; released on every exit path, unwinding included.
pub(crate) struct RunningGuard {
    lp: EventLoop,
}

impl RunningGuard {
    /// Claims the slot for `lp`, or says why it cannot run.
    pub(crate) fn enter(lp: &EventLoop) -> Result<RunningGuard, Error> {
        if lp.is_running() {
            return Err(Error::AlreadyRunning);
        }
        RUNNING.with(|slot| {
            let mut slot = slot.borrow_mut();
            match &*slot {
                Some(current) if current == lp => Err(Error::AlreadyRunning),
                Some(_) => Err(Error::AnotherLoopRunning),
                None => {
                    *slot = Some(lp.clone());
                    Ok(())
                }
            }
        })?;
        // Work this thread sends to `lp` from now on goes straight onto its ready queue.
        let previous = shared::set_local(Some((lp.shared_id(), lp.inner.ready.clone())));
        drop(previous);
        lp.set_running(true);
        Ok(RunningGuard { lp: lp.clone() })
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.lp.set_running(false);
        let local = shared::set_local(None);
        let previous = RUNNING
            .try_with(|slot| slot.borrow_mut().take())
            .ok()
            .flatten();
        // Dropped outside the borrow: dropping a loop handle may run user code.
        drop(local);
        drop(previous);
    }
}

/// Runs `f` with the loop `id` if that loop runs on this thread.
pub(crate) fn with_running<R>(id: usize, f: impl FnOnce(&EventLoop) -> R) -> Option<R> {
    let lp = RUNNING
        .try_with(|slot| {
            slot.try_borrow()
                .ok()
                .and_then(|s| s.as_ref().filter(|lp| lp.shared_id() == id).cloned())
        })
        .ok()
        .flatten()?;
    Some(f(&lp))
}
