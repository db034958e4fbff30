//! `tandem-testkit soak --minutes N [--seeds N] [--ops N] [--first S] [--postgres URL]` runs
//! seeds until the time or the seed count is used up and prints what they covered (it stops at
//! the first failure and shrinks it; `--keep-going` lists every failing seed unshrunk instead);
//! `tandem-testkit run --seed S [--ops N] [--postgres URL]` replays one seed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tandem_testkit::converge::{check_seed, crash_sync, generate, run, Setup, Stats};

const USAGE: &str =
    "usage: tandem-testkit soak --minutes N [--seeds N] [--ops N] [--first S] [--postgres URL] [--keep-going]
       tandem-testkit run --seed S [--ops N] [--postgres URL]
       tandem-testkit crash-sync --dir D --url U [--batch N] [--page N]";

struct Args {
    minutes: Option<u64>,
    seeds: Option<u64>,
    seed: Option<u64>,
    first: u64,
    ops: usize,
    postgres: Option<String>,
    dir: Option<String>,
    url: Option<String>,
    batch: u32,
    page: u32,
    keep_going: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        minutes: None,
        seeds: None,
        seed: None,
        first: 1,
        ops: 60,
        postgres: None,
        dir: None,
        url: None,
        batch: 200,
        page: 500,
        keep_going: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--minutes" => out.minutes = Some(number(value()?)?),
            "--seeds" => out.seeds = Some(number(value()?)?),
            "--seed" => out.seed = Some(number(value()?)?),
            "--first" => out.first = number(value()?)?,
            "--ops" => out.ops = number(value()?)? as usize,
            "--postgres" => out.postgres = Some(value()?),
            "--dir" => out.dir = Some(value()?),
            "--url" => out.url = Some(value()?),
            "--batch" => out.batch = number(value()?)? as u32,
            "--page" => out.page = number(value()?)? as u32,
            "--keep-going" => out.keep_going = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(out)
}

/// On PostgreSQL every seed shares the given database: each run signs up fresh accounts, so
/// their records never meet another run's.
fn setup(args: &Args) -> Setup {
    Setup {
        db: args.postgres.clone(),
        crash_child: std::env::current_exe().ok(),
        ..Setup::default()
    }
}

fn print_stats(stats: &Stats, seeds: u64, elapsed: Duration) {
    println!("seeds passed: {seeds}");
    println!("ops: {} (syncs {})", stats.ops, stats.syncs);
    println!(
        "conflicts made: {}, resolved: {}",
        stats.conflicts_made, stats.conflicts_resolved
    );
    println!(
        "server restarts: {}, device kills: {}, full re-pulls: {}",
        stats.restarts, stats.kills, stats.full_repulls
    );
    println!(
        "dead letters (invalid_parent) discarded at the end: {}",
        stats.dead_letters_discarded
    );
    let faults: Vec<String> = stats
        .faults
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!("faults: {}", faults.join(", "));
    println!("wall-clock: {:.1} s", elapsed.as_secs_f64());
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = argv.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let args = match parse(&argv[1..]) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    match command.as_str() {
        "run" => {
            let Some(seed) = args.seed else {
                eprintln!("run needs --seed\n{USAGE}");
                return ExitCode::from(2);
            };
            match check_seed(seed, args.ops, &setup(&args), 60) {
                Ok(stats) => {
                    print_stats(&stats, 1, started.elapsed());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        "soak" => {
            let Some(minutes) = args.minutes else {
                eprintln!("soak needs --minutes\n{USAGE}");
                return ExitCode::from(2);
            };
            let deadline = started + Duration::from_secs(minutes * 60);
            let mut total = Stats::default();
            let mut passed = 0;
            let mut seed = args.first;
            let mut failed = Vec::new();
            while Instant::now() < deadline
                && args
                    .seeds
                    .is_none_or(|n| passed + (failed.len() as u64) < n)
            {
                let outcome = if args.keep_going {
                    run(seed, &generate(seed, args.ops), &setup(&args))
                        .map_err(|e| format!("seed {seed} failed: {e}"))
                } else {
                    check_seed(seed, args.ops, &setup(&args), 60)
                };
                match outcome {
                    Ok(stats) => {
                        total.add(&stats);
                        passed += 1;
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        failed.push(seed);
                        if !args.keep_going {
                            break;
                        }
                    }
                }
                seed += 1;
            }
            print_stats(&total, passed, started.elapsed());
            if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                println!("seeds failed: {failed:?}");
                ExitCode::FAILURE
            }
        }
        "crash-sync" => {
            let (Some(dir), Some(url)) = (&args.dir, &args.url) else {
                eprintln!("crash-sync needs --dir and --url\n{USAGE}");
                return ExitCode::from(2);
            };
            match crash_sync(std::path::Path::new(dir), url, args.batch, args.page) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        other => {
            eprintln!("unknown command {other}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
