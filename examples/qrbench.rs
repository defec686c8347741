//! QR PNG render throughput: how many payment-intent codes one core turns into the PNG that
//! `GET /v1/payment-intents/{id}/qr.png` serves (QR encoding, rasterising, PNG compression).
//!
//! ```text
//! cargo run --release --example qrbench -- [--seconds 5] [--size 512] [--threads 1]
//! ```
//!
//! Each thread renders distinct dynamic VietQR payloads (a fresh reference and amount each
//! time, as real intents have) for `--seconds`, then one `key=value` line is printed:
//! `threads=1 size=512 seconds=5.00 renders=... renders_per_s=... renders_per_s_per_thread=...
//! png_bytes=...`. Run with `--threads` equal to the free cores to see how it scales.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use market_ledger::domain::reference::PaymentReference;
use market_ledger::domain::vietqr::{Initiation, Service, VietQr};
use market_ledger::services::payments::qr_image::{render, ImageFormat, MAX_SIZE, MIN_SIZE};
use rand::Rng;

const USAGE: &str = "usage: qrbench [--seconds N] [--size PIXELS] [--threads N]";

struct Options {
    seconds: u64,
    size: u32,
    threads: usize,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        seconds: 5,
        size: 512,
        threads: 1,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = value
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{flag} must be a positive integer, not {value:?}"))?;
        match flag.as_str() {
            "--seconds" => options.seconds = number,
            "--size" => {
                options.size = u32::try_from(number)
                    .ok()
                    .filter(|size| (MIN_SIZE..=MAX_SIZE).contains(size))
                    .ok_or_else(|| format!("--size must be {MIN_SIZE} to {MAX_SIZE}"))?
            }
            "--threads" => options.threads = number as usize,
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(options)
}

/// Renders fresh payloads until `deadline`; returns the count and the last PNG's size.
fn render_until(deadline: Instant, size: u32) -> (u64, usize) {
    let mut rng = rand::thread_rng();
    let (mut renders, mut last_bytes) = (0, 0);
    while Instant::now() < deadline {
        let reference = PaymentReference::generate(&mut rng);
        let payload = VietQr::new(
            Initiation::Dynamic,
            "970436",
            "0123456789",
            Service::Account,
            Some(rng.gen_range(1_000..=5_000_000)),
            Some(reference.as_str()),
        )
        .expect("a valid code")
        .encode();
        last_bytes = render(&payload, ImageFormat::Png, size).bytes.len();
        renders += 1;
    }
    (renders, last_bytes)
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(why) => {
            eprintln!("qrbench: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let workers: Vec<_> = (0..options.threads)
        .map(|_| std::thread::spawn(move || render_until(deadline, options.size)))
        .collect();
    let (mut renders, mut png_bytes) = (0, 0);
    for worker in workers {
        let (count, bytes) = worker.join().expect("render thread");
        renders += count;
        png_bytes = bytes;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_second = renders as f64 / elapsed;
    println!(
        "threads={} size={} seconds={elapsed:.2} renders={renders} renders_per_s={per_second:.1} \
         renders_per_s_per_thread={:.1} png_bytes={png_bytes}",
        options.threads,
        options.size,
        per_second / options.threads as f64,
    );
    ExitCode::SUCCESS
}
