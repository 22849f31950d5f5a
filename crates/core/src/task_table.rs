//! `TaskTable`: the loop's tasks that have not ended, in a slab.
//!
//! The loop holds a reference (a `TaskPtr`: one pointer) to each of its tasks until it ends, so that `all_tasks()` and
//! `close()` can find them and so that an unfinished future's last reference is never dropped
//! off the loop's thread. A slot index is stored in the task's tag word, which makes insert and
//! remove O(1) without hashing.

use std::panic::Location;

use crate::task::{Runnable, TaskId, TaskPtr, TaskRef};

/// Above this many slots an empty table gives its memory back.
const KEEP_SLOTS: usize = 1024;

/// What the loop knows of a task besides the task itself, for the task dump: 16 bytes a slot,
/// written once per spawn (`location`) and by steps that leave the task waiting (`awaiting`).
#[derive(Clone, Copy, Default)]
pub(crate) struct SlotInfo {
    /// Where the task was created (`#[track_caller]`), if the creator said.
    pub(crate) location: Option<&'static Location<'static>>,
    /// The task its latest poll left it waiting for (a `Task`/`TaskRef` it awaits).
    pub(crate) awaiting: Option<TaskId>,
}

#[derive(Default)]
pub(crate) struct TaskTable {
    slots: Vec<Option<TaskPtr>>,
    /// Parallel to `slots`: only the entries of occupied slots mean anything.
    info: Vec<SlotInfo>,
    free: Vec<usize>,
    len: usize,
}

impl TaskTable {
    /// Registers the task of `runnable` and records its slot in the task's tag.
    pub(crate) fn insert(
        &mut self,
        runnable: &Runnable,
        location: Option<&'static Location<'static>>,
    ) {
        let task = Some(runnable.task_ptr());
        let info = SlotInfo {
            location,
            awaiting: None,
        };
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = task;
                self.info[i] = info;
                i
            }
            None => {
                self.slots.push(task);
                self.info.push(info);
                self.slots.len() - 1
            }
        };
        // 2^32 live tasks would not fit in memory; should it happen, the slot is simply never
        // matched on removal (the table keeps that task until `take_all`).
        runnable.set_tag(u32::try_from(slot).unwrap_or(u32::MAX));
        self.len += 1;
    }

    /// Removes the task `id` registered at `slot`, if it is there.
    pub(crate) fn remove(&mut self, slot: u32, id: TaskId) -> Option<TaskPtr> {
        let slot = usize::try_from(slot).ok()?;
        let entry = self.slots.get_mut(slot)?;
        if entry.as_ref().is_none_or(|t| t.id() != id) {
            return None;
        }
        let task = entry.take();
        self.free.push(slot);
        self.len -= 1;
        if self.len == 0 && self.slots.len() > KEEP_SLOTS {
            self.slots = Vec::new();
            self.info = Vec::new();
            self.free = Vec::new();
        }
        task
    }

    /// Records what the task `id` at `slot` waits for after its latest step (`None`: no task).
    #[inline]
    pub(crate) fn set_awaiting(&mut self, slot: u32, id: TaskId, awaited: Option<TaskId>) {
        let Ok(slot) = usize::try_from(slot) else {
            return;
        };
        let (Some(Some(task)), Some(info)) = (self.slots.get(slot), self.info.get_mut(slot)) else {
            return;
        };
        if info.awaiting != awaited && task.id() == id {
            info.awaiting = awaited;
        }
    }

    /// The registered tasks.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &TaskPtr> {
        self.slots.iter().flatten()
    }

    /// The registered tasks, with what the table knows of each.
    pub(crate) fn iter_info(&self) -> impl Iterator<Item = (&TaskPtr, SlotInfo)> {
        self.slots
            .iter()
            .zip(&self.info)
            .filter_map(|(t, i)| t.as_ref().map(|t| (t, *i)))
    }

    /// Empties the table.
    pub(crate) fn take_all(&mut self) -> Vec<TaskRef> {
        self.free.clear();
        self.info.clear();
        self.len = 0;
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .map(TaskPtr::into_task_ref)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_one_pointer() {
        // A million pending tasks pay for their slot each: keep it a bare reference.
        assert_eq!(
            std::mem::size_of::<Option<TaskPtr>>(),
            std::mem::size_of::<usize>()
        );
    }
    use crate::task::spawn;

    fn runnable() -> (Runnable, crate::task::Task<()>) {
        spawn(async {}, |_r: Runnable| {})
    }

    #[test]
    fn slots_are_reused_and_stale_removals_ignored() {
        let mut table = TaskTable::default();
        let (a, _ta) = runnable();
        let (b, _tb) = runnable();
        table.insert(&a, None);
        table.insert(&b, None);
        assert_eq!((a.tag(), b.tag()), (0, 1));
        assert!(table.remove(a.tag(), a.id()).is_some());
        // A second removal, or one with the wrong id, finds nothing.
        assert!(table.remove(a.tag(), a.id()).is_none());
        assert!(table.remove(b.tag(), a.id()).is_none());
        let (c, _tc) = runnable();
        table.insert(&c, None);
        assert_eq!(c.tag(), 0, "the freed slot is reused");
        let ids: Vec<_> = table.iter().map(TaskPtr::id).collect();
        assert_eq!(ids, [c.id(), b.id()]);
        assert_eq!(table.take_all().len(), 2);
        assert_eq!(table.iter().count(), 0);
    }
}
