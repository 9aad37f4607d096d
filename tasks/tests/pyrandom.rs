//! `tasks::pyrandom` against CPython 3.11.7's `random` module.
//!
//! Expected values were produced with python3 (3.11.7) by:
//! ```python
//! import random
//! r=random.Random(1234); [r.getrandbits(32) for _ in range(5)]
//! r=random.Random(0); [r.getrandbits(32) for _ in range(3)]
//! r=random.Random(2**32+5); [r.getrandbits(32) for _ in range(3)]
//! r=random.Random(2**63+12345); [r.getrandbits(32) for _ in range(3)]
//! r=random.Random(42); [r.getrandbits(k) for k in (1,5,31,32,33,48,64)]
//! r=random.Random(1234); [r._randbelow(n) for n in (1,2,3,5,7,100,2251,2**31+1,2**40+3)]
//! r=random.Random(1234)
//! [r.sample(range(2251),1) for _ in range(10)], [r.sample(range(2251),5) for _ in range(3)],
//! r.sample(range(10),5), r.sample(range(30),7), r.sample(range(100),7), r.sample(range(85),6),
//! r.sample(range(86),6), r.sample(range(5),5)
//! ```

use tasks::pyrandom::PyRandom;

#[test]
fn seeding_matches_cpython() {
    let mut r = PyRandom::new(1234);
    let got: Vec<u64> = (0..5).map(|_| r.getrandbits(32)).collect();
    assert_eq!(got, [4150886329, 3342196574, 1892932127, 501869158, 32175636]);

    let mut r = PyRandom::new(0);
    let got: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
    assert_eq!(got, [3626764237, 1654615998, 3255389356]);

    // Seeds wider than 32 bits use a two-word key.
    let mut r = PyRandom::new((1u64 << 32) + 5);
    let got: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
    assert_eq!(got, [675479763, 2085189291, 1213270837]);

    let mut r = PyRandom::new((1u64 << 63) + 12345);
    let got: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
    assert_eq!(got, [1308997459, 1668775168, 912389232]);
}

#[test]
fn getrandbits_matches_cpython() {
    let mut r = PyRandom::new(42);
    let got: Vec<u64> = [1, 5, 31, 32, 33, 48, 64].iter().map(|&k| r.getrandbits(k)).collect();
    assert_eq!(
        got,
        [
            1,
            3,
            53710184,
            3184935163,
            1181241943,
            39274139637470,
            1890702223848595625
        ]
    );
}

#[test]
fn randbelow_matches_cpython() {
    let mut r = PyRandom::new(1234);
    let got: Vec<u64> = [1, 2, 3, 5, 7, 100, 2251, (1u64 << 31) + 1, (1u64 << 40) + 3]
        .iter()
        .map(|&n| r.randbelow(n))
        .collect();
    assert_eq!(got, [0, 0, 0, 0, 6, 74, 143, 360511942, 521214191144]);
}

#[test]
fn sample_matches_cpython_in_both_branches() {
    let mut r = PyRandom::new(1234);
    let singles: Vec<Vec<usize>> = (0..10).map(|_| r.sample(2251, 1).unwrap()).collect();
    assert_eq!(
        singles,
        [[1805], [478], [30], [371], [143], [343], [403], [1452], [969], [71]]
    );
    let fives: Vec<Vec<usize>> = (0..3).map(|_| r.sample(2251, 5).unwrap()).collect();
    assert_eq!(
        fives,
        [
            [126, 64, 1417, 1983, 1898],
            [608, 373, 749, 468, 59],
            [2060, 1993, 1023, 264, 2216]
        ]
    );
    // n <= setsize: the pool branch.
    assert_eq!(r.sample(10, 5).unwrap(), [7, 1, 8, 4, 6]);
    assert_eq!(r.sample(30, 7).unwrap(), [1, 8, 26, 17, 2, 20, 9]);
    // n > setsize (85 for k = 7): the set branch.
    assert_eq!(r.sample(100, 7).unwrap(), [61, 45, 34, 31, 83, 25, 58]);
    // The branch boundary for k = 6 (setsize 85).
    assert_eq!(r.sample(85, 6).unwrap(), [67, 2, 65, 9, 0, 42]);
    assert_eq!(r.sample(86, 6).unwrap(), [18, 60, 84, 48, 21, 6]);
    assert_eq!(r.sample(5, 5).unwrap(), [0, 3, 4, 2, 1]);
    assert!(r.sample(3, 4).is_err());
}
