//! Grid: the smallest unit of governance. Regions (the 12-digit division
//! tree), grids of every kind with their geometry, and locating a point
//! among them.
//!
//! This first part is the pure core: reading and validating grid layers
//! from GeoJSON (closed rings, valid polygons, overlapping basic grids inside
//! a community reported) and an in-memory spatial index (R-tree over
//! bounding boxes, then exact point-in-polygon) that answers which grids
//! hold a point. Storage, the gRPC/REST service, people, duties and events
//! follow (issue 5).

pub mod domain;
