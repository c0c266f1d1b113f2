//! A server's one disk thread (Apache's `SyncRequestProcessor`): txn log appends run
//! here, off the node task, so it keeps receiving requests, proposals and acks while the
//! log syncs; so do the writes of snapshot files and autopurge ([`DiskJobs::run`]), in
//! the order they were queued with the appends. Whatever was handed over while a sync ran goes to disk with the next single
//! write + fdatasync (group commit); each sync is reported back as `(generation, last
//! zxid)` and the owner then calls `on_persisted` (through
//! [`crate::host::quorum::driver::QuorumIo`]).
//!
//! Before anything that must see the log complete or change it (reading it for a DIFF,
//! TRUNC, SNAP) the owner waits for the thread to drain ([`DiskThread::barrier`]);
//! reports sent before a barrier carry an older generation and are ignored, so a late
//! report can never describe a log that was truncated meanwhile.

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use tokio::sync::mpsc::UnboundedSender;

use crate::zab::broadcast::Proposal;
use crate::zab::Zxid;

/// Most proposals written with one sync; more wait for the next one.
const MAX_BATCH: usize = 4096;

/// Appends txns to a durable log from the disk thread.
pub trait LogAppender: Send + 'static {
    /// Appends `txns` (ascending zxids) with one write and one sync; returns true when
    /// they are durable. On false nothing is reported to the peer, which then never acks
    /// them (a member whose disk fails stops taking part until it restarts).
    fn append(&mut self, txns: &[Proposal]) -> bool;

    /// Whether txns that found the disk full are held to be written again (after an
    /// append returned false): the thread then calls [`LogAppender::retry`] now and then.
    fn holding(&self) -> bool {
        false
    }

    /// Writes the held txns; the last zxid durable now, if they were written.
    fn retry(&mut self) -> Option<Zxid> {
        None
    }
}

/// First pause before the txns held on a full disk are tried again; it doubles up to
/// [`RETRY_MAX`] while the disk stays full.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(50);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(1);

enum Job {
    Append(u64, Vec<Proposal>),
    /// Replies with the last zxid durable; reports after it carry the generation given.
    Barrier(std_mpsc::SyncSender<Option<Zxid>>, u64),
    /// Other disk work (snapshot pieces, purges), run after what was queued before it.
    Run(Box<dyn FnOnce() + Send>),
    /// Finish what was queued before, then end (other [`DiskJobs`] may still hold the
    /// channel open).
    Stop,
}

/// Queues disk work other than appends on a [`DiskThread`] (or runs it at once when the
/// server has none: [`DiskJobs::inline`]).
#[derive(Clone)]
pub struct DiskJobs(Option<std_mpsc::Sender<Job>>);

impl std::fmt::Debug for DiskJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "DiskJobs(thread)"
        } else {
            "DiskJobs(inline)"
        })
    }
}

impl DiskJobs {
    /// Runs every job at once, on the caller's thread.
    pub fn inline() -> DiskJobs {
        DiskJobs(None)
    }

    /// Runs `job` on the disk thread once everything queued before it is done (dropped
    /// when the thread has stopped).
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        match &self.0 {
            Some(tx) => {
                let _ = tx.send(Job::Run(Box::new(job)));
            }
            None => job(),
        }
    }
}

/// A running disk thread; dropping it lets the thread finish what it was handed, then
/// joins it.
pub struct DiskThread {
    jobs: Option<std_mpsc::Sender<Job>>,
    generation: u64,
    thread: Option<JoinHandle<()>>,
}

impl DiskThread {
    /// Starts the thread; syncs are reported on `durable`.
    pub fn start(
        mut appender: Box<dyn LogAppender>,
        durable: UnboundedSender<(u64, Zxid)>,
    ) -> std::io::Result<DiskThread> {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("zk-txnlog-sync".into())
            .spawn(move || {
                let mut last: Option<Zxid> = None;
                let mut held: Option<Job> = None;
                // The owner's generation as far as the jobs tell it.
                let mut current = 0;
                // Set while the appender holds txns a full disk refused.
                let mut retry_in: Option<std::time::Duration> = None;
                loop {
                    let first = match (held.take(), retry_in) {
                        (Some(j), _) => j,
                        (None, None) => match rx.recv() {
                            Ok(j) => j,
                            Err(_) => break,
                        },
                        (None, Some(wait)) => match rx.recv_timeout(wait) {
                            Ok(j) => j,
                            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                                if let Some(z) = appender.retry() {
                                    last = Some(z);
                                    let _ = durable.send((current, z));
                                }
                                retry_in = appender.holding().then(|| (wait * 2).min(RETRY_MAX));
                                continue;
                            }
                            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
                        },
                    };
                    if matches!(first, Job::Stop) {
                        break;
                    }
                    let mut batch: Vec<Proposal> = Vec::new();
                    let mut generation = 0;
                    let mut barrier = None;
                    let mut next = Some(first);
                    while let Some(job) = next.take() {
                        match job {
                            Job::Append(g, txns) => {
                                generation = g;
                                current = g;
                                batch.extend(txns);
                                if batch.len() < MAX_BATCH {
                                    next = rx.try_recv().ok();
                                }
                            }
                            // Everything handed over before the barrier is in `batch`.
                            Job::Barrier(reply, g) => barrier = Some((reply, g)),
                            // Runs (ends) after the batch before it is durable.
                            Job::Run(f) if batch.is_empty() => f(),
                            later @ (Job::Run(_) | Job::Stop) => held = Some(later),
                        }
                    }
                    if let Some(z) = batch.last().map(|p| p.zxid) {
                        if appender.append(&batch) {
                            last = Some(z);
                            let _ = durable.send((generation, z));
                            retry_in = None;
                        } else if appender.holding() {
                            retry_in = retry_in.or(Some(RETRY_FIRST));
                        } else {
                            retry_in = None;
                        }
                    }
                    if let Some((reply, g)) = barrier {
                        // Never waits for space: what is held stays held (the disk keeps
                        // it in order with what the owner does to the log next).
                        let _ = reply.send(last);
                        current = g;
                    }
                }
            })?;
        Ok(DiskThread {
            jobs: Some(tx),
            generation: 0,
            thread: Some(thread),
        })
    }

    /// A handle queuing other disk work behind the appends.
    pub fn jobs(&self) -> DiskJobs {
        DiskJobs(self.jobs.clone())
    }

    /// Hands txns over to be appended.
    pub fn submit(&self, txns: Vec<Proposal>) {
        if txns.is_empty() {
            return;
        }
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Job::Append(self.generation, txns));
        }
    }

    /// Waits until everything handed over is durable; returns the last zxid synced so far
    /// (`None` if nothing ever was). Later reports of earlier syncs are stale.
    pub fn barrier(&mut self) -> Option<Zxid> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        let last = match &self.jobs {
            Some(jobs) if jobs.send(Job::Barrier(tx, self.generation + 1)).is_ok() => {
                rx.recv().ok().flatten()
            }
            _ => None,
        };
        self.generation += 1;
        last
    }

    /// Whether a report belongs to the current generation.
    pub fn is_current(&self, generation: u64) -> bool {
        generation == self.generation
    }
}

impl Drop for DiskThread {
    fn drop(&mut self) {
        if let Some(jobs) = self.jobs.take() {
            let _ = jobs.send(Job::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Records each append; each "sync" takes a while so submissions pile up meanwhile.
    struct Slow(Arc<Mutex<Vec<Vec<Zxid>>>>);

    impl LogAppender for Slow {
        fn append(&mut self, txns: &[Proposal]) -> bool {
            std::thread::sleep(Duration::from_millis(5));
            self.0
                .lock()
                .unwrap()
                .push(txns.iter().map(|p| p.zxid).collect());
            true
        }
    }

    fn p(z: Zxid) -> Proposal {
        Proposal {
            zxid: z,
            data: Bytes::new(),
        }
    }

    #[tokio::test]
    async fn groups_submissions_and_barriers_drain() {
        let syncs = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut d = DiskThread::start(Box::new(Slow(syncs.clone())), tx).unwrap();
        for z in 1..=200 {
            d.submit(vec![p(z)]);
        }
        assert_eq!(d.barrier(), Some(200));
        let done = syncs.lock().unwrap().clone();
        // Every txn once, in order, with far fewer syncs than txns.
        assert_eq!(done.concat(), (1..=200).collect::<Vec<_>>());
        assert!(done.len() < 20, "{} syncs for 200 txns", done.len());
        // Reports before the barrier are stale now; later ones are current.
        let mut reports = Vec::new();
        while let Ok(r) = rx.try_recv() {
            reports.push(r);
        }
        assert_eq!(reports.len(), done.len());
        assert!(reports.iter().all(|(g, _)| !d.is_current(*g)));
        d.submit(vec![p(201)]);
        let (g, z) = rx.recv().await.unwrap();
        assert!(d.is_current(g));
        assert_eq!(z, 201);
    }

    struct Failing;

    impl LogAppender for Failing {
        fn append(&mut self, _txns: &[Proposal]) -> bool {
            false
        }
    }

    /// A disk that is full until `space` is set: refused txns are held and written,
    /// in order, by a later append or retry.
    struct Full {
        space: Arc<std::sync::atomic::AtomicBool>,
        held: Vec<Zxid>,
        written: Arc<Mutex<Vec<Zxid>>>,
    }

    impl LogAppender for Full {
        fn append(&mut self, txns: &[Proposal]) -> bool {
            self.held.extend(txns.iter().map(|p| p.zxid));
            self.retry().is_some()
        }
        fn holding(&self) -> bool {
            !self.held.is_empty()
        }
        fn retry(&mut self) -> Option<Zxid> {
            if !self.space.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            let last = self.held.last().copied();
            self.written.lock().unwrap().append(&mut self.held);
            last
        }
    }

    #[tokio::test]
    async fn held_txns_are_retried_until_space_returns_and_barriers_never_wait_for_it() {
        let space = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let written = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let full = Full {
            space: space.clone(),
            held: Vec::new(),
            written: written.clone(),
        };
        let mut d = DiskThread::start(Box::new(full), tx).unwrap();
        d.submit(vec![p(1), p(2)]);
        // Answers at once with nothing durable; the txns stay held.
        assert_eq!(d.barrier(), None);
        d.submit(vec![p(3)]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            rx.try_recv().is_err(),
            "nothing is durable while the disk is full"
        );
        space.store(true, std::sync::atomic::Ordering::SeqCst);
        // No new append needed: the thread retries by itself, and reports in the
        // generation after the barrier.
        let (g, z) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("retried")
            .unwrap();
        assert_eq!(z, 3);
        assert!(d.is_current(g));
        assert_eq!(*written.lock().unwrap(), vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn failed_syncs_are_never_reported_durable() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut d = DiskThread::start(Box::new(Failing), tx).unwrap();
        d.submit(vec![p(1), p(2)]);
        assert_eq!(d.barrier(), None);
        assert!(rx.try_recv().is_err());
    }
}
