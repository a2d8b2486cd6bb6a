//! The KServe v2 / Triton gRPC protocol, generated from our own definitions in proto/.

#![allow(clippy::all, clippy::pedantic)]

pub mod inference {
    tonic::include_proto!("inference");
}
