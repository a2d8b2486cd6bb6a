//! The image the Kubernetes recipe runs, checked without Docker (image.rs).

mod common;
#[path = "distributed/dockerfile.rs"]
mod dockerfile;
#[path = "distributed/image.rs"]
mod image;
