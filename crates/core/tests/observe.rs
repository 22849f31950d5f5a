//! Seeing inside a running loop: the task spans (`tracing`), no event per iteration, the
//! loop's metrics (`EventLoop::metrics`) and the task dump (`EventLoop::dump_tasks`).
#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use evloop_core::{EventLoop, Task, TaskBuilder, TaskId, TaskState};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

// ---------------------------------------------------------------------------------------------
// A subscriber that records spans (name and fields) and events (message, target, the names
// and fields of the spans they happened in).

#[derive(Clone, Debug, Default)]
struct SpanRec {
    name: String,
    fields: HashMap<String, String>,
}

#[derive(Clone, Debug)]
struct EventRec {
    target: String,
    message: String,
    /// The spans the event happened in, innermost first.
    scope: Vec<SpanRec>,
}

#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<HashMap<u64, SpanRec>>>,
    events: Arc<Mutex<Vec<EventRec>>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut rec = SpanRec {
            name: attrs.metadata().name().to_owned(),
            fields: HashMap::new(),
        };
        attrs.record(&mut Fields(&mut rec.fields));
        self.spans.lock().unwrap().insert(id.into_u64(), rec);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(rec) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut rec.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let spans = self.spans.lock().unwrap();
        let scope = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .filter_map(|s| spans.get(&s.id().into_u64()).cloned())
                    .collect()
            })
            .unwrap_or_default();
        self.events.lock().unwrap().push(EventRec {
            target: event.metadata().target().to_owned(),
            message: fields.remove("message").unwrap_or_default(),
            scope,
        });
    }
}

impl Recorder {
    /// Runs `f` with this recorder as the thread's subscriber, every level enabled.
    fn record<R>(&self, f: impl FnOnce() -> R) -> R {
        let subscriber = tracing_subscriber::registry().with(self.clone());
        tracing::subscriber::with_default(subscriber, f)
    }

    fn events(&self) -> Vec<EventRec> {
        self.events.lock().unwrap().clone()
    }

    fn event(&self, message: &str) -> EventRec {
        let events = self.events();
        let found = events.iter().find(|e| e.message == message);
        found
            .cloned()
            .unwrap_or_else(|| panic!("no event {message:?} in {events:#?}"))
    }

    fn task_spans(&self) -> Vec<SpanRec> {
        let spans = self.spans.lock().unwrap();
        spans
            .values()
            .filter(|s| s.name == "task")
            .cloned()
            .collect()
    }
}

/// The `task` span an event happened in (the innermost one).
fn task_span_of(e: &EventRec) -> SpanRec {
    let found = e.scope.iter().find(|s| s.name == "task");
    found
        .cloned()
        .unwrap_or_else(|| panic!("event outside a task span: {e:#?}"))
}

// ---------------------------------------------------------------------------------------------
// Spans

#[test]
fn events_inside_a_task_carry_its_span_with_id_name_and_spawn_location() {
    let rec = Recorder::default();
    let (id, line) = rec.record(|| {
        let lp = EventLoop::new().unwrap();
        let line = line!() + 1;
        let task = TaskBuilder::new().name("worker").spawn_on(&lp, async {
            tracing::info!("first poll");
            evloop_core::yield_now().await;
            tracing::info!("second poll");
        });
        let id = task.id();
        lp.run_until_complete(task).unwrap().unwrap();
        (id, line)
    });
    for message in ["first poll", "second poll"] {
        let span = task_span_of(&rec.event(message));
        assert_eq!(span.fields["task.id"], id.as_u64().to_string(), "{message}");
        assert_eq!(span.fields["task.name"], "worker");
        let at = &span.fields["task.spawned_at"];
        assert!(at.starts_with(&format!("{}:{line}:", file!())), "{at}");
    }
    // One span for the task, one for the main task of run_until_complete.
    assert_eq!(rec.task_spans().len(), 2);
}

#[test]
fn the_main_task_has_a_span_too_inside_the_callers_span() {
    let rec = Recorder::default();
    let (id, line) = rec.record(|| {
        let lp = EventLoop::new().unwrap();
        let probe = lp.clone();
        let _request = tracing::info_span!("request").entered();
        let line = line!() + 1;
        let id = lp.run_until_complete(async move {
            tracing::info!("in main");
            evloop_core::yield_now().await;
            tracing::info!("in main again");
            probe.current_task().unwrap().id()
        });
        (id.unwrap(), line)
    });
    for message in ["in main", "in main again"] {
        let event = rec.event(message);
        let span = task_span_of(&event);
        assert_eq!(span.fields["task.id"], id.as_u64().to_string());
        assert_eq!(span.fields["task.name"], format!("Task-{id}"));
        let at = &span.fields["task.spawned_at"];
        assert!(at.starts_with(&format!("{}:{line}:", file!())), "{at}");
        // The run's future is the caller's code: the caller's span stays around it.
        let names: Vec<&str> = event.scope.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"request"), "{names:?}");
    }
}

#[test]
fn an_unnamed_task_span_is_named_task_n_and_create_task_records_its_caller() {
    let rec = Recorder::default();
    let (id, line) = rec.record(|| {
        let lp = EventLoop::new().unwrap();
        let line = line!() + 1;
        let task = lp.create_task(async { tracing::debug!("inside") });
        let id = task.id();
        lp.run_until_complete(task).unwrap().unwrap();
        (id, line)
    });
    let span = task_span_of(&rec.event("inside"));
    assert_eq!(span.fields["task.name"], format!("Task-{id}"));
    assert!(span.fields["task.spawned_at"].contains(&format!(":{line}:")));
}

#[test]
fn nested_tasks_each_have_their_own_span_and_a_task_local_context_still_works() {
    static KEY: evloop_core::TaskLocal<u32> = evloop_core::TaskLocal::new();
    let rec = Recorder::default();
    rec.record(|| {
        let lp = EventLoop::new().unwrap();
        let probe = lp.clone();
        let outer = TaskBuilder::new().name("outer").spawn_on(
            &lp,
            KEY.scope(5, async move {
                let inner = TaskBuilder::new().name("inner").spawn_on(&probe, async {
                    tracing::info!(value = KEY.get(), "in inner");
                    KEY.get()
                });
                let got = inner.await.unwrap();
                tracing::info!("in outer");
                got
            }),
        );
        assert_eq!(lp.run_until_complete(outer).unwrap().unwrap(), Some(5));
    });
    assert_eq!(
        task_span_of(&rec.event("in inner")).fields["task.name"],
        "inner"
    );
    let outer = rec.event("in outer");
    assert_eq!(task_span_of(&outer).fields["task.name"], "outer");
    // The inner task's span is not a child of the outer one's poll: one task span per event.
    let inner = rec.event("in inner");
    assert_eq!(inner.scope.iter().filter(|s| s.name == "task").count(), 1);
}

#[test]
fn the_default_exception_handler_names_the_task_with_task_id_and_task_name() {
    /// Records the field names and values of error events.
    #[derive(Clone, Default)]
    struct Errors(Arc<Mutex<Vec<HashMap<String, String>>>>);
    impl<S: Subscriber> tracing_subscriber::Layer<S> for Errors {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            if *event.metadata().level() == tracing::Level::ERROR {
                let mut fields = HashMap::new();
                event.record(&mut Fields(&mut fields));
                self.0.lock().unwrap().push(fields);
            }
        }
    }
    let errors = Errors::default();
    let subscriber = tracing_subscriber::registry().with(errors.clone());
    let id = tracing::subscriber::with_default(subscriber, || {
        let lp = EventLoop::new().unwrap();
        let task: Task<()> = TaskBuilder::new()
            .name("doomed")
            .spawn_on(&lp, async { panic!("boom") });
        let id = task.id();
        drop(task);
        lp.stop();
        lp.run_forever().unwrap();
        lp.close().unwrap();
        id
    });
    let errors = errors.0.lock().unwrap();
    let report = errors
        .iter()
        .find(|f| {
            f.get("message")
                .is_some_and(|m| m.contains("never retrieved"))
        })
        .unwrap_or_else(|| panic!("{errors:#?}"));
    assert_eq!(report["task.id"], id.as_u64().to_string());
    assert_eq!(report["task.name"], "doomed");
    assert!(
        !report.contains_key("task"),
        "the old spelling is gone: {report:?}"
    );
}

/// Runs `iterations` loop iterations (a callback that reschedules itself, and a task that
/// yields, each once per iteration) with every event recorded; returns how many evloop events
/// were emitted.
fn evloop_events_over(iterations: u32) -> usize {
    let rec = Recorder::default();
    rec.record(|| {
        let lp = EventLoop::new().unwrap();
        let before = lp.metrics().iterations;
        fn again(lp: EventLoop, left: u32) {
            if left == 0 {
                lp.stop();
            } else {
                let next = lp.clone();
                lp.call_soon(move || again(next, left - 1));
            }
        }
        let yielder = lp.create_task(async move {
            for _ in 0..iterations {
                evloop_core::yield_now().await;
            }
        });
        again(lp.clone(), iterations);
        lp.run_forever().unwrap();
        assert!(lp.metrics().iterations - before >= u64::from(iterations));
        lp.run_until_complete(yielder).unwrap().unwrap();
        lp.close().unwrap();
    });
    rec.events()
        .iter()
        .filter(|e| e.target.starts_with("evloop"))
        .count()
}

#[test]
fn no_event_per_iteration_even_at_trace_level() {
    let few = evloop_events_over(10);
    let many = evloop_events_over(1000);
    assert_eq!(few, many, "events grow with iterations");
    // Loop start/stop for each run and the close: a handful, whatever the iterations.
    assert!(many <= 8, "{many} events");
}

// ---------------------------------------------------------------------------------------------
// Metrics

#[test]
fn task_counters_move_as_tasks_are_spawned_polled_and_end() {
    let lp = EventLoop::new().unwrap();
    let m0 = lp.metrics();
    assert_eq!(m0, evloop_core::LoopMetrics::default());
    let a = lp.create_task(async {
        evloop_core::yield_now().await;
        evloop_core::yield_now().await;
    });
    let b = lp.create_task(std::future::pending::<()>());
    let m1 = lp.metrics();
    assert_eq!(m1.tasks_spawned, 2);
    assert_eq!(m1.tasks_alive, 2);
    assert_eq!(m1.ready_queue_depth, 2, "both wait for their first poll");
    lp.run_until_complete(a).unwrap().unwrap();
    let m2 = lp.metrics();
    // `a`, `b` and the main task of run_until_complete.
    assert_eq!(m2.tasks_spawned, 3);
    assert_eq!(m2.tasks_completed, 2, "a and the main task");
    assert_eq!(m2.tasks_alive, 1, "b");
    // a: 3 polls, b: 1, the main task: its stand-in's steps and the run's future's polls.
    assert!(m2.task_polls >= 4 + 2, "{m2:?}");
    b.cancel();
    lp.run_until_complete(async {}).unwrap();
    let m3 = lp.metrics();
    assert_eq!(m3.tasks_alive, 0);
    assert_eq!(m3.tasks_completed, 4);
    assert!(m3.task_polls > m2.task_polls);
}

#[test]
fn a_task_cancelled_inline_is_counted_completed_once() {
    let lp = EventLoop::new().unwrap();
    let probe = lp.clone();
    lp.run_until_complete(async move {
        let inner = probe.create_task(std::future::pending::<()>());
        // Awaited once, then dropped: the inner task is cancelled inline (it never reaches
        // the loop's step again).
        let mut inner = Some(inner);
        poll_fn(|cx| {
            let _ = std::pin::Pin::new(inner.as_mut().unwrap()).poll(cx);
            Poll::Ready(())
        })
        .await;
        evloop_core::yield_now().await; // it started: now it is idle
        poll_fn(|cx| {
            let _ = std::pin::Pin::new(inner.as_mut().unwrap()).poll(cx);
            Poll::Ready(())
        })
        .await;
        drop(inner);
    })
    .unwrap();
    // The loop was told (`Schedule::ended_unscheduled`) and forgot it at its next iteration,
    // which the run's last one is: it and the main task, each counted once.
    let m = lp.metrics();
    assert_eq!(
        (m.tasks_alive, m.tasks_spawned, m.tasks_completed),
        (0, 2, 2),
        "{m:?}"
    );
    for _ in 0..4 {
        lp.run_until_complete(lp.create_task(async {}))
            .unwrap()
            .unwrap();
    }
    let m = lp.metrics();
    // Each round: the task and the main task; the inline-cancelled one is not counted again.
    assert_eq!(m.tasks_completed, 2 + 8, "{m:?}");
}

#[test]
fn callbacks_timers_and_fd_callbacks_are_counted_and_queues_measured() {
    let lp = EventLoop::new().unwrap();
    lp.call_soon(|| {});
    lp.call_soon(|| {});
    let cancelled = lp.call_soon(|| {});
    cancelled.cancel();
    let t = lp.call_later(Duration::from_millis(1), || {});
    let far = lp.call_later(Duration::from_secs(3600), || {});
    let m = lp.metrics();
    assert_eq!(m.ready_queue_depth, 3);
    assert_eq!(m.timers_pending, 2);
    assert_eq!(m.callbacks_run, 0);
    // One iteration runs what was queued (and the cancelled callback is dropped unrun).
    lp.stop();
    lp.run_forever().unwrap();
    let m = lp.metrics();
    assert_eq!((m.ready_queue_depth, m.callbacks_run), (0, 2));

    // A real fd: one end of a socket pair, made readable by writing to the other end.
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fds_before = lp.metrics().fds_registered;
    assert_eq!(lp.metrics().io_events, 0, "no fd has been ready yet");
    let fired = Rc::new(Cell::new(0u64));
    let f = fired.clone();
    let stopper = lp.clone();
    let reg = lp
        .add_reader_fd(a.try_clone().unwrap(), move |mut s: &UnixStream| {
            let _ = std::io::Read::read(&mut s, &mut [0; 8]);
            f.set(f.get() + 1);
            stopper.stop();
        })
        .unwrap();
    assert_eq!(lp.metrics().fds_registered, fds_before + 1);
    std::io::Write::write_all(&mut &b, b"x").unwrap();

    // From another thread too.
    let h = lp.handle();
    std::thread::spawn(move || h.call_soon_threadsafe(|| {}).unwrap())
        .join()
        .unwrap();
    while fired.get() == 0 {
        lp.run_forever().unwrap();
    }
    // Let the 1 ms timer come due (waiting on the loop itself, which parks in the reactor).
    lp.run_until_complete(evloop_core::sleep(&lp, Duration::from_millis(2)))
        .unwrap();
    drop(t);
    let m = lp.metrics();
    // 2 call_soon + 1 timer + 1 threadsafe + the fd callbacks + the stop callback of the
    // `run_until_complete` (asyncio's `_run_until_complete_cb`); not the cancelled one.
    assert!(m.callbacks_run >= 6, "{m:?}");
    assert_eq!(m.callbacks_run, 5 + fired.get(), "{m:?}");
    assert!(m.io_events >= fired.get(), "{m:?}");
    assert_eq!(m.timers_pending, 1, "the far timer");
    far.cancel();
    assert!(reg.remove());
    assert_eq!(lp.metrics().fds_registered, fds_before);
}

#[test]
fn iterations_parks_and_parked_time_come_from_real_waits() {
    let lp = EventLoop::new().unwrap();
    let m0 = lp.metrics();
    lp.stop();
    lp.run_forever().unwrap();
    let m1 = lp.metrics();
    assert_eq!(m1.iterations, m0.iterations + 1);
    assert_eq!(m1.parks, m0.parks, "a stopping loop does not park");

    let started = Instant::now();
    lp.run_until_complete(evloop_core::sleep(&lp, Duration::from_millis(30)))
        .unwrap();
    let took = started.elapsed();
    let m2 = lp.metrics();
    assert!(m2.parks > m1.parks);
    assert!(m2.parked_time >= Duration::from_millis(25), "{m2:?}");
    assert!(m2.parked_time <= took);
    assert!(m2.busy_time + m2.parked_time <= took + Duration::from_millis(5));
}

#[test]
fn busy_time_counts_work_not_parking() {
    let lp = EventLoop::new().unwrap();
    lp.call_soon(|| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
    });
    lp.run_until_complete(evloop_core::yield_now()).unwrap();
    let m = lp.metrics();
    assert!(m.busy_time >= Duration::from_millis(20), "{m:?}");
    assert!(m.parked_time < Duration::from_millis(20), "{m:?}");
}

// ---------------------------------------------------------------------------------------------
// Task dump

/// A one-shot gate: `open` wakes the task waiting in `wait`.
#[derive(Clone, Default)]
struct Gate(Rc<RefCell<(bool, Option<Waker>)>>);

impl Gate {
    fn open(&self) {
        let w = {
            let mut g = self.0.borrow_mut();
            g.0 = true;
            g.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
    fn wait(&self) -> impl Future<Output = ()> + 'static {
        let g = self.0.clone();
        poll_fn(move |cx| {
            let mut g = g.borrow_mut();
            if g.0 {
                Poll::Ready(())
            } else {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

#[test]
fn the_dump_shows_states_locations_and_the_chain_of_awaited_tasks() {
    let lp = EventLoop::new().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let line_c = line!() + 1;
    let c = TaskBuilder::new().name("c").spawn_on(&lp, g.wait());
    let c_id = c.id();
    let line_b = line!() + 1;
    let b = TaskBuilder::new().name("b").spawn_on(&lp, c);
    let b_id = b.id();
    let a = TaskBuilder::new().name("a").spawn_on(&lp, b);
    let a_id = a.id();
    // Before the first iteration: all scheduled, nothing awaited yet.
    let dump = lp.dump_tasks();
    assert_eq!(dump.tasks().len(), 3);
    assert!(dump.tasks().iter().all(|t| t.state == TaskState::Scheduled));
    let at = dump.get(c_id).unwrap().spawned_at.unwrap();
    assert_eq!((at.file(), at.line()), (file!(), line_c));
    assert_eq!(dump.get(b_id).unwrap().spawned_at.unwrap().line(), line_b);

    let probe = lp.clone();
    let line_main = line!() + 2;
    let (inside, main_id) = lp
        .run_until_complete(async move {
            evloop_core::yield_now().await; // a, b and c have run once
            let main_id = probe.current_task().unwrap().id();
            (probe.dump_tasks(), main_id)
        })
        .unwrap();
    assert_eq!(inside.get(main_id).unwrap().state, TaskState::Running);
    let main_at = inside.get(main_id).unwrap().spawned_at.unwrap();
    assert_eq!((main_at.file(), main_at.line()), (file!(), line_main));
    for id in [a_id, b_id, c_id] {
        assert_eq!(inside.get(id).unwrap().state, TaskState::Idle);
    }
    assert_eq!(inside.get(a_id).unwrap().awaiting, Some(b_id));
    assert_eq!(inside.get(b_id).unwrap().awaiting, Some(c_id));
    assert_eq!(inside.get(c_id).unwrap().awaiting, None);
    assert_eq!(inside.chain(a_id), vec![b_id, c_id]);
    assert_eq!(inside.chain(c_id), Vec::<TaskId>::new());
    let text = inside.to_string();
    assert!(text.starts_with("4 live task(s)"), "{text}");
    assert!(
        text.contains(&format!("a (id {a_id}) idle, spawned at {}:", file!())),
        "{text}"
    );
    assert!(
        text.contains(&format!("awaiting b (id {b_id}) -> c (id {c_id})")),
        "{text}"
    );
    // Outside debug mode: no per-task statistics.
    assert_eq!(inside.get(a_id).unwrap().polls, None);

    // Opening the gate wakes c: scheduled until the loop runs it.
    gate.open();
    assert_eq!(
        lp.dump_tasks().get(c_id).unwrap().state,
        TaskState::Scheduled
    );
    lp.run_until_complete(a).unwrap().unwrap().unwrap().unwrap();
    assert!(lp.dump_tasks().tasks().is_empty());
}

#[test]
fn what_a_task_awaits_is_cleared_when_it_moves_on() {
    let lp = EventLoop::new().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let probe = lp.clone();
    let a = lp.create_task(async move {
        let quick = probe.create_task(async {});
        quick.await.unwrap();
        g.wait().await; // waiting on something that is not a task
    });
    let a_id = a.id();
    lp.run_until_complete(async {
        for _ in 0..3 {
            evloop_core::yield_now().await;
        }
    })
    .unwrap();
    let dump = lp.dump_tasks();
    assert_eq!(dump.get(a_id).unwrap().awaiting, None, "{dump}");
    gate.open();
    lp.run_until_complete(a).unwrap().unwrap();
}

#[test]
fn a_task_awaiting_a_task_ref_shows_it_too() {
    let lp = EventLoop::new().unwrap();
    let inner = lp.create_task(std::future::pending::<()>());
    let inner_ref = inner.as_ref();
    let outer = lp.create_task(async move {
        let _ = inner_ref.await;
    });
    let probe = lp.clone();
    let dump = lp
        .run_until_complete(async move {
            evloop_core::yield_now().await;
            probe.dump_tasks()
        })
        .unwrap();
    assert_eq!(dump.get(outer.id()).unwrap().awaiting, Some(inner.id()));
    inner.cancel();
    let _ = lp.run_until_complete(outer).unwrap();
}

#[test]
fn in_debug_mode_the_dump_has_poll_counts_and_busy_time() {
    let lp = EventLoop::new().unwrap();
    lp.set_debug(true);
    let gate = Gate::default();
    let g = gate.clone();
    let t = lp.create_task(async move {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        evloop_core::yield_now().await;
        g.wait().await;
    });
    lp.run_until_complete(async {
        for _ in 0..3 {
            evloop_core::yield_now().await;
        }
    })
    .unwrap();
    let dump = lp.dump_tasks();
    let info = dump.get(t.id()).unwrap();
    assert_eq!(info.polls, Some(2), "{dump}");
    assert!(info.busy.unwrap() >= Duration::from_millis(5), "{dump}");
    assert!(dump.to_string().contains("2 polls, busy 0.0"), "{dump}");
    lp.set_debug(false);
    assert_eq!(lp.dump_tasks().get(t.id()).unwrap().polls, None);
    gate.open();
    lp.run_until_complete(t).unwrap().unwrap();
}

#[test]
fn a_task_spawned_from_another_thread_has_its_location() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let line = line!() + 1;
    let task = std::thread::spawn(move || handle.spawn(std::future::pending::<()>()));
    let task = task.join().unwrap();
    let probe = lp.clone();
    let id = task.id();
    let at = lp
        .run_until_complete(async move {
            evloop_core::yield_now().await;
            probe.dump_tasks().get(id).and_then(|t| t.spawned_at)
        })
        .unwrap();
    let at = at.expect("the remote task is registered with its location");
    assert_eq!((at.file(), at.line()), (file!(), line));
    task.cancel();
    lp.run_until_complete(async {
        let _ = task.await;
    })
    .unwrap();
}

/// Regression (found by `evloop-stress`'s panicking-drops rounds): a task whose future panics
/// while being dropped *after it completed* ended `Panicked` when its future was wrapped (a
/// span, because a subscriber listens; or a task-local context), since the wrapper dropped the
/// inner future inside the completing poll. The outcome is the output; the destructor's panic
/// is a destructor report.
#[test]
#[allow(clippy::async_yields_async)] // the task is made in the scope, awaited later
fn a_wrapped_task_whose_future_panics_in_drop_after_completing_keeps_its_output() {
    /// Ready at once; panics when the future itself is dropped (not when it completes).
    struct ReadyThenBoom(u8);
    impl Future for ReadyThenBoom {
        type Output = u8;
        fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<u8> {
            Poll::Ready(self.0)
        }
    }
    impl Drop for ReadyThenBoom {
        fn drop(&mut self) {
            panic!("boom in drop");
        }
    }
    static KEY: evloop_core::TaskLocal<u8> = evloop_core::TaskLocal::new();
    let recorder = Recorder::default();
    recorder.record(|| {
        let lp = EventLoop::new().unwrap();
        let reports = Rc::new(RefCell::new(Vec::new()));
        let r = reports.clone();
        lp.set_exception_handler(Some(
            move |_: &EventLoop, ctx: &evloop_core::ExceptionContext| {
                r.borrow_mut().push(ctx.panic_message().map(str::to_owned));
            },
        ));
        let traced = lp.create_task(ReadyThenBoom(7));
        let probe = lp.clone();
        let in_context = lp
            .run_until_complete(KEY.scope(1, async move { probe.create_task(ReadyThenBoom(8)) }))
            .unwrap();
        assert_eq!(lp.run_until_complete(traced).unwrap().unwrap(), 7);
        assert_eq!(lp.run_until_complete(in_context).unwrap().unwrap(), 8);
        lp.run_until_complete(evloop_core::yield_now()).unwrap();
        let reports = reports.borrow();
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert!(reports.iter().all(|m| m.as_deref() == Some("boom in drop")));
    });
}
