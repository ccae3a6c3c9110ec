//! Encode and decode costs of OpAMP messages, and what the transport framing adds to bare prost.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opamp_benches::sample;
use opamp_proto::{AgentToServer, Message};
use opamp_transport::codec::{
    ContentEncoding, Limits, decode_http_body, decode_ws_message, encode_http_body,
    encode_ws_message,
};

fn messages() -> [(&'static str, AgentToServer); 2] {
    [
        ("full_state", sample::full_state_report()),
        ("heartbeat", sample::heartbeat(42)),
    ]
}

fn protobuf(c: &mut Criterion) {
    for (name, msg) in messages() {
        let wire = msg.encode_to_vec();
        let mut group = c.benchmark_group(format!("prost/{name}"));
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function("encode", |b| b.iter(|| black_box(&msg).encode_to_vec()));
        group.bench_function("decode", |b| {
            b.iter(|| AgentToServer::decode(black_box(wire.as_slice())).expect("valid message"))
        });
        group.finish();
    }
}

fn websocket_framing(c: &mut Criterion) {
    let limits = Limits::default();
    for (name, msg) in messages() {
        let frame = encode_ws_message(&msg, &limits).expect("within limits");
        let mut group = c.benchmark_group(format!("ws/{name}"));
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function("encode", |b| {
            b.iter(|| encode_ws_message(black_box(&msg), &limits).expect("within limits"))
        });
        group.bench_function("decode", |b| {
            b.iter(|| {
                decode_ws_message::<AgentToServer>(black_box(&frame), &limits).expect("valid")
            })
        });
        group.finish();
    }
}

fn http_bodies(c: &mut Criterion) {
    let limits = Limits::default();
    let msg = sample::full_state_report();
    for encoding in [ContentEncoding::Identity, ContentEncoding::Gzip] {
        let body = encode_http_body(&msg, encoding, &limits).expect("within limits");
        let mut group = c.benchmark_group(format!("http/full_state/{encoding:?}"));
        group.throughput(Throughput::Bytes(msg.encoded_len() as u64));
        group.bench_function("encode", |b| {
            b.iter(|| encode_http_body(black_box(&msg), encoding, &limits).expect("ok"))
        });
        group.bench_function("decode", |b| {
            b.iter_batched(
                || body.clone(),
                |body| decode_http_body::<AgentToServer>(&body, encoding, &limits).expect("ok"),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, protobuf, websocket_framing, http_bodies);
criterion_main!(benches);
