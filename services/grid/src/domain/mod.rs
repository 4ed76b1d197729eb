//! Grid's pure rules: reading a layer and the division tree, the index
//! that locates a point, reshaping (imports, splits, merges), the
//! registers (pairs, buildings), duty periods and plans, the people's
//! checks and masking, grid events and broadcasts. Nothing here touches the
//! database, the bus or gRPC; every rule is tested with tables of cases.

pub mod duties;
pub mod index;
pub mod layer;
pub mod matters;
pub mod people;
pub mod regions;
pub mod registry;
pub mod reshape;
pub mod stream;
