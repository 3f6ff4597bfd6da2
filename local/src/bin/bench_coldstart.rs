//! `bench-coldstart RESULTS_DIR BIN_DIR`: how long each of Courier's
//! functions takes from process start until it asks the Lambda runtime API
//! for its first event (its init: configuration, tracing, SDK clients), next
//! to a minimal lambda_runtime hello-world built with the same profile, both
//! as the templates write it (tokio's multi-thread runtime) and on the
//! current-thread runtime the functions use. Also
//! its resident memory at that moment, and the arm64 zip sizes `make package`
//! left in build/lambda. Writes `coldstart.{json,md}`. Does I/O: processes
//! and a loopback stand-in for the runtime API.
//!
//! The stand-in answers nothing: it notes the time of the first
//! `GET /2018-06-01/runtime/invocation/next` and the bench then kills the
//! process. Runs alternate between binaries, so machine noise spreads evenly.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const RUNS: usize = 51;
/// The yardsticks first, then the functions.
const BINARIES: [&str; 6] = [
    "hello",
    "hello-current-thread",
    "api",
    "device-events",
    "dispatcher",
    "sweeper",
];

#[derive(Debug, Default)]
struct Samples {
    init_ms: Vec<f64>,
    rss_kib: Vec<u64>,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(rank).copied().unwrap_or(f64::NAN)
}

/// Resident set size of `pid` right now, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// One cold start of `binary`: spawn, wait for its first `next` request.
async fn cold_start(
    binary: &std::path::Path,
    port: u16,
    arrivals: &mut mpsc::Receiver<Instant>,
) -> Result<(f64, u64), String> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_SESSION_TOKEN", "bench")
        .env("TABLE_NAME", "courier-bench")
        .env("PAGE_TOKEN_SECRET", "bench-page-token-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let arrived = tokio::time::timeout(Duration::from_secs(10), arrivals.recv()).await;
    let rss = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    match arrived {
        Ok(Some(at)) => Ok((at.duration_since(started).as_secs_f64() * 1000.0, rss)),
        _ => Err(format!(
            "{} never asked for an event (crashed at init?)",
            binary.display()
        )),
    }
}

/// The runtime API stand-in: reports the arrival time of every `next` call.
async fn runtime_api(listener: TcpListener, arrivals: mpsc::Sender<Instant>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if head.starts_with(b"GET /2018-06-01/runtime/invocation/next") {
                let _ = arrivals.send(Instant::now()).await;
            }
            // Hold the connection, as the real API does until an event comes.
            let _ = socket.read(&mut buf).await;
        });
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let results = std::path::PathBuf::from(args.next().unwrap_or_else(|| "bench/results".into()));
    let bin_dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "target/release".into()));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (tx, mut rx) = mpsc::channel(16);
    tokio::spawn(runtime_api(listener, tx));

    let mut samples: BTreeMap<&str, Samples> = BTreeMap::new();
    for _ in 0..RUNS {
        for name in BINARIES {
            let (ms, rss) = cold_start(&bin_dir.join(name), port, &mut rx).await?;
            let entry = samples.entry(name).or_default();
            entry.init_ms.push(ms);
            entry.rss_kib.push(rss);
        }
    }

    let hello = median(&samples["hello"].init_ms);
    let hello_current_thread = median(&samples["hello-current-thread"].init_ms);
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for name in BINARIES {
        let s = &samples[name];
        let zip = std::fs::metadata(format!("build/lambda/{name}/bootstrap.zip"))
            .ok()
            .map(|m| m.len());
        let med = median(&s.init_ms);
        let rss = s.rss_kib.iter().copied().max().unwrap_or(0);
        rows.push(format!(
            "| {name} | {:.2} | {:.2} | {:.2}x | {:.2}x | {:.1} | {} |",
            med,
            percentile(&s.init_ms, 0.9),
            med / hello,
            med / hello_current_thread,
            rss as f64 / 1024.0,
            zip.map_or_else(
                || "–".to_owned(),
                |b| format!("{:.2} MiB", b as f64 / 1_048_576.0)
            ),
        ));
        json_rows.push(serde_json::json!({
            "binary": name,
            "runs": s.init_ms.len(),
            "initMedianMs": med,
            "initP90Ms": percentile(&s.init_ms, 0.9),
            "ratioToHello": med / hello,
            "ratioToHelloCurrentThread": med / hello_current_thread,
            "rssMaxKiB": rss,
            "arm64ZipBytes": zip,
        }));
    }
    let md = format!(
        "| binary | init median ms | init p90 ms | vs hello (minimal lambda_runtime template; goal <= 1.5x) | vs hello-current-thread (same runtime as the functions) | RSS at first event MiB | arm64 zip (goal < 5 MiB) |\n|---|---|---|---|---|---|---|\n{}\n\n{RUNS} cold starts each, alternating; x86_64 release builds (lto, codegen-units 1, panic abort) run natively against a loopback runtime-API stand-in; zips from `make package` (arm64).\n",
        rows.join("\n")
    );
    print!("{md}");
    std::fs::create_dir_all(&results)?;
    std::fs::write(results.join("coldstart.md"), &md)?;
    std::fs::write(
        results.join("coldstart.json"),
        serde_json::to_string_pretty(&serde_json::json!({ "runs": RUNS, "binaries": json_rows }))?,
    )?;
    Ok(())
}
