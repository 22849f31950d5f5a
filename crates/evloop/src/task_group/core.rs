//! What a group and its children share, and the wrapper future each child runs in.
//!
//! Every group kind ([`TaskGroup`](super::TaskGroup), the [`task_group`](super::task_group)
//! scope, the [`join_set`](super::join_set) scope) is a [`Core`] and children spawned with
//! [`Core::spawn_child`]. A child's own future lives in a [`Slot`] that the group can reach:
//! when a scope ends early the group drops every child's future itself, before the scope's
//! drop returns, instead of waiting for the children's tasks to be scheduled again.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use evloop_core::{EventLoop, JoinError, Task, TaskRef};

use super::{Payload, TaskGroupError, report};

/// A child's own future, type-erased so that the group can drop it.
trait ChildSlot {
    /// Drops the future if it is still there and not being polled; `Err` if its destructor
    /// panicked.
    fn drop_future(&self) -> Result<(), Payload>;
}

/// Where a child's future lives: shared by the child's task (which polls it) and the group.
struct Slot<F> {
    future: RefCell<Option<Pin<Box<F>>>>,
}

impl<F> ChildSlot for Slot<F> {
    fn drop_future(&self) -> Result<(), Payload> {
        // Taken out first and dropped with no borrow held: the destructor is user code, and it
        // may spawn into the group or end other children.
        let taken = match self.future.try_borrow_mut() {
            Ok(mut future) => future.take(),
            // Being polled: the task's cancellation drops it when that poll has returned.
            Err(_) => None,
        };
        match taken {
            Some(future) => catch_unwind(AssertUnwindSafe(move || drop(future))),
            None => Ok(()),
        }
    }
}

/// A child the group watches.
struct Child {
    /// `None` only while the child's task is being created.
    task: Option<TaskRef>,
    slot: Rc<dyn ChildSlot>,
}

/// Turns a child's output into its task's output, or a failure of the group.
pub(super) type Finish<E, O, Out, X> = fn(Out, &Core<E, O>) -> Result<X, E>;

/// What a group and its children share (all on the loop's thread). `O` is what a join set
/// collects; other groups use `()` and collect nothing.
pub(super) struct Core<E, O> {
    children: RefCell<HashMap<u64, Child>>,
    next_key: Cell<u64>,
    /// Children whose future has not been dropped yet (includes those being spawned).
    live: Cell<usize>,
    failures: RefCell<Vec<TaskGroupError<E>>>,
    /// Children are cancelled, new ones too: a failure happened or `cancel` was called.
    aborting: Cell<bool>,
    /// A failure happened: a scope cancels its body.
    failed: Cell<bool>,
    /// The group has ended (returned, or was dropped): nobody reads failures any more.
    closed: Cell<bool>,
    /// A join set's outcomes not taken yet (`None` for the groups that collect nothing).
    joined: Option<RefCell<VecDeque<Result<O, JoinError>>>>,
    /// The scope (or `TaskGroup::wait`) waiting on the group.
    waiter: RefCell<Option<Waker>>,
    /// `JoinSet::join_next` waiting for an outcome (a waker of its own: the body may poll it
    /// with a waker other than the scope's, e.g. inside `gather`).
    join_waiter: RefCell<Option<Waker>>,
}

fn register(slot: &RefCell<Option<Waker>>, cx: &Context<'_>) {
    let mut slot = slot.borrow_mut();
    match &*slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

fn wake(slot: &RefCell<Option<Waker>>) {
    let waker = slot.borrow_mut().take();
    if let Some(w) = waker {
        w.wake();
    }
}

impl<E, O> Core<E, O> {
    /// An empty group; `collect`: keep the children's outcomes for `join_next`.
    pub(super) fn new(collect: bool) -> Rc<Core<E, O>> {
        Rc::new(Core {
            children: RefCell::new(HashMap::new()),
            next_key: Cell::new(0),
            live: Cell::new(0),
            failures: RefCell::new(Vec::new()),
            aborting: Cell::new(false),
            failed: Cell::new(false),
            closed: Cell::new(false),
            joined: collect.then(|| RefCell::new(VecDeque::new())),
            waiter: RefCell::new(None),
            join_waiter: RefCell::new(None),
        })
    }

    /// Children whose future has not been dropped yet.
    pub(super) fn live(&self) -> usize {
        self.live.get()
    }

    pub(super) fn is_aborting(&self) -> bool {
        self.aborting.get()
    }

    pub(super) fn has_failed(&self) -> bool {
        self.failed.get()
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub(super) fn failure_count(&self) -> usize {
        self.failures.borrow().len()
    }

    pub(super) fn take_failures(&self) -> Vec<TaskGroupError<E>> {
        std::mem::take(&mut *self.failures.borrow_mut())
    }

    pub(super) fn register_waiter(&self, cx: &Context<'_>) {
        register(&self.waiter, cx);
    }

    fn wake_waiters(&self) {
        wake(&self.waiter);
        wake(&self.join_waiter);
    }

    /// Requests cancellation of every child. No borrow is held while a task is cancelled.
    fn cancel_all(&self) {
        let tasks: Vec<TaskRef> = self
            .children
            .borrow()
            .values()
            .filter_map(|c| c.task.clone())
            .collect();
        for task in tasks {
            task.cancel();
        }
    }

    /// Cancels every child, and children spawned from now on (not a failure).
    pub(super) fn abort(&self) {
        self.aborting.set(true);
        self.cancel_all();
    }

    /// The group has ended: every child's task gets a cancel request and every child's
    /// future is dropped here and now (one being polled right now — only possible if the
    /// group ends from inside a child — is dropped when its task is next scheduled).
    /// A panic in a child's destructor goes to the loop's exception handler.
    pub(super) fn close(&self) {
        self.closed.set(true);
        self.aborting.set(true);
        let children: Vec<(Option<TaskRef>, Rc<dyn ChildSlot>)> = self
            .children
            .borrow()
            .values()
            .map(|c| (c.task.clone(), c.slot.clone()))
            .collect();
        for (task, slot) in children {
            if let Some(task) = &task {
                task.cancel();
            }
            if let Err(payload) = slot.drop_future() {
                report(
                    "a task group child panicked while it was being cancelled, after its group ended",
                    Some(payload),
                    task,
                );
            }
        }
    }

    /// Records a failure; false if the group has ended (it went to the exception handler).
    fn record(&self, failure: TaskGroupError<E>, task: Option<TaskRef>) -> bool {
        if self.closed.get() {
            match failure {
                TaskGroupError::Panicked(p) => report(
                    "a task group child panicked after its group ended",
                    Some(p),
                    task,
                ),
                TaskGroupError::Failed(_) => report(
                    "a task group child returned an error after its group ended (the error is dropped)",
                    None,
                    task,
                ),
            }
            return false;
        }
        self.failures.borrow_mut().push(failure);
        self.failed.set(true);
        self.wake_waiters();
        true
    }

    /// The body of a scope failed (returned `Err`, panicked, or panicked while being dropped):
    /// record it and cancel every child at once (asyncio's `__aexit__` with an exception).
    pub(super) fn fail_body(&self, failure: TaskGroupError<E>) {
        self.record(failure, None);
        self.abort();
    }

    /// A join set's child produced `outcome`.
    fn push_joined(&self, outcome: Result<O, JoinError>) {
        if let Some(joined) = &self.joined {
            joined.borrow_mut().push_back(outcome);
            wake(&self.join_waiter);
        }
    }

    /// Children whose outcome a join set has not handed out yet.
    pub(super) fn queued(&self) -> usize {
        self.joined.as_ref().map_or(0, |j| j.borrow().len())
    }

    /// The next outcome for `join_next`: `Ready(None)` when nothing is left.
    pub(super) fn poll_joined(&self, cx: &Context<'_>) -> Poll<Option<Result<O, JoinError>>> {
        let next = self
            .joined
            .as_ref()
            .and_then(|j| j.borrow_mut().pop_front());
        if next.is_some() || self.live.get() == 0 {
            return Poll::Ready(next);
        }
        register(&self.join_waiter, cx);
        Poll::Pending
    }

    /// A finish function for join sets: the output is queued for `join_next`.
    pub(super) fn collect(output: O, core: &Core<E, O>) -> Result<(), E> {
        core.push_joined(Ok(output));
        Ok(())
    }

    /// The child `key` has ended (its future is gone).
    fn child_ended(&self, key: u64) {
        let removed = self.children.borrow_mut().remove(&key);
        drop(removed);
        self.live.set(self.live.get().saturating_sub(1));
        if self.live.get() == 0 {
            self.wake_waiters();
        }
    }
}

impl<E: 'static, O: 'static> Core<E, O> {
    /// Starts `future` as a child task on `lp`; `finish` turns its output into the task's
    /// output or a failure. A child spawned into an aborting group is cancelled at once.
    #[track_caller]
    pub(super) fn spawn_child<F, X>(
        self: &Rc<Self>,
        lp: &EventLoop,
        future: F,
        finish: Finish<E, O, F::Output, X>,
    ) -> Task<X>
    where
        F: Future + 'static,
        X: 'static,
    {
        let key = self.next_key.get();
        self.next_key.set(key + 1);
        self.live.set(self.live.get() + 1);
        let slot = Rc::new(Slot {
            future: RefCell::new(Some(Box::pin(future))),
        });
        self.children.borrow_mut().insert(
            key,
            Child {
                task: None,
                slot: slot.clone(),
            },
        );
        let task = lp.create_task(ChildRun {
            core: Rc::downgrade(self),
            key,
            slot,
            finish,
            ended: false,
        });
        // On a closed loop the task has ended already, and its entry is gone.
        if let Some(child) = self.children.borrow_mut().get_mut(&key) {
            child.task = Some(task.as_ref());
        }
        if self.aborting.get() {
            task.cancel();
        }
        task
    }

    /// The child `key` failed: record it, and — at the first failure — cancel the others from
    /// a callback on the next iteration, as asyncio's `_on_task_done` does (siblings already
    /// scheduled for this iteration take that step, and may fail too).
    fn fail_child(self: &Rc<Self>, key: u64, failure: TaskGroupError<E>) {
        let me = self
            .children
            .borrow()
            .get(&key)
            .and_then(|c| c.task.clone());
        self.record(failure, me.clone());
        if let Some(me) = me {
            // The child's future is dropped when its current poll ends.
            me.cancel();
        }
        if self.aborting.replace(true) {
            return;
        }
        let core = Rc::downgrade(self);
        let abort = move || {
            if let Some(core) = core.upgrade() {
                core.cancel_all();
            }
        };
        match evloop_core::running_loop() {
            Some(lp) => {
                lp.call_soon(abort);
            }
            None => abort(),
        }
    }
}

/// The future a child's task runs: polls the child's future in its slot, catches its panics,
/// and tells the group how it ended.
struct ChildRun<E, O, F: Future, X> {
    core: Weak<Core<E, O>>,
    key: u64,
    slot: Rc<Slot<F>>,
    finish: Finish<E, O, F::Output, X>,
    /// The child produced a value or a failure (so its end is no cancellation).
    ended: bool,
}

impl<E: 'static, O: 'static, F: Future, X> Future for ChildRun<E, O, F, X> {
    type Output = X;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<X> {
        let this = self.get_mut();
        if this.ended {
            // It failed: waiting for its own cancellation.
            return Poll::Pending;
        }
        let polled = {
            let Ok(mut future) = this.slot.future.try_borrow_mut() else {
                return Poll::Pending;
            };
            let Some(future) = future.as_mut() else {
                // The group dropped it: the task's cancellation is on its way.
                return Poll::Pending;
            };
            catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))
        };
        let outcome = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(payload) => Err(payload),
        };
        this.ended = true;
        // Done: drop the future now (a destructor can still panic).
        let dropped = this.slot.drop_future();
        let Some(core) = this.core.upgrade() else {
            // The group is gone (only if it ended inside this very poll).
            for payload in [outcome.err(), dropped.err()].into_iter().flatten() {
                report(
                    "a task group child panicked after its group ended",
                    Some(payload),
                    None,
                );
            }
            return Poll::Pending;
        };
        let result = match outcome {
            Ok(output) => (this.finish)(output, &core).map_err(TaskGroupError::Failed),
            Err(payload) => Err(TaskGroupError::Panicked(payload)),
        };
        if let Err(payload) = dropped {
            core.fail_child(this.key, TaskGroupError::Panicked(payload));
        }
        match result {
            Ok(value) => Poll::Ready(value),
            Err(failure) => {
                core.fail_child(this.key, failure);
                Poll::Pending
            }
        }
    }
}

impl<E, O, F: Future, X> Drop for ChildRun<E, O, F, X> {
    fn drop(&mut self) {
        // Cancelled (or done): drop the child's future if it is still there.
        let dropped = self.slot.drop_future();
        let Some(core) = self.core.upgrade() else {
            if let Err(payload) = dropped {
                report(
                    "a task group child panicked while it was being cancelled, after its group ended",
                    Some(payload),
                    None,
                );
            }
            return;
        };
        match dropped {
            // A child that panics while cancelled failed (asyncio: an exception raised in a
            // cancelled task's `finally` goes into the group's ExceptionGroup).
            Err(payload) => core.fail_cleanup(self.key, TaskGroupError::Panicked(payload)),
            Ok(()) if !self.ended => core.push_joined(Err(JoinError::Cancelled)),
            Ok(()) => {}
        }
        core.child_ended(self.key);
    }
}

impl<E, O> Core<E, O> {
    /// A cancelled child's destructor panicked: a failure, handled as `fail_child` does but
    /// without cancelling the child (it is ending).
    fn fail_cleanup(self: &Rc<Self>, key: u64, failure: TaskGroupError<E>) {
        let me = self
            .children
            .borrow()
            .get(&key)
            .and_then(|c| c.task.clone());
        if !self.record(failure, me) {
            return;
        }
        if !self.aborting.replace(true) {
            let tasks: Vec<TaskRef> = self
                .children
                .borrow()
                .iter()
                .filter(|(k, _)| **k != key)
                .filter_map(|(_, c)| c.task.clone())
                .collect();
            for task in tasks {
                task.cancel();
            }
        }
    }
}
