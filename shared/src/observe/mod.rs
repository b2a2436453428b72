//! Observe: read what exists, with as few calls and rounds as possible, into
//! plain data for the planner. Nothing here writes. One room per service
//! (`eks`, `ec2`, `resolver`, `parameters`), the region-wide read of a sweep
//! (`fleet`), the interface a look reads through and its two backends
//! (`reader`), and one cluster's observation in its rounds (`cluster`).

use aws_sdk_ec2::types::Filter;

use crate::model::*;

mod cluster;
mod ec2;
mod eks;
mod fleet;
mod parameters;
mod reader;
mod resolver;

pub use cluster::*;
pub use ec2::*;
pub use eks::*;
pub use fleet::*;
pub use parameters::*;
pub use reader::*;
pub use resolver::*;

pub(crate) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

pub(crate) fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}
