//! Grid's pure rules.

pub mod index;
pub mod layer;
pub mod regions;
