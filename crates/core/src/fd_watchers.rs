//! The table of fds watched by `add_reader`/`add_writer` (plain data; the API and the design
//! are in `event_loop/fd_watch.rs`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;

use evloop_reactor::{Direction, Source};

pub(crate) type FdCallback = Rc<RefCell<Box<dyn FnMut()>>>;

/// One registered callback and its id (see [`FdRegistration`](crate::FdRegistration)).
pub(crate) struct Slot {
    pub(crate) id: u64,
    pub(crate) callback: FdCallback,
}

pub(crate) struct FdWatch {
    pub(crate) source: Arc<Source>,
    pub(crate) generation: u64,
    pub(crate) reader: Option<Slot>,
    pub(crate) writer: Option<Slot>,
}

impl FdWatch {
    pub(crate) fn slot(&mut self, dir: Direction) -> &mut Option<Slot> {
        match dir {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }
}

/// The loop's watched fds.
#[derive(Default)]
pub(crate) struct FdWatchers {
    pub(crate) map: HashMap<RawFd, FdWatch>,
    /// Numbers watches and callback slots (one counter for both).
    generation: u64,
}

impl FdWatchers {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }
}
