//! eks-private-dns core: zero-touch private DNS for Amazon EKS.
//!
//! The pipeline is observe -> plan -> apply:
//! - [`observe`] reads AWS (thin adapters, paginated, concurrent),
//! - [`plan`] decides, purely, what should change,
//! - [`apply`] carries it out idempotently, checking ownership again.
//!
//! [`reconcile`] ties them together for one cluster; the Lambdas and the CLI
//! are thin shells over it.

// The futures of a reconcile nest deeply (a sweep's passes over its
// reconciles, each over its rounds and their concurrent reads).
#![recursion_limit = "256"]

pub mod accounts;
pub mod apply;
pub mod aws;
pub mod calls;
pub mod config;
pub mod event;
pub mod handler;
pub mod limit;
pub mod metrics;
pub mod model;
pub mod observation;
pub mod observe;
pub mod owner;
pub mod path;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod reconcile;
pub mod render;
pub mod settings;
pub mod ssm;
pub mod stack;
pub mod status;
pub mod sweep;
pub mod tls;
pub mod verify;
pub mod wait;

pub use config::Config;
pub use reconcile::{Reconciler, Report};
