//! Plain-HTTP transport over hyper 1 (spec §"Plain HTTP Transport"): a thin async layer over
//! [`crate::codec::http`], for both sides.
//!
//! * Client: [`HttpClient::round_trip`] posts one message and decodes the answer, over a
//!   keep-alive pool, with gzip both ways, the `OpAMP-Instance-UID` header, size caps and
//!   typed errors for non-2xx statuses ([`crate::Error::HttpStatus`] with `Retry-After`).
//! * Server: [`read_request`], [`protobuf_response`] and [`error_response`] for a hyper 1
//!   service; routing and policy stay with the caller.

mod body;
mod client;
mod connector;
mod server;

pub use client::{HttpClient, HttpClientSettings, HttpRequestOptions, HttpResponse};
pub use server::{
    ServerHttpBody, error_response, error_response_for, protobuf_response, read_request,
};
