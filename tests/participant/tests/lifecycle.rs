//! 1,000 participants created and closed one after another leave no task or socket behind.

use std::time::Duration;

use tutti_participant::{Participant, ParticipantConfig};

/// Task bookkeeping lags a joined task's completion slightly on the multi-thread runtime.
async fn settled_alive_tasks(metrics: &tokio::runtime::RuntimeMetrics) -> usize {
    for _ in 0..100 {
        if metrics.num_alive_tasks() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    metrics.num_alive_tasks()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_participants_do_not_leak() {
    let metrics = tokio::runtime::Handle::current().metrics();
    // Warm up lazily opened process resources (random source, epoll) before taking the baseline.
    Participant::bind(ParticipantConfig::new("warmup"))
        .await
        .unwrap()
        .close()
        .await;
    let fds = open_fds();
    for i in 0..1000 {
        let p = Participant::bind(ParticipantConfig::new(&format!("p{i}")))
            .await
            .unwrap();
        // Its receive loop runs (the previous participant's task may still be counted: the
        // runtime's bookkeeping lags a joined task's end).
        assert!(metrics.num_alive_tasks() >= 1, "receive loop running");
        p.close().await;
        assert_eq!(settled_alive_tasks(&metrics).await, 0, "iteration {i}");
    }
    // Dropping without close() also stops the tasks (abort is asynchronous).
    let p = Participant::bind(ParticipantConfig::new("dropped"))
        .await
        .unwrap();
    drop(p);
    assert_eq!(settled_alive_tasks(&metrics).await, 0);
    assert_eq!(open_fds(), fds);
}
