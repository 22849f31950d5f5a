//! Deadlines from durations, saturating: the loop's one piece of clock arithmetic.

use std::time::{Duration, Instant};

/// `Instant::now() + d`, saturating at about 30 years from now (as tokio does) instead of
/// overflowing: a `Duration::MAX` timeout means "never", not a panic.
///
/// ```
/// use std::time::{Duration, Instant};
/// assert!(evloop_core::deadline_after(Duration::MAX) > Instant::now());
/// ```
pub fn deadline_after(d: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    let now = Instant::now();
    now.checked_add(d.min(FAR_FUTURE))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}
