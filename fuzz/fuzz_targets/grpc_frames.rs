#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rperf::fuzzing::grpc_frames(data));
