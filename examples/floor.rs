//! The floor under a load generator's cost on this machine: the least a client can do per
//! HTTP/1.1 request over loopback TCP, written as plainly as possible so that
//! benches/client_cost.py can set it beside rperf, perf_analyzer and wrk. It is not a load
//! generator: no latencies, no report, and any failure ends it.
//!
//!   floor closed ADDR REQUEST_FILE SECONDS
//!       One connection, one request in flight: a blocking write, then blocking reads until
//!       the response is whole. One write, one read and one sleep per request: no client
//!       can do less at concurrency 1.
//!   floor open ADDR REQUEST_FILE RATE SECONDS
//!       Open loop at a constant rate on one thread: each request goes out when due, on an
//!       idle connection of a pool of 256, and the thread sleeps in epoll_pwait2, whose timeout has
//!       nanoseconds (and the kernel's timer slack), until the next send or answer.
//!   floor stream ADDR REQUEST_FILE SECONDS
//!       As closed, for a streamed reply (server-sent events, chunked): blocking reads until
//!       the body's last chunk; nothing is parsed. The least a client can do per streamed
//!       event is one wake-up and one read: benches/sse_cost.py sets it beside rperf.
//!   floor streams ADDR REQUEST_FILE SECONDS N
//!       N streams at once on one thread, each as `stream` (a closed loop of streamed
//!       replies, nothing parsed), the thread asleep in epoll_wait until some connection has
//!       bytes, which it reads (4 KB at most) and drops: the floor of an event loop's cost
//!       per streamed event at N streams, beside rperf and the Python client.
//!
//! REQUEST_FILE holds one whole HTTP/1.1 request, headers and body. Both modes print
//! `requests N` (answers received) at the end; the open loop also prints how late its sends
//! went out behind the schedule (p50, p99), the price of the timer slack it sleeps with.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{epoll, Timespec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["closed", addr, file, secs] => {
            read_request(file).and_then(|r| Ok((closed(addr, &r, seconds(secs)?, unary_end)?, None)))
        }
        ["stream", addr, file, secs] => {
            read_request(file).and_then(|r| Ok((closed(addr, &r, seconds(secs)?, stream_end)?, None)))
        }
        ["streams", addr, file, secs, n] => read_request(file).and_then(|r| {
            let n: usize = n.parse().map_err(|_| format!("N: expected a number of streams, got {n}"))?;
            Ok((streams(addr, &r, seconds(secs)?, n)?, None))
        }),
        ["open", addr, file, rate, secs] => read_request(file).and_then(|r| {
            let rate: f64 = rate.parse().map_err(|_| format!("RATE: expected requests per second, got {rate}"))?;
            open(addr, &r, rate, seconds(secs)?).map(|(n, lags)| (n, Some(lags)))
        }),
        _ => Err("usage: floor closed|stream ADDR REQUEST_FILE SECONDS | floor streams ADDR REQUEST_FILE SECONDS N \
             | floor open ADDR REQUEST_FILE RATE SECONDS"
            .into()),
    };
    match result {
        Ok((n, lags)) => {
            println!("requests {n}");
            if let Some(lags) = lags {
                println!("send lag p50 {} usec, p99 {} usec", quantile(&lags, 0.5), quantile(&lags, 0.99));
            }
        }
        Err(e) => {
            eprintln!("floor: {e}");
            std::process::exit(1);
        }
    }
}

/// Microseconds late, sorted in place.
fn quantile(lags: &[u32], q: f64) -> u32 {
    let mut sorted = lags.to_vec();
    sorted.sort_unstable();
    sorted.get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or(0)
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse().map(Duration::from_secs_f64).map_err(|_| format!("SECONDS: expected a number, got {s}"))
}

fn read_request(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn connect(addr: &str) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

/// The length of the first whole response in `buf`, if it is all there.
fn whole_response(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(buf).map_err(|e| format!("unreadable response: {e}"))? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
        .ok_or("a response without Content-Length")?;
    Ok((buf.len() >= head + length).then_some(head + length))
}

/// Appends what one read gives; an end of stream is an error.
fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let at = buf.len();
    buf.resize(at + 4096, 0);
    let n = stream.read(&mut buf[at..]).map_err(|e| format!("read: {e}"))?;
    buf.truncate(at + n);
    if n == 0 {
        return Err("the server closed the connection".into());
    }
    Ok(())
}

/// One request in flight: write it, read until `reply_end` says the reply is whole (and
/// takes it out of the buffer), again until `run` is over.
fn closed(
    addr: &str,
    request: &[u8],
    run: Duration,
    reply_end: fn(&mut Vec<u8>) -> Result<bool, String>,
) -> Result<u64, String> {
    let mut stream = connect(addr)?;
    let mut buf = Vec::with_capacity(8192);
    let end = Instant::now() + run;
    let mut done = 0;
    while Instant::now() < end {
        stream.write_all(request).map_err(|e| format!("write: {e}"))?;
        loop {
            read_some(&mut stream, &mut buf)?;
            if reply_end(&mut buf)? {
                break;
            }
        }
        done += 1;
    }
    Ok(done)
}

/// A Content-Length response.
fn unary_end(buf: &mut Vec<u8>) -> Result<bool, String> {
    let whole = whole_response(buf)?;
    if let Some(n) = whole {
        buf.drain(..n);
    }
    Ok(whole.is_some())
}

/// A streamed reply: it ends with its zero-length chunk. Only the tail can hold the end, so
/// what came before is dropped unread.
fn stream_end(buf: &mut Vec<u8>) -> Result<bool, String> {
    if buf.ends_with(b"\r\n0\r\n\r\n") || buf == b"0\r\n\r\n" {
        buf.clear();
        return Ok(true);
    }
    buf.drain(..buf.len().saturating_sub(6));
    Ok(false)
}

/// The open loop's connections, all opened before the clock starts: opening them on demand
/// means a burst of connects when the server stalls, which overflows its accept queue, and a
/// SYN sent again a second later would stall this one thread. When all are busy, sends wait
/// (and their lag says so).
const CONNECTIONS: usize = 256;

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    busy: bool,
}

fn open(addr: &str, request: &[u8], rate: f64, run: Duration) -> Result<(u64, Vec<u32>), String> {
    let poll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| e.to_string())?;
    let mut conns: Vec<Conn> = Vec::new();
    let mut idle: Vec<usize> = Vec::new();
    let mut events = Vec::with_capacity(256);
    for i in 0..CONNECTIONS {
        let stream = connect(addr)?;
        epoll::add(&poll, stream.as_fd(), epoll::EventData::new_u64(i as u64), epoll::EventFlags::IN)
            .map_err(|e| e.to_string())?;
        conns.push(Conn { stream, buf: Vec::with_capacity(8192), busy: false });
        idle.push(i);
    }
    let gap = 1e9 / rate;
    let start = Instant::now();
    let (mut sent, mut done) = (0u64, 0u64);
    let mut lags = Vec::with_capacity((rate * run.as_secs_f64()) as usize + 1);
    let due = |k: u64| start + Duration::from_nanos((k as f64 * gap) as u64);
    while start.elapsed() < run {
        let mut capped = false;
        while due(sent) <= Instant::now() {
            let Some(i) = idle.pop() else {
                capped = true;
                break;
            };
            conns[i].stream.write_all(request).map_err(|e| format!("write: {e}"))?;
            lags.push(due(sent).elapsed().as_micros() as u32);
            conns[i].busy = true;
            sent += 1;
        }
        // All connections busy: wait for an answer (or the end of the run), not for the due time.
        let until = if capped { start + run } else { due(sent) };
        let left = until.saturating_duration_since(Instant::now());
        let timeout = Timespec { tv_sec: left.as_secs() as _, tv_nsec: left.subsec_nanos() as _ };
        match epoll::wait(&poll, spare_capacity(&mut events), Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("epoll_pwait2: {e}")),
        }
        for event in events.drain(..) {
            let i = event.data.u64() as usize;
            let open = conns.len();
            let conn = &mut conns[i];
            read_some(&mut conn.stream, &mut conn.buf).map_err(|e| format!("connection {i} of {open}: {e}"))?;
            if let Some(n) = whole_response(&conn.buf)? {
                conn.buf.drain(..n);
                if conn.busy {
                    conn.busy = false;
                    idle.push(i);
                    done += 1;
                }
            }
        }
    }
    Ok((done, lags))
}

/// `n` closed loops of streamed replies on one thread: every connection sends, the thread
/// sleeps until one has bytes, reads them and looks only for the reply's end, then sends
/// again while the run lasts. Replies in flight at the end are read to their end.
fn streams(addr: &str, request: &[u8], run: Duration, n: usize) -> Result<u64, String> {
    let poll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| e.to_string())?;
    let mut conns: Vec<Conn> = Vec::new();
    for i in 0..n.max(1) {
        let mut stream = connect(addr)?;
        epoll::add(&poll, stream.as_fd(), epoll::EventData::new_u64(i as u64), epoll::EventFlags::IN)
            .map_err(|e| e.to_string())?;
        stream.write_all(request).map_err(|e| format!("write: {e}"))?;
        conns.push(Conn { stream, buf: Vec::with_capacity(4096), busy: true });
    }
    let end = Instant::now() + run;
    let (mut done, mut busy) = (0u64, conns.len());
    let mut events = Vec::with_capacity(1024);
    while busy > 0 {
        match epoll::wait(&poll, spare_capacity(&mut events), None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("epoll_wait: {e}")),
        }
        for event in events.drain(..) {
            let conn = &mut conns[event.data.u64() as usize];
            read_some(&mut conn.stream, &mut conn.buf)?;
            if conn.busy && stream_end(&mut conn.buf)? {
                done += 1;
                if Instant::now() < end {
                    conn.stream.write_all(request).map_err(|e| format!("write: {e}"))?;
                } else {
                    conn.busy = false;
                    busy -= 1;
                }
            }
        }
    }
    Ok(done)
}
