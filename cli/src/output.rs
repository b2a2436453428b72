//! What the CLI prints: one JSON document, or text for people.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use shared::reconcile::{Outcome, Report};

use crate::*;

pub(crate) fn print_sweep(s: &shared::sweep::SweepReport) {
    for report in s
        .reports
        .iter()
        .filter(|r| !r.actions.is_empty() || !r.held_back.is_empty())
    {
        print_report(report);
    }
    for held in s.held_back.iter().filter(|h| h.starts_with("(shared)")) {
        println!("held back: {held}");
    }
    println!(
        "swept {} clusters: {} managed, {} pending, {} not managed, {} invalid; {} changed, \
         {} converging, {} failed, {} orphans removed; {} API calls ({} writes, {} throttled, \
         {} polls) in {} ms",
        s.clusters_seen,
        s.managed,
        s.pending,
        s.not_managed,
        s.invalid,
        s.changed,
        s.converging,
        s.failed,
        s.orphans_removed,
        s.api_calls,
        s.write_calls,
        s.throttles,
        s.poll_calls,
        s.duration_ms
    );
    for c in &s.in_progress {
        println!(
            "{}: still in progress: {} (the next sweep finishes it)",
            c.cluster,
            c.waiting_for.join("; ")
        );
    }
    for line in &s.left_behind {
        println!("left behind: {line}");
    }
}

pub(crate) fn print_teardown(t: &shared::sweep::TeardownReport, applied: bool) {
    print_sweep(&t.sweep);
    if t.settings_removed {
        println!("removed the deployment's settings parameter");
    }
    let heading = if applied { "left" } else { "of this owner now" };
    if t.left.is_empty() {
        println!("{heading}: nothing");
    }
    for line in &t.left {
        println!("{heading}: {line}");
    }
}

pub(crate) fn emit<T: Serialize>(output: Output, value: &T, text: impl FnOnce()) -> Result<()> {
    match output {
        Output::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, value)?;
            writeln!(out)?;
        }
        Output::Text => text(),
    }
    Ok(())
}

pub(crate) fn print_report(report: &Report) {
    let detail = report
        .detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    println!("cluster {}: {}{detail}", report.cluster, report.decision);
    for action in &report.actions {
        println!("  + {action}");
    }
    for problem in &report.problems {
        println!("  ! {problem}");
    }
    for repaired in &report.repaired {
        println!("  repaired: {repaired}");
    }
    for kept in &report.kept {
        println!("  kept: {kept}");
    }
    for warning in &report.warnings {
        println!("  warning: {warning}");
    }
    for held in &report.held_back {
        println!("  held back: {held}");
    }
    let defaults = report
        .settings
        .iter()
        .filter(|s| s.source == shared::settings::Source::Default)
        .count();
    for s in report
        .settings
        .iter()
        .filter(|s| s.source != shared::settings::Source::Default)
    {
        println!(
            "  setting {}={} ({})",
            s.variable,
            s.value,
            s.source.as_str()
        );
    }
    if !report.settings.is_empty() {
        println!(
            "  settings: {defaults} of {} at their defaults",
            report.settings.len()
        );
    }
    let verb = match report.outcome {
        Outcome::Converging => format!(
            "applied {} actions; converging (AWS is still working; the next sweep finishes it)",
            report.actions.len()
        ),
        _ if report.applied => format!("applied {} actions", report.actions.len()),
        _ if report.actions.is_empty() => "nothing to do".to_string(),
        _ if report.mode == shared::config::Mode::Plan => {
            format!("{} planned actions (nothing changed)", report.actions.len())
        }
        _ => "not applied".to_string(),
    };
    for waiting in &report.in_progress {
        println!("  in progress: {waiting}");
    }
    println!(
        "  {verb}; {} API calls ({} writes, {} polls) in {} ms",
        report.api_calls, report.write_calls, report.poll_calls, report.duration_ms
    );
}
