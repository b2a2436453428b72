//! Reliability under faults: replayed events, concurrent runs, injected AWS
//! errors and lost answers, crashes right after any write, and hostile
//! input, each in an arena crowded with things that are not ours (see
//! tests/src/arena.rs). Every family ends by comparing the AWS state with
//! the state a clean run makes (nothing of ours leaked, doubled or missing)
//! and everything else with how it began (nothing foreign touched), then a
//! clean sweep must leave both as they are. Each family writes its figures
//! for the reliability report (`make test` prints it).

use std::time::{Duration, Instant};

use eks_private_dns_tests::arena::*;
use eks_private_dns_tests::proxy::FaultPlan;
use eks_private_dns_tests::*;
use shared::handler::{handle_event, EventResult};

const REPORT_DIR: &str = env!("CARGO_TARGET_TMPDIR");

/// The event that makes the cluster private (the usual trigger).
const PRIVATE_EVENT: &str = "update-cluster-config-private.json";

async fn event(rec: &shared::Reconciler, bytes: &[u8]) -> Result<EventResult, String> {
    handle_event(
        rec,
        bytes,
        Instant::now() + Duration::from_secs(60),
        Duration::from_millis(200),
    )
    .await
    .map_err(|e| e.to_string())
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    serde_json::to_vec(&fixture(name).unwrap()).unwrap()
}

/// What a clean run of ours leaves: made in a fresh arena, which comes
/// back renewed for the family's own runs.
async fn expected_setup() -> (Arena, Vec<String>) {
    let arena = Arena::new().await;
    let report = arena.reconciler().reconcile(CLUSTER, None).await;
    assert_eq!(report.error, None, "{report:#?}");
    let expected = arena.state().await.ours;
    assert!(
        expected.iter().any(|l| l.starts_with("endpoint ")) && expected.len() > 10,
        "a clean setup builds the plumbing: {expected:#?}"
    );
    (arena.renew().await, expected)
}

/// The family's last check: a clean sweep of ours finds the state right
/// and leaves it, and everything else, as it is.
async fn sweep_and_judge(arena: &Arena, expected: &[String], figures: &mut Figures) {
    arena.proxy.inject(None);
    let rec = arena.reconciler();
    let before = arena.proxy.total();
    let summary = shared::sweep::sweep(&rec, |_, _, _| {}).await;
    match summary {
        Ok(s) if s.failed == 0 => {}
        other => figures
            .failures
            .push(format!("the closing sweep: {other:?}")),
    }
    let writes = arena.proxy.total().writes - before.writes;
    if writes != 0 {
        figures
            .failures
            .push(format!("the closing sweep wrote {writes} times"));
    }
    arena
        .judge(expected, figures, "after the closing sweep")
        .await;
}

#[tokio::test]
async fn replay_the_same_event_twenty_times_makes_one_set_and_writes_once() {
    let mut figures = Figures::new("replay");
    let (arena, expected) = expected_setup().await;
    let bytes = fixture_bytes(PRIVATE_EVENT);
    let rec = arena.reconciler();
    let mut writes_after_first = 0;
    for i in 0..20 {
        let before = arena.proxy.total().writes;
        match event(&rec, &bytes).await {
            Ok(EventResult::Reconciled { report, .. }) if report.error.is_none() => {}
            other => figures.failures.push(format!("event {i}: {other:?}")),
        }
        if i > 0 {
            writes_after_first += arena.proxy.total().writes - before;
        }
        figures.runs += 1;
    }
    if writes_after_first != 0 {
        figures
            .failures
            .push(format!("{writes_after_first} writes after the first event"));
    }
    arena
        .judge(&expected, &mut figures, "after 20 events")
        .await;
    figures.requests.add(&arena.proxy.total());
    sweep_and_judge(&arena, &expected, &mut figures).await;
    figures.record_and_check(REPORT_DIR);
}

/// 8 applies and 8 events at once, each with its own clients (as separate
/// Lambda instances and a CLI would be): once to build, once to remove.
#[tokio::test]
async fn eight_applies_and_eight_events_at_once_make_one_set() {
    let mut figures = Figures::new("concurrency");
    let (arena, expected) = expected_setup().await;
    let bytes = fixture_bytes(PRIVATE_EVENT);
    let public = {
        let mut v = fixture("update-cluster-config-public.json").unwrap();
        // The same cluster, made public: its plumbing goes.
        v["detail"]["requestParameters"]["name"] = CLUSTER.into();
        serde_json::to_vec(&v).unwrap()
    };
    for (phase, event_bytes, want) in [
        ("setup", &bytes, expected.clone()),
        ("teardown", &public, Vec::new()),
    ] {
        if phase == "teardown" {
            arena.w.aws.set_access(CLUSTER, true, true).await.unwrap();
        }
        let mut tasks = Vec::new();
        for i in 0..16 {
            let rec = arena.reconciler();
            let bytes = event_bytes.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    let r = rec.reconcile(CLUSTER, None).await;
                    r.error.map(|e| format!("apply {i}: {e}"))
                } else {
                    match event(&rec, &bytes).await {
                        Ok(EventResult::Reconciled { report, .. }) => {
                            report.error.map(|e| format!("event {i}: {e}"))
                        }
                        other => Some(format!("event {i}: {other:?}")),
                    }
                }
            }));
        }
        let mut failed = Vec::new();
        for t in tasks {
            if let Some(e) = t.await.unwrap() {
                failed.push(e);
            }
        }
        figures.runs += 16;
        // A run that lost a race may report it; the next one must converge.
        if !failed.is_empty() {
            figures.further_reconciles += 1;
            let r = arena.reconciler().reconcile(CLUSTER, None).await;
            if let Some(e) = r.error {
                figures.failures.push(format!(
                    "{phase}: after {failed:?}, a further reconcile: {e}"
                ));
            }
        }
        arena
            .judge(
                &want,
                &mut figures,
                &format!("after the concurrent {phase}"),
            )
            .await;
        let before = arena.proxy.total().writes;
        let again = arena.reconciler().reconcile(CLUSTER, None).await;
        if again.error.is_some() || arena.proxy.total().writes != before {
            figures.failures.push(format!(
                "{phase}: the next reconcile was not a no-op: {again:#?}"
            ));
        }
    }
    figures.requests.add(&arena.proxy.total());
    sweep_and_judge(&arena, &[], &mut figures).await;
    figures.record_and_check(REPORT_DIR);
}

/// One reconcile under `plan`, then, when it did not converge, one more
/// with the faults gone.
async fn under_faults(
    arena: &Arena,
    plan: FaultPlan,
    expected: &[String],
    figures: &mut Figures,
    what: &str,
) {
    arena.proxy.inject(Some(plan));
    let report = arena.reconciler().reconcile(CLUSTER, None).await;
    arena.proxy.inject(None);
    let converged = report.error.is_none() && arena.state().await.ours == expected;
    if !converged {
        figures.further_reconciles += 1;
        let again = arena.reconciler().reconcile(CLUSTER, None).await;
        if let Some(e) = again.error {
            figures.failures.push(format!(
                "{what}: the further reconcile failed: {e} (first: {:?})",
                report.error
            ));
        }
    }
    arena.judge(expected, figures, what).await;
}

/// 20 seeded runs, each a setup and a teardown with 20% of all requests
/// faulted (throttled, 500, 503, reset, delayed, or done and unanswered).
#[tokio::test]
async fn twenty_seeded_runs_at_twenty_percent_faults_converge() {
    let mut figures = Figures::new("faults");
    let (mut arena, expected) = expected_setup().await;
    for seed in 1..=20u64 {
        if seed > 1 {
            arena = arena.renew().await;
        }
        under_faults(
            &arena,
            FaultPlan::all(seed, 0.2),
            &expected,
            &mut figures,
            &format!("seed {seed}, setup"),
        )
        .await;
        arena.w.aws.set_access(CLUSTER, true, true).await.unwrap();
        under_faults(
            &arena,
            FaultPlan::all(seed + 1000, 0.2),
            &[],
            &mut figures,
            &format!("seed {seed}, teardown"),
        )
        .await;
        figures.runs += 1;
        figures.requests.add(&arena.proxy.total());
    }
    sweep_and_judge(&arena, &[], &mut figures).await;
    figures.record_and_check(REPORT_DIR);
}
