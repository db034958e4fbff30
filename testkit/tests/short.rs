//! The short convergence run of scripts/test.sh: fixed seeds on SQLite, and one on PostgreSQL
//! when `TANDEM_TEST_POSTGRES_URL` is set. A failure prints the seed and the shortest op list.

use tandem_testkit::converge::{check_seed, Setup};

const SEEDS: [u64; 3] = [1, 2, 3];
const OPS: usize = 50;

fn setup() -> Setup {
    Setup {
        crash_child: Some(env!("CARGO_BIN_EXE_tandem-testkit").into()),
        ..Setup::default()
    }
}

#[test]
fn fixed_seeds_converge_on_sqlite() {
    for seed in SEEDS {
        if let Err(failure) = check_seed(seed, OPS, &setup(), 30) {
            panic!("{failure}");
        }
    }
}

#[test]
fn one_seed_converges_on_postgres() {
    let Ok(url) = std::env::var("TANDEM_TEST_POSTGRES_URL") else {
        eprintln!("TANDEM_TEST_POSTGRES_URL is not set: skipping the PostgreSQL seed");
        return;
    };
    let setup = Setup {
        db: Some(url),
        ..setup()
    };
    if let Err(failure) = check_seed(7, OPS, &setup, 30) {
        panic!("{failure}");
    }
}
